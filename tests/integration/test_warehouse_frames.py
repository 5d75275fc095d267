"""Canonical test frames for the warehouse tests, and tests of the frame preparation they rely on.

Other ``test_warehouse_*`` modules import :func:`leg`, :func:`make_legs`, :func:`bulk_legs` and
:func:`make_rejects` from here.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from audiapro.cdr.schema import LEG_COLUMN_NAMES, LEG_COLUMNS, REJECT_COLUMNS
from audiapro.warehouse.frames import (
    COPY_TEXT_NULL,
    copy_text_pieces,
    prepare_batch,
    prepare_legs,
    reject_records,
    to_rows,
)

TENANT = "acme"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
_DTYPES = {"utc": "datetime64[us, UTC]", "int": "Int64", "str": object, "json": object}


def leg(
    key: str,
    *,
    session: str | None = "s1",
    start: datetime = T0,
    ring_s: int = 5,
    billsec: int = 30,
    answered: bool = True,
    tenant: str = TENANT,
    **overrides: Any,
) -> dict[str, Any]:
    """One valid canonical leg as a dict (override any column by name)."""
    answer_at = start + timedelta(seconds=ring_s) if answered else None
    end_at = start + timedelta(seconds=ring_s + (billsec if answered else 0))
    row: dict[str, Any] = {
        "tenant": tenant,
        "leg_key": key,
        "acct_id": str(zlib.crc32(key.encode()) % 100_000),
        "uniqueid": f"{int(start.timestamp())}.{len(key)}",
        "session": session,
        "start_local": start.strftime("%Y-%m-%d %H:%M:%S"),
        "start_at": start,
        "answer_at": answer_at,
        "end_at": end_at,
        "duration_s": int((end_at - start).total_seconds()),
        "billsec_s": billsec if answered else 0,
        "disposition": "ANSWERED" if answered else "NO ANSWER",
        "direction": "inbound",
        "src_raw": "2125550100",
        "dst_raw": "6500",
        "src_e164": "+12125550100",
        "dst_e164": None,
        "caller_name": "Alice",
        "answered_by": "1001" if answered else None,
        "action_type": "QUEUE[6500]",
        "action_owner": "6500",
        "src_trunk": "carrier",
        "dst_trunk": None,
        "channel": "PJSIP/trunk_1-0001",
        "dstchannel": f"PJSIP/{key}-0002",
        "dcontext": "from-trunk",
        "lastapp": "Dial",
        "recording_files": "[]",
        "recording_count": 0,
        "raw": json.dumps({"uniqueid": key, "disposition": "ANSWERED" if answered else "NO ANSWER"}),
    }
    unknown = set(overrides) - set(row)
    if unknown:
        raise KeyError(f"not canonical columns: {sorted(unknown)}")
    row.update(overrides)
    return row


def make_legs(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A canonical frame from leg dicts, with the dtypes normalization produces."""
    frame = pd.DataFrame(list(rows), columns=list(LEG_COLUMN_NAMES))
    for name, kind in LEG_COLUMNS.items():
        if kind == "utc":
            frame[name] = pd.to_datetime(frame[name], utc=True).astype(_DTYPES[kind])
        elif kind == "int":
            frame[name] = frame[name].astype("Int64")
        else:
            series = frame[name].astype(object)
            frame[name] = series.where(series.notna(), None)
    return frame


