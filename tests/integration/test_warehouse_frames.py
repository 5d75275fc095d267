"""Frame preparation, and the canonical test frames (``warehouse_support.py``) the other tests use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audiapro.cdr.schema import LEG_COLUMN_NAMES, LEG_COLUMNS
from audiapro.warehouse.frames import (
    COPY_TEXT_NULL,
    copy_text_pieces,
    prepare_batch,
    prepare_legs,
    reject_records,
    to_rows,
)
from tests.integration.warehouse_support import T0, TENANT, bulk_legs, leg, make_legs, make_rejects

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


def test_copy_text_renders_instants_as_numpy_would_at_any_second() -> None:
    # Whole seconds take the day-text + time-of-day table path; one sub-second value the general one.
    starts = ["1969-12-31 23:59:59", "1970-01-01 00:00:00", "2026-03-02 23:59:59", "2026-03-03 00:00:01"]
    frame = make_legs([leg(str(n)) for n in range(len(starts))])
    frame["start_at"] = pd.to_datetime(starts, utc=True).astype("datetime64[us, UTC]")
    frame["answer_at"] = frame["start_at"].where(frame.index % 2 == 0)  # NaT in between
    frame["end_at"] = frame["start_at"] + pd.to_timedelta([0, 0, 0, 250], unit="ms")
    lines = [line.split("\t") for line in "".join(copy_text_pieces(prepare_legs(frame, TENANT))).splitlines()]
    for name in ("start_at", "answer_at", "end_at"):
        naive = frame[name].dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        as_text = np.datetime_as_string(naive, unit="us" if name == "end_at" else "s")
        rendered = [str(text) for text in as_text]
        expected = [COPY_TEXT_NULL if pd.isna(v) else text for v, text in zip(naive, rendered, strict=True)]
        assert [line[LEG_COLUMN_NAMES.index(name)] for line in lines] == expected, name
    assert lines[0][LEG_COLUMN_NAMES.index("start_at")] == "1969-12-31T23:59:59"


def test_copy_text_of_text_columns_with_nulls_nan_and_numbers() -> None:
    frame = prepare_legs(make_legs([leg(str(n)) for n in range(4)]), TENANT)
    frame["caller_name"] = pd.Series(["a\\b", None, "c\td", ""], dtype=object)  # None: NULL, escapes
    frame["dcontext"] = pd.Series(["x", float("nan"), 7, None], dtype=object)  # anything else: str
    lines = [line.split("\t") for line in "".join(copy_text_pieces(frame)).splitlines()]
    assert [line[LEG_COLUMN_NAMES.index("caller_name")] for line in lines] == ["a\\\\b", "\\N", "c\\td", ""]
    assert [line[LEG_COLUMN_NAMES.index("dcontext")] for line in lines] == ["x", "\\N", "7", "\\N"]


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
