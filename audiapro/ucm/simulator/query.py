"""cdrapi request parameters: validation, filters, grouping and paging.

The PBX answers any malformed or unknown parameter with an *empty* result instead of an error
(docs/ucm-protocol.md, "cdrapi"); :class:`InvalidQuery` models that and the caller turns it into
``{"cdr_root": []}``.
Time windows are compared against the legs' local wall-clock start/end, as the PBX's database does,
so a window inside a DST fall-back hour matches both occurrences of that hour.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

from audiapro.ucm.simulator.config import MAX_NUM_RECORDS, OrderBy, PageUnit
from audiapro.ucm.simulator.junk import Entry, JunkItem, entry_parts
from audiapro.ucm.simulator.legs import Leg, wall_seconds

#: Parameter names cdrapi understands (``tineFilterType`` is the official guide's own misspelling;
#: ``AnsweredBy`` is how one client spells ``answeredby``). Anything else empties the result.
KNOWN_PARAMS = frozenset(
    {
        "action", "cookie", "format", "numRecords", "offset", "caller", "callee", "answeredby",
        "AnsweredBy", "startTime", "endTime", "timeFilterType", "tineFilterType", "minDur", "maxDur",
        "callerName",
    }
)  # fmt: skip
_PATTERN_CHARS = re.compile(r"^[0-9A-Za-z+*#@_.,\-]+$")
_DIGITS = re.compile(r"^\d+$")
_TIME = re.compile(
    r"^(?:(\d{4})-(\d{2})-(\d{2})T)?(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:\d{2})?$"
)
_EPOCH_TIME = re.compile(r"^\d{10}$")
#: Date assumed by time-only values (UCM CDR API guide).
_DEFAULT_DATE = (2000, 1, 1)
_WALL_ORIGIN = datetime(1970, 1, 1)

Matcher = Callable[[str], bool]


class InvalidQuery(ValueError):
    """The request would make the real PBX return an empty ``cdr_root``."""


@dataclass(frozen=True)
class CdrQuery:
    """A validated cdrapi request.

    Attributes:
        num_records: Page size (already clamped to 1000).
        offset: Items (or legs) to skip.
        caller: Filter on ``src``.
        callee: Filter on ``dst``.
        answered_by: Filter on ``dstanswer``.
        caller_name: Case-insensitive substring of ``caller_name``.
        window: Inclusive (low, high) local wall-clock bounds in seconds, ``None`` = open end.
        by_end: The window applies to the leg end instead of its start.
        min_dur: Minimum billsec.
        max_dur: Maximum billsec.
        fmt: ``"json"`` or ``"csv"``.
    """

    num_records: int = MAX_NUM_RECORDS
    offset: int = 0
    caller: Matcher | None = None
    callee: Matcher | None = None
    answered_by: Matcher | None = None
    caller_name: str | None = None
    window: tuple[float | None, float | None] = (None, None)
    by_end: bool = False
    min_dur: int | None = None
    max_dur: int | None = None
    fmt: Literal["json", "csv"] = "json"

    def matches(self, leg: Leg, end_wall: int) -> bool:
        """Whether ``leg`` passes every filter.

        Args:
            leg: The leg.
            end_wall: The leg end as wall-clock seconds (only read when filtering on end time).
        """
        low, high = self.window
        at = end_wall if self.by_end else leg.start_wall
        if (low is not None and at < low) or (high is not None and at > high):
            return False
        billsec = leg.billsec
        if (self.min_dur is not None and billsec < self.min_dur) or (
            self.max_dur is not None and billsec > self.max_dur
        ):
            return False
        if self.caller is not None and not self.caller(leg.src):
            return False
        if self.callee is not None and not self.callee(leg.dst):
            return False
        if self.answered_by is not None and not self.answered_by(leg.dstanswer):
            return False
        return self.caller_name is None or self.caller_name in leg.caller_name.lower()


def _text(value: Any) -> str:
    """Accept strings and integers (clients send numbers both ways); anything else is invalid."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidQuery(f"unsupported value {value!r}")
    return str(value)


