"""Backfill against the simulator on real Postgres: dense windows split, settled windows only, and a backfill
running concurrently with poll ticks (no duplicates, the poll cursor moved by polls alone)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from audiapro.backfill import backfill_window, merge_intervals, plan_backfill
from audiapro.polling import TickSummary, poll_tenant
from audiapro.warehouse import backfill_windows, ingest_runs, read_sync_state, tenant_lock
from audiapro.windows import Window
from tests.integration.pipeline_support import DAY, TENANT, make_client, simulator

#: Pause between the concurrent test's poll ticks (the schedule's 2 minutes, compressed).
TICK_PAUSE_S = 0.05


def stored_acct_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.text("SELECT acct_id FROM cdr_legs ORDER BY acct_id"))]


def done_windows(engine: sa.Engine) -> list[tuple[datetime, datetime]]:
    with engine.connect() as conn:
        return [(r.window_start, r.window_end) for r in conn.execute(sa.select(backfill_windows))]


def test_a_dense_window_is_split_and_loads_exactly_the_ground_truth(pg_engine: sa.Engine) -> None:
    sim = simulator(days=1, calls_per_day=150)
    sim.clock.set(datetime(2026, 3, 4, tzinfo=UTC))
    plan = plan_backfill(pg_engine, TENANT, DAY, DAY, now=sim.clock.now())
    assert (plan.planned, plan.skipped, len(plan.windows)) == (1, 0, 1)
    with sim.serve() as url, make_client(sim, url, page_size=25, max_pages=2) as client:
        outcome = backfill_window(
            client, pg_engine, TENANT, plan.windows[0], settled_until=plan.settled_until
        )
    truth = sim.ground_truth(start=plan.span.start, end=plan.span.end)
    assert outcome.pieces >= 3 and outcome.recorded
    assert outcome.inserted == len(truth) and outcome.rejected == 0
    assert stored_acct_ids(pg_engine) == sorted(leg["AcctId"] for leg in truth)
    pieces = done_windows(pg_engine)
    assert len(pieces) == outcome.pieces
    assert merge_intervals(pieces) == [(plan.span.start, plan.span.end)]  # the pieces cover the day, no gap
    again = plan_backfill(pg_engine, TENANT, DAY, DAY, now=sim.clock.now())
    assert (again.skipped, again.windows) == (1, [])
    forced = plan_backfill(pg_engine, TENANT, DAY, DAY, now=sim.clock.now(), force=True)
    assert forced.windows == plan.windows
    assert read_sync_state(pg_engine, TENANT.name) is None  # the live poll's state was never touched


def test_windows_still_receiving_legs_are_loaded_but_not_recorded(pg_engine: sa.Engine) -> None:
    sim = simulator(days=1)
    now = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 15:00 in New York: calls are still going on
    sim.clock.set(now)
    plan = plan_backfill(pg_engine, TENANT, DAY, DAY, window=timedelta(hours=6), now=now)
    assert plan.span.end == now - timedelta(seconds=TENANT.safety_seconds)  # never reads the future
    with sim.serve() as url, make_client(sim, url) as client:
        outcomes = [
            backfill_window(client, pg_engine, TENANT, w, settled_until=plan.settled_until)
            for w in plan.windows
        ]
    assert [o.recorded for o in outcomes] == [True, True, False]  # 05-11, 11-17 settled; 17-now is not
    rerun = plan_backfill(pg_engine, TENANT, DAY, DAY, window=timedelta(hours=6), now=now)
    assert rerun.windows == plan.windows[2:]


def test_backfill_concurrent_with_poll_ticks_stores_no_duplicates_and_leaves_the_cursor_to_polls(
    pg_engine: sa.Engine,
) -> None:
    sim = simulator()
    sim.clock.set(datetime(2026, 3, 3, 12, 0, tzinfo=UTC))
    polls: list[TickSummary] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def poll_ticks(base_url: str) -> None:
        try:
            while not stop.is_set() or not polls:
                # The poll task's discipline.
                with tenant_lock(pg_engine, TENANT.name, wait=False) as acquired:
                    if acquired:
                        with make_client(sim, base_url) as client:
                            polls.append(poll_tenant(client, pg_engine, TENANT, now=sim.clock.now()))
                        sim.clock.advance(300)
                stop.wait(TICK_PAUSE_S)  # a busy tick is skipped; the next one covers its window
        except BaseException as exc:
            errors.append(exc)

    def load(window: Window, settled_until: datetime, base_url: str) -> None:
        with make_client(sim, base_url, page_size=50) as client:
            backfill_window(client, pg_engine, TENANT, window, settled_until=settled_until, lock_timeout_s=60)

    with sim.serve() as url:
        plan = plan_backfill(
            pg_engine, TENANT, DAY, date(2026, 3, 3), window=timedelta(hours=3), now=sim.clock.now()
        )
        poller = threading.Thread(target=poll_ticks, args=(url,))
        poller.start()
        with ThreadPoolExecutor(max_workers=2) as pool:  # max_parallel = 2
            for future in [pool.submit(load, w, plan.settled_until, url) for w in plan.windows]:
                future.result()
        stop.set()
        poller.join()
        with make_client(sim, url) as client:  # the next regular tick
            polls.append(poll_tenant(client, pg_engine, TENANT, now=sim.clock.now()))
    assert not errors
    acct_ids = stored_acct_ids(pg_engine)
    assert len(acct_ids) == len(set(acct_ids))  # no leg stored twice
    assert acct_ids == sorted(leg["AcctId"] for leg in sim.ground_truth(start=plan.span.start))

    state = read_sync_state(pg_engine, TENANT.name)
    assert state is not None and len(polls) >= 2  # at least one tick ran while the windows loaded
    assert state.cursor_at == max(datetime.fromisoformat(p.window_end) for p in polls)
    with pg_engine.connect() as conn:
        kind = conn.scalar(sa.select(ingest_runs.c.kind).where(ingest_runs.c.id == state.last_run_id))
        kinds = dict(
            conn.execute(sa.select(ingest_runs.c.kind, sa.func.count()).group_by(ingest_runs.c.kind)).all()
        )
    assert (
        kind == "poll"
        and kinds["backfill"] >= len(plan.windows)
        and kinds["poll"] == sum(p.pieces for p in polls)
    )
