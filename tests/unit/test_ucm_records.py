"""Pure parsing of cdrapi items and recording file lists."""

from __future__ import annotations

import json

import pytest

from audiapro.ucm.errors import UcmResponseError
from audiapro.ucm.records import (
    CdrPage,
    coerce_value,
    extract_cdr_items,
    page_signature,
    parse_cdr_items,
    parse_record_infos,
    parse_recordfiles,
    recording_basename,
)


def test_flat_leg_coerced_unknown_kept_missing_tolerated() -> None:
    page = parse_cdr_items([{"cdr": "", "AcctId": 12, "answer": None, "video_call": False, "new_field": "x"}])
    # The empty item marker "cdr" is dropped (sub_cdr legs never have it); other keys all kept.
    assert page.legs == [{"AcctId": "12", "answer": "", "video_call": "false", "new_field": "x"}]
    assert parse_cdr_items([{"cdr": "g7", "AcctId": "1"}]).legs == [{"cdr": "g7", "AcctId": "1"}]
    assert page.item_count == 1 and page.malformed == []


def test_coerce_value_variants() -> None:
    assert coerce_value(None) == ""
    assert coerce_value(1.5) == "1.5"
    assert coerce_value(True) == "true"
    assert coerce_value({"b": 1, "a": [2]}) == '{"a":[2],"b":1}'


def test_grouped_call_drops_main_cdr_and_orders_numerically() -> None:
    item = {
        "cdr": "",
        "main_cdr": {"AcctId": "", "src": "07700900123", "disposition": ""},
        "sub_cdr_10": {"AcctId": "110"},
        "sub_cdr_2": {"AcctId": "102"},
        "sub_cdr_1": {"AcctId": "101"},
        "sub_cdr_9": {"AcctId": "109"},
    }
    page = parse_cdr_items([item])
    assert [leg["AcctId"] for leg in page.legs] == ["101", "102", "109", "110"]
    assert page.item_count == 1 and page.leg_count == 4


def test_grouped_sub_cdr_may_be_an_array() -> None:
    item = {
        "main_cdr": {"AcctId": ""},
        "sub_cdr_1": [{"AcctId": "1", "x": None}, {"AcctId": "2"}],
        "sub_cdr_2": {"AcctId": "3"},
    }
    page = parse_cdr_items([item], offset=40)
    assert [leg["AcctId"] for leg in page.legs] == ["1", "2", "3"]
    assert page.legs[0]["x"] == "" and page.offset == 40


def test_grouped_without_main_cdr_still_grouped() -> None:
    page = parse_cdr_items([{"cdr": "", "sub_cdr_1": {"AcctId": "7"}}])
    assert page.legs == [{"AcctId": "7"}]


def test_non_dict_items_reported_with_position() -> None:
    page = parse_cdr_items(
        [{"AcctId": "1"}, 42, ["x"], {"main_cdr": {}, "sub_cdr_1": [{"AcctId": "2"}, "bad"]}]
    )
    assert [leg["AcctId"] for leg in page.legs] == ["1", "2"]
    assert [(m.position, m.path, m.value) for m in page.malformed] == [
        (1, "", 42),
        (2, "", ["x"]),
        (3, "sub_cdr_1[1]", "bad"),
    ]
    assert page.item_count == 4 and page.leg_count == 5


def test_grouped_without_legs_is_malformed_not_dropped() -> None:
    page = parse_cdr_items([{"cdr": "", "main_cdr": {"AcctId": "", "src": "1"}}])
    assert page.legs == []
    assert page.malformed[0].reason == "grouped call without sub_cdr legs"


def test_extract_items_shapes() -> None:
    assert extract_cdr_items({"cdr_root": [1]}) == [1]
    assert extract_cdr_items({"response": {"cdr_root": [2]}, "status": 0}) == [2]
    assert extract_cdr_items({"cdr": [3]}) == [3]
    assert extract_cdr_items({"cdr_root": {"AcctId": "1"}}) == [{"AcctId": "1"}]
    assert extract_cdr_items({"cdr_root": ""}) == []
    assert extract_cdr_items({"status": -6}) is None
    with pytest.raises(UcmResponseError):
        extract_cdr_items({"cdr_root": 5})


