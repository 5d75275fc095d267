"""Pure parsing of cdrapi replies and recording file lists.

cdrapi returns ``{"cdr_root": [...]}`` where each item is either one flat leg or a grouped call
(``main_cdr`` + ``sub_cdr_1`` ... ``sub_cdr_N``). ``main_cdr`` is a synthetic summary the PBX builds
for display (empty AcctId and disposition), so it is never a leg. Every leg becomes a
``dict[str, str]`` keyed by the PBX's own field names (see docs/contracts.md "Raw leg").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audiapro.ucm.errors import UcmPageCapExceeded, UcmResponseError

#: Keys that may hold the item list: current firmware, a defensive wrapped variant, 2013 firmware.
CDR_LIST_KEYS = ("cdr_root", "cdr")
MAIN_CDR_KEY = "main_cdr"
#: Item marker present on every cdr_root element (always "" in real captures); not a leg field.
ITEM_MARKER_KEY = "cdr"
SUB_CDR_PATTERN = re.compile(r"^sub_cdr_(\d+)$")
#: Separator of the ``recordfiles`` field (each name is ``@``-terminated) and of getRecordInfosByCall.
RECORDFILES_SEPARATOR = "@"
RECORD_INFOS_SEPARATOR = ","
#: Leg fields that identify a page's content when checking whether the PBX repeated a page.
SIGNATURE_FIELDS = ("AcctId", "uniqueid", "session", "start")

RawLeg = dict[str, str]


def json_safe(value: Any) -> Any:
    """``value`` unchanged when it is JSON-serialisable (anything parsed from JSON is), else its repr."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


@dataclass(frozen=True)
class MalformedItem:
    """Something in a cdrapi page that is not a leg object, with what a quarantine row needs.

    Attributes:
        position: 0-based index of the top-level item within its page.
        path: Where inside the item, e.g. ``"sub_cdr_2"`` or ``"sub_cdr_2[1]"`` (empty: the item itself).
        reason: Why it was rejected, one line.
        value: The offending value as received (JSON-serialisable: anything else becomes its repr).
        offset: The ``offset`` the page was requested with (0 outside paging, e.g. file imports).
    """

    position: int
    path: str
    reason: str
    value: Any
    offset: int = 0

    def __post_init__(self) -> None:
        """Keep ``value`` JSON-serialisable so a caller can store it as is."""
        object.__setattr__(self, "value", json_safe(self.value))

    @property
    def record_number(self) -> int:
        """1-based position of the item in the whole query result: ``offset + position + 1``.

        Exact when the PBX counts ``offset`` in items (the default); with leg counting it is the page's
        leg offset plus the item index, still unique and ordered within one window.
        """
        return self.offset + self.position + 1

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description for a quarantine row."""
        return {
            "offset": self.offset,
            "position": self.position,
            "record_number": self.record_number,
            "path": self.path,
            "reason": self.reason,
            "value": self.value,
        }


@dataclass(frozen=True)
class CdrPage:
    """One cdrapi reply.

    Attributes:
        offset: The ``offset`` the page was requested with.
        legs: The page's legs in PBX order (grouped calls flattened, ``main_cdr`` dropped).
        item_count: Number of top-level ``cdr_root`` items (flat legs + grouped calls + malformed).
        malformed: Items or sub-entries that could not be read as legs.
    """

    offset: int
    legs: list[RawLeg]
    item_count: int
    malformed: list[MalformedItem] = field(default_factory=list)

    @property
    def leg_count(self) -> int:
        """Number of legs, counting malformed entries too (they occupied a slot on the PBX side)."""
        return len(self.legs) + len(self.malformed)


def coerce_value(value: Any) -> str:
    """Render one field value as the string the PBX would normally have sent.

    Args:
        value: A JSON value.

    Returns:
        ``""`` for None, ``"true"``/``"false"`` for booleans, compact JSON for nested structures,
        ``str(value)`` otherwise.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return str(value)


def coerce_leg(obj: Mapping[Any, Any]) -> RawLeg:
    """Turn a leg object into a raw leg: string keys and values, unknown keys kept."""
    return {str(key): coerce_value(val) for key, val in obj.items()}


