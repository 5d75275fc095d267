"""Web-UI CSV exports -> raw-leg chunks: headers, encodings, exact line numbers, bad rows, chunking."""

from __future__ import annotations

import csv
import hashlib
import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from audiapro.cdr.normalize import REJECT_MARKER, NormalizeContext, normalize_frame
from audiapro.cdr.readers import (
    ImportFormatError,
    RawChunk,
    csvfile,
    detect_format,
    file_sha256,
    iter_cdr_file,
)
from audiapro.cdr.readers.common import ENCODING_SAMPLE_BYTES, MAX_UNDECODABLE_LINE_SHARE, UNPARSED_KEY
from tests.unit.reader_support import read_traced

MODERN_HEADERS = [
    "Account Code", "Caller Number", "Caller NAT", "Callee Number", "Callee NAT", "Context", "Caller ID",
    "Source Channel", "Dest. Channel", "Last app.", "Last data", "Start Time", "Answer Time", "End Time",
    "Call Time", "Talk Time", "Call Status", "AMA Flags", "Unique ID", "Call Type", "Dest Channel Extension",
    "Caller Name", "Answered by", "Session", "Premier Caller", "Action Type", "Source Trunk Name",
    "Destination Trunk Name",
]  # fmt: skip
MODERN_ROW = [
    "", "07700900123", "no", "6400", "no", "ext-did-2", '"Jane" <07700900123>', "PJSIP/trunk_2-000004f0",
    "PJSIP/203-000004f1", "Dial", "PJSIP/203,60,tT", "2026-03-04 10:15:37", "2026-03-04 10:15:48",
    "2026-03-04 10:16:29", "52", "41", "ANSWERED", "DOCUMENTATION", "1772637337.2671", "Inbound", "203",
    "Jane", "203", "1772637337924521-07700900123", "", "RINGGROUP[6400]", "Carrier", "",
]  # fmt: skip
MODERN_FIELDS = [
    "accountcode", "src", "caller_nat", "dst", "callee_nat", "dcontext", "clid", "channel", "dstchannel",
    "lastapp", "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield", "dstchannel_ext", "caller_name", "dstanswer", "session", "premier_caller",
    "action_type", "src_trunk_name", "dst_trunk_name",
]  # fmt: skip
KEY_HEADERS = ["Unique ID", "Source Channel", "Dest. Channel", "Start Time", "Last app."]


def write(path: Path, text: str, *, bom: bool = False, encoding: str = "utf-8") -> Path:
    """Write text byte-exactly (no newline translation)."""
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def csv_text(rows: list[list[str]], *, newline: str = "\n") -> str:
    lines = []
    for row in rows:
        cells = []
        for cell in row:
            if any(ch in cell for ch in ',"\r\n'):
                cell = '"' + cell.replace('"', '""') + '"'
            cells.append(cell)
        lines.append(",".join(cells))
    return newline.join(lines) + newline


def key_row(line: int, *, start: str = "2026-03-04 10:15:37") -> list[str]:
    """A five-key-column row whose Unique ID encodes the physical line it is written on."""
    return [f"{line}.7", f"PJSIP/203-{line:08x}", f"PJSIP/204-{line:08x}", start, "Dial"]


def read_all(path: Path, chunk_rows: int = 50_000) -> list[RawChunk]:
    return list(iter_cdr_file(path, chunk_rows=chunk_rows))


def one_chunk(path: Path) -> RawChunk:
    chunks = read_all(path)
    assert len(chunks) == 1
    return chunks[0]


def rejects_of(chunk: RawChunk) -> list[tuple[int, str]]:
    marks = chunk.frame[REJECT_MARKER].tolist()
    return [(pos, mark) for pos, mark in zip(chunk.positions, marks, strict=True) if mark]


# --- headers and values ------------------------------------------------------------------------------