def test_page_signature() -> None:
    a = parse_cdr_items([{"AcctId": "1", "uniqueid": "1.1"}, {"AcctId": "2"}])
    b = parse_cdr_items([{"AcctId": "1", "uniqueid": "1.1"}, {"AcctId": "2"}], offset=2)
    c = parse_cdr_items([{"AcctId": "3"}, {"AcctId": "4"}])
    assert page_signature(a) == page_signature(b) != page_signature(c)
    assert page_signature(CdrPage(0, [], 1, parse_cdr_items([None]).malformed)) != page_signature(
        CdrPage(0, [], 1, parse_cdr_items(["x"]).malformed)
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03/a.wav@b.wav@", ["2025-03/a.wav", "b.wav"]),
        ("2026-02/auto-1770326441-1000-2815058290.wav@", ["2026-02/auto-1770326441-1000-2815058290.wav"]),
        ("", []),
        ("@", []),
        ("a.wav", ["a.wav"]),
        (" a.wav @@ b.wav", ["a.wav", "b.wav"]),
    ],
)
def test_parse_recordfiles(value: str, expected: list[str]) -> None:
    assert parse_recordfiles(value) == expected


def test_parse_record_infos() -> None:
    assert parse_record_infos("2025-03/a.wav,2025-03/b.wav@") == ["2025-03/a.wav", "2025-03/b.wav"]
    assert parse_record_infos(["x.wav@", "y.wav"]) == ["x.wav", "y.wav"]
    assert parse_record_infos(None) == [] and parse_record_infos("") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03/auto-1741079737#203-07700900123-6400.wav@", "auto-1741079737#203-07700900123-6400.wav"),
        ("b.wav", "b.wav"),
        ("a\\b\\c.wav", "c.wav"),
        ("2025-03/", ""),
        ("@", ""),
    ],
)
def test_recording_basename(value: str, expected: str) -> None:
    assert recording_basename(value) == expected


def test_group_with_empty_sub_cdr_lists_is_malformed_not_silent() -> None:
    page = parse_cdr_items([{"cdr": "", "main_cdr": {"AcctId": ""}, "sub_cdr_1": []}, {"AcctId": "9"}])
    assert [leg["AcctId"] for leg in page.legs] == ["9"]
    assert [(m.position, m.path, m.reason) for m in page.malformed] == [
        (0, "", "grouped call without sub_cdr legs")
    ]
    assert page.leg_count == 2  # the empty group still took a slot on the PBX side


def test_each_malformed_shape_reported_once_with_quarantine_fields() -> None:
    items = [
        {"AcctId": "1"},
        "<cdr unavailable>",
        7,
        {"cdr": "", "main_cdr": {"AcctId": ""}, "sub_cdr_1": "<cdr unavailable>"},
        {"cdr": "", "main_cdr": {"AcctId": "", "src": ""}},
    ]
    page = parse_cdr_items(items, offset=200)
    rows = [m.as_dict() for m in page.malformed]
    assert [(r["offset"], r["position"], r["record_number"], r["path"]) for r in rows] == [
        (200, 1, 202, ""),
        (200, 2, 203, ""),
        (200, 3, 204, "sub_cdr_1"),
        (200, 4, 205, ""),
    ]
    assert [r["reason"] for r in rows] == [
        "item is not an object",
        "item is not an object",
        "sub_cdr entry is not an object",
        "grouped call without sub_cdr legs",
    ]
    assert rows[3]["value"] == {"cdr": "", "main_cdr": {"AcctId": "", "src": ""}}
    assert json.loads(json.dumps(rows)) == rows  # storable as is


def test_malformed_value_is_always_json_serialisable() -> None:
    (bad,) = parse_cdr_items([{1, 2}]).malformed
    assert bad.value == repr({1, 2}) and bad.record_number == 1
    json.dumps(bad.as_dict())