def extract_cdr_items(payload: Mapping[str, Any]) -> list[Any] | None:
    """Find the item list in a cdrapi reply.

    Args:
        payload: The decoded JSON reply.

    Returns:
        The items, or None when the reply holds no item list (then it is a status/error object).

    Raises:
        UcmResponseError: The list key exists but holds something that is not a list of items.
    """
    containers: list[Mapping[str, Any]] = [payload]
    wrapped = payload.get("response")
    if isinstance(wrapped, Mapping):
        containers.append(wrapped)
    for container in containers:
        for key in CDR_LIST_KEYS:
            if key not in container:
                continue
            items = container[key]
            if isinstance(items, list):
                return items
            # Converters sometimes collapse a one-element list into the element itself, and an
            # empty result may come back as "" or null.
            if isinstance(items, Mapping):
                return [items]
            if items is None or items == "":
                return []
            raise UcmResponseError(f"cdrapi reply key {key!r} holds {type(items).__name__}, not a list")
    return None


def _sub_cdr_entries(item: Mapping[str, Any]) -> list[tuple[int, str, Any]]:
    """``sub_cdr_N`` entries of a grouped item, ordered by N numerically (sub_cdr_10 after sub_cdr_9)."""
    found = []
    for key, value in item.items():
        match = SUB_CDR_PATTERN.match(str(key))
        if match:
            found.append((int(match.group(1)), str(key), value))
    found.sort(key=lambda entry: entry[0])
    return found


def is_grouped(item: Mapping[str, Any]) -> bool:
    """True when ``item`` is a grouped call rather than one flat leg."""
    return MAIN_CDR_KEY in item or any(SUB_CDR_PATTERN.match(str(key)) for key in item)


def parse_cdr_items(items: Sequence[Any], *, offset: int = 0) -> CdrPage:
    """Flatten cdrapi items into legs.

    Every item yields at least one leg or one :class:`MalformedItem`, so nothing the PBX sent is lost
    silently: a non-object item, a ``sub_cdr_N`` that is not an object, and a grouped item with no
    leg at all (``main_cdr`` only, or empty ``sub_cdr_N`` lists) are each reported.

    Args:
        items: The ``cdr_root`` list.
        offset: The offset the page was requested with (carried into the page and its malformed items).

    Returns:
        A :class:`CdrPage`.
    """
    legs: list[RawLeg] = []
    malformed: list[MalformedItem] = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            malformed.append(MalformedItem(position, "", "item is not an object", item, offset))
            continue
        if not is_grouped(item):
            legs.append(_flat_leg(item))
            continue
        found, bad = _group_legs(item, position, offset)
        if not found and not bad:
            bad = [MalformedItem(position, "", "grouped call without sub_cdr legs", dict(item), offset)]
        legs.extend(found)
        malformed.extend(bad)
    return CdrPage(offset=offset, legs=legs, item_count=len(items), malformed=malformed)


def _flat_leg(item: Mapping[str, Any]) -> RawLeg:
    leg = coerce_leg(item)
    # Flat items carry the item marker, sub_cdr legs do not; drop it so legs look alike, unless the
    # PBX ever fills it (then it may mean something and is kept).
    if leg.get(ITEM_MARKER_KEY) == "":
        del leg[ITEM_MARKER_KEY]
    return leg


def _group_legs(
    item: Mapping[str, Any], position: int, offset: int
) -> tuple[list[RawLeg], list[MalformedItem]]:
    """The legs of a grouped item and its sub-entries that are not leg objects."""
    legs: list[RawLeg] = []
    bad: list[MalformedItem] = []
    for _, key, value in _sub_cdr_entries(item):
        # Seen as an object on real devices; some fixtures hold an array of legs under one key.
        members = value if isinstance(value, list) else [value]
        for index, member in enumerate(members):
            path = f"{key}[{index}]" if isinstance(value, list) else key
            if isinstance(member, Mapping):
                legs.append(coerce_leg(member))
            else:
                bad.append(MalformedItem(position, path, "sub_cdr entry is not an object", member, offset))
    return legs, bad


