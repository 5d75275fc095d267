"""Raw legs -> the canonical leg frame (``audiapro.cdr.schema``), vectorized with pandas.

One function serves every source: cdrapi pages, UI CSV exports, saved JSON. A leg that cannot be
normalized is quarantined with its position and the reason; it never stops the rest of the batch and
is never dropped silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from audiapro.cdr.keys import key_inputs, leg_keys, render_start
from audiapro.cdr.localtime import (
    ambiguous_wall_clock,
    epoch_from_prefix,
    epoch_from_recording,
    localize,
    parse_wall_clock,
)
from audiapro.cdr.phones import to_e164
from audiapro.cdr.schema import DISPOSITIONS, LEG_COLUMN_NAMES, LEG_COLUMNS, REJECT_COLUMNS
from audiapro.cdr.text import contains, map_distinct, raw_column

#: Raw fields normalization reads; absent ones are treated as empty strings.
_USED_FIELDS = (
    "AcctId", "src", "dst", "channel", "dstchannel", "dcontext", "lastapp", "start", "answer", "end",
    "duration", "billsec", "disposition", "uniqueid", "userfield", "caller_name", "recordfiles",
    "dstanswer", "session", "action_owner", "action_type", "src_trunk_name", "dst_trunk_name",
)  # fmt: skip

#: userfield values (lower-cased) that name a direction directly.
_USERFIELD_DIRECTIONS = {
    "inbound": "inbound",
    "outbound": "outbound",
    "internal": "internal",
    "external": "external",
}

#: ``json.dumps(leg, separators=(",", ":"), ensure_ascii=False)``, built once instead of per leg.
_RAW_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def raw_text(leg: Mapping[str, str]) -> str:
    """The raw JSON :func:`normalize_legs` stores for ``leg`` in the ``raw`` column (what a re-read
    leg is compared with to tell that it is stored unchanged)."""
    return _RAW_JSON.encode(leg if type(leg) is dict else dict(leg))


#: Column a file reader sets to a reason when a row is unusable before normalization.
REJECT_MARKER = "__reject__"

_DISPOSITION_ALIASES = {"NOANSWER": "NO ANSWER", "NO_ANSWER": "NO ANSWER", "CONGESTED": "CONGESTION"}
_DISPOSITION_SPACING = re.compile(r"[\s_]+")
_AT_RUNS = re.compile(r"@+")
_CLOCK = r"^(?:(\d+):)?(\d{1,2}):(\d{2})$"
#: Longest run of digits read as seconds directly (int64 holds 18 digits whatever they are).
_MAX_PLAIN_DIGITS = 18


@dataclass(frozen=True)
class NormalizeContext:
    """Per-tenant facts normalization needs.

    Attributes:
        tenant: Tenant name stored on every row.
        timezone: IANA zone of the PBX's wall clock.
        region: Default phone region for numbers in national format.
        source: Where the legs came from (``api``, ``csv``, ``json``...), stored with rejects.
    """

    tenant: str
    timezone: str
    region: str = "US"
    source: str = "api"


@dataclass
class NormalizedBatch:
    """Canonical legs plus quarantined rows of one batch."""

    legs: pd.DataFrame
    rejects: pd.DataFrame


def normalize_legs(
    raw_legs: Sequence[Mapping[str, str]],
    ctx: NormalizeContext,
    positions: Sequence[int] | None = None,
    raw_json: Sequence[str | None] | None = None,
) -> NormalizedBatch:
    """Normalize raw legs (``dict[str, str]`` with the UCM's field names).

    Args:
        raw_legs: Legs as the source delivered them; unknown keys are kept in ``raw``.
        ctx: Tenant context.
        positions: 1-based position of each leg in its source (line or record number); defaults to
            1..n. Stored with rejected rows so an operator can find them.
        raw_json: What to store as each row's raw text where it is not the leg itself (``None``
            entries: render the leg), e.g. the original value of a row marked with
            :data:`REJECT_MARKER`.

    Returns:
        The canonical frame and the quarantined rows.
    """
    frame = pd.DataFrame.from_records(list(raw_legs)) if raw_legs else pd.DataFrame()
    encode = _RAW_JSON.encode
    given = raw_json if raw_json is not None else [None] * len(raw_legs)
    rendered = [
        text if text is not None else encode(leg if type(leg) is dict else dict(leg))
        for leg, text in zip(raw_legs, given, strict=True)
    ]
    return normalize_frame(frame, ctx, positions=positions, raw_json=rendered)


def normalize_frame(
    raw: pd.DataFrame,
    ctx: NormalizeContext,
    positions: Sequence[int] | None = None,
    raw_json: Sequence[str] | None = None,
) -> NormalizedBatch:
    """Normalize a frame whose columns are UCM field names and whose values are strings.

    Args:
        raw: One row per leg; missing columns are treated as empty.
        ctx: Tenant context.
        positions: 1-based source positions (see :func:`normalize_legs`).
        raw_json: Pre-rendered raw JSON per row; rendered from ``raw`` when omitted.

    Returns:
        The canonical frame and the quarantined rows.
    """
    n = len(raw)
    index = pd.RangeIndex(n)
    raw = raw.reset_index(drop=True)
    pos = pd.Series(np.arange(1, n + 1) if positions is None else list(positions), index=index)
    if raw_json is None:
        raw_json = raw.to_json(orient="records", lines=True, force_ascii=False).splitlines() if n else []
    raw_text = pd.Series(list(raw_json), index=index, dtype=object)

    f = {name: raw_column(raw, name, index) for name in _USED_FIELDS}
    reasons = _Reasons(index)

    if REJECT_MARKER in raw.columns:  # a reader already found the row unusable (e.g. wrong field count)
        marker = raw_column(raw, REJECT_MARKER, index)
        reasons.add(marker != "", marker)
    reasons.add(f["uniqueid"] == "", "missing uniqueid")

    # --- times: local wall clock -> UTC, DST resolved with the PBX's own epochs -------------------
    start_naive = parse_wall_clock(f["start"])
    answer_naive = parse_wall_clock(f["answer"])
    end_naive = parse_wall_clock(f["end"])
    reasons.add(start_naive.isna(), "start time missing or not YYYY-MM-DD HH:MM[:SS]")
    reasons.add((f["answer"] != "") & answer_naive.isna(), "unparseable answer time")
    reasons.add((f["end"] != "") & end_naive.isna(), "unparseable end time")

    duration = _seconds(f["duration"])
    billsec = _seconds(f["billsec"])
    reasons.add((f["duration"] != "") & duration.isna(), "duration is not a number of seconds")
    reasons.add((f["billsec"] != "") & billsec.isna(), "billsec is not a number of seconds")

    start_ref = _start_reference(f, ambiguous_wall_clock(start_naive, ctx.timezone))
    start_at, start_problem = localize(start_naive, ctx.timezone, start_ref)
    reasons.add(
        start_problem == "nonexistent", f"start time does not exist in {ctx.timezone} (check time zone)"
    )
    reasons.add(start_problem == "ambiguous", "start time is ambiguous (DST) and no epoch to resolve it")

    dur_td = pd.to_timedelta(duration.fillna(0).astype("int64"), unit="s")
    bill_td = pd.to_timedelta(billsec.fillna(0).astype("int64"), unit="s")
    end_at, end_problem = localize(end_naive, ctx.timezone, start_at + dur_td)
    answer_at, answer_problem = localize(answer_naive, ctx.timezone, start_at + dur_td - bill_td)
    reasons.add((end_problem != "") | (answer_problem != ""), "answer/end time cannot be placed in UTC")

    # Empty duration/billsec: derive from the times (UI exports may leave them out).
    duration = duration.fillna(((end_at - start_at).dt.total_seconds()).round().astype("Int64"))
    billsec = billsec.fillna(((end_at - answer_at).dt.total_seconds()).round().astype("Int64"))
    billsec = billsec.where(answer_at.notna() | billsec.notna(), 0)

    # --- disposition and direction -------------------------------------------------------------
    disposition = pd.Series(map_distinct(f["disposition"], _canonical_disposition), index=index, dtype=object)
    # Exports without a "Call Status" column: what the times say is all that can be known.
    derived = pd.Series(np.where(answer_at.notna(), "ANSWERED", "NO ANSWER"), index=index)
    disposition = disposition.where(disposition != "", derived)
    reasons.add(~disposition.isin(DISPOSITIONS), "unknown disposition")

    direction = _direction(f)

    # --- numbers, recordings, key ----------------------------------------------------------------
    src_e164 = to_e164(f["src"], ctx.region)
    dst_e164 = to_e164(f["dst"], ctx.region)
    recording_files, recording_count = _recordings(f["recordfiles"])

    canonical_start = render_start(start_naive)
    key_fields, acct_order = key_inputs(f, canonical_start)
    keys = leg_keys(key_fields, order=acct_order)

    legs = pd.DataFrame(
        {
            "tenant": ctx.tenant,
            "leg_key": keys,
            "acct_id": _nullable(f["AcctId"]),
            "uniqueid": f["uniqueid"],
            # Old firmware and some exports have no session: a leg then stands for its channel's call.
            "session": f["session"].where(f["session"] != "", f["uniqueid"]),
            "start_local": canonical_start,
            "start_at": start_at,
            "answer_at": answer_at,
            "end_at": end_at,
            "duration_s": duration.astype("Int64"),
            "billsec_s": billsec.astype("Int64"),
            "disposition": disposition,
            "direction": direction,
            "src_raw": f["src"],
            "dst_raw": f["dst"],
            "src_e164": src_e164,
            "dst_e164": dst_e164,
            "caller_name": _nullable(f["caller_name"]),
            "answered_by": _nullable(f["dstanswer"]),
            "action_type": _nullable(f["action_type"]),
            "action_owner": _nullable(f["action_owner"]),
            "src_trunk": _nullable(f["src_trunk_name"]),
            "dst_trunk": _nullable(f["dst_trunk_name"]),
            "channel": f["channel"],
            "dstchannel": f["dstchannel"],
            "dcontext": _nullable(f["dcontext"]),
            "lastapp": f["lastapp"],
            "recording_files": recording_files,
            "recording_count": recording_count,
            "raw": raw_text,
        },
        index=index,
    )[list(LEG_COLUMN_NAMES)]
    for name, kind in LEG_COLUMNS.items():
        # Text columns hold strings or None; a stray NaN would be stored as the text "nan". Columns of
        # strings only (most of them) are recognised by one C pass and skip the slower NA scan.
        if kind in ("str", "json") and infer_dtype(legs[name], skipna=False) != "string":
            legs[name] = legs[name].astype(object).where(legs[name].notna(), None)

    bad = reasons.reason != ""
    rejects = pd.DataFrame(
        {"source": ctx.source, "position": pos[bad], "reason": reasons.reason[bad], "raw": raw_text[bad]},
        columns=list(REJECT_COLUMNS),
    ).reset_index(drop=True)
    return NormalizedBatch(legs=legs[~bad].reset_index(drop=True), rejects=rejects)


class _Reasons:
    """First failing check per row, in the order checks are added."""

    def __init__(self, index: pd.Index) -> None:
        self.reason = pd.Series("", index=index, dtype=object)
        self._open = pd.Series(True, index=index)  # reason == "", kept up to date

    def add(self, mask: pd.Series, reason: str | pd.Series) -> None:
        take = mask.fillna(False).astype(bool) & self._open
        if not take.any():
            return
        self.reason[take] = reason[take] if isinstance(reason, pd.Series) else reason
        self._open = self.reason == ""


def _start_reference(f: dict[str, pd.Series], rows: pd.Series) -> pd.Series:
    """The PBX's own UTC epoch of each leg's start (recording, then session, then uniqueid).

    Only ``rows`` (starts in a repeated DST hour) need it; every other row gets NaT, which
    :func:`localize` never reads, so a batch without such rows skips the three regex passes.
    """
    reference = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[us, UTC]")
    if rows.any():
        found = epoch_from_recording(f["recordfiles"][rows])
        found = found.fillna(epoch_from_prefix(f["session"][rows])).fillna(
            epoch_from_prefix(f["uniqueid"][rows])
        )
        reference[rows] = found
    return reference


def _canonical_disposition(value: str) -> str:
    """``" no_answer "`` -> ``"NO ANSWER"``: upper case, runs of blanks/underscores as one space."""
    canonical = _DISPOSITION_SPACING.sub(" ", value.upper()).strip()
    return _DISPOSITION_ALIASES.get(canonical, canonical)


def _nullable(values: pd.Series) -> pd.Series:
    """Empty strings as None (one numpy pass; pandas' ``where`` costs several per column)."""
    array = values.to_numpy(dtype=object)
    out = array.copy()
    out[array == ""] = None
    return pd.Series(out, index=values.index, dtype=object)


def _seconds(values: pd.Series) -> pd.Series:
    """Integer seconds from ``"31"`` or ``"0:00:31"``/``"00:31"``; NA where empty or invalid."""
    digits = _all_plain_digits(values)
    if digits is not None:  # the usual column: every value a short run of ASCII digits
        return pd.Series(pd.array(digits, dtype="Int64"), index=values.index)
    plain = pd.to_numeric(values.where(values != "", None), errors="coerce")
    plain = plain.where(plain.isna() | (plain == plain.round()))
    clock_like = plain.isna() & (values != "")  # "0:00:31": only these are worth the regex
    if not clock_like.any():
        return plain.round().astype("Int64")
    clock = values[clock_like].str.extract(_CLOCK)
    clock_s = clock[0].fillna("0").astype("float").mul(3600) + clock[1].astype("float").mul(60)
    clock_s = clock_s + clock[2].astype("float")
    return plain.fillna(clock_s).round().astype("Int64")


def _all_plain_digits(values: pd.Series) -> np.ndarray | None:
    """The values as int64 when every one is 1 to :data:`_MAX_PLAIN_DIGITS` ASCII digits, else None."""
    array = values.to_numpy(dtype=object)
    if not len(array):
        return None
    try:
        joined = "".join(array)
        widest = max(map(len, array))
    except TypeError:  # a missing value or a number among the strings
        return None
    if not (joined.isascii() and joined.isdigit() and all(array) and widest <= _MAX_PLAIN_DIGITS):
        return None
    return np.fromiter(map(int, array), dtype=np.int64, count=len(array))


def _direction(f: dict[str, pd.Series]) -> pd.Series:
    """Direction from ``userfield``; when it is empty or unknown, from the trunks the leg used."""
    userfield = f["userfield"]
    named = pd.Series(
        map_distinct(userfield, lambda value: _USERFIELD_DIRECTIONS.get(value.lower())),
        index=userfield.index,
        dtype=object,
    )
    from_trunk = (f["src_trunk_name"] != "") | contains(f["channel"], "trunk_")
    to_trunk = (f["dst_trunk_name"] != "") | contains(f["dstchannel"], "trunk_")
    inferred = pd.Series(
        np.select(
            [from_trunk & to_trunk, from_trunk, to_trunk],
            ["external", "inbound", "outbound"],
            default="internal",
        ),
        index=named.index,
    )
    return named.fillna(inferred).astype(object)


def _recordings(recordfiles: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``"2025-03/a.wav@b.wav@"`` -> JSON ``["2025-03/a.wav","b.wav"]`` and a count."""
    # Rendered once per distinct value (most legs have none): map_distinct's set + dict, by hand.
    items = recordfiles.to_numpy(dtype=object).tolist()
    rendered = {value: _recording_list(value) for value in set(items)}
    texts = {value: text for value, (text, _) in rendered.items()}
    counts = {value: n for value, (_, n) in rendered.items()}
    as_json = np.empty(len(items), dtype=object)
    as_json[:] = list(map(texts.__getitem__, items))
    count = np.fromiter(map(counts.__getitem__, items), dtype=np.int64, count=len(items))
    index = recordfiles.index
    return pd.Series(as_json, index=index, dtype=object), pd.Series(count, index=index, dtype="Int64")


def _recording_list(recordfiles: str) -> tuple[str, int]:
    parts = _AT_RUNS.sub("@", recordfiles).strip("@")
    if not parts:
        return "[]", 0
    escaped = parts.replace("\\", "\\\\").replace('"', '\\"')
    return '["' + escaped.replace("@", '","') + '"]', parts.count("@") + 1
