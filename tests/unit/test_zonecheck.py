"""The tenant's zone checked against the PBX's own epochs (simulated PBXs in several zones)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from audiapro.cdr.zonecheck import (
    MIN_EVIDENCE,
    ZoneMismatchError,
    check_zone,
    format_offset,
    verify_zone,
)
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator


def legs_of(tz: str, day: date = date(2026, 1, 13), days: int = 1) -> list[dict[str, str]]:
    return UcmSimulator(SimulatorConfig(seed=5, calls_per_day=80, start=day, days=days, tz=tz)).ground_truth()


def test_the_right_zone_passes() -> None:
    result = verify_zone(legs_of("America/Chicago"), "America/Chicago", tenant="acme")
    assert result.decided and not result.mismatch
    assert result.seen == timedelta(hours=-6)


def test_a_chicago_pbx_entered_as_utc_is_refused_naming_both_offsets() -> None:
    with pytest.raises(ZoneMismatchError) as caught:
        verify_zone(legs_of("America/Chicago"), "UTC", tenant="acme")
    message = str(caught.value)
    assert "PBX clock is UTC−06:00, tenant zone UTC says UTC+00:00" in message
    assert "audiapro tenant set acme --timezone" in message
    assert "\n" not in message


def test_a_neighbouring_zone_with_another_offset_is_refused() -> None:
    # New York and Chicago differ by one hour all year: close is not good enough.
    assert check_zone(legs_of("America/New_York"), "America/Chicago").mismatch


def test_a_window_across_the_dst_change_agrees_with_its_own_zone() -> None:
    legs = legs_of("America/New_York", date(2026, 3, 7), days=3)  # DST starts 2026-03-08
    result = check_zone(legs, "America/New_York")
    assert result.decided and not result.mismatch
    assert check_zone(legs, "America/Chicago").mismatch


def test_a_half_hour_zone_is_told_apart() -> None:
    assert not check_zone(legs_of("Asia/Kolkata"), "Asia/Kolkata").mismatch
    assert check_zone(legs_of("Asia/Kolkata"), "Asia/Dubai").mismatch
    assert format_offset(timedelta(hours=5, minutes=30)) == "UTC+05:30"


def test_too_little_evidence_gives_no_verdict() -> None:
    legs = legs_of("America/Chicago")[: MIN_EVIDENCE - 1]
    result = verify_zone(legs, "UTC", tenant="acme")  # no exception: not enough to decide
    assert not result.decided
    assert not check_zone([{"start": "2026-01-13 10:00:00", "uniqueid": "x"}], "UTC").decided


def test_a_minority_of_parked_legs_with_old_epochs_does_not_decide() -> None:
    legs = legs_of("Europe/London")
    for leg in legs[: len(legs) // 4]:  # a quarter of the legs carry an epoch an hour too old
        leg["recordfiles"] = ""
        leg["session"] = ""
        leg["uniqueid"] = str(int(leg["uniqueid"].split(".")[0]) - 3600) + ".1"
    assert not check_zone(legs, "Europe/London").mismatch