def page_signature(page: CdrPage) -> str:
    """Digest of the identifying fields of a page, used to spot a page the PBX served twice."""
    rows = [[leg.get(name, "") for name in SIGNATURE_FIELDS] for leg in page.legs]
    extra = [[item.position, item.path, repr(item.value)] for item in page.malformed]
    blob = json.dumps([page.item_count, rows, extra], separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def parse_recordfiles(value: str) -> list[str]:
    """Split a ``recordfiles`` value into recording paths.

    Args:
        value: e.g. ``"2025-03/a.wav@b.wav@"`` (each name is ``@``-terminated).

    Returns:
        ``["2025-03/a.wav", "b.wav"]``; empty list for ``""``.
    """
    return [part.strip() for part in value.split(RECORDFILES_SEPARATOR) if part.strip()]


def parse_record_infos(value: Any) -> list[str]:
    """Read the ``recordfiles`` of a getRecordInfosByCall reply (comma-separated, maybe ``@``-terminated)."""
    if value is None:
        return []
    parts = value if isinstance(value, list) else coerce_value(value).split(RECORD_INFOS_SEPARATOR)
    files: list[str] = []
    for part in parts:
        files.extend(parse_recordfiles(coerce_value(part)))
    return files


def recording_basename(recordfile: str) -> str:
    """File name recapi expects: the path without its month directory and trailing ``@``.

    Args:
        recordfile: e.g. ``"2025-03/auto-1741079737#203-07700900123-6400.wav@"``.

    Returns:
        ``"auto-1741079737#203-07700900123-6400.wav"``; ``""`` when nothing is left.
    """
    cleaned = recordfile.strip().rstrip(RECORDFILES_SEPARATOR).strip()
    return re.split(r"[\\/]", cleaned)[-1]


@dataclass
class WindowLegs:
    """Everything one cdrapi window held: its legs (de-duplicated by AcctId) and malformed entries.

    Attributes:
        legs: Raw legs in PBX order; a leg seen again on a later page (pages may overlap) is kept once.
        malformed: Every entry that is not a leg, so that it can be quarantined with its record
            number instead of being dropped.
        pages: Non-empty pages read.
        duplicates: Legs dropped because an earlier page already had their AcctId.
    """

    legs: list[RawLeg] = field(default_factory=list)
    malformed: list[MalformedItem] = field(default_factory=list)
    pages: int = 0
    duplicates: int = 0

    def add_page(self, page: CdrPage, seen: set[str]) -> None:
        """Add ``page``'s legs whose AcctId is not in ``seen`` yet (legs without one are all kept).

        Args:
            page: One cdrapi page.
            seen: AcctIds already kept; updated. Shared across buffers when one window is loaded in
                several pieces, so the whole window is de-duplicated.
        """
        self.pages += 1
        self.malformed.extend(page.malformed)
        for leg in page.legs:
            acct_id = leg.get("AcctId", "")
            if acct_id:
                if acct_id in seen:
                    self.duplicates += 1
                    continue
                seen.add(acct_id)
            self.legs.append(leg)


def collect_pages(pages: Iterable[CdrPage], *, max_legs: int | None = None) -> WindowLegs:
    """Gather a window's pages, de-duplicating legs by AcctId (legs without one are all kept).

    Args:
        pages: The window's pages, e.g. ``UcmClient.iter_cdr_pages(...)``.
        max_legs: Stop with :class:`UcmPageCapExceeded` once more legs than this were read, so the
            caller can split the window instead of holding an unbounded one in memory.

    Returns:
        The window's legs and malformed entries.
    """
    window = WindowLegs()
    seen: set[str] = set()
    for page in pages:
        window.add_page(page, seen)
        if max_legs is not None and len(window.legs) > max_legs:
            raise UcmPageCapExceeded(
                f"cdrapi window holds more than {max_legs} legs; split the window",
                pages=window.pages,
                offset=page.offset,
            )
    return window
