"""Web-UI style CDR export ("Download All Records"): one CSV row per leg, human column headers.

Unlike the API, the UI export has no AcctId column and names its columns in English; the exact
spelling differs between firmware versions (docs/ucm-protocol.md, "The web UI's CSV export"), hence
``header_style``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

HeaderStyle = Literal["modern", "legacy"]
DurationStyle = Literal["seconds", "hms"]

#: (cdrapi field, modern header, legacy header), in the UI's column order.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("accountcode", "Account Code", "Account Code"),
    ("src", "Caller Number", "Caller Number"),
    ("dst", "Callee Number", "Callee Number"),
    ("dcontext", "Context", "Context"),
    ("clid", "Caller ID", "Caller ID"),
    ("channel", "Source Channel", "Source Channel"),
    ("dstchannel", "Dest. Channel", "Dest Channel"),
    ("lastapp", "Last app.", "Last App"),
    ("lastdata", "Last data", "Last Data"),
    ("start", "Start Time", "Start Time"),
    ("answer", "Answer Time", "Answer Time"),
    ("end", "End Time", "End Time"),
    ("duration", "Call Time", "Call Time"),
    ("billsec", "Talk Time", "Talk Time"),
    ("disposition", "Call Status", "Disposition"),
    ("amaflags", "AMA Flags", "AMA Flags"),
    ("uniqueid", "Unique ID", "Unique ID"),
    ("userfield", "Call Type", "Call Type"),
    ("dstchannel_ext", "Dest Channel Extension", "Dest Channel Extension"),
    ("caller_name", "Caller Name", "Caller Name"),
    ("dstanswer", "Answered by", "Answered By"),
    ("session", "Session", "Session"),
    ("action_type", "Action Type", "Action Type"),
    ("src_trunk_name", "Source Trunk Name", "Source Trunk Name"),
    ("dst_trunk_name", "Destination Trunk Name", "Dest Trunk Name"),
    ("nat_call", "Caller NAT", "Caller NAT"),
    ("nat_call_peer", "Callee NAT", "Callee NAT"),
)
#: Columns exported when none are chosen (the NAT columns only exist on newer firmware).
DEFAULT_FIELDS = tuple(field for field, _, _ in COLUMNS if field not in ("nat_call", "nat_call_peer"))
_DURATION_FIELDS = ("duration", "billsec")


def _hms(value: str) -> str:
    if not value.isdigit():
        return value
    seconds = int(value)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _resolve(columns: Sequence[str] | None, style: HeaderStyle) -> list[tuple[str, str]]:
    """(field, header) pairs for the requested columns (given as headers of either style or fields)."""
    index = 1 if style == "modern" else 2
    lookup: dict[str, tuple[str, str]] = {}
    for entry in COLUMNS:
        for name in entry:
            lookup[name.lower()] = (entry[0], entry[index])
    if columns is None:
        return [lookup[f] for f in DEFAULT_FIELDS]
    unknown = [c for c in columns if c.lower() not in lookup]
    if unknown:
        raise ValueError(f"unknown export columns {unknown}")
    return [lookup[c.lower()] for c in columns]


def write_ui_export(
    legs: Iterable[Mapping[str, str]],
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    header_style: HeaderStyle = "modern",
    bom: bool = False,
    durations: DurationStyle = "seconds",
) -> Path:
    """Write legs as the UCM web UI exports them.

    Args:
        legs: Raw legs (e.g. ``sim.ground_truth()``); times are already local ``YYYY-MM-DD HH:MM:SS``.
        path: Output CSV file.
        columns: Column subset/order, as headers (either style) or cdrapi field names; default: all
            classic columns.
        header_style: ``"modern"`` (``Dest. Channel``, ``Last app.``, ``Call Status``) or ``"legacy"``
            (``Dest Channel``, ``Last App``, ``Disposition``, ``Dest Trunk Name``).
        bom: Start the file with a UTF-8 byte-order mark.
        durations: ``Call Time``/``Talk Time`` as integer seconds or ``H:MM:SS``.

    Returns:
        The written path.
    """
    if header_style not in ("modern", "legacy") or durations not in ("seconds", "hms"):
        raise ValueError("header_style must be modern|legacy and durations seconds|hms")
    selected = _resolve(columns, header_style)
    out = Path(path)
    with out.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([header for _, header in selected])
        for leg in legs:
            row = []
            for field, _ in selected:
                value = leg.get(field, "")
                row.append(_hms(value) if durations == "hms" and field in _DURATION_FIELDS else value)
            writer.writerow(row)
    return out
