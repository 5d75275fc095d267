"""Sync state: the watermark only moves forward, only with a poll's data; failures are counted."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from audiapro.warehouse import (
    RunInfo,
    ingest_runs,
    list_sync_states,
    load_batch,
    read_sync_state,
    record_failure,
    summary_counts,
)
from audiapro.warehouse.runs import MAX_ERROR_CHARS, redact_error
from tests.integration.warehouse_support import NO_REJECTS, T0, TENANT, leg, make_legs

POLL = RunInfo(kind="poll")


def poll(engine: sa.Engine, key: str, cursor: datetime, *, kind: str = "poll", tenant: str = TENANT) -> int:
    legs = make_legs([leg(key, tenant=tenant)])
    result = load_batch(
        engine, tenant=tenant, legs=legs, rejects=NO_REJECTS, run=RunInfo(kind=kind), cursor=cursor
    )
    return result.run_id


def test_no_state_before_first_poll(engine: sa.Engine) -> None:
    assert read_sync_state(engine, TENANT) is None
    assert list_sync_states(engine) == []


def test_cursor_never_moves_backwards(engine: sa.Engine) -> None:
    poll(engine, "a", T0)
    late_run = poll(engine, "b", T0 - timedelta(minutes=5))  # a late, retried run
    state = read_sync_state(engine, TENANT)
    assert state is not None
    assert state.cursor_at == T0
    assert state.last_run_id == late_run  # the run itself still succeeded
    poll(engine, "c", T0 + timedelta(minutes=2))
    state = read_sync_state(engine, TENANT)
    assert state is not None and state.cursor_at == T0 + timedelta(minutes=2)


def test_backfill_without_cursor_leaves_state_alone(engine: sa.Engine) -> None:
    backfill = load_batch(
        engine, tenant=TENANT, legs=make_legs([leg("old")]), rejects=NO_REJECTS, run=RunInfo(kind="backfill")
    )
    assert backfill.inserted == 1
    assert read_sync_state(engine, TENANT) is None  # not even created

    poll(engine, "a", T0)
    before = read_sync_state(engine, TENANT)
    load_batch(
        engine, tenant=TENANT, legs=make_legs([leg("old2")]), rejects=NO_REJECTS, run=RunInfo(kind="import")
    )
    assert read_sync_state(engine, TENANT) == before


def test_failures_counted_and_reset_by_success(engine: sa.Engine) -> None:
    poll(engine, "a", T0)
    first = record_failure(engine, tenant=TENANT, run=POLL, error="HTTP 500 from PBX")
    second = record_failure(
        engine, tenant=TENANT, run=POLL, error="login failed: password=hunter2 url=https://api:s3cret@pbx/api"
    )
    state = read_sync_state(engine, TENANT)
    assert state is not None
    assert state.consecutive_failures == 2
    assert state.cursor_at == T0  # failures never touch the watermark
    assert state.last_run_id == second and second > first
    assert state.last_error is not None
    assert "hunter2" not in state.last_error and "s3cret" not in state.last_error
    with engine.connect() as conn:
        run = conn.execute(sa.select(ingest_runs).where(ingest_runs.c.id == second)).mappings().one()
    assert run["status"] == "failed" and run["error"] == state.last_error and run["finished_at"] is not None

    poll(engine, "b", T0 + timedelta(minutes=2))
    state = read_sync_state(engine, TENANT)
    assert state is not None
    assert (state.consecutive_failures, state.last_error) == (0, None)
    assert state.last_success_at is not None and state.last_attempt_at == state.last_success_at


def test_failure_of_a_new_tenant_creates_state_without_cursor(engine: sa.Engine) -> None:
    record_failure(engine, tenant="newco", run=POLL, error="timeout")
    state = read_sync_state(engine, "newco")
    assert state is not None
    assert (state.cursor_at, state.last_success_at, state.consecutive_failures) == (None, None, 1)


def test_list_sync_states_sorted_by_tenant(engine: sa.Engine) -> None:
    poll(engine, "a", T0, tenant="zeta")
    poll(engine, "a", T0, tenant="alpha")
    assert [s.tenant for s in list_sync_states(engine)] == ["alpha", "zeta"]


def test_naive_cursor_is_refused(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        poll(engine, "a", T0.replace(tzinfo=None))


def test_redact_error_caps_length_and_hides_secrets() -> None:
    text = redact_error("token: abc123 cookie=sid-42 " + "x" * (2 * MAX_ERROR_CHARS))
    assert "abc123" not in text and "sid-42" not in text
    assert len(text) == MAX_ERROR_CHARS


def test_summary_counts_per_table_and_tenant(engine: sa.Engine) -> None:
    poll(engine, "a", T0)
    poll(engine, "b", T0, tenant="globex")
    record_failure(engine, tenant="globex", run=POLL, error="boom")
    assert summary_counts(engine) == {
        "cdr_legs": 2,
        "calls": 2,
        "call_analyses": 0,
        "rejected_rows": 0,
        "ingest_runs": 3,
        "sync_state": 2,
    }
    assert summary_counts(engine, tenant="globex")["ingest_runs"] == 2


def test_run_info_fetched_can_be_set_after_creation() -> None:
    run = RunInfo(kind="poll", window_start=T0)
    run.fetched = 12  # callers learn it after fetching
    assert run.fetched == 12 and run.started_at.tzinfo is not None