def _count(value: Any) -> int:
    text = _text(value).strip()
    if not _DIGITS.match(text):
        raise InvalidQuery(f"not a non-negative integer: {value!r}")
    return int(text)


def compile_pattern(value: str) -> Matcher:
    """Compile a caller/callee/answeredby pattern (UCM CDR API guide syntax).

    Comma-separated alternatives; ``@`` = any run of characters, ``_`` = exactly one character (in
    such a pattern ``-`` is literal); otherwise ``a-b`` is a numeric range (``0-0`` matches empty and
    non-numeric values) and anything else must match exactly.

    Raises:
        InvalidQuery: Empty values, empty alternatives, odd characters or several hyphens.
    """
    if not _PATTERN_CHARS.match(value):
        raise InvalidQuery(f"bad pattern {value!r}")
    matchers: list[Matcher] = []
    for part in value.split(","):
        if not part:
            raise InvalidQuery(f"empty alternative in {value!r}")
        if "@" in part or "_" in part:
            regex = re.compile("".join(".*" if c == "@" else "." if c == "_" else re.escape(c) for c in part))
            matchers.append(_wildcard(regex))
        elif part.count("-") == 1:
            low, high = part.split("-")
            if not (_DIGITS.match(low) and _DIGITS.match(high)):
                raise InvalidQuery(f"bad range {part!r}")
            if int(low) == 0 and int(high) == 0:
                matchers.append(_non_numeric)
            else:
                matchers.append(_numeric_range(int(low), int(high)))
        elif "-" in part:
            raise InvalidQuery(f"several hyphens in {part!r}")
        else:
            matchers.append(part.__eq__)
    return lambda v: any(m(v) for m in matchers)


def _wildcard(regex: re.Pattern[str]) -> Matcher:
    return lambda v: regex.fullmatch(v) is not None


def _non_numeric(value: str) -> bool:
    return not value.isdigit()


def _numeric_range(low: int, high: int) -> Matcher:
    return lambda v: v.isdigit() and low <= int(v) <= high


