"""The import's chunk stream without a database: resume skipping, equal starts kept together, file scan."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from audiapro.cdr.normalize import REJECT_MARKER, NormalizeContext
from audiapro.cdr.readers import RawChunk
from audiapro.importing import _keep_same_start_together, _skip_rows, chunk_digest, scan_file
from audiapro.warehouse import rejects_sql


def chunk(starts: list[str], first_line: int = 2, reject_last: bool = False) -> RawChunk:
    n = len(starts)
    frame = pd.DataFrame({"uniqueid": [f"u{first_line + i}" for i in range(n)], "start": starts})
    frame[REJECT_MARKER] = [""] * (n - 1) + ["bad row" if reject_last else ""] if n else []
    positions = list(range(first_line, first_line + n))
    return RawChunk(frame=frame, positions=positions, raw_json=[f'{{"line":{p}}}' for p in positions])


def lines_of(chunks: list[RawChunk]) -> list[list[int]]:
    return [c.positions for c in chunks]


def test_skip_rows_drops_exactly_the_committed_prefix() -> None:
    stream = [chunk(["a"] * 3, 2), chunk(["b"] * 3, 5), chunk(["c"] * 2, 8)]
    assert lines_of(list(_skip_rows(stream, 0))) == [[2, 3, 4], [5, 6, 7], [8, 9]]
    assert lines_of(list(_skip_rows(stream, 4))) == [[6, 7], [8, 9]]
    assert lines_of(list(_skip_rows(stream, 6))) == [[8, 9]]
    assert list(_skip_rows(stream, 8)) == []
    resumed = next(_skip_rows(stream, 4))
    assert resumed.frame["uniqueid"].tolist() == ["u6", "u7"] and resumed.raw_json == [
        '{"line":6}',
        '{"line":7}',
    ]


def test_rows_sharing_the_last_start_move_to_the_next_chunk() -> None:
    t1, t2, t3 = "2026-03-01 10:00:00", "2026-03-01 10:00:05", "2026-03-01 10:00:09"
    stream = [chunk([t1, t2, t2], 2), chunk([t2, t3, t3], 5)]
    out = list(_keep_same_start_together(stream))
    # No look-ahead (one raw chunk in memory): the last chunk's tail comes as a small chunk of its own.
    assert lines_of(out) == [[2], [3, 4, 5], [6, 7]]
    merged = out[1]
    assert merged.frame["start"].tolist() == [t2, t2, t2]
    assert list(merged.frame.columns)[-1] == REJECT_MARKER


def test_a_chunk_of_one_start_or_ending_in_a_reject_is_not_held_back() -> None:
    same = [chunk(["t"] * 4, 2), chunk(["t", "u", "v"], 6)]
    assert lines_of(list(_keep_same_start_together(same))) == [[2, 3, 4, 5], [6, 7], [8]]
    rejected_tail = [chunk(["a", "b", "b"], 2, reject_last=True), chunk(["c"], 5)]
    assert lines_of(list(_keep_same_start_together(rejected_tail))) == [[2, 3, 4], [5]]


def test_chunks_with_different_columns_merge_with_empty_strings() -> None:
    first = chunk(["a", "b"], 2)
    second = chunk(["b", "c"], 4)
    second.frame.insert(0, "AcctId", ["7", "8"])
    out = list(_keep_same_start_together([first, second]))
    assert lines_of(out) == [[2], [3, 4], [5]]
    assert out[1].frame["AcctId"].tolist() == ["", "7"]


def test_scan_hashes_and_counts_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "cdr.json"
    marker = b'{"uniqueid":"1"}\n'
    data = marker * 300_000  # several scan blocks; markers cut at block edges still count
    path.write_bytes(data)
    scan = scan_file(path)
    assert scan.sha256 == hashlib.sha256(data).hexdigest()
    assert (scan.size_bytes, scan.lines, scan.json_markers) == (len(data), 300_000, 300_000)


def test_rejects_query_quotes_the_tenant() -> None:
    sql = rejects_sql("o'brien", "sha256:" + "ab" * 32)
    assert "'o''brien'" in sql and f"'sha256:{'ab' * 32}'" in sql


def test_chunk_digest_tells_record_boundaries_and_reasons_apart() -> None:
    ctx = NormalizeContext(tenant="t", timezone="America/New_York", region="US", source="csv")

    def digest(raw_json: list[str], reasons: list[str] | None = None) -> str:
        frame = pd.DataFrame({"uniqueid": ["u"] * len(raw_json)})
        frame[REJECT_MARKER] = reasons or [""] * len(raw_json)
        positions = list(range(2, 2 + len(raw_json)))
        return chunk_digest(RawChunk(frame=frame, positions=positions, raw_json=raw_json), ctx)

    plain = digest(['{"a":"1"}', '{"a":"2"}'])
    assert plain == digest(['{"a":"1"}', '{"a":"2"}'])  # positions play no part
    assert plain != digest(['{"a":"2"}', '{"a":"1"}'])
    assert plain != digest(['{"a":"1"}', '{"a":"2"}'], ["", "bad row"])
    # A record holding a line break (no reader writes one) cannot pass for two records.
    assert digest(["x\ny", "z"]) != digest(["x", "y\nz"]) != digest(["x", "y", "z"])
    other_zone = NormalizeContext(tenant="t", timezone="Europe/Berlin", region="US", source="csv")
    frame = pd.DataFrame({"uniqueid": ["u"], REJECT_MARKER: [""]})
    one = RawChunk(frame=frame, positions=[2], raw_json=['{"a":"1"}'])
    assert chunk_digest(one, ctx) != chunk_digest(one, other_zone)
