"""UTC query windows -> PBX-local ``startTime``/``endTime`` strings for cdrapi.

The PBX stores and filters CDR times as its own local wall clock without an offset, so a UTC window
has to be translated into the tenant's time zone. Around a DST fall-back the same wall-clock hour
occurs twice; the local window is then widened to the full span of wall-clock times that instants of
the UTC window can have, so no leg of the repeated hour is missed. Over-fetching is harmless because
loads are idempotent and de-duplicated by AcctId.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from audiapro.ucm.errors import UcmConfigError, UcmResponseError

#: Format cdrapi accepts for startTime/endTime; without the ``T`` the PBX silently returns nothing.
LOCAL_QUERY_FORMAT = "%Y-%m-%dT%H:%M:%S"
LOCAL_QUERY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")

#: Spacing of UTC-offset probes inside a window. Real time zones keep an offset for months, so an
#: hourly probe cannot step over a whole offset period; the exact switch is then found by bisection.
OFFSET_PROBE_STEP = timedelta(hours=1)
_RESOLUTION = timedelta(seconds=1)

#: getSystemStatus ``system-time``: ``23-11-2022 14:37:26 UTC+00:00`` (DD-MM-YYYY, PBX local time and
#: its UTC offset); ``YYYY-MM-DD`` dates, a ``T`` separator, ``GMT`` and ``+HHMM`` / ``+H`` offsets are
#: tolerated too.
_SYSTEM_TIME = re.compile(
    r"^(?:(?P<d>\d{1,2})-(?P<m>\d{1,2})-(?P<y>\d{4})|(?P<y2>\d{4})-(?P<m2>\d{1,2})-(?P<d2>\d{1,2}))"
    r"[ T](?P<time>\d{1,2}:\d{2}:\d{2})"
    r"(?:\s*(?P<zone>UTC|GMT|Z)?\s*(?:(?P<sign>[+-])(?P<oh>\d{1,2})(?::?(?P<om>\d{2}))?)?)?\s*$",
    re.IGNORECASE,
)


class LocalWindow(NamedTuple):
    """A cdrapi time window in PBX-local wall-clock time (both ends inclusive, as the PBX treats them)."""

    start: str
    end: str


def resolve_timezone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise :class:`UcmConfigError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UcmConfigError(f"unknown IANA time zone {name!r}") from exc


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise UcmConfigError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """Naive local wall-clock time of a UTC instant."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta | None:
    return instant.astimezone(tz).utcoffset()


def _first_after_switch(lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime:
    """First whole second in (lo, hi] whose UTC offset differs from ``lo``'s.

    Offsets switch on whole seconds, so bisection over integer epoch seconds is exact.
    """
    before = _offset(lo, tz)
    lo_s, hi_s = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset(datetime.fromtimestamp(mid, UTC), tz) == before:
            lo_s = mid
        else:
            hi_s = mid
    return datetime.fromtimestamp(hi_s, UTC)


def local_window(start_utc: datetime, end_utc: datetime, tz: ZoneInfo | str) -> LocalWindow:
    """Translate a UTC window into the PBX-local strings that cover it completely.

    The result spans the minimum to the maximum wall-clock time of any instant in
    ``[start_utc, end_utc]``. Normally that is just the two ends converted; across a DST fall-back
    the repeated hour makes the span wider than the converted ends.

    Args:
        start_utc: Window start, timezone-aware.
        end_utc: Window end, timezone-aware, not before ``start_utc``.
        tz: The PBX's IANA time zone (name or ZoneInfo).

    Returns:
        ``LocalWindow(start, end)`` formatted ``YYYY-MM-DDTHH:MM:SS``; fractions of a second are
        floored at the start and rounded up at the end.

    Raises:
        UcmConfigError: Naive datetimes, an inverted window or an unknown zone.
    """
    zone = resolve_timezone(tz) if isinstance(tz, str) else tz
    start = _require_aware(start_utc, "start_utc")
    end = _require_aware(end_utc, "end_utc")
    if end < start:
        raise UcmConfigError(f"window end {end.isoformat()} is before start {start.isoformat()}")

    lowest = _wall(start, zone)
    highest = _wall(end, zone)
    probe = start
    while probe < end:
        nxt = min(probe + OFFSET_PROBE_STEP, end)
        if _offset(probe, zone) != _offset(nxt, zone):
            first_new = _first_after_switch(probe, nxt, zone)
            last_old = first_new - _RESOLUTION
            # Wall clock just before the switch can exceed the end's wall clock (fall-back), and
            # just after it can be below the start's (also fall-back); spring-forward changes nothing.
            highest = max(highest, _wall(last_old, zone))
            lowest = min(lowest, _wall(first_new, zone))
        probe = nxt

    if highest.microsecond:
        highest = highest.replace(microsecond=0) + _RESOLUTION
    lowest = lowest.replace(microsecond=0)
    return LocalWindow(lowest.strftime(LOCAL_QUERY_FORMAT), highest.strftime(LOCAL_QUERY_FORMAT))


def is_local_query_time(value: str) -> bool:
    """True when ``value`` is a well-formed ``YYYY-MM-DDTHH:MM:SS`` cdrapi time."""
    if not LOCAL_QUERY_PATTERN.match(value):
        return False
    try:
        datetime.strptime(value, LOCAL_QUERY_FORMAT)
    except ValueError:
        return False
    return True


def _offset_of(found: re.Match[str]) -> timezone | None:
    if found.group("sign"):
        minutes = int(found.group("oh")) * 60 + int(found.group("om") or 0)
        sign = -1 if found.group("sign") == "-" else 1
        return timezone(sign * timedelta(minutes=minutes))
    return UTC if found.group("zone") else None


def parse_system_time(value: Any) -> datetime:
    """Read getSystemStatus ``system-time`` into an aware datetime in the PBX's own fixed offset.

    Args:
        value: e.g. ``"23-11-2022 14:37:26 UTC+00:00"`` or ``"2022-11-23 08:37:26 UTC-06:00"``.

    Raises:
        UcmResponseError: Not a string of that shape, an impossible date, or no UTC offset (then the
            PBX's offset is unknown and the time cannot be placed).
    """
    text = value.strip() if isinstance(value, str) else ""
    found = _SYSTEM_TIME.match(text)
    if not found:
        raise UcmResponseError(
            f"getSystemStatus system-time {text[:40]!r} is not 'DD-MM-YYYY HH:MM:SS UTC+HH:MM'"
        )
    try:
        offset = _offset_of(found)
    except ValueError:  # an offset of a day or more
        raise UcmResponseError(f"getSystemStatus system-time {text!r} has an impossible UTC offset") from None
    if offset is None:
        raise UcmResponseError(
            f"getSystemStatus system-time {text!r} carries no UTC offset: the PBX's offset is unknown"
        )
    day, month, year = (found.group("d") or found.group("d2"), found.group("m") or found.group("m2"),
                        found.group("y") or found.group("y2"))  # fmt: skip
    try:
        hour, minute, second = (int(part) for part in found.group("time").split(":"))
        return datetime(int(year), int(month), int(day), hour, minute, second, tzinfo=offset)
    except ValueError:
        raise UcmResponseError(f"getSystemStatus system-time {text!r} is not a valid date and time") from None
