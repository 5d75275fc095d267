"""Exactly-once polling against the simulator, on real Postgres (and the SQLite default).

The warehouse is compared with the simulator's ground truth: every leg the PBX has written is stored
once, none twice, whatever faults the PBX or our own process threw in between.
"""

from __future__ import annotations

import contextlib
import random
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import audiapro.warehouse.load as warehouse_load
from audiapro.ingest import ingest_window
from audiapro.polling import poll_tenant, poll_window
from audiapro.reconcile import reconcile_day
from audiapro.ucm.client import UcmClient
from audiapro.ucm.simulator import FaultConfig, UcmSimulator
from audiapro.warehouse import get_engine, read_sync_state, tenant_lock, upgrade
from tests.integration import pipeline_support
from tests.integration.pipeline_support import DAY, TENANT


def make_client(sim: UcmSimulator, base_url: str, transport: httpx.BaseTransport | None = None) -> UcmClient:
    """The shared quiet client with small pages and enough retries to ride out the injected faults."""
    return pipeline_support.make_client(
        sim,
        base_url,
        attempts=8,
        transport=transport,
        page_size=25,
        max_throttle_retries=20,
        repeated_page_retries=5,
    )


def stored(engine: sa.Engine, tenant: str = TENANT.name) -> list[tuple[str | None, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT acct_id, leg_key FROM cdr_legs WHERE tenant = :t"), {"t": tenant}
        ).all()
    return [(r[0], r[1]) for r in rows]


def assert_matches_truth(engine: sa.Engine, sim: UcmSimulator) -> None:
    truth = sorted(leg["AcctId"] for leg in sim.ground_truth())
    rows = stored(engine)
    acct_ids = sorted(str(acct) for acct, _ in rows)
    assert len(rows) == len(truth), f"{len(rows)} stored vs {len(truth)} written by the PBX"
    assert acct_ids == truth  # 0 lost, 0 duplicated


def simulator(**overrides: Any) -> UcmSimulator:
    """The shared simulated PBX, its clock at local midnight starting ``DAY``."""
    sim = pipeline_support.simulator(**overrides)
    sim.clock.set(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    return sim


def test_rerunning_any_window_adds_nothing(engine: sa.Engine) -> None:
    sim = simulator()
    sim.clock.set(datetime(2026, 3, 3, 12, 0, tzinfo=UTC))
    with sim.serve() as url, make_client(sim, url) as client:
        start, end = datetime(2026, 3, 2, 5, tzinfo=UTC), datetime(2026, 3, 3, 11, tzinfo=UTC)
        first = ingest_window(client, engine, TENANT, start, end, kind="backfill", advance_cursor=False)
        again = ingest_window(client, engine, TENANT, start, end, kind="backfill", advance_cursor=False)
        inner = ingest_window(
            client, engine, TENANT, start + timedelta(hours=3), end - timedelta(hours=5),
            kind="backfill", advance_cursor=False,
        )  # fmt: skip
    assert first.inserted > 100
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, first.inserted)
    assert (inner.inserted, inner.updated) == (0, 0)
    assert read_sync_state(engine, TENANT.name) is None  # a backfill never moves the live cursor


class _AdvancingTransport(httpx.BaseTransport):
    """Moves the simulator's clock after every cdrapi answer: calls end (and appear) mid-pagination."""

    def __init__(self, sim: UcmSimulator, seconds: float) -> None:
        self._inner = httpx.HTTPTransport()
        self._sim = sim
        self._seconds = seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if b'"cdrapi"' in request.content:
            self._sim.clock.advance(self._seconds)
        return response


@pytest.fixture
def crashes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``armed``: the next cursor commits crash (counted in ``fired``), after the legs are upserted."""
    switch: dict[str, Any] = {"armed": False, "fired": 0}
    real_commit_cursor = warehouse_load.commit_cursor

    def crashing_commit_cursor(*args: Any, **kwargs: Any) -> Any:
        # Legs are staged and upserted by now; dying here must roll all of it back.
        if switch["armed"]:
            switch["fired"] += 1
            raise RuntimeError("injected crash between load and cursor commit")
        return real_commit_cursor(*args, **kwargs)

    monkeypatch.setattr(warehouse_load, "commit_cursor", crashing_commit_cursor)
    return switch


def test_exactly_once_under_a_randomized_fault_campaign(engine: sa.Engine, crashes: dict[str, Any]) -> None:
    rng = random.Random(2026)
    sim = simulator()
    failures = 0
    with sim.serve() as url:
        for tick in range(60):
            sim.faults = FaultConfig(
                fault_seed=tick,
                cookie_expire_every=rng.choice([0, 3, 7]),
                throttle_rate=rng.choice([0.0, 0.1]),
                http500_rate=rng.choice([0.0, 0.1]),
                repeat_page_rate=rng.choice([0.0, 0.1]),
                short_page_rate=rng.choice([0.0, 0.2]),
            )
            crashes["armed"] = rng.random() < 0.15
            sim.clock.advance(rng.choice([120, 120, 600, 1800, 3600]))
            transport = _AdvancingTransport(sim, seconds=rng.choice([0, 15, 45]))
            try:
                with make_client(sim, url, transport=transport) as client:
                    poll_tenant(client, engine, TENANT, now=sim.clock.now())
            except Exception:
                failures += 1
        # Settle: no faults, every call has ended, one more tick covers the tail.
        sim.faults = FaultConfig()
        crashes["armed"] = False
        sim.clock.set(
            datetime.combine(DAY + timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=8)
        )
        with make_client(sim, url) as client:
            poll_tenant(client, engine, TENANT, now=sim.clock.now())
    assert crashes["fired"] > 0 and failures >= crashes["fired"]
    assert_matches_truth(engine, sim)


def test_dst_fall_back_legs_get_the_right_instant(engine: sa.Engine) -> None:
    sim = simulator(start=date(2026, 10, 31), days=2, calls_per_day=400)
    sim.clock.set(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    with sim.serve() as url, make_client(sim, url) as client:
        start, end = datetime(2026, 10, 31, 0, tzinfo=UTC), datetime(2026, 11, 2, 11, tzinfo=UTC)
        ingest_window(client, engine, TENANT, start, end, kind="backfill", advance_cursor=False)
    truth = {leg["AcctId"]: leg for leg in sim.ground_truth()}
    true_start = sim.true_start_utc()  # AcctId -> true UTC start, from the simulator's own clock
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT acct_id, start_local, start_at FROM cdr_legs")).all()
    ambiguous = [r for r in rows if r.start_local.startswith("2026-11-01 01:")]
    assert len(ambiguous) >= 5, "the simulated day must have calls in the repeated hour"
    for acct_id, _local, start_at in rows:
        got = start_at if isinstance(start_at, datetime) else datetime.fromisoformat(str(start_at))
        got = got.replace(tzinfo=UTC) if got.tzinfo is None else got
        assert got == true_start[acct_id], (acct_id, truth[acct_id]["start"])


def test_two_concurrent_ticks_store_no_duplicates(pg_url: str) -> None:
    eng = get_engine(pg_url)
    upgrade(eng)
    sim = simulator()
    sim.clock.set(datetime(2026, 3, 3, 12, 0, tzinfo=UTC))
    errors: list[BaseException] = []
    outcomes: list[str] = []

    def tick(locking: bool) -> None:
        try:
            with make_client(sim, base_url) as client:
                if not locking:
                    poll_tenant(client, eng, TENANT, now=sim.clock.now())
                    outcomes.append("ran")
                    return
                with tenant_lock(eng, TENANT.name, wait=False) as acquired:
                    if acquired:
                        poll_tenant(client, eng, TENANT, now=sim.clock.now())
                    outcomes.append("ran" if acquired else "busy")
        except BaseException as exc:
            errors.append(exc)

    with sim.serve() as base_url:
        for locking in (False, True):  # without the lock the upsert alone must hold; with it, one waits out
            threads = [threading.Thread(target=tick, args=(locking,)) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    assert not errors
    state = read_sync_state(eng, TENANT.name)
    assert state is not None and state.cursor_at is not None
    rows = stored(eng)
    assert len({key for _, key in rows}) == len(rows)
    start, _ = poll_window(sim.clock.now(), None, TENANT)
    truth = [leg for leg in sim.ground_truth() if leg["AcctId"] in {a for a, _ in rows}]
    assert len(rows) == len(truth)
    assert start < state.cursor_at
    eng.dispose()


def test_exactly_once_through_a_multi_day_outage_with_three_hour_calls(
    pg_engine: sa.Engine, crashes: dict[str, Any]
) -> None:
    """Faults as above, plus: 3-hour calls (longer than the 2-hour lookback), malformed cdrapi
    entries, a page cap of 8 x 25 and a three-day outage. Afterwards every closed day reconciles at
    100 % with nothing left to load."""
    rng = random.Random(7)
    sim = simulator(days=6, calls_per_day=90, long_call_share=0.06, max_call_seconds=4 * 3600)
    sim.clock.set(datetime(2026, 3, 3, 5, tzinfo=UTC))

    def tick(*, faults: bool = True) -> None:
        sim.faults = FaultConfig(
            fault_seed=rng.randrange(1 << 30),
            cookie_expire_every=rng.choice([0, 5]) if faults else 0,
            throttle_rate=rng.choice([0.0, 0.05]) if faults else 0.0,
            http500_rate=rng.choice([0.0, 0.05]) if faults else 0.0,
            repeat_page_rate=rng.choice([0.0, 0.05]) if faults else 0.0,
            short_page_rate=rng.choice([0.0, 0.1]) if faults else 0.0,
            malformed_item_rate=0.01,
        )
        crashes["armed"] = faults and rng.random() < 0.1
        transport = _AdvancingTransport(sim, seconds=rng.choice([0, 30]) if faults else 0)
        capped = pipeline_support.make_client(
            sim, url, attempts=8, transport=transport, page_size=25, max_pages=8, max_throttle_retries=20
        )
        with contextlib.suppress(Exception), capped as client:  # a failed tick: the next one retries
            poll_tenant(client, pg_engine, TENANT, now=sim.clock.now(), max_legs=150, max_pieces=12)

    with sim.serve() as url:
        for _ in range(12):  # a day of ticks every two hours
            tick()
            sim.clock.advance(7200)
        sim.clock.advance(3 * 86400)  # the worker was down for three days
        for _ in range(12):  # catching up, then a day of ticks
            tick()
            sim.clock.advance(7200)
        sim.clock.set(datetime(2026, 3, 8, 12, tzinfo=UTC))  # every call has ended
        for _ in range(3):
            tick(faults=False)
        crashes["armed"] = False
        assert crashes["fired"] > 0
        assert_matches_truth(pg_engine, sim)
        long_calls = [leg for leg in sim.ground_truth() if int(leg["duration"]) > TENANT.lookback_seconds]
        assert long_calls, "the campaign must include calls longer than the lookback"

        sim.faults = FaultConfig()
        with make_client(sim, url) as client:
            days = [DAY + timedelta(days=k) for k in range(6)]
            results = [reconcile_day(client, pg_engine, TENANT, day, now=sim.clock.now()) for day in days]
    assert [r.completeness for r in results] == [1.0] * 6
    assert sum(r.loaded_now for r in results) == 0 and sum(r.pbx_legs for r in results) > 1000
