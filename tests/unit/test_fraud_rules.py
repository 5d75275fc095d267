"""Each toll-fraud rule fires on its own scenario (call frames built by hand) and not below it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from audiapro.insights import fraud
from audiapro.insights.frames import CALL_FRAME_COLUMNS, region_of
from audiapro.insights.settings import InsightSettings, parse_settings

T0 = datetime(2026, 3, 3, 15, tzinfo=UTC)  # Tuesday 10:00 in New York
DAY = date(2026, 3, 3)
CTX = fraud.TenantContext("acme", "America/New_York", "US", InsightSettings())


def call(n: int, *, at: datetime = T0, number: str = "+12125550100", **kw: Any) -> dict[str, Any]:
    """One outbound call from extension 1001, answered, 120 s."""
    row: dict[str, Any] = {
        "session": f"s{n}",
        "started_at": at,
        "ended_at": at + timedelta(seconds=130),
        "direction": "outbound",
        "answered": True,
        "disposition": "ANSWERED",
        "talk_s": 120,
        "extension": "1001",
        "number": number,
        "dst_e164": number,
        "country": region_of(number) if number else None,
        "trunk": "Carrier-A",
        "action_type": "DIAL",
        "ring_s": 10.0,
    }
    row.update(kw)
    return row


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    calls = pd.DataFrame(rows, columns=list(CALL_FRAME_COLUMNS))
    for name in ("started_at", "ended_at"):
        calls[name] = pd.to_datetime(calls[name], utc=True)
    return calls


def rules_hit(alerts: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(a["rule"], a["severity"], a["subject"]) for a in alerts}


def every(n: int, seconds: int, **kw: Any) -> list[dict[str, Any]]:
    return [call(i, at=T0 + timedelta(seconds=i * seconds), **kw) for i in range(n)]


BASE = fraud.Baseline(
    days=20,
    after_hours=[(DAY - timedelta(days=d), 3) for d in range(1, 21)],
    outbound_peaks=[2] * 20,
    countries=frozenset({"GB"}),
)


def test_premium_satellite_and_risky_area_codes_are_risky_destinations() -> None:
    calls = frame(
        [
            call(1, number="+449098790123"),
            call(2, number="+881631234567", extension="1002"),
            call(3, number="+18765550123", extension="1003"),
            call(4),
        ]
    )
    assert rules_hit(fraud.risky_destinations(CTX, calls)) == {
        ("risky_destination", "critical", "ext:1001"),  # premium rate
        ("risky_destination", "critical", "ext:1002"),  # satellite
        ("risky_destination", "warning", "ext:1003"),  # Jamaica, dialled like a US number
    }


@pytest.mark.parametrize(("count", "expected"), [(9, set()), (10, {"warning"}), (20, {"critical"})])
def test_international_velocity_warns_at_10_and_is_critical_at_20_in_an_hour(
    count: int, expected: set[str]
) -> None:
    alerts = fraud.intl_velocity(CTX, frame(every(count, 150, number="+442079460011")))
    assert {a["severity"] for a in alerts} == expected
    # The same calls spread over more than an hour never fill one window.
    assert fraud.intl_velocity(CTX, frame(every(count, 400, number="+442079460011"))) == []


def test_short_call_bursts_to_one_prefix() -> None:
    burst = [
        call(i, at=T0 + timedelta(seconds=40 * i), number=f"+1712555{100 + i:04d}", talk_s=5)
        for i in range(12)
    ]
    (alert,) = fraud.short_call_bursts(CTX, frame(burst))
    assert (alert["rule"], alert["subject"], alert["calls"]) == ("short_call_burst", "prefix:+171255", 12)
    longer = [{**row, "talk_s": 30} for row in burst]
    assert fraud.short_call_bursts(CTX, frame(longer)) == []


def test_sequential_calls_to_one_number() -> None:
    alerts = fraud.sequential_calls(CTX, frame(every(12, 30, number="+13055550123")))
    assert rules_hit(alerts) == {("sequential_calls", "warning", "number:+13055550123")}
    assert fraud.sequential_calls(CTX, frame(every(9, 30, number="+13055550123"))) == []


def test_trunk_to_trunk_calls_without_a_follow_me_alert() -> None:
    hop = call(1, direction="external", extension=None, trunk="Carrier-A", action_type="DIAL")
    follow_me = call(2, direction="external", extension=None, trunk="Carrier-A", action_type="FOLLOWME[1001]")
    assert rules_hit(fraud.trunk_to_trunk(CTX, frame([hop, follow_me]))) == {
        ("trunk_to_trunk", "critical", "trunk:Carrier-A")
    }
    assert fraud.trunk_to_trunk(CTX, frame([follow_me])) == []


def test_after_hours_calls_well_above_the_tenants_own_baseline() -> None:
    night = T0.replace(hour=7)  # 02:00 in New York
    quiet = frame(every(5, 60) + [call(100 + i, at=night + timedelta(minutes=i)) for i in range(3)])
    assert fraud.after_hours_rule(CTX, DAY, quiet, BASE) == []
    busy = frame([call(100 + i, at=night + timedelta(minutes=i)) for i in range(12)])
    (alert,) = fraud.after_hours_rule(CTX, DAY, busy, BASE)
    assert (alert["rule"], alert["calls"], alert["evidence"]["threshold"]) == ("after_hours", 12, 10)
    young = fraud.Baseline(
        days=3, after_hours=BASE.after_hours[:3], outbound_peaks=[2] * 3, countries=frozenset()
    )
    assert fraud.after_hours_rule(CTX, DAY, busy, young) == []  # too little history to judge


def test_concurrency_above_the_normal_peak_or_near_trunk_capacity() -> None:
    assert fraud.concurrency_rule(CTX, DAY, frame([call(1)]), 4, BASE) == []
    (alert,) = fraud.concurrency_rule(CTX, DAY, frame([call(1)]), 5, BASE)
    assert alert["severity"] == "warning"
    small_trunk = fraud.TenantContext("acme", "America/New_York", "US", InsightSettings(trunk_channels=4))
    assert fraud.concurrency_rule(small_trunk, DAY, frame([call(1)]), 4, BASE)[0]["severity"] == "critical"


def test_a_country_never_called_before() -> None:
    calls = frame([call(1, number="+5372345678"), call(2, number="+442079460011"), call(3)])
    assert rules_hit(fraud.new_countries(CTX, DAY, calls, BASE)) == {("new_country", "warning", "country:CU")}


def test_estimated_cost_from_the_tenants_rate_table() -> None:
    rated = fraud.TenantContext(
        "acme", "America/New_York", "US", InsightSettings(rates_per_minute={"+44909": 3.0})
    )
    (alert,) = fraud.risky_destinations(rated, frame([call(1, number="+449098790123", talk_s=600)]))
    assert alert["estimated_cost"] == 30.0


def test_windows_are_found_the_same_way_on_every_evaluation() -> None:
    times = pd.Series(
        pd.to_datetime([T0 + timedelta(minutes=m) for m in (0, 1, 2, 30, 31, 32, 33)], utc=True)
    )
    assert fraud.windows(times, pd.Timedelta(minutes=10), 3) == [(0, 3), (3, 7)]
    assert fraud.windows(times, pd.Timedelta(minutes=10), 5) == []


def test_settings_refuse_unknown_fields_in_one_line() -> None:
    assert parse_settings('{"velocity_warn": 5}').velocity_warn == 5
    with pytest.raises(ValueError, match="unknown insight settings: velocity"):
        parse_settings('{"velocity": 5}')


def test_the_concurrency_evidence_is_the_calls_at_the_peak() -> None:
    overlapping = [call(i, at=T0 + timedelta(seconds=10 * i)) for i in range(5)]  # 130 s each
    later = [call(10 + i, at=T0 + timedelta(hours=2, minutes=5 * i)) for i in range(3)]
    (alert,) = fraud.concurrency_rule(CTX, DAY, frame(overlapping + later), 5, BASE)
    assert alert["calls"] == 5 and alert["evidence"]["peak"] == 5


def test_a_later_partial_evaluation_resumes_after_the_stored_window() -> None:
    burst = every(25, 150, number="+442079460011")  # 25 international calls over an hour
    (whole_day,) = fraud.intl_velocity(CTX, frame(burst))
    assert whole_day["calls"] == 24  # the 25th starts an hour after the first
    tail = frame(burst[12:])  # a poll tick reading only the last part of the burst
    assert len(fraud.intl_velocity(CTX, tail)) == 1  # alone, it would see a second window
    resumed = fraud.TenantContext(
        "acme",
        CTX.timezone,
        "US",
        CTX.settings,
        resume={("intl_velocity", "ext:1001"): whole_day["window_end"]},
    )
    assert fraud.intl_velocity(resumed, tail) == []
