"""Saved cdrapi JSON replies -> raw-leg chunks: layouts, grouped calls, JSON Lines, streaming, rejects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from audiapro.cdr.normalize import REJECT_MARKER, NormalizeContext, normalize_frame
from audiapro.cdr.readers import ImportFormatError, RawChunk, detect_format, iter_cdr_file, jsonstream
from tests.unit.reader_support import read_traced


def leg(acct: int, **overrides: Any) -> dict[str, Any]:
    base = {
        "AcctId": str(acct),
        "src": "07700900123",
        "dst": "6400",
        "channel": f"PJSIP/trunk_2-{acct:08x}",
        "dstchannel": f"PJSIP/203-{acct:08x}",
        "lastapp": "Dial",
        "start": "2026-03-04 10:15:37",
        "answer": "2026-03-04 10:15:48",
        "end": "2026-03-04 10:16:29",
        "duration": "52",
        "billsec": "41",
        "disposition": "ANSWERED",
        "uniqueid": f"1772637337.{acct}",
        "userfield": "Inbound",
        "session": "1772637337924521-07700900123",
        "recordfiles": "",
    }
    base.update(overrides)
    return base


def summary() -> dict[str, Any]:
    return leg(0, AcctId="", uniqueid="", channel="", dstchannel="", disposition="", userfield="")


def grouped(*subs: Any, numbers: list[int] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"cdr": "", "main_cdr": summary()}
    for number, sub in zip(numbers or range(1, len(subs) + 1), subs, strict=True):
        item[f"sub_cdr_{number}"] = sub
    return item


def save(path: Path, document: Any, *, indent: int | None = None) -> Path:
    path.write_text(json.dumps(document, indent=indent), encoding="utf-8")
    return path


def read_all(path: Path, chunk_rows: int = 50_000) -> list[RawChunk]:
    return list(iter_cdr_file(path, chunk_rows=chunk_rows))


def rows(path: Path, chunk_rows: int = 50_000) -> list[tuple[int, str, str]]:
    """(position, AcctId, reject reason) of every row, in order."""
    out = []
    for chunk in read_all(path, chunk_rows):
        accts = chunk.frame["AcctId"] if "AcctId" in chunk.frame else pd.Series([""] * len(chunk))
        out += list(zip(chunk.positions, accts, chunk.frame[REJECT_MARKER], strict=True))
    return out


MIXED = {
    "cdr_root": [
        dict(leg(1), cdr=""),
        grouped(leg(2), leg(3)),
        dict(leg(4), cdr=""),
    ]
}


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize(
    "document",
    [
        MIXED,
        {"response": MIXED},
        {"response": MIXED, "status": 0},
        {"status": 0, "response": MIXED},
        {"cdr": MIXED["cdr_root"]},
        MIXED["cdr_root"],
    ],
    ids=["cdr_root", "response", "response+status", "status+response", "legacy cdr", "bare list"],
)
def test_every_layout_gives_the_legs_in_file_order(tmp_path: Path, document: Any, indent: int | None) -> None:
    path = save(tmp_path / "reply.json", document, indent=indent)
    assert detect_format(path) == "json"
    assert rows(path) == [(1, "1", ""), (2, "2", ""), (3, "3", ""), (4, "4", "")]


def test_values_are_strings_and_raw_json_is_the_leg(tmp_path: Path) -> None:
    odd = leg(7, duration=52, billsec=41.0, recordfiles=None, video_call=False, extra={"a": [1]})
    (chunk,) = read_all(save(tmp_path / "x.json", {"cdr_root": [odd]}))
    record = chunk.frame.iloc[0]
    assert (record["duration"], record["billsec"], record["recordfiles"]) == ("52", "41.0", "")
    assert (record["video_call"], record["extra"]) == ("false", '{"a":[1]}')
    assert all(str(dtype) == "str" for dtype in chunk.frame.dtypes)
    raw = json.loads(chunk.raw_json[0])
    assert raw["AcctId"] == "7" and raw["duration"] == "52"


def test_grouped_calls_drop_the_summary_and_order_sub_legs_numerically(tmp_path: Path) -> None:
    item = grouped(leg(10), leg(11), leg(12), numbers=[10, 2, 1])
    path = save(tmp_path / "x.json", {"cdr_root": [item, dict(leg(13), cdr="")]})
    assert rows(path) == [(1, "12", ""), (2, "11", ""), (3, "10", ""), (4, "13", "")]


def test_sub_cdr_arrays_and_non_object_entries(tmp_path: Path) -> None:
    item = grouped([leg(2), "oops", leg(3)], leg(4))
    path = save(tmp_path / "x.json", {"cdr_root": [item, 42, dict(leg(5), cdr="")]})
    result = rows(path)
    assert result == [
        (1, "2", ""),
        (2, "3", ""),
        (3, "4", ""),
        (4, "", "sub_cdr entry is not an object (sub_cdr_1[1])"),
        (5, "", "item is not an object"),
        (6, "5", ""),
    ]
    chunk = read_all(path)[0]
    assert [json.loads(chunk.raw_json[i]) for i in (3, 4)] == ["oops", 42]


def test_summary_without_legs_is_rejected_not_lost(tmp_path: Path) -> None:
    path = save(tmp_path / "x.json", {"cdr_root": [{"cdr": "", "main_cdr": summary()}]})
    assert rows(path) == [(1, "", "grouped call without sub_cdr legs")]


def test_a_file_holding_one_leg_or_one_group(tmp_path: Path) -> None:
    assert rows(save(tmp_path / "a.json", dict(leg(1), cdr=""), indent=2)) == [(1, "1", "")]
    assert rows(save(tmp_path / "b.json", grouped(leg(2), leg(3)))) == [(1, "2", ""), (2, "3", "")]


def test_json_lines_with_blank_invalid_and_page_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps(dict(leg(1), cdr="")),
        "",
        json.dumps(grouped(leg(2), leg(3))),
        '{"AcctId": "4", broken',
        json.dumps({"cdr_root": [leg(5), leg(6)]}),  # a whole saved page on one line
        "[1, 2]",
        json.dumps(leg(7)),
    ]
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = rows(path, chunk_rows=3)
    assert [(pos, acct) for pos, acct, _ in result] == [
        (1, "1"), (2, "2"), (3, "3"), (4, ""), (5, "5"), (6, "6"), (7, ""), (8, "7"),
    ]  # fmt: skip
    assert result[3][2].startswith("line 4 is not valid JSON")
    assert result[6][2] == "item is not an object"
    chunks = read_all(path)
    assert json.loads(chunks[0].raw_json[3]) == {"__unparsed__": '{"AcctId": "4", broken'}


def test_json_lines_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    text = "\r\n".join(json.dumps(leg(n)) for n in (1, 2)) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert rows(path) == [(1, "1", ""), (2, "2", "")]


def with_bytes(document_text: str, marker: str, raw: bytes) -> bytes:
    """UTF-8 text of ``document_text`` with ``marker`` replaced by the raw bytes ``raw``."""
    return document_text.encode("utf-8").replace(marker.encode(), raw)


def test_a_leg_holding_bytes_that_are_not_utf8_is_quarantined_alone(tmp_path: Path) -> None:
    document = {"cdr_root": [leg(1), grouped(leg(2), leg(3, caller_name="Jos@@"), leg(4)), leg(5)]}
    path = tmp_path / "x.json"
    path.write_bytes(with_bytes(json.dumps(document, indent=1), "@@", b"\xe9"))  # saved in Latin-1
    result = rows(path, chunk_rows=2)
    assert [(pos, acct, reason) for pos, acct, reason in result] == [
        (1, "1", ""), (2, "2", ""), (3, "", "invalid UTF-8 byte 0xE9 in column 'caller_name'"), (4, "4", ""),
        (5, "5", ""),
    ]  # fmt: skip
    raw = json.loads(read_all(path)[0].raw_json[2])
    assert (raw["AcctId"], raw["caller_name"]) == ("3", "Jos\\xe9")


def test_json_lines_with_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    lines = [
        json.dumps(leg(1)),
        json.dumps(leg(2, caller_name="Jos@@")),
        '{"AcctId": @@}',
        json.dumps(leg(4)),
    ]
    path = tmp_path / "x.jsonl"
    path.write_bytes(with_bytes("\n".join(lines) + "\n", "@@", b"\xff"))
    result = rows(path)
    assert [(pos, acct) for pos, acct, _ in result] == [(1, "1"), (2, ""), (3, ""), (4, "4")]
    assert result[1][2] == "invalid UTF-8 byte 0xFF in column 'caller_name'"
    assert result[2][2].startswith("line 3 is not valid JSON")
    assert json.loads(read_all(path)[0].raw_json[2]) == {"__unparsed__": '{"AcctId": \\xff}'}


def test_a_byte_that_is_not_utf8_outside_a_string_breaks_the_document(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(with_bytes(json.dumps({"cdr_root": [leg(1), leg(2)]}, indent=1), '"2"', b"\xe9"))
    with pytest.raises(ImportFormatError, match=r"is not a readable JSON document: .* \(line \d+\)"):
        read_all(path)


def test_empty_list_gives_no_chunks(tmp_path: Path) -> None:
    assert read_all(save(tmp_path / "x.json", {"cdr_root": []})) == []
    assert read_all(save(tmp_path / "y.json", [])) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"response": {"error_msg": "Invalid parameters!"}, "status": -1}', r"UCM error reply \(status -1"),
        ('{"status": -6}', r"status -6"),
        ('{"foo": 1}', r"holds no CDR list.*has 1 key, none of them cdr_root, cdr\."),  # keys unquoted
        ('{"cdr_root": 5}', r"'cdr_root' holds int"),
        ('{"cdr_root": [{"AcctId": "1"},\n {"AcctId": "2"}', r"line 2"),
        ('{"cdr_root": [{"AcctId": "1"}}', r"expected ',' or '\]'"),
        ('{"cdr_root": [{"AcctId": "1"}]} trailing', r"unexpected text after the end"),
        ("[1, 2,]", r"Expecting value"),
        ('{"cdr_root": [{"AcctId": "1}]}', r"Unterminated string"),
        ("{'single': 'quotes'}", r"expected an object key"),
    ],
)
def test_whole_file_problems_raise_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ImportFormatError, match=message):
        read_all(path)


def tricky_document() -> dict[str, Any]:
    """Values that straddle read blocks in every way: escapes, brackets in strings, numbers, unicode."""
    items: list[Any] = []
    for n in range(1, 40):
        extra = {
            "lastdata": 'PJSIP/203,60,"tT"] }{ [ \\ \u00e9\u4e2d\U0001f600',
            "number": 1234567890 + n,
            "flag": n % 2 == 0,
            "nothing": None,
        }
        items.append(grouped(leg(n, **extra), leg(1000 + n)) if n % 5 == 0 else dict(leg(n, **extra), cdr=""))
        if n % 13 == 0:
            items.append([n, "not an item"])
    return {"status": 0, "junk": {"nested": [1, 2, {"cdr_root": "ignored"}]}, "cdr_root": items}


@pytest.mark.parametrize("block_chars", [1, 2, 3, 7, 64, 4096])
@pytest.mark.parametrize("indent", [None, 1])
def test_streaming_is_independent_of_read_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_chars: int, indent: int | None
) -> None:
    path = save(tmp_path / "x.json", tricky_document(), indent=indent)
    expected = read_all(path)
    monkeypatch.setattr(jsonstream, "READ_BLOCK_CHARS", block_chars)
    got = read_all(path)
    assert len(got) == len(expected) == 1
    pd.testing.assert_frame_equal(got[0].frame, expected[0].frame)
    assert got[0].positions == expected[0].positions
    assert got[0].raw_json == expected[0].raw_json
    frame = got[0].frame
    assert frame.loc[0, "lastdata"] == 'PJSIP/203,60,"tT"] }{ [ \\ \u00e9\u4e2d\U0001f600'
    assert frame.loc[0, "number"] == "1234567891"
    assert (frame[REJECT_MARKER] != "").sum() == 3


def test_a_value_larger_than_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "x.json", {"cdr_root": [leg(1, lastdata="x" * 5000)]})
    monkeypatch.setattr(jsonstream, "READ_BLOCK_CHARS", 100)
    monkeypatch.setattr(jsonstream, "MAX_VALUE_CHARS", 1000)
    with pytest.raises(ImportFormatError, match="larger than"):
        read_all(path)


@pytest.mark.parametrize("chunk_rows", [1, 2, 7, 1000])
def test_chunking_returns_the_same_rows_as_one_chunk(tmp_path: Path, chunk_rows: int) -> None:
    path = save(tmp_path / "x.json", tricky_document())
    (whole,) = read_all(path)
    chunks = read_all(path, chunk_rows)
    assert all(0 < len(chunk) <= chunk_rows for chunk in chunks)
    assert [p for c in chunks for p in c.positions] == whole.positions == list(range(1, len(whole) + 1))
    assert [r for c in chunks for r in c.raw_json] == whole.raw_json
    joined = pd.concat([c.frame for c in chunks], ignore_index=True).fillna("")
    pd.testing.assert_frame_equal(joined[list(whole.frame.columns)], whole.frame, check_dtype=False)


def test_memory_stays_bounded_while_streaming_a_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 12_000
    path = tmp_path / "big.json"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"cdr_root": [')
        fh.write(",".join(json.dumps(leg(n)) for n in range(count)))
        fh.write("]}")
    monkeypatch.setattr(jsonstream, "READ_BLOCK_CHARS", 8_192)
    read = read_traced(path, chunk_rows=200)
    peak = read.peak_bytes
    assert read.rows == count
    size = path.stat().st_size
    print(f"\nJSON document {size / 1e6:.1f} MB streamed with peak traced {peak / 1e6:.1f} MB")
    assert peak < size / 4


def test_round_trip_through_normalize_frame(tmp_path: Path) -> None:
    document = {"cdr_root": [grouped(leg(1), leg(2, disposition="NO ANSWER", answer="", billsec="0")), 7]}
    ctx = NormalizeContext(tenant="acme", timezone="America/New_York", source="json")
    (chunk,) = read_all(save(tmp_path / "x.json", document))
    batch = normalize_frame(chunk.frame, ctx, positions=chunk.positions, raw_json=chunk.raw_json)
    assert batch.legs["acct_id"].tolist() == ["1", "2"]
    assert batch.legs["disposition"].tolist() == ["ANSWERED", "NO ANSWER"]
    assert batch.legs.iloc[0]["start_at"] == pd.Timestamp("2026-03-04 15:15:37", tz="UTC")
    assert json.loads(batch.legs.iloc[1]["raw"])["AcctId"] == "2"
    assert batch.rejects[["position", "reason", "raw"]].to_dict("records") == [
        {"position": 3, "reason": "item is not an object", "raw": "7"}
    ]
