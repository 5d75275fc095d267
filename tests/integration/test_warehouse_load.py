"""The load path on both back ends: exact counts, calls rebuilt in SQL, one transaction per batch."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from audiapro.cdr.schema import LEG_COLUMN_NAMES
from audiapro.warehouse import (
    RunInfo,
    calls,
    cdr_legs,
    get_engine,
    ingest_runs,
    load_batch,
    read_sync_state,
    rejected_rows,
    upgrade,
)
from audiapro.warehouse import load as load_module
from audiapro.warehouse import upsert as upsert_module
from tests.integration.pipeline_support import table_count
from tests.integration.warehouse_support import (
    NO_REJECTS,
    POLL,
    T0,
    TENANT,
    counts,
    leg,
    load,
    make_legs,
    make_rejects,
    stored_calls,
    stored_legs,
)

# --- counts -----------------------------------------------------------------------------------------


def test_reload_counts_exactly(engine: sa.Engine) -> None:
    rows = [leg("a"), leg("b", answered=False), leg("c", session="s2")]
    first = load(engine, rows)
    assert counts(first) == (3, 0, 0) and first.read == 3 and first.sessions_touched == 2

    again = load(engine, rows)
    assert counts(again) == (0, 0, 3) and again.sessions_touched == 0

    rows[1] = leg("b", answered=False, raw='{"uniqueid":"b","note":"re-exported"}')
    changed = load(engine, [*rows, leg("d", session="s2")])
    assert counts(changed) == (1, 1, 2) and changed.sessions_touched == 2

    with engine.connect() as conn:
        run = conn.execute(sa.select(ingest_runs).where(ingest_runs.c.id == changed.run_id)).mappings().one()
    assert (run["inserted"], run["updated"], run["unchanged"], run["status"]) == (1, 1, 2, "succeeded")
    assert run["finished_at"] is not None


def test_update_bumps_last_run_only_on_real_change(engine: sa.Engine) -> None:
    first = load(engine, [leg("a"), leg("b")])
    second = load(engine, [leg("a"), leg("b", direction="internal")])
    stored = stored_legs(engine)
    assert stored["a"]["ingest_run_id"] == stored["a"]["last_ingest_run_id"] == first.run_id
    assert stored["a"]["updated_at"] == stored["a"]["loaded_at"]
    assert stored["b"]["ingest_run_id"] == first.run_id
    assert stored["b"]["last_ingest_run_id"] == second.run_id
    assert stored["b"]["direction"] == "internal"
    assert stored["b"]["updated_at"] > stored["b"]["loaded_at"]


def test_null_to_value_and_back_counts_as_change(engine: sa.Engine) -> None:
    load(engine, [leg("a", dst_e164=None)])
    assert counts(load(engine, [leg("a", dst_e164="+15550001")])) == (0, 1, 0)
    assert counts(load(engine, [leg("a", dst_e164=None)])) == (0, 1, 0)
    assert counts(load(engine, [leg("a", dst_e164=None)])) == (0, 0, 1)


def test_duplicate_keys_in_one_batch_keep_the_last(engine: sa.Engine) -> None:
    result = load(engine, [leg("a", caller_name="old"), leg("a", caller_name="new"), leg("b")])
    assert result.read == 3 and counts(result) == (2, 0, 0)
    assert stored_legs(engine)["a"]["caller_name"] == "new"


def test_tenants_are_separate(engine: sa.Engine) -> None:
    load(engine, [leg("a")])
    other = load_batch(
        engine, tenant="globex", legs=make_legs([leg("a", tenant="globex")]), rejects=NO_REJECTS, run=POLL
    )
    assert counts(other) == (1, 0, 0)
    assert table_count(engine, cdr_legs) == 2 and table_count(engine, calls) == 2


def test_wrong_tenant_frame_is_refused_before_writing(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="tenant"):
        load(engine, [leg("a", tenant="globex")])
    assert table_count(engine, ingest_runs) == 0


# --- values survive the trip -------------------------------------------------------------------------


def test_values_round_trip_exactly(engine: sa.Engine) -> None:
    awkward = 'He said "hi",\nthen left; back\\slash \\N é 📞'
    raw = json.dumps({"caller_name": awkward, "note": "x"}, ensure_ascii=False)
    start = T0 + timedelta(microseconds=123_456)
    rows = [
        leg("a", start=start, caller_name="", dcontext=None, action_type=awkward, raw=raw),
        leg("b", caller_name="\\N", answered=False),  # the COPY NULL token as a real value
    ]
    load(engine, rows)
    stored = stored_legs(engine)
    assert stored["a"]["caller_name"] == "" and stored["a"]["dcontext"] is None
    assert stored["a"]["action_type"] == awkward
    assert stored["a"]["raw"] == raw
    assert stored["a"]["start_at"] == start
    assert stored["b"]["caller_name"] == "\\N" and stored["b"]["answer_at"] is None
    expected = make_legs(rows).iloc[0]
    for name in LEG_COLUMN_NAMES:
        value = expected[name]
        assert stored["a"][name] == (None if pd.isna(value) else value), name
    # And re-reading the same values is recognized as unchanged on both back ends.
    assert counts(load(engine, rows)) == (0, 0, 2)


# --- calls --------------------------------------------------------------------------------------------


def test_calls_recomputed_across_batches(engine: sa.Engine) -> None:
    # Ring group: a missed leg first, the answered leg of the same call arrives in the next poll.
    ring = leg("a", answered=False, ring_s=12, direction="inbound", answered_by=None, recording_count=0)
    load(engine, [ring])
    call = stored_calls(engine)["s1"]
    assert (call["leg_count"], call["answered"], call["answered_by"], call["talk_s"]) == (1, False, None, 0)

    answered = leg(
        "b",
        start=T0 + timedelta(seconds=2),
        ring_s=3,
        billsec=95,
        answered_by="1002",
        recording_files='["2026-03/auto-1.wav"]',
        recording_count=1,
    )
    short = leg("c", start=T0 + timedelta(seconds=1), ring_s=1, billsec=10, answered_by="1003")
    result = load(engine, [ring, answered, short])
    assert result.sessions_touched == 1
    call = stored_calls(engine)["s1"]
    assert call["leg_count"] == 3
    assert call["answered"] is True
    assert call["answered_by"] == "1002"  # the answered leg with the longest billsec
    # Talk is the union of the answered intervals: c talks T0+2..T0+12, b T0+5..T0+100.
    assert call["talk_s"] == 98
    assert call["started_at"] == T0
    assert call["ended_at"] == T0 + timedelta(seconds=100)
    assert call["duration_s"] == 100
    assert call["recording_count"] == 1
    assert call["direction"] == "inbound" and call["src_raw"] == ring["src_raw"]

    # An earlier leg showing up late becomes the call's first leg.
    early = leg("z", start=T0 - timedelta(seconds=30), direction="internal", src_raw="1005", answered=False)
    load(engine, [early])
    call = stored_calls(engine)["s1"]
    assert (call["started_at"], call["direction"], call["src_raw"]) == (
        T0 - timedelta(seconds=30),
        "internal",
        "1005",
    )
    assert call["duration_s"] == 130


def test_call_row_keeps_its_id_and_only_changes_with_content(engine: sa.Engine) -> None:
    first = load(engine, [leg("a"), leg("b", answered=False)])
    before = stored_calls(engine)["s1"]
    # A raw-only change rewrites the leg but not the call.
    load(engine, [leg("a", raw='{"x":1}'), leg("b", answered=False)])
    after = stored_calls(engine)["s1"]
    assert after == before and after["last_ingest_run_id"] == first.run_id
    changed = load(engine, [leg("a", raw='{"x":1}'), leg("b", answered=False), leg("c", session="s1")])
    after = stored_calls(engine)["s1"]
    assert after["id"] == before["id"] and after["leg_count"] == 3
    assert after["ingest_run_id"] == first.run_id and after["last_ingest_run_id"] == changed.run_id


def test_leg_moving_to_another_session_rebuilds_both_calls(engine: sa.Engine) -> None:
    load(engine, [leg("a", session="s1"), leg("b", session="s1")])
    result = load(engine, [leg("b", session="s2")])
    assert result.sessions_touched == 2
    stored = stored_calls(engine)
    assert stored["s1"]["leg_count"] == 1 and stored["s2"]["leg_count"] == 1
    load(engine, [leg("a", session="s2")])
    stored = stored_calls(engine)
    assert set(stored) == {"s2"} and stored["s2"]["leg_count"] == 2


def test_legs_without_session_make_no_call(engine: sa.Engine) -> None:
    result = load(engine, [leg("a", session=None)])
    assert counts(result) == (1, 0, 0) and result.sessions_touched == 0
    assert table_count(engine, calls) == 0


# --- rejects, empty batches ---------------------------------------------------------------------------


def test_rejects_stored_with_position_and_reason(engine: sa.Engine) -> None:
    rejects = make_rejects(
        ("csv", 7, "unknown disposition", '{"disposition":"WEIRD"}'), ("csv", 9, "bad start", None)
    )
    result = load(engine, [leg("a")], rejects=rejects, run=RunInfo(kind="import", source_ref="sha256:ab"))
    assert result.rejected == 2
    with engine.connect() as conn:
        stored = conn.execute(sa.select(rejected_rows).order_by(rejected_rows.c.position)).mappings().all()
        run = conn.execute(sa.select(ingest_runs)).mappings().one()
    assert [(r["position"], r["reason"], r["source"]) for r in stored] == [
        (7, "unknown disposition", "csv"),
        (9, "bad start", "csv"),
    ]
    assert stored[0]["raw"] == '{"disposition":"WEIRD"}' and stored[1]["raw"] is None
    assert {r["ingest_run_id"] for r in stored} == {result.run_id}
    assert {r["tenant"] for r in stored} == {TENANT}
    assert (run["kind"], run["source_ref"], run["rejected"]) == ("import", "sha256:ab", 2)


def test_empty_batch_with_cursor_records_run_and_advances(engine: sa.Engine) -> None:
    result = load_batch(
        engine, tenant=TENANT, legs=pd.DataFrame(), rejects=pd.DataFrame(), run=POLL, cursor=T0
    )
    assert (result.read, *counts(result), result.rejected) == (0, 0, 0, 0, 0)
    state = read_sync_state(engine, TENANT)
    assert state is not None and state.cursor_at == T0 and state.last_run_id == result.run_id
    assert table_count(engine, ingest_runs) == 1


def test_run_metadata_is_stored(engine: sa.Engine) -> None:
    run = RunInfo(
        kind="backfill",
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        source_ref="2026-03-02T14:00Z/PT1H",
        flow_run_id="f-123",
        fetched=4,
    )
    result = load(engine, [leg("a")], run=run)
    with engine.connect() as conn:
        stored = (
            conn.execute(sa.select(ingest_runs).where(ingest_runs.c.id == result.run_id)).mappings().one()
        )
    assert stored["window_start"] == T0 and stored["window_end"] == T0 + timedelta(hours=1)
    assert (stored["source_ref"], stored["flow_run_id"], stored["fetched"]) == (run.source_ref, "f-123", 4)
    assert stored["started_at"] == run.started_at and stored["error"] is None


# --- one transaction ----------------------------------------------------------------------------------


@pytest.mark.parametrize("failing_step", ["recompute_calls", "insert_rejects", "commit_cursor"])
def test_failure_after_staging_rolls_back_everything(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, failing_step: str
) -> None:
    load(engine, [leg("a")], cursor=T0)
    before = (table_count(engine, cdr_legs), table_count(engine, ingest_runs), stored_calls(engine))

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("crash between load and commit")

    with monkeypatch.context() as patch:
        patch.setattr(load_module, failing_step, boom)
        with pytest.raises(RuntimeError, match="crash"):
            load(
                engine,
                [leg("a", caller_name="changed"), leg("b"), leg("c", session="s9")],
                rejects=make_rejects(("api", 1, "bad", "{}")),
                cursor=T0 + timedelta(hours=1),
            )

    assert (table_count(engine, cdr_legs), table_count(engine, ingest_runs), stored_calls(engine)) == before
    assert stored_legs(engine)["a"]["caller_name"] == "Alice"
    assert table_count(engine, rejected_rows) == 0
    state = read_sync_state(engine, TENANT)
    assert state is not None and state.cursor_at == T0
    # The same pooled connection loads normally afterwards (no leftover staging tables).
    retry = load(engine, [leg("a", caller_name="changed"), leg("b")], cursor=T0 + timedelta(hours=1))
    assert counts(retry) == (1, 1, 0)
    state = read_sync_state(engine, TENANT)
    assert state is not None and state.cursor_at == T0 + timedelta(hours=1)


def test_repeated_loads_on_one_connection_pool(engine: sa.Engine) -> None:
    for i in range(5):
        assert counts(load(engine, [leg(f"k{i}")])) == (1, 0, 0)
    assert table_count(engine, cdr_legs) == 5


@pytest.mark.postgres
def test_pg_session_time_zone_does_not_shift_timestamps(pg_url: str) -> None:
    admin = get_engine(pg_url)
    with admin.connect() as conn:
        database = conn.scalar(sa.text("SELECT current_database()"))
        conn.execute(sa.text(f"ALTER DATABASE \"{database}\" SET timezone = 'Asia/Kolkata'"))
        conn.commit()
    admin.dispose()
    engine = get_engine(pg_url)  # new sessions start in +05:30
    try:
        upgrade(engine)
        start = T0 + timedelta(microseconds=5)
        load_batch(
            engine, tenant=TENANT, legs=make_legs([leg("a", start=start)]), rejects=NO_REJECTS, run=POLL
        )
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SHOW timezone")) == "Asia/Kolkata"
            stored = conn.execute(sa.select(cdr_legs.c.start_at, cdr_legs.c.end_at)).one()
            utc_text = conn.scalar(
                sa.text("SELECT to_char(start_at AT TIME ZONE 'UTC', 'HH24:MI:SS') FROM cdr_legs")
            )
        assert stored.start_at == start and stored.end_at == leg("a", start=start)["end_at"]
        assert utc_text == "14:00:00"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_pg_copy_in_chunks_is_one_batch(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upsert_module, "COPY_CHUNK_ROWS", 2)
    engine = get_engine(pg_url)
    try:
        upgrade(engine)
        rows = [leg(f"k{i}", session=f"s{i % 2}") for i in range(5)]
        result = load_batch(engine, tenant=TENANT, legs=make_legs(rows), rejects=NO_REJECTS, run=POLL)
        assert counts(result) == (5, 0, 0) and result.sessions_touched == 2
        assert set(stored_legs(engine)) == {f"k{i}" for i in range(5)}
    finally:
        engine.dispose()