def bulk_legs(n: int, *, tenant: str = TENANT, legs_per_call: int = 3, seed: int = 7) -> pd.DataFrame:
    """``n`` valid legs built column-wise (fast enough for 100k+ rows)."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    start = pd.Series(pd.Timestamp(T0) + pd.to_timedelta(idx * 7, unit="s")).astype("datetime64[us, UTC]")
    billsec = pd.Series(rng.integers(0, 600, n)).astype("Int64")
    answered = billsec.gt(0).to_numpy(dtype=bool)
    answer_at = (start + pd.Timedelta(seconds=4)).where(answered)
    end_at = start + pd.to_timedelta(billsec.astype("int64") + 4, unit="s")
    text = pd.Series(idx).astype(str)
    frame = pd.DataFrame(
        {
            "tenant": tenant,
            "leg_key": "k" + text,
            "acct_id": text,
            "uniqueid": (1_770_000_000 + idx // legs_per_call).astype(str),
            "session": "s" + pd.Series(idx // legs_per_call).astype(str),
            "start_local": start.dt.strftime("%Y-%m-%d %H:%M:%S"),
            "start_at": start,
            "answer_at": answer_at,
            "end_at": end_at,
            "duration_s": (billsec + 4).astype("Int64"),
            "billsec_s": billsec,
            "disposition": np.where(answered, "ANSWERED", "NO ANSWER"),
            "direction": "inbound",
            "src_raw": "212555" + (idx % 10_000).astype(str),
            "dst_raw": "6500",
            "src_e164": "+1212555" + (idx % 10_000).astype(str),
            "dst_e164": None,
            "caller_name": 'Caller, "quoted"',
            "answered_by": pd.Series("1001", index=idx).where(answered, None),
            "action_type": "QUEUE[6500]",
            "action_owner": "6500",
            "src_trunk": "carrier",
            "dst_trunk": None,
            "channel": "PJSIP/trunk_1-" + text,
            "dstchannel": "PJSIP/1001-" + text,
            "dcontext": "from-trunk",
            "lastapp": "Dial",
            "recording_files": '["2026-03/auto-' + text + '.wav"]',
            "recording_count": pd.Series(np.ones(n, dtype="int64")).astype("Int64"),
            "raw": '{"AcctId":"' + text + '","userfield":"Inbound"}',
        }
    )
    for name, kind in LEG_COLUMNS.items():
        if kind in ("str", "json"):
            series = frame[name].astype(object)
            frame[name] = series.where(series.notna(), None)
    return frame[list(LEG_COLUMN_NAMES)]


def make_rejects(*rows: tuple[str, int | None, str, str | None]) -> pd.DataFrame:
    """A reject frame from ``(source, position, reason, raw)`` tuples."""
    frame = pd.DataFrame(list(rows), columns=list(REJECT_COLUMNS))
    frame["position"] = frame["position"].astype("Int64")
    return frame


NO_REJECTS = make_rejects()


# --- the helpers build what normalization builds ---------------------------------------------------


def test_helpers_build_canonical_frames() -> None:
    for frame in (make_legs([leg("a"), leg("b", answered=False)]), bulk_legs(10)):
        assert tuple(frame.columns) == LEG_COLUMN_NAMES
        for name, kind in LEG_COLUMNS.items():
            if kind == "utc":
                assert str(frame[name].dtype) == "datetime64[us, UTC]", name
            elif kind == "int":
                assert str(frame[name].dtype) == "Int64", name
        assert frame["answer_at"].isna().any() or len(frame) == 10


# --- prepare_legs ----------------------------------------------------------------------------------


def test_prepare_keeps_last_duplicate_and_exact_columns() -> None:
    frame = make_legs([leg("a", caller_name="first"), leg("b"), leg("a", caller_name="second")])
    frame["extra"] = 1
    prepared = prepare_legs(frame, TENANT)
    assert tuple(prepared.columns) == LEG_COLUMN_NAMES
    assert prepared["leg_key"].tolist() == ["b", "a"]
    assert prepared.loc[prepared["leg_key"] == "a", "caller_name"].item() == "second"


def test_prepare_rejects_contract_violations() -> None:
    with pytest.raises(ValueError, match="tenant"):
        prepare_legs(make_legs([leg("a"), leg("b", tenant="other")]), TENANT)
    with pytest.raises(ValueError, match="leg_key"):
        prepare_legs(make_legs([leg("a", leg_key=None)]), TENANT)
    with pytest.raises(ValueError, match="raw"):
        prepare_legs(make_legs([leg("a")]).drop(columns="raw"), TENANT)
    naive = make_legs([leg("a")])
    naive["start_at"] = naive["start_at"].dt.tz_localize(None)
    with pytest.raises(TypeError, match="naive"):
        prepare_legs(naive, TENANT)


def test_prepare_coerces_loose_dtypes() -> None:
    frame = make_legs([leg("a")])
    frame["billsec_s"] = frame["billsec_s"].astype("float64")  # e.g. after a NaN slipped in
    frame["answer_at"] = pd.Series([None], dtype=object)  # all-null column without a dtype
    frame["recording_files"] = pd.Series([["2026-03/x.wav"]], dtype=object)  # list, not JSON text
    frame["start_at"] = frame["start_at"].dt.tz_convert("America/New_York")
    prepared = prepare_legs(frame, TENANT)
    assert str(prepared["billsec_s"].dtype) == "Int64"
    assert str(prepared["answer_at"].dtype) == "datetime64[us, UTC]"
    assert prepared["recording_files"].item() == '["2026-03/x.wav"]'
    assert prepared["start_at"].item() == pd.Timestamp(T0)


def test_prepare_accepts_empty_frames() -> None:
    for empty in (pd.DataFrame(), make_legs([])):
        prepared = prepare_legs(empty, TENANT)
        assert len(prepared) == 0
        assert tuple(prepared.columns) == LEG_COLUMN_NAMES


# --- renderings -------------------------------------------------------------------------------------


def test_copy_text_keeps_empty_strings_apart_from_nulls_and_escapes_specials() -> None:
    legs = [leg("a", caller_name="", dcontext=None), leg("b", caller_name="x\ty\\z\nw\r")]
    (text,) = copy_text_pieces(prepare_legs(make_legs(legs), TENANT))
    first, second = (line.split("\t") for line in text.removesuffix("\n").split("\n"))
    name = LEG_COLUMN_NAMES.index("caller_name")
    assert first[name] == ""
    assert first[LEG_COLUMN_NAMES.index("dcontext")] == COPY_TEXT_NULL
    assert first[LEG_COLUMN_NAMES.index("start_at")] == "2026-03-02T14:00:00"  # naive UTC
    assert second[name] == "x\\ty\\\\z\\nw\\r"


def test_copy_text_comes_in_pieces_of_whole_lines() -> None:
    frame = prepare_legs(make_legs([leg(str(n)) for n in range(7)]), TENANT)
    pieces = list(copy_text_pieces(frame, rows=3))
    assert [piece.count("\n") for piece in pieces] == [3, 3, 1]
    assert "".join(pieces) == "".join(copy_text_pieces(frame))


def test_prepare_batch_renders_copy_text_only_when_asked() -> None:
    frame = make_legs([leg("a"), leg("b"), leg("a")])  # "a" twice: the batch keeps the last one
    plain = prepare_batch(frame, TENANT)
    rendered = prepare_batch(frame, TENANT, render_copy=True)
    assert plain.copy_text is None and plain.given == rendered.given == 3
    assert len(rendered.frame) == 2
    assert rendered.copy_text == tuple(copy_text_pieces(rendered.frame))


def test_rows_are_plain_python_values() -> None:
    rows = to_rows(prepare_legs(make_legs([leg("a", answered=False)]), TENANT))
    values = dict(zip(LEG_COLUMN_NAMES, rows[0], strict=True))
    assert values["answer_at"] is None
    assert values["start_at"] == "2026-03-02 14:00:00.000000"
    assert type(values["billsec_s"]) is int


def test_reject_records_normalize_types() -> None:
    frame = make_rejects(("csv", 3, "bad start", '{"start":"x"}'), ("csv", None, "", None))
    frame.loc[1, "raw"] = None
    records = reject_records(frame)
    assert records[0] == {"source": "csv", "position": 3, "reason": "bad start", "raw": '{"start":"x"}'}
    assert records[1]["position"] is None and records[1]["reason"] == "unspecified"
    assert reject_records(pd.DataFrame()) == []
    with pytest.raises(ValueError, match="reason"):
        reject_records(frame.drop(columns="reason"))
