"""Offline (rule-based) analysis: outcomes, callbacks, repeat callers, after-hours, abandoned calls."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from audiapro.analysis.models import OFFLINE_RULES_VERSION, Outcome
from audiapro.analysis.offline import BusinessHours, OfflineAnalyzer, OfflineSettings

# Monday 2 March 2026, 14:00 UTC = 09:00 in New York (EST).
MONDAY_9AM_NY = pd.Timestamp("2026-03-02 14:00", tz="UTC")
CUSTOMER = "+15550000001"
OTHER = "+15550000002"


def call(session: str, hours: float, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant": "acme",
        "session": session,
        "started_at": MONDAY_9AM_NY + pd.Timedelta(hours=hours),
        "direction": "inbound",
        "answered": True,
        "answered_by": "1001",
        "talk_s": 90,
        "duration_s": 100,
        "recording_count": 1,
        "src_e164": CUSTOMER,
    }
    row.update(overrides)
    return row


def flags_of(rows: list[dict[str, Any]], settings: OfflineSettings | None = None) -> pd.DataFrame:
    calls = pd.DataFrame(rows).set_index("session", drop=False)
    return OfflineAnalyzer(settings).flags(calls)


def test_outcomes_from_disposition_and_talk_time() -> None:
    flags = flags_of(
        [
            call("talked", 0),
            call("unanswered", 1, answered=False, talk_s=0, src_e164=OTHER),
            call("hung-up", 2, talk_s=0, src_e164=OTHER),
            call("vm-lastapp", 3, lastapp="VoiceMail", answered_by=None, src_e164=OTHER),
            call("vm-action", 4, action_type="VM", answered_by=None, src_e164=OTHER),
        ]
    )
    assert flags.loc["talked", "outcome"] is None  # needs a model
    assert flags.loc["unanswered", "outcome"] == Outcome.missed
    assert flags.loc["hung-up", "outcome"] == Outcome.missed
    assert flags.loc["vm-lastapp", "outcome"] == Outcome.voicemail
    assert flags.loc["vm-action", "outcome"] == Outcome.voicemail
    assert list(flags["missed"]) == [False, True, True, False, False]
    assert list(flags["voicemail"]) == [False, False, False, True, True]


def test_callback_needed_until_a_later_answered_call_with_the_number() -> None:
    rows = [
        call("missed-then-answered", 0, answered=False, talk_s=0),
        call("answered-later", 1),
        call("missed-nobody-called-back", 0, answered=False, talk_s=0, src_e164=OTHER),
        call("voicemail", 2, src_e164="+15550000003", lastapp="VoiceMail"),
        call("missed-then-dialled", 0, answered=False, talk_s=0, src_e164="+15550000004"),
        call("outbound-callback", 3, direction="outbound", src_e164=None, dst_e164="+15550000004"),
        call("outbound-missed", 0, direction="outbound", answered=False, talk_s=0, src_e164=None),
        call("missed-no-number", 0, answered=False, talk_s=0, src_e164=None),
    ]
    flags = flags_of(rows)
    assert flags["callback_needed"].to_dict() == {
        "missed-then-answered": False,
        "answered-later": False,
        "missed-nobody-called-back": True,
        "voicemail": True,  # reaching voicemail is not talking to someone
        "missed-then-dialled": False,
        "outbound-callback": False,
        "outbound-missed": False,  # only inbound calls ask for a callback
        "missed-no-number": False,  # nobody to call back
    }


def test_callback_window_limits_how_late_a_callback_may_come() -> None:
    rows = [call("missed", 0, answered=False, talk_s=0), call("answered-two-days-later", 48)]
    assert flags_of(rows).loc["missed", "callback_needed"] == False  # noqa: E712
    windowed = flags_of(rows, OfflineSettings(callback_window_hours=24))
    assert windowed.loc["missed", "callback_needed"] == True  # noqa: E712


def test_repeat_callers_within_the_window() -> None:
    rows = [
        call("first", 0),
        call("second", 24),
        call("third", 48),
        call("much-later", 24 * 12),  # more than 7 days after the previous calls
        call("other-number", 1, src_e164=OTHER),
        call("outbound", 2, direction="outbound"),
    ]
    flags = flags_of(rows)
    assert flags["prior_calls_from_number"].to_dict() == {
        "first": 0,
        "second": 1,
        "third": 2,
        "much-later": 0,
        "other-number": 0,
        "outbound": 0,
    }
    assert list(flags["repeat_caller"]) == [False, True, True, False, False, False]
    short_window = flags_of(rows, OfflineSettings(repeat_window_days=1.5))
    assert list(short_window["prior_calls_from_number"]) == [0, 1, 1, 0, 0, 0]


def test_after_hours_uses_each_tenants_local_hours() -> None:
    new_york = BusinessHours(timezone="America/New_York", holidays=frozenset({date(2026, 3, 3)}))
    settings = OfflineSettings(hours_by_tenant={"acme": new_york})
    rows = [
        call("mon-0900", 0),  # 09:00 local
        call("mon-0759", -1 / 60 - 1),  # 07:59 local
        call("mon-1800", 9),  # 18:00 local: closing time is exclusive
        call("tue-holiday", 24),
        call("sat-1000", 24 * 5 + 1),
        call("utc-tenant", 9, tenant="other"),  # 23:00 UTC for a tenant on default (UTC) hours
    ]
    flags = flags_of(rows, settings)
    assert flags["after_hours"].to_dict() == {
        "mon-0900": False,
        "mon-0759": True,
        "mon-1800": True,
        "tue-holiday": True,
        "sat-1000": True,
        "utc-tenant": True,
    }


def test_overnight_hours() -> None:
    night_shift = BusinessHours(opens=time(22), closes=time(6), weekdays=frozenset(range(7)))
    settings = OfflineSettings(default_hours=night_shift)
    # MONDAY_9AM_NY is 14:00 UTC.
    flags = flags_of([call("2300", 9), call("0300", 13), call("1400", 0)], settings)
    assert list(flags["after_hours"]) == [False, False, True]


def test_abandoned_calls_are_short_unanswered_inbound_calls() -> None:
    rows = [
        call("hung-up-early", 0, answered=False, talk_s=0, duration_s=8),
        call("rang-long", 1, answered=False, talk_s=0, duration_s=40),
        call("outbound", 2, direction="outbound", answered=False, talk_s=0, duration_s=5),
    ]
    assert list(flags_of(rows)["abandoned"]) == [True, False, False]


def test_analyze_returns_free_offline_records() -> None:
    calls = pd.DataFrame([call("a", 0), call("b", 1, answered=False, talk_s=0, src_e164=OTHER)])
    stamp = datetime(2026, 3, 3, tzinfo=UTC)
    records = OfflineAnalyzer().analyze(calls, created_at=stamp)
    assert [r.session for r in records] == ["a", "b"]
    for record in records:
        assert record.analyzer == "offline" and record.status == "succeeded"
        assert record.cost_usd == 0 and record.model is None and record.insights is None
        assert record.prompt_version == OFFLINE_RULES_VERSION and record.created_at == stamp
    assert records[1].flags is not None and records[1].flags.outcome is Outcome.missed
    assert records[1].flags.callback_needed


def test_settings_are_validated_and_columns_required() -> None:
    with pytest.raises(ValidationError):
        BusinessHours(timezone="Mars/Olympus_Mons")
    with pytest.raises(ValidationError):
        BusinessHours(weekdays=frozenset({7}))
    with pytest.raises(ValueError, match="src_e164"):
        OfflineAnalyzer().flags(pd.DataFrame([call("a", 0)]).drop(columns="src_e164"))
