"""Migration 0011: the leg and call key columns compare as bytes (``COLLATE "C"``) on Postgres.

Upgrade and downgrade run on both back ends (SQLite: nothing to change) and keep every row; after the
upgrade the key columns carry the ``C`` collation and the calls rebuild's probe still uses the
``(tenant, session)`` index.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from audiapro.warehouse import (
    calls,
    cdr_legs,
    current_revision,
    get_engine,
    head_revision,
    ingest_runs,
    upgrade,
)
from audiapro.warehouse.dialect import in_small_set
from audiapro.warehouse.migrate import alembic_config
from audiapro.warehouse.upsert import changed

NOW = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)
KEY_COLUMNS: dict[str, tuple[str, ...]] = importlib.import_module(
    "audiapro.warehouse.migrations.versions.0011_key_collation"
).KEY_COLUMNS
#: The revision before the key collation.
BEFORE = "0010"


def _collations(conn: sa.Connection, table: str) -> dict[str, str]:
    """Postgres: column -> collation name of ``table``'s text columns."""
    rows = conn.execute(
        sa.text(
            "SELECT a.attname, c.collname FROM pg_attribute AS a "
            "JOIN pg_collation AS c ON c.oid = a.attcollation "
            "WHERE a.attrelid = CAST(:table AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"
        ),
        {"table": table},
    ).all()
    return {str(name): str(collation) for name, collation in rows}


def _migrate(engine: sa.Engine, action: str, target: str) -> None:
    """Run alembic's ``upgrade``/``downgrade`` to ``target`` in one transaction."""
    with engine.connect() as conn, conn.begin():
        config = alembic_config()
        config.attributes["connection"] = conn
        getattr(command, action)(config, target)


def _store_leg_and_call(conn: sa.Connection) -> None:
    run = {"tenant": "t", "kind": "import", "status": "succeeded", "started_at": NOW}
    run_id = conn.execute(sa.insert(ingest_runs).values(**run).returning(ingest_runs.c.id)).scalar_one()
    stamps: dict[str, Any] = {"ingest_run_id": run_id, "last_ingest_run_id": run_id, "updated_at": NOW}
    conn.execute(sa.insert(cdr_legs).values(tenant="t", leg_key="k1", session="s1", loaded_at=NOW, **stamps))
    call = {"answered": False, "leg_count": 1, "talk_s": 0, "recording_count": 0, "created_at": NOW}
    conn.execute(sa.insert(calls).values(tenant="t", session="s1", **call, **stamps))


def test_postgres_key_columns_compare_as_bytes(pg_engine: sa.Engine) -> None:
    with pg_engine.connect() as conn:
        for table, columns in KEY_COLUMNS.items():
            collations = _collations(conn, table)
            assert {column: collations[column] for column in columns} == dict.fromkeys(columns, "C")
            assert collations["tenant"] == "default"  # equal tenants compare by memcmp already


def test_downgrade_and_upgrade_again_keep_rows_and_keys(any_db_url: str) -> None:
    engine = get_engine(any_db_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            _store_leg_and_call(conn)
        _migrate(engine, "downgrade", BEFORE)
        assert current_revision(engine) == BEFORE
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                assert _collations(conn, "cdr_legs")["leg_key"] == "default"
                assert _collations(conn, "calls")["session"] == "default"
        _migrate(engine, "upgrade", "head")
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.execute(sa.select(cdr_legs.c.leg_key, cdr_legs.c.session)).all() == [("k1", "s1")]
            assert conn.scalar(sa.select(calls.c.session)) == "s1"
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            _store_leg_and_call(conn)  # the same (tenant, leg_key) again: the unique index refuses it
    finally:
        engine.dispose()


def test_postgres_calls_probe_uses_the_session_index(pg_engine: sa.Engine) -> None:
    # The probe compares the C-collated column with the sessions of the (C-collated) temp table:
    # with any other collation on either side the index could not serve it.
    with pg_engine.begin() as conn:
        changed.create(conn)
        conn.execute(sa.insert(changed), [{"leg_key": "k1", "session": "s1", "inserted": True}])
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        probe = sa.select(cdr_legs.c.id).where(
            cdr_legs.c.tenant == "t", in_small_set(conn, cdr_legs.c.session, sa.select(changed.c.session))
        )
        compiled = probe.compile(conn, compile_kwargs={"literal_binds": True})
        plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars())
    assert "ix_cdr_legs_tenant_session" in plan