def parse_time(value: Any, zone: ZoneInfo, now: float) -> float | None:
    """Parse ``startTime``/``endTime`` into local wall-clock seconds (``None`` = open end).

    Accepted (UCM CDR API guide): ``YYYY-MM-DDTHH:MM[:SS[.SSS]]``, ``HH:MM[:SS[.SSS]]`` (date
    2000-01-01), ``now``, a 10-digit Unix epoch, each optionally with a W3C offset (``Z``, ``+03:00``).
    Times without offset are the PBX's local wall clock; others are converted to it.
    """
    text = _text(value).strip()
    if text == "":
        return None
    if text.lower() == "now":
        return float(wall_seconds(int(now), zone))
    if _EPOCH_TIME.match(text):
        return float(wall_seconds(int(text), zone))
    found = _TIME.match(text)
    if not found:
        raise InvalidQuery(f"bad time {text!r}")
    year, month, day, hour, minute, second, millis, offset = found.groups()
    y, mo, d = (int(year), int(month), int(day)) if year else _DEFAULT_DATE
    try:
        micros = int((millis or "0").ljust(3, "0")) * 1000
        naive = datetime(y, mo, d, int(hour), int(minute), int(second or 0), micros)
    except ValueError as exc:
        raise InvalidQuery(f"bad time {text!r}") from exc
    if offset is None:
        return (naive - _WALL_ORIGIN).total_seconds()
    if offset == "Z":
        tz: timezone = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    instant = naive.replace(tzinfo=tz).timestamp()
    whole = int(instant // 1)
    return wall_seconds(whole, zone) + (instant - whole)


def parse_query(params: Mapping[str, Any], zone: ZoneInfo, now: float, *, clamp: bool) -> CdrQuery:
    """Validate a cdrapi ``request`` object.

    Args:
        params: The request object (including ``action`` and ``cookie``).
        zone: PBX time zone.
        now: Current UTC epoch (for ``now``).
        clamp: Clamp ``numRecords`` above 1000 instead of rejecting it.

    Raises:
        InvalidQuery: Whenever the real PBX would silently return nothing.
    """
    unknown = set(params) - KNOWN_PARAMS
    if unknown:
        raise InvalidQuery(f"unknown parameters {sorted(unknown)}")
    fields: dict[str, Any] = {}
    fmt = _text(params.get("format", "json")).lower()
    if fmt not in ("json", "csv"):
        raise InvalidQuery(f"unsupported format {fmt!r}")
    fields["fmt"] = fmt
    if "numRecords" in params:
        num = _count(params["numRecords"])
        if num > MAX_NUM_RECORDS and not clamp:
            raise InvalidQuery("numRecords above 1000")
        fields["num_records"] = min(num, MAX_NUM_RECORDS)
    if "offset" in params:
        fields["offset"] = _count(params["offset"])
    for name, attr in (("caller", "caller"), ("callee", "callee"), ("answeredby", "answered_by")):
        raw = params.get(name, params.get("AnsweredBy") if name == "answeredby" else None)
        if raw is not None:
            fields[attr] = compile_pattern(_text(raw))
    if "callerName" in params:
        fields["caller_name"] = _text(params["callerName"]).lower()
    low = parse_time(params["startTime"], zone, now) if "startTime" in params else None
    high = parse_time(params["endTime"], zone, now) if "endTime" in params else None
    fields["window"] = (low, high)
    kind = _text(params.get("timeFilterType", params.get("tineFilterType", "Start"))).lower()
    if kind not in ("start", "end"):
        raise InvalidQuery(f"bad timeFilterType {kind!r}")
    fields["by_end"] = kind == "end"
    for name, attr in (("minDur", "min_dur"), ("maxDur", "max_dur")):
        if name in params:
            fields[attr] = _count(params[name])
    return CdrQuery(**fields)


def group_items(legs: list[Leg], order_by: OrderBy) -> list[list[Leg]]:
    """Group matching legs into cdr_root items (one per session) and order them.

    Args:
        legs: Matching, visible legs (any order).
        order_by: ``"start"``: by earliest local start, then AcctId; ``"acctid"``: by lowest AcctId.

    Returns:
        Items, each a list of legs in AcctId order (one leg = a flat item).
    """
    by_session: dict[str, list[Leg]] = {}
    for leg in sorted(legs, key=lambda leg: leg.acct):
        by_session.setdefault(leg.session, []).append(leg)
    items = list(by_session.values())
    if order_by == "start":
        items.sort(key=lambda item: (min(leg.start_wall for leg in item), item[0].acct))
    else:
        items.sort(key=lambda item: item[0].acct)
    return items


def page(items: Sequence[Entry], offset: int, count: int, unit: PageUnit) -> list[Entry]:
    """Cut one page.

    With ``unit="items"`` offset and count are top-level items. With ``unit="legs"`` they count legs
    in item order, so a call can be split across two pages (each part then forms its own item); a
    junk item (see :mod:`audiapro.ucm.simulator.junk`) takes one slot either way.
    """
    if unit == "items":
        return list(items[offset : offset + count])
    flat = [part for entry in items for part in entry_parts(entry)][offset : offset + count]
    out: list[Entry] = []
    for part in flat:
        last = out[-1] if out else None
        if isinstance(part, Leg) and isinstance(last, list) and last[0].session == part.session:
            last.append(part)
        else:
            out.append(part if isinstance(part, JunkItem) else [part])
    return out


def size_of(entries: Sequence[Entry], unit: PageUnit) -> int:
    """Slots ``entries`` take in ``unit``."""
    if unit == "items":
        return len(entries)
    return sum(1 for entry in entries for _ in entry_parts(entry))


def last_page_start(total: int, count: int) -> int:
    """Offset of the last non-empty page a client stepping by ``count`` from 0 would get."""
    return (total - 1) // count * count
