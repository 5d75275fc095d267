"""Engine factory and migrations: fresh upgrade, idempotence, racing upgrades, schema == tables.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from audiapro.settings import DATABASE_URL_ENV
from audiapro.warehouse import (
    current_revision,
    get_engine,
    head_revision,
    ingest_runs,
    metadata,
    rejected_rows,
    upgrade,
)
from audiapro.warehouse.engine import resolve_url

TABLES = {"cdr_legs", "calls", "sync_state", "ingest_runs", "rejected_rows"}


def test_fresh_upgrade_creates_tables_and_second_is_noop(any_db_url: str) -> None:
    engine = get_engine(any_db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
        assert current_revision(engine) == head_revision()
        upgrade(any_db_url)  # by URL this time; nothing left to do
        assert current_revision(engine) == head_revision()
        indexes = {ix["name"] for ix in sa.inspect(engine).get_indexes("cdr_legs")}
        assert {"ix_cdr_legs_tenant_start_at", "ix_cdr_legs_tenant_session"} <= indexes
        assert "ix_cdr_legs_tenant_acct_id" not in indexes  # no query reads it (dropped in 0010)
        uniques = sa.inspect(engine).get_unique_constraints("cdr_legs")
        assert [u["column_names"] for u in uniques] == [["tenant", "leg_key"]]
    finally:
        engine.dispose()


@pytest.fixture
def migrated(any_db_url: str) -> Iterator[sa.Engine]:
    """An engine on a warehouse just upgraded to the head revision (both back ends)."""
    engine = get_engine(any_db_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def test_migrated_schema_matches_table_definitions(migrated: sa.Engine) -> None:
    with migrated.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_racing_upgrades_both_succeed(any_db_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        try:
            barrier.wait()
            upgrade(any_db_url)  # each caller with its own engine, as two processes would
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    engine = get_engine(any_db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_default_url_comes_from_env_then_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert resolve_url().startswith("sqlite:///")
    monkeypatch.setenv(DATABASE_URL_ENV, f"sqlite:///{tmp_path}/env.sqlite")
    assert resolve_url() == f"sqlite:///{tmp_path}/env.sqlite"
    assert resolve_url("postgresql://h/db") == "postgresql+psycopg2://h/db"  # the shipped driver


def test_sqlite_engine_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/warehouse.sqlite"
    engine = get_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0
        assert (tmp_path / "nested" / "dir").is_dir()
    finally:
        engine.dispose()


def test_sqlite_ddl_is_transactional(sqlite_url: str) -> None:
    # The BEGIN hook makes a failed migration leave nothing behind, as on Postgres.
    engine = get_engine(sqlite_url)
    try:
        with pytest.raises(RuntimeError), engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
            raise RuntimeError("abort")
        assert "scratch" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_foreign_keys_enforced_after_upgrade(migrated: sa.Engine) -> None:
    # On SQLite upgrade() switches enforcement off around the migration; it must come back on for
    # the pooled connection that ran it.
    row = {"tenant": "t", "kind": "poll", "status": "failed", "started_at": datetime.now(UTC)}
    with pytest.raises(sa.exc.IntegrityError), migrated.begin() as conn:
        conn.execute(
            sa.insert(rejected_rows).values(
                ingest_run_id=999, tenant="t", reason="x", created_at=row["started_at"]
            )
        )
    with migrated.begin() as conn:
        run_id = conn.execute(sa.insert(ingest_runs).values(**row).returning(ingest_runs.c.id)).scalar_one()
        conn.execute(
            sa.insert(rejected_rows).values(
                ingest_run_id=run_id, tenant="t", reason="x", created_at=row["started_at"]
            )
        )
