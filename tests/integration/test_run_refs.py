"""Run references of ``cdr_legs`` and ``calls``: checked per statement on Postgres, refused as before.

Migration 0010 replaced the four foreign keys to ``ingest_runs`` with triggers; every write the
foreign keys refused must still be refused, on both back ends.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import psycopg2.errors
import pytest
import sqlalchemy as sa

from audiapro.warehouse import calls, cdr_legs, ingest_runs

NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
UNKNOWN_RUN = 987_654


def _new_run(conn: sa.Connection) -> int:
    row = {"tenant": "t", "kind": "import", "status": "succeeded", "started_at": NOW}
    return int(conn.execute(sa.insert(ingest_runs).values(**row).returning(ingest_runs.c.id)).scalar_one())


def _leg(key: str, run_id: int, last_run_id: int | None = None) -> dict[str, Any]:
    last = run_id if last_run_id is None else last_run_id
    return {
        "tenant": "t",
        "leg_key": key,
        "session": "s1",
        "ingest_run_id": run_id,
        "last_ingest_run_id": last,
        "loaded_at": NOW,
        "updated_at": NOW,
    }


def _call(session: str, run_id: int, last_run_id: int | None = None) -> dict[str, Any]:
    last = run_id if last_run_id is None else last_run_id
    return {
        "tenant": "t",
        "session": session,
        "answered": False,
        "leg_count": 1,
        "talk_s": 0,
        "recording_count": 0,
        "ingest_run_id": run_id,
        "last_ingest_run_id": last,
        "created_at": NOW,
        "updated_at": NOW,
    }


@pytest.fixture
def run_id(engine: sa.Engine) -> Iterator[int]:
    """A run naming one stored leg (``k1``) and one call (``s1``)."""
    with engine.begin() as conn:
        run = _new_run(conn)
        conn.execute(sa.insert(cdr_legs).values(_leg("k1", run)))
        conn.execute(sa.insert(calls).values(_call("s1", run)))
    yield run


@pytest.mark.parametrize("table", ["cdr_legs", "calls"])
@pytest.mark.parametrize("column", ["ingest_run_id", "last_ingest_run_id"])
def test_rows_naming_an_unknown_run_are_refused(
    engine: sa.Engine, run_id: int, table: str, column: str
) -> None:
    build, target = (_leg, cdr_legs) if table == "cdr_legs" else (_call, calls)
    runs = (UNKNOWN_RUN, run_id) if column == "ingest_run_id" else (run_id, UNKNOWN_RUN)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        # Several rows in one statement, only one of them wrong: the whole statement fails.
        conn.execute(sa.insert(target), [build("k2", run_id), build("k3", *runs)])
    with engine.begin() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(target)) == 1


@pytest.mark.parametrize("target", [cdr_legs, calls], ids=["cdr_legs", "calls"])
def test_updates_to_an_unknown_run_are_refused(engine: sa.Engine, run_id: int, target: sa.Table) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.update(target).values(last_ingest_run_id=UNKNOWN_RUN))
    with engine.begin() as conn:
        later = _new_run(conn)
        conn.execute(sa.update(target).values(last_ingest_run_id=later))  # a run that exists
        assert conn.scalar(sa.select(target.c.last_ingest_run_id)) == later


def test_a_named_run_cannot_be_deleted_or_renumbered(engine: sa.Engine, run_id: int) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.delete(ingest_runs).where(ingest_runs.c.id == run_id))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.update(ingest_runs).where(ingest_runs.c.id == run_id).values(id=UNKNOWN_RUN))
    with engine.begin() as conn:
        # Other columns of a named run change freely (every load finishes its run so).
        conn.execute(sa.update(ingest_runs).where(ingest_runs.c.id == run_id).values(inserted=1))
        assert conn.scalar(sa.select(sa.func.count()).select_from(ingest_runs)) == 1


def test_a_run_no_row_names_any_more_can_be_deleted(engine: sa.Engine, run_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(cdr_legs))
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(sa.delete(ingest_runs))  # the call still names it
        conn.execute(sa.delete(calls))
        conn.execute(sa.delete(ingest_runs))
        assert conn.scalar(sa.select(sa.func.count()).select_from(ingest_runs)) == 0


def test_postgres_checks_run_refs_once_per_statement(pg_engine: sa.Engine) -> None:
    # The per-row foreign keys are gone; statement-level triggers took their place.
    with pg_engine.connect() as conn:
        foreign_keys = conn.execute(
            sa.text(
                "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND "
                "confrelid = 'ingest_runs'::regclass AND conrelid::regclass::text IN ('cdr_legs', 'calls')"
            )
        ).all()
        triggers = conn.execute(
            sa.text(
                "SELECT tgrelid::regclass::text, tgtype & 1 FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgrelid::regclass::text IN ('cdr_legs', 'calls', 'ingest_runs')"
            )
        ).all()
    assert foreign_keys == []
    assert (
        sorted(table for table, _ in triggers)
        == ["calls", "calls", "cdr_legs", "cdr_legs"] + ["ingest_runs"] * 2
    )
    assert {row_level for _, row_level in triggers} == {0}  # bit 0 of tgtype set = FOR EACH ROW


def test_postgres_copy_naming_an_unknown_run_is_refused(pg_engine: sa.Engine) -> None:
    # The import COPYs straight into cdr_legs: the statement-level check covers COPY too.
    with pg_engine.begin() as conn:
        run = _new_run(conn)
    stamp = NOW.isoformat()
    lines = "".join(f"t\tk{n}\t{run}\t{UNKNOWN_RUN if n == 2 else run}\t{stamp}\t{stamp}\n" for n in range(3))
    columns = "tenant, leg_key, ingest_run_id, last_ingest_run_id, loaded_at, updated_at"
    with pytest.raises(psycopg2.errors.ForeignKeyViolation), pg_engine.begin() as conn:
        dbapi = cast(Any, conn.connection.dbapi_connection)
        with dbapi.cursor() as cursor:
            cursor.copy_expert(f"COPY cdr_legs ({columns}) FROM STDIN", io.StringIO(lines))
    with pg_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(cdr_legs)) == 0
