"""Column headers of CDR files -> UCM cdrapi field names.

The UCM web UI exports CDRs with display names ("Caller Number", "Dest. Channel") whose spelling,
spacing and punctuation vary by firmware, while API-style exports use the cdrapi field names
themselves. Both are matched through one alias table after folding case and dropping everything but
letters and digits, so ``"Dest. Channel"``, ``"dest channel"`` and ``"DEST_CHANNEL"`` are one header.
Sources: docs ``ucm-api.md`` §3.5 (field dictionary) and §7 (web-UI export headers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from audiapro.cdr.schema import LEG_KEY_FIELDS

#: Every cdrapi leg field seen on any firmware (22-field 2013 set, 32-field set, UCM63xx 43-field set)
#: plus the grouping marker ``cdr``. A header spelled like one of these maps to it unchanged.
CDRAPI_FIELDS: Final = (
    "cdr", "AcctId", "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid",
    "userfield", "channel_ext", "dstchannel_ext", "service", "caller_name", "recordfiles", "dstanswer",
    "chanext", "dstchanext", "session", "action_owner", "action_type", "src_trunk_name", "dst_trunk_name",
    "nat_call", "nat_call_peer", "video_call", "gdms_unique_code", "gds_call", "gsc_call",
    "wave_src_seqid", "wave_dst_seqid", "device_info", "device_info_peer", "recordfiles_desc",
)  # fmt: skip

#: Web-UI display names -> cdrapi field. Variants differ only where firmware spelled them differently;
#: case, spaces and punctuation need no separate entry.
UI_HEADER_ALIASES: Final[dict[str, str]] = {
    "Account Code": "accountcode",
    "Caller Number": "src",
    "Call From": "src",  # UCM6100 1.0.9.x
    "Callee Number": "dst",
    "Call To": "dst",  # UCM6100 1.0.9.x
    "Context": "dcontext",
    "Caller ID": "clid",
    "Source Channel": "channel",
    "Dest. Channel": "dstchannel",
    "Destination Channel": "dstchannel",
    "Last app.": "lastapp",
    "Last Application": "lastapp",
    "Last data": "lastdata",
    "Start Time": "start",
    "Answer Time": "answer",
    "End Time": "end",
    "Call Time": "duration",  # seconds in the file, H:MM:SS in the web table; normalization takes both
    "Talk Time": "billsec",
    "Call Status": "disposition",
    "Disposition": "disposition",  # older firmware
    "Status": "disposition",
    "AMA Flags": "amaflags",
    "Unique ID": "uniqueid",
    "Call Type": "userfield",  # Inbound / Outbound / Internal / External
    "Source Channel Extension": "channel_ext",
    "Dest Channel Extension": "dstchannel_ext",
    "Caller Name": "caller_name",
    "Answered by": "dstanswer",
    "Session": "session",
    "Action Owner": "action_owner",
    "Action Type": "action_type",
    "Source Trunk Name": "src_trunk_name",
    "Destination Trunk Name": "dst_trunk_name",
    "Dest Trunk Name": "dst_trunk_name",
    # Export-only columns without a confirmed cdrapi counterpart (possibly nat_call / nat_call_peer,
    # unverified): kept under fixed names so they survive into ``raw`` and load the same way every time.
    "Caller NAT": "caller_nat",
    "Callee NAT": "callee_nat",
    "Premier Caller": "premier_caller",
}

#: Display name of each leg-key field, used when telling an operator which columns to export.
KEY_FIELD_UI_NAMES: Final[dict[str, str]] = {
    "uniqueid": "Unique ID",
    "channel": "Source Channel",
    "dstchannel": "Dest. Channel",
    "start": "Start Time",
    "lastapp": "Last app.",
}

_NOT_ALNUM = re.compile(r"[\W_]+")
#: Name given to a column whose header has no letters or digits (1-based column number appended).
UNNAMED_COLUMN_PREFIX: Final = "column_"


def header_key(name: str) -> str:
    """Fold a header for matching: case-folded letters and digits (``"Dest. Channel"`` -> ``destchannel``)."""
    return _NOT_ALNUM.sub("", name.casefold())


def _build_alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    pairs = [(name, name) for name in CDRAPI_FIELDS] + list(UI_HEADER_ALIASES.items())
    for header, field in pairs:
        key = header_key(header)
        if index.setdefault(key, field) != field:  # a typo in the tables above, caught at import
            raise RuntimeError(f"header alias {header!r} maps to both {index[key]!r} and {field!r}")
    return index


#: Folded header -> cdrapi field name.
ALIAS_INDEX: Final[dict[str, str]] = _build_alias_index()


def snake_name(header: str) -> str:
    """Stable snake_case column name for a header the alias table does not know."""
    return _NOT_ALNUM.sub("_", header.casefold()).strip("_")


@dataclass(frozen=True)
class HeaderMapping:
    """How a file's header row maps onto column names.

    Attributes:
        columns: One output column name per file column, unique: the cdrapi field for known headers,
            a snake_case name otherwise (suffixed ``_2``, ``_3``... on collision).
        raw_names: One key per file column for the raw JSON record: the file's own header text, made
            unique with ``#2``, ``#3``... when the file repeats a header.
        missing_keys: Leg-key fields (``LEG_KEY_FIELDS``) no header maps to.
    """

    columns: tuple[str, ...]
    raw_names: tuple[str, ...]
    missing_keys: tuple[str, ...]


def map_headers(headers: Sequence[str]) -> HeaderMapping:
    """Map a header row onto column names.

    Known headers are placed first so an unknown header can never take a field name; when two headers
    mean the same field (e.g. both ``Call Status`` and ``disposition``), the first one wins and the
    other keeps its own snake_case name.

    Args:
        headers: The header row as read from the file.

    Returns:
        The mapping (see :class:`HeaderMapping`).
    """
    columns: list[str | None] = [None] * len(headers)
    used: set[str] = set()
    for position, header in enumerate(headers):
        field = ALIAS_INDEX.get(header_key(header))
        if field is not None and field not in used:
            columns[position] = field
            used.add(field)
    for position, header in enumerate(headers):
        if columns[position] is not None:
            continue
        base = snake_name(header) or f"{UNNAMED_COLUMN_PREFIX}{position + 1}"
        name, suffix = base, 2
        while name in used:
            name, suffix = f"{base}_{suffix}", suffix + 1
        columns[position] = name
        used.add(name)
    return HeaderMapping(
        columns=tuple(name for name in columns if name is not None),
        raw_names=_unique_raw_names(headers),
        missing_keys=tuple(field for field in LEG_KEY_FIELDS if field not in used),
    )


def _unique_raw_names(headers: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    names = []
    for header in headers:
        count = seen.get(header, 0) + 1
        seen[header] = count
        names.append(header if count == 1 else f"{header}#{count}")
    return tuple(names)
