"""Field conditions where a poller loses or corrupts data while its health stays green.

Each test drives the live poll (``audiapro.polling.poll_tenant``) against the simulated PBX with a
pinned clock and compares the warehouse with the simulator's ground truth.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from audiapro.cdr.zonecheck import ZoneMismatchError
from audiapro.ingest import ingest_window
from audiapro.polling import poll_tenant
from audiapro.ucm.records import CdrPage, MalformedItem
from audiapro.warehouse import cdr_legs, ingest_runs, read_sync_state, rejected_rows
from tests.integration.pipeline_support import DAY, TENANT, make_client, simulator, table_count


def stored_acct_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(str(r[0]) for r in conn.execute(sa.select(cdr_legs.c.acct_id)))


def test_a_pbx_in_another_zone_loads_nothing_and_moves_no_cursor(engine: sa.Engine) -> None:
    sim = simulator(tz="America/Chicago", start=date(2026, 1, 12), days=1)
    sim.clock.set(datetime(2026, 1, 13, 12, tzinfo=UTC))
    tenant = replace(TENANT, timezone="UTC")  # entered without --timezone: the old default
    with (
        sim.serve() as url,
        make_client(sim, url, timezone="UTC") as client,
        pytest.raises(ZoneMismatchError) as caught,
    ):
        poll_tenant(client, engine, tenant, now=sim.clock.now())
    assert "PBX clock is UTC−06:00, tenant zone UTC says UTC+00:00" in str(caught.value)
    assert table_count(engine, cdr_legs) == 0
    assert read_sync_state(engine, TENANT.name) is None


def test_the_right_zone_loads_the_same_pbx(engine: sa.Engine) -> None:
    sim = simulator(tz="America/Chicago", start=date(2026, 1, 12), days=1)
    sim.clock.set(datetime(2026, 1, 13, 12, tzinfo=UTC))
    tenant = replace(TENANT, timezone="America/Chicago")
    with sim.serve() as url, make_client(sim, url, timezone="America/Chicago") as client:
        summary = poll_tenant(client, engine, tenant, now=sim.clock.now())
    assert summary.inserted > 100


def test_a_backlog_beyond_the_page_cap_is_caught_up_in_pieces(engine: sa.Engine) -> None:
    """Three days of outage behind a cap of 4 pages x 50: today's code fails every tick forever."""
    sim = simulator(days=5, calls_per_day=150)
    sim.clock.set(datetime(2026, 3, 2, 14, tzinfo=UTC))
    with sim.serve() as url:
        with make_client(sim, url, page_size=50, max_pages=4) as client:
            first = poll_tenant(client, engine, TENANT, now=sim.clock.now(), max_legs=150)
        assert first.pieces > 1 and first.behind_seconds == 0
        sim.clock.advance(3 * 86400)  # the worker was down for three days
        ticks = []
        for _ in range(10):
            with make_client(sim, url, page_size=50, max_pages=4) as client:
                ticks.append(
                    poll_tenant(client, engine, TENANT, now=sim.clock.now(), max_legs=150, max_pieces=6)
                )
            if ticks[-1].behind_seconds == 0:
                break
    assert len(ticks) > 1, "a bounded tick cannot take three days at once"
    assert ticks[-1].behind_seconds == 0
    assert all(t.pieces <= 6 for t in ticks)
    with engine.connect() as conn:
        windows = conn.execute(
            sa.select(ingest_runs.c.window_start, ingest_runs.c.window_end, ingest_runs.c.fetched)
            .where(ingest_runs.c.kind == "poll")
            .order_by(ingest_runs.c.id)
        ).all()
    assert all(fetched <= 150 for _, _, fetched in windows), "no piece held more than its bound"
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(windows)), "oldest first"
    first_start = datetime.fromisoformat(first.window_start)
    truth = sorted(leg["AcctId"] for leg in sim.ground_truth(start=first_start))
    assert stored_acct_ids(engine) == truth  # 0 lost, 0 duplicated


