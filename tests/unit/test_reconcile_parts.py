"""The pure parts of the reconciliation: raw leg keys, which legs to load, closed days, malformed entries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from audiapro.cdr.keys import base_key, raw_leg_keys
from audiapro.cdr.normalize import NormalizeContext, normalize_legs
from audiapro.reconcile import (
    closes_at,
    day_bounds,
    days_to_check,
    holds_leg,
    latest_closed_day,
    legs_to_load,
    recent_closed_days,
)
from audiapro.tenants import TenantSettings
from audiapro.ucm.records import parse_cdr_items
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator

NY = TenantSettings(name="acme", timezone="America/New_York")
NY_ZONE = ZoneInfo(NY.timezone)
CTX = NormalizeContext(tenant="acme", timezone="America/New_York")


def simulated_day() -> list[dict[str, str]]:
    """A DST-end day of simulated legs (ForkCDR copies, transfers, queues, the repeated hour)."""
    sim = UcmSimulator(SimulatorConfig(seed=5, calls_per_day=400, start=date(2026, 11, 1), days=1))
    return sim.ground_truth()


def test_raw_keys_are_the_keys_normalization_stores() -> None:
    legs = simulated_day()
    # Twice the same leg under new AcctIds, and a leg normalization quarantines: numbering counts it.
    legs += [{**legs[3], "AcctId": "900001"}, {**legs[3], "AcctId": "900000"}]
    legs += [{**legs[4], "AcctId": "900002", "disposition": "WEIRD"}]
    raw = raw_leg_keys(legs)
    batch = normalize_legs(legs, CTX)
    stored = dict(zip(batch.legs["acct_id"], batch.legs["leg_key"], strict=True))
    assert len(stored) == len(legs) - 1 and len(batch.rejects) == 1
    by_acct = {leg["AcctId"]: key for leg, key in zip(legs, raw.keys, strict=True)}
    assert {acct: by_acct[acct] for acct in stored} == stored
    assert raw.keys[-3].endswith("#3") and raw.keys[-2].endswith("#2")  # AcctId order, not row order
    assert raw.starts == [*batch.legs["start_local"], legs[4]["start"]]


def test_raw_keys_of_nothing_and_of_unparseable_starts() -> None:
    assert raw_leg_keys([]).keys == []
    keyed = raw_leg_keys([{"uniqueid": "1.1", "start": "yesterday"}, {"uniqueid": "1.1"}])
    assert keyed.starts == ["", ""] and keyed.keys[1] == keyed.keys[0] + "#2"


def test_a_missing_identical_leg_brings_its_siblings_along() -> None:
    keys = ["aa", "bb", "bb#2", "bb#3", "cc"]
    assert legs_to_load(keys, {"bb#2"}) == [1, 2, 3]
    assert legs_to_load(keys, {"cc", "aa"}) == [0, 4]
    assert base_key("bb#3") == "bb"
    # Why: loaded alone, the missing "#2" leg would be numbered as the first of its kind.
    two = [{"uniqueid": "1.1", "start": "2026-03-02 10:00:00", "AcctId": str(n)} for n in (5, 6, 7)]
    assert raw_leg_keys(two[1:2]).keys[0] == base_key(raw_leg_keys(two).keys[1])


@pytest.mark.parametrize(
    ("day", "hours"), [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25), (date(2026, 6, 1), 24)]
)
def test_day_bounds_follow_the_local_calendar(day: date, hours: int) -> None:
    start, end = day_bounds(day, NY.timezone)
    assert start.astimezone(NY_ZONE).replace(tzinfo=None) == datetime.combine(day, datetime.min.time())
    assert end - start == timedelta(hours=hours, seconds=-1)
    assert end.astimezone(NY_ZONE).strftime("%Y-%m-%d %H:%M:%S") == f"{day} 23:59:59"


def test_a_day_closes_lookback_and_safety_after_it_ends() -> None:
    tenant = TenantSettings(name="t", timezone="America/New_York", lookback_seconds=3600, safety_seconds=60)
    # 2026-03-02 ends at 05:00 UTC (EST); + 1 h lookback + 60 s safety.
    assert closes_at(tenant, date(2026, 3, 2)) == datetime(2026, 3, 3, 6, 1, tzinfo=UTC)
    assert latest_closed_day(tenant, datetime(2026, 3, 3, 6, 1, tzinfo=UTC)) == date(2026, 3, 2)
    assert latest_closed_day(tenant, datetime(2026, 3, 3, 6, 0, 59, tzinfo=UTC)) == date(2026, 3, 1)
    days = recent_closed_days(tenant, datetime(2026, 3, 3, 7, 0, tzinfo=UTC), 3)
    assert days == [date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)]
    with pytest.raises(ValueError, match="days_back"):
        recent_closed_days(tenant, datetime(2026, 3, 3, 7, 0, tzinfo=UTC), 0)


def test_days_to_check_skip_complete_days_but_never_the_latest() -> None:
    now = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    known = {date(2026, 3, 2): 1.0, date(2026, 3, 3): 0.98, date(2026, 3, 4): 1.0}
    assert days_to_check(NY, now, 3, known) == [date(2026, 3, 3), date(2026, 3, 4)]
    assert days_to_check(NY, now, 4, {}) == [date(2026, 3, d) for d in (1, 2, 3, 4)]


def test_only_malformed_entries_in_a_legs_place_count_as_legs() -> None:
    page = parse_cdr_items(
        [
            None,
            "",
            "AcctId=7,src=2001",  # a leg rendered as text: a leg we cannot read
            {"main_cdr": {"AcctId": ""}},  # a grouped call with nothing but its synthetic summary
            {"main_cdr": {"AcctId": ""}, "sub_cdr_1": 42, "sub_cdr_2": {"AcctId": "8"}},
        ]
    )
    assert [holds_leg(item) for item in page.malformed] == [False, False, True, False, True]
    assert len(page.legs) == 1
