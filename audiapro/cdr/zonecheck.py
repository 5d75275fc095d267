"""Is the tenant's time zone the PBX's? Checked against the PBX's own UTC epochs, before loading.

The PBX writes ``start`` as its local wall clock without an offset, so a tenant entered with the
wrong zone would store every leg hours off while every health signal stays green. But each leg also
carries true UTC epochs: recording names (``auto-<epoch>-...``, the leg's start to the second),
``session`` and ``uniqueid`` (creation of the session or channel, at or a little before the start; a
parked call keeps an older one). ``local start - epoch``, rounded to the nearest quarter hour (every
real UTC offset is a multiple of 15 minutes), is the PBX's UTC offset at that moment. The offset most
legs agree on is compared with what the tenant's zone says for the same instants.

Plain Python over a sample of raw legs: it runs on every poll window and costs well under a
millisecond per leg.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

#: Every UTC offset in use is a whole number of quarter hours.
OFFSET_QUANTUM_S: Final = 15 * 60
#: Legs looked at per check; agreement is decided by a majority, so a sample is enough.
SAMPLE_LEGS: Final = 400
#: Legs with a usable epoch needed before a verdict is given; fewer give no verdict (not a failure).
MIN_EVIDENCE: Final = 3
#: Share of the evidence that must agree on one offset for a verdict. Parked and transferred legs
#: keep an older uniqueid and disagree; they are a minority on every PBX we know of.
MIN_AGREEMENT: Final = 0.6

_WALL_FORMATS: Final = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
_RECORDING_EPOCH: Final = re.compile(r"auto-(\d{10})")
_PREFIX_EPOCH: Final = re.compile(r"^(\d{10})")


class ZoneMismatchError(ValueError):
    """The PBX's own epochs say its clock runs at another UTC offset than the tenant's zone.

    Attributes:
        seen: UTC offset the legs agree on.
        expected: UTC offset the tenant's zone gives for the same instants.
    """

    def __init__(self, message: str, *, seen: timedelta, expected: timedelta) -> None:
        super().__init__(message)
        self.seen = seen
        self.expected = expected


@dataclass(frozen=True)
class ZoneCheck:
    """Outcome of one check.

    Attributes:
        evidence: Legs that carried a usable epoch.
        agreeing: Legs whose offset is the most common one.
        seen: The most common offset (``None`` without evidence).
        expected: The tenant zone's offset at the most common leg's instant (``None`` likewise).
    """

    evidence: int
    agreeing: int
    seen: timedelta | None
    expected: timedelta | None

    @property
    def decided(self) -> bool:
        """Enough legs agree for a verdict."""
        return self.evidence >= MIN_EVIDENCE and self.agreeing >= MIN_AGREEMENT * self.evidence

    @property
    def mismatch(self) -> bool:
        """A verdict was reached and the offsets differ."""
        return self.decided and self.seen != self.expected


def format_offset(offset: timedelta) -> str:
    """``UTC−06:00`` style (with a real minus sign, as operators read it)."""
    minutes = round(offset.total_seconds() / 60)
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def check_zone(legs: Iterable[Mapping[str, str]], timezone: str) -> ZoneCheck:
    """Compare the offsets the legs' epochs imply with the tenant zone's offsets.

    Args:
        legs: Raw legs (``start`` plus ``recordfiles``/``session``/``uniqueid``); only the first
            :data:`SAMPLE_LEGS` with an epoch are read.
        timezone: The tenant's IANA zone.

    Returns:
        The check; see :attr:`ZoneCheck.mismatch`.
    """
    zone = ZoneInfo(timezone)
    differences: Counter[tuple[int, int]] = Counter()
    evidence = 0
    for leg in legs:
        observed = _observed(leg)
        if observed is None:
            continue
        wall, epoch = observed
        seen = _quantize(wall - epoch.replace(tzinfo=None))
        expected = epoch.astimezone(zone).utcoffset() or timedelta(0)
        # Compare with the zone at this leg's own instant: a window across a DST change is fine.
        differences[(int(seen.total_seconds()), int(expected.total_seconds()))] += 1
        evidence += 1
        if evidence >= SAMPLE_LEGS:
            break
    if not differences:
        return ZoneCheck(0, 0, None, None)
    (seen_s, expected_s), agreeing = _mode(differences)
    return ZoneCheck(evidence, agreeing, timedelta(seconds=seen_s), timedelta(seconds=expected_s))


def verify_zone(legs: Iterable[Mapping[str, str]], timezone: str, *, tenant: str) -> ZoneCheck:
    """:func:`check_zone`, raising when the PBX clearly runs at another offset.

    Raises:
        ZoneMismatchError: One line naming both offsets and how to fix the tenant.
    """
    result = check_zone(legs, timezone)
    if result.mismatch:
        assert result.seen is not None and result.expected is not None  # decided implies both
        raise ZoneMismatchError(
            f"PBX clock is {format_offset(result.seen)}, tenant zone {timezone} says "
            f"{format_offset(result.expected)} ({result.agreeing} of {result.evidence} legs agree): "
            f"nothing loaded; set the PBX's zone with `audiapro tenant set {tenant} --timezone <IANA zone>`",
            seen=result.seen,
            expected=result.expected,
        )
    return result


def _mode(differences: Counter[tuple[int, int]]) -> tuple[tuple[int, int], int]:
    """The most common (seen - expected) difference, reported with a representative pair.

    Legs on both sides of a DST change have different offsets but the same difference, so the
    majority is taken over differences.
    """
    by_difference: Counter[int] = Counter()
    for (seen, expected), count in differences.items():
        by_difference[seen - expected] += count
    difference, agreeing = by_difference.most_common(1)[0]
    pair = max((p for p in differences if p[0] - p[1] == difference), key=lambda p: differences[p])
    return pair, agreeing


def _observed(leg: Mapping[str, str]) -> tuple[datetime, datetime] | None:
    """``(local start, UTC epoch)`` of a leg, the epoch from the most exact source it has."""
    wall = _wall_clock(leg.get("start", ""))
    if wall is None:
        return None
    for field, pattern in (("recordfiles", _RECORDING_EPOCH), ("session", _PREFIX_EPOCH),
                           ("uniqueid", _PREFIX_EPOCH)):  # fmt: skip
        match = pattern.search(leg.get(field, "") or "")
        if match:
            return wall, datetime.fromtimestamp(int(match.group(1)), UTC)
    return None


def _wall_clock(text: str) -> datetime | None:
    text = (text or "").strip()
    for fmt in _WALL_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _quantize(offset: timedelta) -> timedelta:
    """Round to the nearest quarter hour (channels are created up to minutes before the start)."""
    return timedelta(seconds=round(offset.total_seconds() / OFFSET_QUANTUM_S) * OFFSET_QUANTUM_S)
