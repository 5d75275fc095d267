"""The load path as imports and backfills use it: ignore-on-conflict, reject fingerprints, commit hook."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from audiapro.warehouse import (
    ImportConflictError,
    LoadResult,
    RunInfo,
    cdr_legs,
    claim_import,
    finish_import,
    load_batch,
    record_import_chunk,
    rejected_rows,
)
from audiapro.warehouse.runs import reject_fingerprint
from tests.integration.warehouse_support import NO_REJECTS, TENANT, leg, make_legs, make_rejects

IMPORT = RunInfo(kind="import", source_ref="sha256:ab")


def load(engine: sa.Engine, rows: list[dict[str, Any]], **kwargs: Any) -> LoadResult:
    kwargs.setdefault("rejects", NO_REJECTS)
    kwargs.setdefault("run", RunInfo(kind="poll"))
    return load_batch(engine, tenant=TENANT, legs=make_legs(rows), **kwargs)


def stored(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cdr_legs)).mappings().all()
    return {row["leg_key"]: dict(row) for row in rows}


def test_ignore_mode_never_overwrites_and_counts_known_legs_as_unchanged(engine: sa.Engine) -> None:
    api = load(engine, [leg("a", acct_id="101"), leg("b", acct_id="102")])
    before = stored(engine)
    exported = [
        leg("a", acct_id=None, caller_name="from a file"),
        leg("b", acct_id=None),
        leg("c", session="s2"),
    ]
    result = load(engine, exported, run=IMPORT, on_conflict="ignore")
    assert (result.inserted, result.updated, result.unchanged) == (1, 0, 2)
    after = stored(engine)
    for key in ("a", "b"):
        assert after[key] == before[key]  # acct_id, caller_name, run ids, timestamps: untouched
    assert after["c"]["ingest_run_id"] == result.run_id and result.sessions_touched == 1
    # Polls keep update semantics: a changed API leg still updates.
    again = load(engine, [leg("a", acct_id="101", caller_name="renamed")])
    assert (again.inserted, again.updated) == (0, 1) and api.inserted == 2


def test_on_conflict_mode_is_validated(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="on_conflict"):
        load(engine, [leg("a")], on_conflict="replace")


def test_a_bad_leg_read_again_is_stored_once(engine: sa.Engine) -> None:
    bad = ("api", 3, "unknown disposition", '{"uniqueid":"9.1","disposition":"WEIRD"}')
    first = load(engine, [leg("a")], rejects=make_rejects(bad, bad))  # twice within one batch too
    moved = (bad[0], 17, bad[2], bad[3])  # the next poll's lookback finds it at another position
    second = load(engine, [leg("a")], rejects=make_rejects(moved))
    other = load(engine, [], rejects=make_rejects(("api", 3, "missing uniqueid", bad[3])))
    assert (first.rejected, first.rejected_known) == (1, 1)
    assert (second.rejected, second.rejected_known) == (0, 1)
    assert (other.rejected, other.rejected_known) == (1, 0)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(rejected_rows).order_by(rejected_rows.c.id)).mappings().all()
    assert [(r["position"], r["reason"], r["ingest_run_id"]) for r in rows] == [
        (3, "unknown disposition", first.run_id),
        (3, "missing uniqueid", other.run_id),
    ]
    assert rows[0]["fingerprint"] == reject_fingerprint(*bad[:1], bad[2], bad[3])
    # Another tenant's identical bad row is its own.
    load_batch(
        engine, tenant="other", legs=make_legs([]), rejects=make_rejects(bad), run=RunInfo(kind="poll")
    )
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(rejected_rows)) == 3


def test_commit_hook_runs_in_the_load_transaction(engine: sa.Engine) -> None:
    seen: list[LoadResult] = []

    def hook(conn: sa.Connection, result: LoadResult) -> None:
        seen.append(result)
        # Inside the transaction: the batch's own legs are visible on this connection.
        assert conn.scalar(sa.select(sa.func.count()).select_from(cdr_legs)) == result.inserted

    result = load(engine, [leg("a"), leg("b")], on_commit=hook)
    assert seen == [result]

    def failing(conn: sa.Connection, result: LoadResult) -> None:
        raise RuntimeError("crash while recording progress")

    with pytest.raises(RuntimeError, match="crash"):
        load(engine, [leg("c")], rejects=make_rejects(("csv", 2, "bad", "{}")), on_commit=failing)
    assert set(stored(engine)) == {"a", "b"}
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(rejected_rows)) == 0


def test_two_imports_of_one_file_never_count_a_chunk_twice(engine: sa.Engine) -> None:
    claim = {
        "tenant": TENANT,
        "sha256": "ab" * 32,
        "filename": "cdr.csv",
        "size_bytes": 10,
        "flow_run_id": None,
    }
    first, second = claim_import(engine, **claim), claim_import(engine, **claim)
    assert first.id == second.id and (first.status, first.rows_read) == ("loading", 0)
    chunk = {"file_id": first.id, "rows_before": 0, "rows": 5, "inserted": 4, "duplicates": 0, "rejected": 1}

    def count_chunk(conn: sa.Connection, _result: LoadResult) -> None:
        record_import_chunk(conn, **chunk)

    load(engine, [leg("a")], run=IMPORT, on_conflict="ignore", on_commit=count_chunk)
    with pytest.raises(ImportConflictError, match="another import"):
        # The second import read the same first chunk: its commit is refused and rolled back.
        load(engine, [leg("b")], run=IMPORT, on_conflict="ignore", on_commit=count_chunk)
    assert set(stored(engine)) == {"a"}
    done = finish_import(engine, first.id)
    assert (done.status, done.chunks_done, done.rows_read, done.inserted, done.rejected) == (
        "done",
        1,
        5,
        4,
        1,
    )
    assert claim_import(engine, **claim).status == "done"  # a third attempt finds it imported
