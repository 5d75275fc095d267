"""Completeness per PBX-local day against the simulator: measured, repaired, phantoms kept, DST days.

Polls or loads a simulated PBX, then tampers with the warehouse behind the pipeline's back and checks
that ``reconcile_day`` finds exactly what is missing, loads it through the normal path and says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from audiapro.ingest import ingest_window, load_raw_legs
from audiapro.polling import poll_tenant
from audiapro.reconcile import DayNotClosedError, closes_at, day_bounds, reconcile_day
from audiapro.ucm.client import UcmClient
from audiapro.ucm.records import CdrPage, parse_cdr_items
from audiapro.ucm.simulator import UcmSimulator
from audiapro.warehouse import (
    DayReconciliation,
    RunInfo,
    calls,
    cdr_legs,
    ingest_runs,
    read_reconcile_days,
    recent_reconcile_days,
    record_reconcile_day,
)
from tests.integration import pipeline_support
from tests.integration.pipeline_support import DAY, TENANT, TZ, table_count

DAY2 = DAY + timedelta(days=1)
#: When both simulated days are closed (2026-03-04 local midnight + lookback + safety, with margin).
SETTLED = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)


def make_client(sim: UcmSimulator, base_url: str) -> UcmClient:
    """The shared quiet client with small pages, so a day takes several pages."""
    return pipeline_support.make_client(sim, base_url, page_size=50)


def truth_of_day(sim: UcmSimulator, day: date) -> list[dict[str, str]]:
    """The simulator's legs whose PBX wall-clock start lies on ``day``."""
    return [leg for leg in sim.ground_truth() if leg["start"].startswith(day.isoformat())]


def keys_of_day(engine: sa.Engine, day: date) -> dict[str, str]:
    """acct_id -> leg_key of the stored legs of ``day``."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(cdr_legs.c.acct_id, cdr_legs.c.leg_key).where(
                cdr_legs.c.start_local.like(f"{day.isoformat()} %")
            )
        ).all()
    return {str(acct): key for acct, key in rows}


def call_rows(engine: sa.Engine) -> set[tuple[Any, ...]]:
    """Calls as their legs define them (bookkeeping columns left out)."""
    columns = [
        calls.c[name] for name in ("session", "started_at", "ended_at", "leg_count", "talk_s", "answered")
    ]
    with engine.connect() as conn:
        return {tuple(row) for row in conn.execute(sa.select(*columns))}


def poll_two_days(sim: UcmSimulator, url: str, engine: sa.Engine) -> None:
    """Hourly poll ticks from the first day's local midnight until both days are closed."""
    sim.clock.set(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    with make_client(sim, url) as client:
        while sim.clock.now() < SETTLED:
            sim.clock.advance(3600)
            poll_tenant(client, engine, TENANT, now=sim.clock.now())


def test_polled_days_are_complete_and_a_check_costs_only_the_paged_read(engine: sa.Engine) -> None:
    sim = pipeline_support.simulator()
    with sim.serve() as url:
        poll_two_days(sim, url, engine)
        runs_before = table_count(engine, ingest_runs)
        with make_client(sim, url) as client:
            client.login()
            results = []
            for day in (DAY, DAY2):
                requests = sim.stats.cdrapi_requests
                results.append(reconcile_day(client, engine, TENANT, day, now=SETTLED, flow_run_id="run-1"))
                reconcile_requests = sim.stats.cdrapi_requests - requests
                client.fetch_cdrs(*day_bounds(day, TZ))  # the same day read plainly, for comparison
                assert reconcile_requests == sim.stats.cdrapi_requests - requests - reconcile_requests
                assert reconcile_requests >= 3  # several pages of 50: the day was really paged through
    for day, result in zip((DAY, DAY2), results, strict=True):
        expected = len(truth_of_day(sim, day))
        assert expected > 100
        assert (result.pbx_legs, result.stored_legs, result.matched_legs) == (expected, expected, expected)
        assert (result.missing_before, result.loaded_now, result.phantom_legs, result.rejected) == (
            0,
            0,
            0,
            0,
        )
        assert result.completeness == 1.0 and result.ingest_run_id is None
    assert table_count(engine, ingest_runs) == runs_before  # nothing to load: no load at all
    stored = read_reconcile_days(engine, tenant=TENANT.name)
    assert [(r.day, r.completeness, r.flow_run_id) for r in stored] == [
        (DAY, 1.0, "run-1"),
        (DAY2, 1.0, "run-1"),
    ]


def test_legs_deleted_behind_its_back_are_found_loaded_and_reported(engine: sa.Engine) -> None:
    sim = pipeline_support.simulator()
    with sim.serve() as url:
        poll_two_days(sim, url, engine)
        calls_before = call_rows(engine)
        stored = keys_of_day(engine, DAY)
        # A whole call (its calls row goes too) and single legs of other calls.
        with engine.connect() as conn:
            whole = conn.execute(
                sa.select(cdr_legs.c.session)
                .where(cdr_legs.c.start_local.like(f"{DAY.isoformat()} %"))
                .group_by(cdr_legs.c.session)
                .having(sa.func.count() >= 3)
                .order_by(cdr_legs.c.session)
                .limit(1)
            ).scalar_one()
        victims = {acct for acct in sorted(stored)[::37]}
        with engine.begin() as conn:
            victims |= {
                str(a) for a in conn.scalars(sa.select(cdr_legs.c.acct_id).where(cdr_legs.c.session == whole))
            }
            conn.execute(sa.delete(cdr_legs).where(cdr_legs.c.acct_id.in_(victims)))
            conn.execute(sa.delete(calls).where(calls.c.session == whole))
        other_day_before = keys_of_day(engine, DAY2)
        with make_client(sim, url) as client:
            first = reconcile_day(client, engine, TENANT, DAY, now=SETTLED)
            second = reconcile_day(client, engine, TENANT, DAY, now=SETTLED)
    pbx = len(stored)
    assert len(victims) >= 5
    assert (first.pbx_legs, first.stored_legs) == (pbx, pbx - len(victims))
    assert (first.missing_before, first.loaded_now, first.completeness) == (len(victims), len(victims), 1.0)
    assert first.ingest_run_id is not None and first.phantom_legs == 0
    assert (second.missing_before, second.loaded_now, second.ingest_run_id) == (0, 0, None)
    assert keys_of_day(engine, DAY) == stored  # the same keys as the poll stored, numbering included
    assert keys_of_day(engine, DAY2) == other_day_before
    assert call_rows(engine) == calls_before  # the deleted call and the shortened ones rebuilt
    with engine.connect() as conn:
        kind = conn.scalar(sa.select(ingest_runs.c.kind).where(ingest_runs.c.id == first.ingest_run_id))
    assert kind == "reconcile"
    (row,) = read_reconcile_days(engine, tenant=TENANT.name)
    assert (row.missing_before, row.loaded_now) == (0, 0)  # the latest result per day is kept


def test_a_leg_the_pbx_does_not_have_is_a_phantom_and_stays(engine: sa.Engine) -> None:
    sim = pipeline_support.simulator(days=1)
    sim.clock.set(datetime(2026, 3, 3, 12, 0, tzinfo=UTC))
    start, end = day_bounds(DAY, TZ)
    with sim.serve() as url, make_client(sim, url) as client:
        ingest_window(client, engine, TENANT, start, end, kind="backfill", advance_cursor=False)
        template = truth_of_day(sim, DAY)[0]
        ghost = {**template, "AcctId": "999999", "uniqueid": "1772449200.999", "session": "1772449200.999"}
        load_raw_legs(engine, TENANT, [ghost], run=RunInfo(kind="test"), source="api")
        result = reconcile_day(client, engine, TENANT, DAY, now=sim.clock.now())
    assert (result.phantom_legs, result.missing_before, result.completeness) == (1, 0, 1.0)
    assert result.stored_legs == result.pbx_legs + 1
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).where(cdr_legs.c.acct_id == "999999")) == 1