def test_modern_export_maps_every_column_and_keeps_values_as_strings(tmp_path: Path) -> None:
    path = write(tmp_path / "cdr.csv", csv_text([MODERN_HEADERS, MODERN_ROW]))
    chunk = one_chunk(path)
    assert list(chunk.frame.columns) == [*MODERN_FIELDS, REJECT_MARKER]
    assert chunk.frame.iloc[0].tolist() == [*MODERN_ROW, ""]
    assert all(str(dtype) == "str" for dtype in chunk.frame.dtypes)
    assert chunk.positions == [2]
    assert json.loads(chunk.raw_json[0]) == dict(zip(MODERN_HEADERS, MODERN_ROW, strict=True))


def test_legacy_headers_and_durations_as_clock_text_stay_strings(tmp_path: Path) -> None:
    headers = ["Call From", "Call To", "Source Channel", "Dest Channel", "Last App", "Start Time",
               "Call Time", "Talk Time", "Disposition", "Unique ID", "Dest Trunk Name"]  # fmt: skip
    row = ["203", "204", "SIP/203-1", "SIP/204-2", "Dial", "2014-01-02 09:00", "0:01:05", "00:58",
           "NO ANSWER", "1388653200.5", ""]  # fmt: skip
    chunk = one_chunk(write(tmp_path / "old.csv", csv_text([headers, row])))
    fields = ["src", "dst", "channel", "dstchannel", "lastapp", "start", "duration", "billsec",
              "disposition", "uniqueid", "dst_trunk_name"]  # fmt: skip
    assert chunk.frame[fields].iloc[0].tolist() == row


def test_odd_spacing_case_and_punctuation(tmp_path: Path) -> None:
    headers = ["  UNIQUE id", "source_channel", "dest.channel", "START-TIME ", "last APP.", "Status"]
    row = ["1.1", "a", "b", "2026-03-04 10:15:37", "Dial", "BUSY"]
    chunk = one_chunk(write(tmp_path / "odd.csv", csv_text([headers, row])))
    fields = ["uniqueid", "channel", "dstchannel", "start", "lastapp", "disposition", REJECT_MARKER]
    assert list(chunk.frame.columns) == fields
    assert list(json.loads(chunk.raw_json[0])) == headers  # raw JSON keeps the file's own spelling


def test_api_style_headers_are_taken_as_they_are(tmp_path: Path) -> None:
    headers = ["AcctId", "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
               "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
               "uniqueid", "userfield", "channel_ext", "dstchannel_ext", "service", "session"]  # fmt: skip
    row = ["1201", "", "203", "71", "from-internal", '"203 Reception" <203>', "PJSIP/203-000004eb", "",
           "ParkedCall", "default,71", "2025-03-04 09:35:07", "2025-03-04 09:35:07", "2025-03-04 09:35:38",
           "31", "31", "ANSWERED", "DOCUMENTATION", "1741077307.2651", "Internal", "203", "71", "s",
           "1741077307767640-203"]  # fmt: skip
    chunk = one_chunk(write(tmp_path / "api.csv", csv_text([headers, row])))
    assert list(chunk.frame.columns) == [*headers, REJECT_MARKER]
    assert chunk.frame.iloc[0].tolist()[:-1] == row


def test_column_subset_and_unknown_columns(tmp_path: Path) -> None:
    headers = ["Last app.", "Recording File", "Unique ID", "Start Time", "Dest. Channel", "Source Channel"]
    row = ["Dial", "2026-03/a.wav", "1.1", "2026-03-04 10:15:37", "", "PJSIP/1-1"]
    chunk = one_chunk(write(tmp_path / "subset.csv", csv_text([headers, row])))
    assert list(chunk.frame.columns) == ["lastapp", "recording_file", "uniqueid", "start", "dstchannel",
                                         "channel", REJECT_MARKER]  # fmt: skip
    assert chunk.frame["dstchannel"].tolist() == [""]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_bom_crlf_and_trailing_empty_line(tmp_path: Path, newline: str, bom: bool) -> None:
    text = csv_text([KEY_HEADERS, key_row(2), key_row(3)], newline=newline) + newline
    chunk = one_chunk(write(tmp_path / "x.csv", text, bom=bom))
    assert chunk.positions == [2, 3]
    assert chunk.frame["uniqueid"].tolist() == ["2.7", "3.7"]
    assert chunk.frame["lastapp"].tolist() == ["Dial", "Dial"]  # no "\r" left on the last field
    assert next(iter(json.loads(chunk.raw_json[0]))) == "Unique ID"  # no BOM in the first header
    assert rejects_of(chunk) == []


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_delimited_files(tmp_path: Path, delimiter: str) -> None:
    text = "\n".join(delimiter.join(row) for row in [KEY_HEADERS, key_row(2)]) + "\n"
    chunk = one_chunk(write(tmp_path / "x.csv", text))
    assert chunk.frame["uniqueid"].tolist() == ["2.7"]


