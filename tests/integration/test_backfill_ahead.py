"""backfill_windows: the next window is fetched while this one loads; the warehouse ends up exactly as
with backfill_window per window (same legs, same windows recorded, same counts)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from audiapro import backfill
from audiapro.backfill import BackfillCancelled, backfill_window, backfill_windows, plan_backfill
from audiapro.warehouse import backfill_windows as backfill_windows_table
from tests.integration.pipeline_support import DAY, TENANT, make_client, simulator

DAYS = 3
NOW = datetime(2026, 3, 6, tzinfo=UTC)


def snapshot(engine: sa.Engine) -> tuple[list[str], list[tuple[datetime, datetime]], int]:
    with engine.connect() as conn:
        keys = [row[0] for row in conn.execute(sa.text("SELECT leg_key FROM cdr_legs ORDER BY leg_key"))]
        windows = sorted(
            (row.window_start, row.window_end) for row in conn.execute(sa.select(backfill_windows_table))
        )
        calls = int(conn.scalar(sa.text("SELECT count(*) FROM calls")) or 0)
    return keys, windows, calls


def test_fetching_ahead_loads_what_window_by_window_loads(pg_engine: sa.Engine) -> None:
    sim = simulator(days=DAYS, calls_per_day=60)
    sim.clock.set(NOW)
    last = DAY + timedelta(days=DAYS - 1)
    plan = plan_backfill(pg_engine, TENANT, DAY, last, window=timedelta(hours=12), now=NOW)
    with sim.serve() as url, make_client(sim, url, page_size=10, max_pages=2) as client:
        ahead = list(
            backfill_windows(client, pg_engine, TENANT, plan.windows, settled_until=plan.settled_until)
        )
    truth = sim.ground_truth(start=plan.span.start, end=plan.span.end)
    assert [(o.window_start, o.window_end) for o in ahead] == [
        (w.start.isoformat(), w.end.isoformat()) for w in plan.windows
    ]
    assert sum(o.inserted for o in ahead) == len(truth) and all(o.recorded for o in ahead)
    assert sum(o.pieces for o in ahead) > len(plan.windows)  # dense windows were split on the page cap
    fetched_ahead = snapshot(pg_engine)

    with pg_engine.begin() as conn:
        for table in ("backfill_windows", "calls", "cdr_legs"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    with sim.serve() as url, make_client(sim, url, page_size=10, max_pages=2) as client:
        one_by_one = [
            backfill_window(client, pg_engine, TENANT, w, settled_until=plan.settled_until)
            for w in plan.windows
        ]
    assert snapshot(pg_engine) == fetched_ahead
    assert [(o.inserted, o.pieces, o.recorded) for o in one_by_one] == [
        (o.inserted, o.pieces, o.recorded) for o in ahead
    ]


def test_a_cancelled_backfill_keeps_the_windows_loaded_before(pg_engine: sa.Engine) -> None:
    sim = simulator(days=DAYS, calls_per_day=30)
    sim.clock.set(NOW)
    last = DAY + timedelta(days=DAYS - 1)
    plan = plan_backfill(pg_engine, TENANT, DAY, last, window=timedelta(days=1), now=NOW)
    cancel = threading.Event()
    loaded = []
    with sim.serve() as url, make_client(sim, url) as client, pytest.raises(BackfillCancelled):
        for outcome in backfill_windows(
            client, pg_engine, TENANT, plan.windows, settled_until=plan.settled_until, cancel=cancel
        ):
            loaded.append(outcome)
            cancel.set()  # after the first window: the next one is never loaded
    assert len(loaded) == 1
    _, windows, _ = snapshot(pg_engine)
    assert windows == [(plan.windows[0].start, plan.windows[0].end)]
    assert date.fromisoformat(loaded[0].window_start[:10]) == DAY


class _ThreadRecorder:
    """A source that notes the thread each window's pages are asked for in."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self.threads: set[str] = set()

    def iter_cdr_pages(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> Any:
        self.threads.add(threading.current_thread().name)
        return self._source.iter_cdr_pages(start_utc, end_utc, time_filter=time_filter)


@pytest.mark.parametrize("ahead", [True, False])
def test_the_stages_run_in_threads_named_for_them(
    pg_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, ahead: bool
) -> None:
    normalized_in: set[str] = set()
    normalize = backfill.normalize_window

    def recording_normalize(*args: Any, **kwargs: Any) -> Any:
        normalized_in.add(threading.current_thread().name)
        return normalize(*args, **kwargs)

    monkeypatch.setattr(backfill, "normalize_window", recording_normalize)
    if not ahead:  # nothing read ahead: every stage runs in the caller's thread, which keeps its name
        monkeypatch.setattr(backfill, "FETCH_AHEAD_PAGES", 0)
        monkeypatch.setattr(backfill, "PREPARE_AHEAD_LOADS", 0)
    sim = simulator(days=1, calls_per_day=30)
    sim.clock.set(NOW)
    plan = plan_backfill(pg_engine, TENANT, DAY, DAY, now=NOW)
    caller = threading.current_thread().name
    with sim.serve() as url, make_client(sim, url, page_size=50) as client:
        source = _ThreadRecorder(client)
        (outcome,) = backfill_windows(
            source, pg_engine, TENANT, plan.windows, settled_until=plan.settled_until
        )
    assert outcome.inserted > 0 and threading.current_thread().name == caller
    if ahead:
        assert (source.threads, normalized_in) == ({backfill.FETCH_THREAD}, {backfill.PREPARE_THREAD})
    else:
        assert source.threads == normalized_in == {caller}