@pytest.mark.parametrize(
    ("day", "hours", "switch_hour"),
    [(date(2026, 3, 8), 23, "2026-03-08 03:"), (date(2026, 11, 1), 25, "2026-11-01 01:")],
    ids=["spring-forward", "fall-back"],
)
def test_a_dst_day_reconciles_to_complete(engine: sa.Engine, day: date, hours: int, switch_hour: str) -> None:
    sim = pipeline_support.simulator(start=day - timedelta(days=1), days=3, calls_per_day=800)
    start, end = day_bounds(day, TZ)
    assert end + timedelta(seconds=1) - start == timedelta(hours=hours)
    now = closes_at(TENANT, day) + timedelta(hours=1)
    sim.clock.set(now)
    with sim.serve() as url, make_client(sim, url) as client:
        # Three days loaded: the neighbours' legs must not leak into the day's measure.
        first, last = day_bounds(day - timedelta(days=1), TZ)[0], day_bounds(day + timedelta(days=1), TZ)[1]
        ingest_window(client, engine, TENANT, first, last, kind="backfill", advance_cursor=False)
        stored = keys_of_day(engine, day)
        # The hour after the switch (the repeated hour when DST ends) and every 10th leg of the day.
        victims = {acct for acct in sorted(stored)[::10]}
        with engine.begin() as conn:
            victims |= {
                str(a)
                for a in conn.scalars(
                    sa.select(cdr_legs.c.acct_id).where(cdr_legs.c.start_local.like(f"{switch_hour}%"))
                )
            }
            conn.execute(sa.delete(cdr_legs).where(cdr_legs.c.acct_id.in_(victims)))
        result = reconcile_day(client, engine, TENANT, day, now=now)
    truth = truth_of_day(sim, day)
    assert len(victims) >= 20 and len(truth) > 200
    assert any(truth_leg["start"].startswith(switch_hour) for truth_leg in truth)
    assert (result.pbx_legs, result.missing_before, result.loaded_now) == (
        len(truth),
        len(victims),
        len(victims),
    )
    assert (result.completeness, result.phantom_legs) == (1.0, 0)
    assert keys_of_day(engine, day) == stored