def test_excel_sep_line_is_skipped_and_counted(tmp_path: Path) -> None:
    text = "sep=;\n" + "\n".join(";".join(row) for row in [KEY_HEADERS, key_row(3)]) + "\n"
    chunk = one_chunk(write(tmp_path / "x.csv", text))
    assert chunk.positions == [3]
    assert chunk.frame["uniqueid"].tolist() == ["3.7"]


def test_synthetic_main_cdr_rows_are_not_legs(tmp_path: Path) -> None:
    headers = ["cdr", *KEY_HEADERS, "Session"]
    rows = [
        headers,
        ["main_cdr", "", "", "", "2026-03-04 10:15:37", "", "s1"],  # summary: no channel identity
        ["sub_cdr", *key_row(3), "s1"],
        ["sub_cdr", *key_row(4), "s1"],
        ["main_cdr", *key_row(5), "s2"],  # a main row that is a real leg is kept
    ]
    chunk = one_chunk(write(tmp_path / "x.csv", csv_text(rows)))
    assert chunk.positions == [3, 4, 5]
    assert chunk.frame["uniqueid"].tolist() == ["3.7", "4.7", "5.7"]
    assert len(chunk.raw_json) == 3


# --- whole-file problems -----------------------------------------------------------------------------


def test_missing_key_columns_are_named_with_their_ui_names(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", csv_text([["Caller Number", "Source Channel", "Start Time", "Last App"],
                                               ["203", "a", "2026-03-04 10:15:37", "Dial"]]))  # fmt: skip
    with pytest.raises(ImportFormatError) as caught:
        next(iter_cdr_file(path))
    message = str(caught.value)
    assert message.startswith(
        "CDR file lacks columns needed to identify a leg: Unique ID (uniqueid), Dest. Channel (dstchannel)."
    )
    assert "Found: 'Caller Number', 'Source Channel', 'Start Time', 'Last App'" in message
    assert '"Export File Data"' in message


def test_lastapp_is_required(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", csv_text([KEY_HEADERS[:4], key_row(2)[:4]]))
    with pytest.raises(ImportFormatError, match=r"Last app\. \(lastapp\)"):
        read_all(path)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "\ufeff"])
def test_empty_files_are_rejected(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "x.csv", text)
    with pytest.raises(ImportFormatError, match="empty"):
        read_all(path)


def test_header_only_gives_no_chunks(tmp_path: Path) -> None:
    assert read_all(write(tmp_path / "x.csv", csv_text([KEY_HEADERS]))) == []


def test_a_row_with_a_byte_that_is_not_utf8_is_quarantined_and_the_rest_loads(tmp_path: Path) -> None:
    rows = [KEY_HEADERS, key_row(2), key_row(3), [*key_row(4)[:2], "Jos\u00e9", *key_row(4)[3:]], key_row(5)]
    path = write(tmp_path / "x.csv", csv_text(rows), encoding="latin-1")  # one value saved in Latin-1
    chunk = one_chunk(path)
    assert chunk.positions == [2, 3, 4, 5]
    assert rejects_of(chunk) == [(4, "invalid UTF-8 byte 0xE9 in column 'Dest. Channel'")]
    assert chunk.frame["uniqueid"].tolist() == ["2.7", "3.7", "", "5.7"]
    # The raw line is kept, its bad byte written out as text.
    raw = "4.7,PJSIP/203-00000004,Jos\\xe9,2026-03-04 10:15:37,Dial"
    assert json.loads(chunk.raw_json[2]) == {UNPARSED_KEY: raw}
    assert [text.encode("utf-8") for text in chunk.raw_json]  # valid text throughout


