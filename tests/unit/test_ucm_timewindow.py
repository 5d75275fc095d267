"""UTC windows -> PBX-local cdrapi strings, including DST transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from audiapro.ucm.errors import UcmConfigError, UcmResponseError
from audiapro.ucm.timewindow import (
    LOCAL_QUERY_FORMAT,
    LocalWindow,
    is_local_query_time,
    local_window,
    parse_system_time,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def covers(window: LocalWindow, start: datetime, end: datetime, tz: str) -> bool:
    """Every whole-second instant of [start, end] has a wall clock inside the local window."""
    lo = datetime.strptime(window.start, LOCAL_QUERY_FORMAT)
    hi = datetime.strptime(window.end, LOCAL_QUERY_FORMAT)
    zone = ZoneInfo(tz)
    t = start
    while t <= end:
        wall = t.astimezone(zone).replace(tzinfo=None, microsecond=0)
        if not lo <= wall <= hi:
            return False
        t += timedelta(seconds=30)
    return True


def test_plain_window() -> None:
    window = local_window(utc(2026, 3, 1, 14), utc(2026, 3, 1, 15), "America/New_York")
    assert window == LocalWindow("2026-03-01T09:00:00", "2026-03-01T10:00:00")


def test_accepts_other_aware_offsets_and_zoneinfo() -> None:
    start = datetime(2026, 3, 1, 16, tzinfo=timezone(timedelta(hours=2)))
    window = local_window(start, start + timedelta(hours=1), ZoneInfo("UTC"))
    assert window == LocalWindow("2026-03-01T14:00:00", "2026-03-01T15:00:00")


NEW_YORK = "America/New_York"


@pytest.mark.parametrize(
    ("start", "end", "tz", "expected"),
    [
        # 2026-11-01 06:00Z: 02:00 EDT -> 01:00 EST; 05:30Z = 01:30 EDT, 06:30Z = 01:30 EST.
        pytest.param(
            utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30), NEW_YORK,
            ("2026-11-01T01:00:00", "2026-11-01T01:59:59"), id="new-york-fall-back-both-repeated-hours",
        ),
        pytest.param(
            utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 10), NEW_YORK,
            ("2026-11-01T01:00:00", "2026-11-01T01:10:00"), id="new-york-fall-back-only-second-hour",
        ),
        pytest.param(
            utc(2026, 11, 1, 5, 50), utc(2026, 11, 1, 6, 10), NEW_YORK,
            ("2026-11-01T01:00:00", "2026-11-01T01:59:59"), id="new-york-fall-back-ending-in-second-hour",
        ),
        # 2026-10-25 01:00Z: 02:00 BST -> 01:00 GMT.
        pytest.param(
            utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 1, 45), "Europe/London",
            ("2026-10-25T01:00:00", "2026-10-25T01:59:59"), id="london-fall-back",
        ),
        pytest.param(
            utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), NEW_YORK,
            ("2026-11-01T00:00:00", "2026-11-02T00:00:00"), id="whole-day-across-fall-back",
        ),
        # 2026-03-08 07:00Z: 02:00 EST -> 03:00 EDT; the skipped hour has no calls, nothing widened.
        pytest.param(
            utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30), NEW_YORK,
            ("2026-03-08T01:30:00", "2026-03-08T03:30:00"), id="spring-forward-not-widened",
        ),
    ],
)  # fmt: skip
def test_windows_across_dst_changes_cover_every_instant(
    start: datetime, end: datetime, tz: str, expected: tuple[str, str]
) -> None:
    window = local_window(start, end, tz)
    assert window == LocalWindow(*expected)
    assert covers(window, start, end, tz)


def test_sub_second_bounds_rounded_outwards() -> None:
    window = local_window(utc(2026, 6, 1, 12, 0, 0, 999_999), utc(2026, 6, 1, 12, 5, 0, 1), "UTC")
    assert window == LocalWindow("2026-06-01T12:00:00", "2026-06-01T12:05:01")


def test_invalid_inputs() -> None:
    with pytest.raises(UcmConfigError):
        local_window(datetime(2026, 1, 1), utc(2026, 1, 2), "UTC")
    with pytest.raises(UcmConfigError):
        local_window(utc(2026, 1, 2), utc(2026, 1, 1), "UTC")
    with pytest.raises(UcmConfigError):
        local_window(utc(2026, 1, 1), utc(2026, 1, 2), "Not/AZone")


def test_is_local_query_time() -> None:
    assert is_local_query_time("2026-02-01T00:00:00")
    for bad in ("2026-02-01 00:00:00", "2026-02-30T00:00:00", "2026-02-01T00:00", "now", ""):
        assert not is_local_query_time(bad)


@pytest.mark.parametrize(
    ("text", "expected", "offset"),
    [
        ("23-11-2022 14:37:26 UTC+00:00", datetime(2022, 11, 23, 14, 37, 26, tzinfo=UTC), timedelta(0)),
        ("15-01-2026 12:00:00 UTC-06:00", datetime(2026, 1, 15, 18, 0, tzinfo=UTC), timedelta(hours=-6)),
        ("2026-01-15 12:00:00 UTC-06:00", datetime(2026, 1, 15, 18, 0, tzinfo=UTC), timedelta(hours=-6)),
        ("01-07-2026 20:30:00 UTC+05:30", datetime(2026, 7, 1, 15, 0, tzinfo=UTC), timedelta(hours=5.5)),
        ("01-07-2026 20:30:00 GMT+0100", datetime(2026, 7, 1, 19, 30, tzinfo=UTC), timedelta(hours=1)),
    ],
)
def test_parse_system_time(text: str, expected: datetime, offset: timedelta) -> None:
    value = parse_system_time(text)
    assert value == expected and value.utcoffset() == offset


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("23-11-2022 14:37:26", "offset is unknown"),
        ("2022-11-23 14:37:26", "offset is unknown"),
        ("31-02-2026 10:00:00 UTC+00:00", "not a valid date"),
        ("yesterday", "is not"),
        (None, "is not"),
        ("23-11-2022 14:37:26 UTC+99:00", "impossible UTC offset"),
    ],
)
def test_parse_system_time_rejects(text: object, needle: str) -> None:
    with pytest.raises(UcmResponseError, match=needle):
        parse_system_time(text)