def test_calls_longer_than_the_lookback_are_found_by_the_end_time_sweep(engine: sa.Engine) -> None:
    """A 10-minute lookback stands in for the 2-hour one: calls of up to 90 minutes outlast it."""
    short = replace(TENANT, lookback_seconds=600, sweep_span_seconds=6 * 3600, sweep_every_seconds=3600)
    results = {}
    for sweep in (False, True):
        tenant = short if sweep else replace(short, sweep_span_seconds=0)
        sim = simulator(days=1, calls_per_day=150)
        sim.clock.set(datetime(2026, 3, 2, 5, tzinfo=UTC))
        with engine.begin() as conn:
            for table in ("rejected_rows", "calls", "cdr_legs", "sync_state", "ingest_runs"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
        with sim.serve() as url:
            for _ in range(2 * 28):  # every 30 minutes for 28 hours
                sim.clock.advance(1800)
                with make_client(sim, url) as client:
                    poll_tenant(client, engine, tenant, now=sim.clock.now())
        truth = sorted(leg["AcctId"] for leg in sim.ground_truth())
        results[sweep] = (stored_acct_ids(engine), truth)
    without, truth = results[False]
    assert len(without) < len(truth), "the scenario must have calls longer than the lookback"
    with_sweep, truth = results[True]
    assert with_sweep == truth


class _PagesSource:
    """A PBX reply with junk in it: a string item, a bad sub_cdr, a group without legs."""

    def __init__(self, legs: list[dict[str, str]]) -> None:
        self.legs = legs

    def iter_cdr_pages(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> Iterator[CdrPage]:
        junk = [
            MalformedItem(3, "", "item is not an object", "garbage"),
            MalformedItem(5, "sub_cdr_2", "sub_cdr entry is not an object", 42),
        ]
        yield CdrPage(offset=0, legs=self.legs[:10], item_count=12, malformed=junk)
        group = MalformedItem(1, "", "grouped call without sub_cdr legs", {"cdr": "", "main_cdr": {}}, 12)
        yield CdrPage(offset=12, legs=self.legs[10:], item_count=len(self.legs) - 8, malformed=[group])


def test_malformed_cdrapi_entries_are_quarantined_with_their_record_number(engine: sa.Engine) -> None:
    sim = simulator(days=1)
    legs = sim.ground_truth()[:30]
    start, end = datetime(2026, 3, 2, 5, tzinfo=UTC), datetime(2026, 3, 3, 5, tzinfo=UTC)
    summary = ingest_window(_PagesSource(legs), engine, TENANT, start, end, kind="poll", advance_cursor=True)
    assert summary.inserted == 30 and summary.rejected == 3
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(rejected_rows.c.position, rejected_rows.c.reason, rejected_rows.c.raw).order_by(
                rejected_rows.c.position
            )
        ).all()
    assert [r.position for r in rows] == [4, 6, 14]
    assert "cdrapi record 6, sub_cdr_2" in rows[1].reason and rows[1].raw == "42"
    assert rows[0].raw == '"garbage"' and "main_cdr" in rows[2].raw
    # Re-reading the same window (the next tick's lookback) stores them once.
    again = ingest_window(_PagesSource(legs), engine, TENANT, start, end, kind="poll", advance_cursor=True)
    assert again.rejected == 0 and table_count(engine, rejected_rows) == 3


class _SilentPbx:
    """A PBX that stopped writing CDRs (e.g. its CDR database filled up): every window is empty."""

    def iter_cdr_pages(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> Iterator[CdrPage]:
        return iter(())


def test_empty_windows_where_weeks_of_history_had_calls_make_the_tenant_silent(engine: sa.Engine) -> None:
    sim = simulator(start=DAY, days=31, calls_per_day=100, weekend_factor=1.0)
    sim.clock.set(datetime(2026, 3, 30, 12, tzinfo=UTC))
    with sim.serve() as url, make_client(sim, url) as client:
        history_start = datetime(2026, 3, 2, 5, tzinfo=UTC)
        ingest_window(
            client, engine, TENANT, history_start, sim.clock.now(), kind="backfill", advance_cursor=False
        )
        tenant = replace(TENANT, silent_ticks=3, sweep_span_seconds=0)
        # 04:00 New York on a Tuesday: the simulated PBX is quiet then every week; empty says nothing.
        night = datetime(2026, 3, 31, 8, 0, tzinfo=UTC)
        sim.clock.set(night - timedelta(hours=1))
        poll_tenant(client, engine, tenant, now=sim.clock.now())  # the cursor before the silence
    quiet = poll_tenant(_SilentPbx(), engine, tenant, now=night)
    assert (quiet.empty_ticks, quiet.silent) == (0, False)
    # 11:00-15:00 New York the same day: every earlier week had calls then.
    ticks = [poll_tenant(_SilentPbx(), engine, tenant, now=night + timedelta(hours=7 + k)) for k in range(4)]
    assert [t.empty_ticks for t in ticks] == [1, 2, 3, 4]
    assert [t.silent for t in ticks] == [False, False, True, True]
    state = read_sync_state(engine, TENANT.name)
    assert state is not None and state.empty_ticks == 4
    # Calls again: the count resets.
    sim.clock.set(night + timedelta(hours=12))
    with sim.serve() as url, make_client(sim, url) as client:
        live = poll_tenant(client, engine, tenant, now=sim.clock.now())
    assert live.fetched > 0 and (live.empty_ticks, live.silent) == (0, False)