def export_with_bad_bytes(
    path: Path, rows: int, bad: dict[int, bytes], multiline: frozenset[int] = frozenset()
) -> list[tuple[int, str]]:
    """Write an export of ``rows`` data rows; row ``i`` in ``bad`` gets those bytes in its Dest.
    Channel, rows in ``multiline`` a quoted two-line Source Channel. Returns the expected rejects."""
    out, expected, line = [",".join(KEY_HEADERS).encode() + b"\n"], [], 2
    for i in range(rows):
        row = key_row(line)
        if i in multiline:
            row[1] = "two\nlines"
        text = csv_text([row]).encode()
        if i in bad:
            text = text.replace(row[2].encode(), b"x" + bad[i] + b"y")
            expected.append((line, f"invalid UTF-8 byte 0x{bad[i][0]:02X} in column 'Dest. Channel'"))
        out.append(text)
        line += text.count(b"\n")
    path.write_bytes(b"".join(out))
    return expected


#: Bad bytes in the first row (decoded with the header), past the first batch and the decoder's
#: read-ahead, at a batch boundary, inside a multi-line record, a character cut short, two in a row.
BAD_ROWS = {
    0: b"\xe9",
    900: b"\xe9",
    1023: b"\xe9",
    1024: b"\x80",
    2500: b"\xe9",
    2600: b"\xc3",
    2700: b"\xff\xfe",
}


@pytest.mark.parametrize("chunk_rows", [7, 1000, 50_000])
def test_bad_bytes_anywhere_cost_only_their_rows(tmp_path: Path, chunk_rows: int) -> None:
    path = tmp_path / "x.csv"
    expected = export_with_bad_bytes(path, 3000, BAD_ROWS, multiline=frozenset({2499, 2500}))
    # The last row ends the file in the middle of a character (no line break).
    path.write_bytes(path.read_bytes() + b"9.9,a,b,2026-03-04 10:15:37,Dial\xe2\x82")
    after_rows = 1 + 3000 + 2  # the header, one line per row, one more per multi-line row
    expected.append((after_rows + 1, "invalid UTF-8 byte 0xE2 in column 'Last app.'"))
    chunks = read_all(path, chunk_rows)
    assert [r for chunk in chunks for r in rejects_of(chunk)] == expected
    uniqueids = [u for chunk in chunks for u in chunk.frame["uniqueid"] if u]
    assert len(uniqueids) == 3000 - len(BAD_ROWS) and len(set(uniqueids)) == len(uniqueids)