def test_a_day_that_is_not_closed_is_refused(engine: sa.Engine) -> None:
    closes = closes_at(TENANT, DAY)
    assert closes == datetime(2026, 3, 3, 5, 0, tzinfo=UTC) + timedelta(seconds=2 * 3600)  # + lookback
    with pytest.raises(DayNotClosedError, match="not closed"):
        reconcile_day(_Pages([]), engine, TENANT, DAY, now=closes - timedelta(seconds=1))
    assert read_reconcile_days(engine) == []


class _Pages:
    """A PBX that answers every window with the given cdrapi items (one page)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def iter_cdr_pages(self, start_utc: datetime, end_utc: datetime) -> Iterable[CdrPage]:
        if self.items:
            yield parse_cdr_items(self.items)


def _leg(acct: int, *, uniqueid: str = "1772460000.1", start: str = "2026-03-02 09:00:00") -> dict[str, str]:
    return {
        "AcctId": str(acct), "uniqueid": uniqueid, "session": uniqueid, "channel": "PJSIP/2001-0001",
        "dstchannel": "PJSIP/2002-0002", "lastapp": "Dial", "start": start, "answer": start,
        "end": start.replace(":00:00", ":01:00"), "duration": "60", "billsec": "60",
        "disposition": "ANSWERED", "src": "2001", "dst": "2002",
    }  # fmt: skip


def test_identical_legs_keep_their_numbers_when_one_is_reloaded(engine: sa.Engine) -> None:
    # Three legs identical in every key field (a PBX writing one bookkeeping row thrice) and one other.
    items: list[Any] = [_leg(12), _leg(10), _leg(11), _leg(13, uniqueid="1772460000.2")]
    load_raw_legs(engine, TENANT, items, run=RunInfo(kind="test"), source="api")
    before = keys_of_day(engine, DAY)
    assert sorted(k[-2:] for k in before.values())[:2] == ["#2", "#3"]
    with engine.begin() as conn:  # "#2" is the AcctId 11 (AcctId order)
        assert conn.execute(sa.delete(cdr_legs).where(cdr_legs.c.acct_id == "11")).rowcount == 1
    result = reconcile_day(_Pages(items), engine, TENANT, DAY, now=SETTLED)
    assert (result.missing_before, result.loaded_now, result.completeness) == (1, 1, 1.0)
    assert keys_of_day(engine, DAY) == before


def test_malformed_entries_count_against_completeness_only_when_they_hold_a_leg(engine: sa.Engine) -> None:
    grouped = {"main_cdr": {"AcctId": ""}, "sub_cdr_1": _leg(21), "sub_cdr_2": "garbled"}
    items: list[Any] = [grouped, None, _leg(22, uniqueid="1772460000.3"), {"main_cdr": {"AcctId": ""}}]
    result = reconcile_day(_Pages(items), engine, TENANT, DAY, now=SETTLED)
    assert (result.pbx_legs, result.malformed, result.malformed_legs) == (2, 3, 1)
    assert (result.loaded_now, result.matched_legs) == (2, 2)
    assert result.completeness == pytest.approx(2 / 3)


def test_a_leg_that_cannot_be_loaded_is_rejected_and_keeps_the_day_incomplete(engine: sa.Engine) -> None:
    bad = {**_leg(31, uniqueid="1772460000.4"), "disposition": "WEIRD"}
    items: list[Any] = [_leg(30), bad]
    first = reconcile_day(_Pages(items), engine, TENANT, DAY, now=SETTLED)
    again = reconcile_day(_Pages(items), engine, TENANT, DAY, now=SETTLED)
    assert (first.missing_before, first.loaded_now, first.rejected, first.completeness) == (2, 1, 1, 0.5)
    assert (again.missing_before, again.loaded_now, again.rejected, again.completeness) == (1, 0, 1, 0.5)


def test_recent_days_are_each_tenants_latest_seven_and_the_latest_result_wins(engine: sa.Engine) -> None:
    def result(tenant: str, day: date, matched: int) -> DayReconciliation:
        return DayReconciliation(
            tenant=tenant, day=day, pbx_legs=10, malformed=0, malformed_legs=0, stored_legs=matched,
            missing_before=10 - matched, loaded_now=0, rejected=0, phantom_legs=0, matched_legs=matched,
            completeness=matched / 10, checked_at=SETTLED, flow_run_id="r1",
        )  # fmt: skip

    for n in range(10):
        record_reconcile_day(engine, result("acme", DAY + timedelta(days=n), 10))
    for n in range(3):
        record_reconcile_day(engine, result("globex", DAY - timedelta(days=30 + n), 9))
    record_reconcile_day(engine, result("acme", DAY + timedelta(days=9), 7))  # a rerun of the latest day
    recent = recent_reconcile_days(engine)
    acme = [r for r in recent if r.tenant == "acme"]
    assert [r.day for r in acme] == [DAY + timedelta(days=n) for n in range(3, 10)]
    assert acme[-1].matched_legs == 7 and acme[-1].percent == 70.0
    assert len([r for r in recent if r.tenant == "globex"]) == 3  # its own latest days, a month older
