"""Postgres: big batches of new legs are copied straight into ``cdr_legs``; overlaps fall back exactly.

The optimistic COPY (``audiapro.warehouse.upsert``) must store what the staged merge stores, count
exactly, and on a batch holding an already stored leg leave nothing of its attempt behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import audiapro.importing as importing
from audiapro.importing import import_file
from audiapro.ucm.simulator import write_ui_export
from audiapro.warehouse import RunInfo, calls, cdr_legs, load_batch
from audiapro.warehouse import upsert as upsert_module
from tests.integration.pipeline_support import TENANT as PBX_TENANT
from tests.integration.pipeline_support import simulator
from tests.integration.warehouse_support import NO_REJECTS, TENANT, bulk_legs, counts

STAGE_TABLE = upsert_module.stage.name
REFERENCE = "reference"
IMPORT = RunInfo(kind="import")
BACKFILL = RunInfo(kind="backfill")
ROWS = 4_000
#: Columns that depend on the run and the load time, not on the legs.
_PER_LOAD = {"id", "ingest_run_id", "last_ingest_run_id", "loaded_at", "created_at", "updated_at", "tenant"}


@pytest.fixture
def statements(pg_engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL statements SQLAlchemy sends on ``pg_engine`` (raw COPYs are not among them)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    sa.event.listen(pg_engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(pg_engine, "before_cursor_execute", record)


def _staged(statements: list[str]) -> bool:
    return any(STAGE_TABLE in statement for statement in statements)


def _rows(engine: sa.Engine, table: sa.Table, tenant: str, key: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(sa.select(table).where(table.c.tenant == tenant)).mappings().all()
    return {row[key]: {k: v for k, v in row.items() if k not in _PER_LOAD} for row in found}


def _load(engine: sa.Engine, frame: pd.DataFrame, tenant: str = TENANT, **kwargs: Any) -> Any:
    kwargs.setdefault("run", IMPORT)
    kwargs.setdefault("on_conflict", "ignore")
    return load_batch(engine, tenant=tenant, legs=frame, rejects=NO_REJECTS, **kwargs)


def test_new_legs_skip_the_stage_and_store_what_the_merge_stores(
    pg_engine: sa.Engine, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _load(pg_engine, bulk_legs(ROWS))
    assert counts(first) == (ROWS, 0, 0)
    assert first.sessions_touched == -(-ROWS // 3)
    assert not _staged(statements)  # copied straight into cdr_legs
    # The same legs through the staged merge, under another tenant: the same rows and calls.
    monkeypatch.setattr(upsert_module, "DIRECT_COPY_MIN_ROWS", 10**9)
    reference = _load(pg_engine, bulk_legs(ROWS, tenant=REFERENCE), tenant=REFERENCE)
    assert counts(reference) == (ROWS, 0, 0)
    assert _staged(statements)
    assert _rows(pg_engine, cdr_legs, TENANT, "leg_key") == _rows(pg_engine, cdr_legs, REFERENCE, "leg_key")
    assert _rows(pg_engine, calls, TENANT, "session") == _rows(pg_engine, calls, REFERENCE, "session")
    with pg_engine.connect() as conn:
        run_ids = conn.execute(sa.select(cdr_legs.c.ingest_run_id, cdr_legs.c.last_ingest_run_id).distinct())
        assert sorted(run_ids) == [(first.run_id, first.run_id), (reference.run_id, reference.run_id)]


def test_batches_with_stored_legs_fall_back_and_count_exactly(
    pg_engine: sa.Engine, statements: list[str]
) -> None:
    everything = bulk_legs(ROWS)
    assert counts(_load(pg_engine, everything.iloc[:2_000])) == (2_000, 0, 0)
    assert not _staged(statements)
    # Half stored, half new: the direct COPY hits a stored leg, the staged merge counts exactly.
    overlap = _load(pg_engine, everything.iloc[1_000:3_000])
    assert counts(overlap) == (1_000, 0, 1_000)
    assert _staged(statements)
    # A backfill (update mode) over stored legs, some changed, and new ones.
    changed = everything.iloc[2_500:].copy()
    changed.loc[changed.index < 2_800, "dst_raw"] = "6501"
    backfill = _load(pg_engine, changed, run=BACKFILL, on_conflict="update")
    assert counts(backfill) == (1_000, 300, 200)
    # Nothing of the failed attempts stayed: every leg once, calls as from one load of all legs.
    expected = everything.copy()
    expected.loc[(expected.index >= 2_500) & (expected.index < 2_800), "dst_raw"] = "6501"
    reference = _load(pg_engine, expected.assign(tenant=REFERENCE), tenant=REFERENCE)
    assert counts(reference) == (ROWS, 0, 0)
    with pg_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).where(cdr_legs.c.tenant == TENANT)) == ROWS
    assert _rows(pg_engine, cdr_legs, TENANT, "leg_key") == _rows(pg_engine, cdr_legs, REFERENCE, "leg_key")
    assert _rows(pg_engine, calls, TENANT, "session") == _rows(pg_engine, calls, REFERENCE, "session")


def test_a_first_file_import_copies_straight_in_with_the_mmap_threshold_pinned(
    pg_engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned: list[bool] = []
    monkeypatch.setattr(importing, "pin_mmap_threshold", lambda: pinned.append(True))
    copied: list[tuple[int, bool]] = []
    direct_copy = upsert_module._copy_new_legs

    def spy(conn: sa.Connection, batch: Any, **kwargs: Any) -> bool:
        copied.append((len(batch.frame), done := direct_copy(conn, batch, **kwargs)))
        return done

    monkeypatch.setattr(upsert_module, "_copy_new_legs", spy)
    truth = simulator(seed=5, calls_per_day=600, days=1).ground_truth()
    export = write_ui_export(truth, tmp_path / "export.csv")
    summary = import_file(export, pg_engine, PBX_TENANT)
    assert pinned == [True]  # the COPY texts of each chunk come and go without fragmenting the heap
    assert summary.new == len(truth)
    # The reader's chunks: all but a short one copied straight in (a short one takes the merge).
    assert [done for _, done in copied] == [True]
    assert copied[0][0] >= len(truth) - 1
    with pg_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(cdr_legs)) == len(truth)
        sessions = sa.select(sa.func.count(sa.distinct(cdr_legs.c.session)))
        assert conn.scalar(sa.select(sa.func.count()).select_from(calls)) == conn.scalar(sessions)