def test_the_reader_may_move_between_threads(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    expected = export_with_bad_bytes(path, 3000, BAD_ROWS)
    chunks = iter_cdr_file(path, chunk_rows=300)
    produced: list[RawChunk | None] = []

    def produce_one() -> None:
        produced.append(next(chunks, None))

    while not produced or produced[-1] is not None:  # every chunk produced in a thread of its own
        thread = threading.Thread(target=produce_one)
        thread.start()
        thread.join()
    assert [r for chunk in produced if chunk is not None for r in rejects_of(chunk)] == expected


def test_a_file_mostly_not_utf8_is_refused_before_any_chunk(tmp_path: Path) -> None:
    rows = 10  # the header and 10 rows: 11 lines
    limit = int(MAX_UNDECODABLE_LINE_SHARE * (rows + 1))
    accepted = export_with_bad_bytes(tmp_path / "half.csv", rows, dict.fromkeys(range(limit), b"\xe9"))
    assert [r for chunk in read_all(tmp_path / "half.csv") for r in rejects_of(chunk)] == accepted
    export_with_bad_bytes(tmp_path / "latin1.csv", rows, dict.fromkeys(range(limit + 1), b"\xe9"))
    message = (
        rf"not UTF-8 text: byte 0xE9 on line 2 cannot be decoded, like {limit} more of its first 11 lines"
    )
    with pytest.raises(ImportFormatError, match=message):
        next(iter_cdr_file(tmp_path / "latin1.csv"))


def test_one_bad_row_after_the_header_is_a_row_not_a_refusal(tmp_path: Path) -> None:
    expected = export_with_bad_bytes(tmp_path / "x.csv", 1, {0: b"\xe9"})  # 1 of 2 lines
    assert [r for chunk in read_all(tmp_path / "x.csv") for r in rejects_of(chunk)] == expected


def test_a_character_cut_by_the_end_of_the_sample_is_no_error(tmp_path: Path) -> None:
    # Three lines in the sample: the header, a row with a bad byte, and a long row whose "é"s run
    # past the sample's end, cut within one. Only one line of three is bad: the file loads.
    head = csv_text([KEY_HEADERS]).encode() + csv_text([key_row(2)]).encode().replace(b"PJSIP/204", b"\xe9")
    start = head + b"3.7,PJSIP/203-3,"
    pad = b"x" * ((ENCODING_SAMPLE_BYTES - len(start) - 1) % 2)  # the sample ends after a lead byte
    long_value = pad + "\u00e9".encode() * (ENCODING_SAMPLE_BYTES // 2)
    path = write_bytes(tmp_path / "x.csv", start + long_value + b",2026-03-04 10:15:37,Dial\n")
    assert path.read_bytes()[ENCODING_SAMPLE_BYTES - 1] == 0xC3
    chunk = one_chunk(path)
    assert rejects_of(chunk) == [(2, "invalid UTF-8 byte 0xE9 in column 'Dest. Channel'")]
    assert chunk.frame["uniqueid"].tolist() == ["", "3.7"]


def test_a_header_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(
        ",".join(KEY_HEADERS).encode() + b",Caller N\xe4me\n" + csv_text([[*key_row(2), "x"]]).encode()
    )
    with pytest.raises(
        ImportFormatError, match=r"header row \(line 1\) is not UTF-8 text: invalid UTF-8 byte 0xE4"
    ):
        read_all(path)


def test_utf16_without_byte_order_mark_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(csv_text([KEY_HEADERS, key_row(2)]).encode("utf-16-le"))
    with pytest.raises(ImportFormatError, match="not UTF-8 text: it holds NUL bytes"):
        read_all(path)


def test_utf16_file_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xff\xfe" + csv_text([KEY_HEADERS, key_row(2)]).encode("utf-16-le"))
    with pytest.raises(ImportFormatError, match="UTF-16"):
        read_all(path)


def test_chunk_rows_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_rows"):
        iter_cdr_file(tmp_path / "whatever.csv", chunk_rows=0)


# --- line numbers and bad rows -----------------------------------------------------------------------

TRICKY = (
    "Unique ID,Source Channel,Dest. Channel,Start Time,Last app.,Last data\r\n"  # 1
    "2.7,a,b,2026-03-04 10:15:37,Dial,x\r\n"  # 2
    '3.7,"multi\r\nline\r\nchannel",b,2026-03-04 10:15:37,Dial,"has ""quotes"", commas"\r\n'  # 3-5
    "\r\n"  # 6 blank
    "7.7,a,b,2026-03-04 10:15:37,Dial\r\n"  # 7 short
    '8.7,a,b,2026-03-04 10:15:37,Dial,"x\ny",extra\r\n'  # 8-9 long, spans two lines
    "10.7,a,b,2026-03-04 10:15:37,Dial,\r\n"  # 10
    "   \r\n"  # 11 whitespace only: blank
    '12.7,a,"b\rc",2026-03-04 10:15:37,Dial,lone CR inside quotes\r\n'  # 12-13
    "14.7,a,b,2026-03-04 10:15:37,Dial,last line without break"  # 14
)


def test_line_numbers_are_exact_with_multiline_fields_blank_lines_and_bad_rows(tmp_path: Path) -> None:
    chunk = one_chunk(write(tmp_path / "x.csv", TRICKY))
    assert chunk.positions == [2, 3, 7, 8, 10, 12, 14]
    assert rejects_of(chunk) == [(7, "row has 5 fields, header has 6"), (8, "row has 7 fields, header has 6")]
    good = chunk.frame[chunk.frame[REJECT_MARKER] == ""]
    assert good["uniqueid"].tolist() == ["2.7", "3.7", "10.7", "12.7", "14.7"]
    assert good["channel"].tolist()[1] == "multi\r\nline\r\nchannel"
    assert good["lastdata"].tolist()[1] == 'has "quotes", commas'
    # bad rows: fields empty in the frame, everything kept in the raw JSON
    bad = chunk.frame[chunk.frame[REJECT_MARKER] != ""]
    assert set(bad.drop(columns=REJECT_MARKER).to_numpy().ravel()) == {""}
    assert json.loads(chunk.raw_json[2]) == {
        "Unique ID": "7.7", "Source Channel": "a", "Dest. Channel": "b",
        "Start Time": "2026-03-04 10:15:37", "Last app.": "Dial",
    }  # fmt: skip
    assert json.loads(chunk.raw_json[3])["__extra_fields__"] == ["extra"]
    assert json.loads(chunk.raw_json[3])["Last data"] == "x\ny"


def test_every_bad_row_is_kept_and_good_rows_all_present(tmp_path: Path) -> None:
    lines = [",".join(KEY_HEADERS)]
    expected_bad = []
    for line in range(2, 3002):
        row = key_row(line)
        if line % 97 == 0:
            row = row[:3]
            expected_bad.append(line)
        elif line % 101 == 0:
            row = [*row, "surplus"]
            expected_bad.append(line)
        lines.append(",".join(row))
    path = write(tmp_path / "x.csv", "\n".join(lines) + "\n")
    chunks = read_all(path, chunk_rows=700)
    positions = [pos for chunk in chunks for pos in chunk.positions]
    assert positions == list(range(2, 3002))
    bad = [pos for chunk in chunks for pos, _ in rejects_of(chunk)]
    assert bad == expected_bad
    for chunk in chunks:  # Unique ID encodes the line: every good row carries its own line
        good = chunk.frame[REJECT_MARKER] == ""
        ids = chunk.frame["uniqueid"][good].tolist()
        assert ids == [f"{pos}.7" for pos, ok in zip(chunk.positions, good, strict=True) if ok]


def test_runaway_quote_is_one_reject_and_reading_resumes(tmp_path: Path) -> None:
    limit = csv.field_size_limit()
    filler = [",".join(key_row(line)) for line in range(4, 4 + limit // 40 + 200)]
    lines = [
        ",".join(KEY_HEADERS),
        ",".join(key_row(2)),
        '3.7,"unterminated,b,2026-03-04 10:15:37,Dial',
        *filler,
    ]
    path = write(tmp_path / "x.csv", "\n".join(lines) + "\n")
    chunks = read_all(path, chunk_rows=1000)
    rejects = [item for chunk in chunks for item in rejects_of(chunk)]
    assert len(rejects) == 1
    assert rejects[0][0] == 3 and "field larger than field limit" in rejects[0][1]
    reject_raw = next(
        json.loads(raw)
        for chunk in chunks
        for raw, mark in zip(chunk.raw_json, chunk.frame[REJECT_MARKER], strict=True)
        if mark
    )
    assert reject_raw["__unparsed__"].startswith('3.7,"unterminated')
    positions = [pos for chunk in chunks for pos in chunk.positions]
    assert positions[0] == 2 and positions[1] == 3
    resumed = positions[2:]
    assert resumed == list(range(resumed[0], 4 + len(filler)))  # contiguous to the end of the file
    last = chunks[-1]
    assert last.frame["uniqueid"].iloc[-1] == f"{last.positions[-1]}.7"


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 512])
@pytest.mark.parametrize("chunk_rows", [1, 2, 5, 64, 100_000])
def test_chunking_returns_the_same_rows_as_one_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int, batch_rows: int
) -> None:
    header, body = TRICKY.split("\r\n", 1)
    path = write(tmp_path / "x.csv", header + "\r\n" + (body + "\r\n") * 9)
    whole = one_chunk(path)
    monkeypatch.setattr(csvfile, "BATCH_ROWS", batch_rows)
    chunks = read_all(path, chunk_rows=chunk_rows)
    assert all(0 < len(chunk) <= chunk_rows for chunk in chunks)
    assert all(len(c.frame) == len(c.positions) == len(c.raw_json) for c in chunks)
    joined = pd.concat([chunk.frame for chunk in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole.frame)
    assert [pos for chunk in chunks for pos in chunk.positions] == whole.positions
    assert [raw for chunk in chunks for raw in chunk.raw_json] == whole.raw_json


# --- formats, hashing ----------------------------------------------------------------------------------


def test_detect_format_by_content(tmp_path: Path) -> None:
    assert detect_format(write(tmp_path / "a.json", csv_text([KEY_HEADERS]))) == "csv"
    assert detect_format(write(tmp_path / "b.csv", '  \n {"cdr_root": []}', bom=True)) == "json"
    assert detect_format(write(tmp_path / "c.txt", '[{"src": "1"}]')) == "json"
    with pytest.raises(ImportFormatError, match="empty"):
        detect_format(write(tmp_path / "d.csv", " \r\n\t"))


def test_file_sha256_matches_hashlib_on_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 20_000 + b"tail"  # > several read blocks
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) == hashlib.sha256(data).hexdigest()


# --- scale ---------------------------------------------------------------------------------------------


def test_memory_stays_bounded_by_the_chunk_size(tmp_path: Path) -> None:
    rows = 300_000
    path = tmp_path / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*KEY_HEADERS, "Call Time"])
        writer.writerows([*key_row(line), "31"] for line in range(2, rows + 2))
    chunk_rows = 20_000
    read = read_traced(path, chunk_rows=chunk_rows)
    assert read.rows == rows
    in_memory_size = read.first_chunk_bytes * rows / chunk_rows  # the whole file loaded at once, at least
    print(f"\npeak traced {read.peak_bytes / 1e6:.1f} MB; file on disk {path.stat().st_size / 1e6:.1f} MB; "
          f"whole file in memory >= {in_memory_size / 1e6:.0f} MB")  # fmt: skip
    assert read.peak_bytes < in_memory_size / 4


def test_throughput_on_a_clean_25_column_file(tmp_path: Path) -> None:
    rows = 200_000
    headers = MODERN_HEADERS[:25]
    path = tmp_path / "clean.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        base = MODERN_ROW[:25]
        writer.writerows([*base[:18], f"1772637337.{i}", *base[19:]] for i in range(rows))
    started = time.perf_counter()
    cpu_started = time.process_time()
    count = sum(len(chunk) for chunk in iter_cdr_file(path))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert count == rows
    print(f"\nCSV reader: {rows} rows x 25 columns in {wall:.2f} s wall / {cpu:.2f} s CPU "
          f"= {rows / wall:,.0f} rows/s wall, {rows / cpu:,.0f} rows/s CPU")  # fmt: skip


# --- fits the normalizer -----------------------------------------------------------------------------


def test_round_trip_through_normalize_frame(tmp_path: Path) -> None:
    second = [*MODERN_ROW]
    second[MODERN_HEADERS.index("Unique ID")] = "1772637338.2672"
    second[MODERN_HEADERS.index("Call Status")] = "NO ANSWER"
    second[MODERN_HEADERS.index("Answer Time")] = ""
    second[MODERN_HEADERS.index("Talk Time")] = "0:00:00"
    second[MODERN_HEADERS.index("Call Time")] = "0:00:52"
    short = MODERN_ROW[:10]
    text = csv_text([MODERN_HEADERS, MODERN_ROW, second, short])
    chunk = one_chunk(write(tmp_path / "x.csv", text, bom=True))
    ctx = NormalizeContext(tenant="acme", timezone="America/New_York", source="csv")
    batch = normalize_frame(chunk.frame, ctx, positions=chunk.positions, raw_json=chunk.raw_json)
    assert len(batch.legs) == 2
    first = batch.legs.iloc[0]
    assert first["start_at"] == pd.Timestamp("2026-03-04 15:15:37", tz="UTC")
    assert (first["duration_s"], first["billsec_s"]) == (52, 41)
    assert first["direction"] == "inbound"
    assert first["answered_by"] == "203"
    assert first["src_trunk"] == "Carrier"
    assert json.loads(first["raw"])["Caller Number"] == "07700900123"
    assert batch.legs.iloc[1]["disposition"] == "NO ANSWER"
    assert batch.legs.iloc[1]["duration_s"] == 52
    assert batch.rejects[["position", "reason"]].to_dict("records") == [
        {"position": 4, "reason": "row has 10 fields, header has 28"}
    ]
