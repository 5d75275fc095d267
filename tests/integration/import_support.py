"""Files for the import tests: UI exports with known bad rows (no tests here)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from audiapro.ucm.simulator import write_ui_export

#: The export columns that identify a leg (a file without them is refused).
KEY_HEADERS = ["Unique ID", "Source Channel", "Dest. Channel", "Start Time", "Last app."]


def file_with_bad_rows(truth: list[dict[str, str]], target: Path) -> tuple[Path, list[tuple[int, str]], int]:
    """A modern export with a multi-line field and four bad rows at known physical lines."""
    buffer = io.StringIO()
    write_ui_export(truth[:6], target)
    header, *rows = list(csv.reader(target.open(newline="", encoding="utf-8")))
    col = {name: i for i, name in enumerate(header)}
    rows[0][col["Caller Name"]] = "Ann\nSmith"  # one record over lines 2-3
    bad_start, bad_disposition, no_uniqueid = list(rows[2]), list(rows[3]), list(rows[4])
    bad_start[col["Start Time"]] = "yesterday"
    bad_disposition[col["Call Status"]] = "WEIRD"
    no_uniqueid[col["Unique ID"]] = ""
    # Lines: 1 header, 2-3 good (multi-line), 4 good, 5-6 bad, 7 good, 8-9 bad.
    body = [rows[0], rows[1], ["only", "three", "fields"], bad_start, rows[5], bad_disposition, no_uniqueid]
    csv.writer(buffer, lineterminator="\n").writerows([header, *body])
    target.write_text(buffer.getvalue(), encoding="utf-8")
    expected = [
        (5, f"row has 3 fields, header has {len(header)}"),
        (6, "start time missing or not YYYY-MM-DD HH:MM[:SS]"),
        (8, "unknown disposition"),
        (9, "missing uniqueid"),
    ]
    return target, expected, 3  # good legs: rows 0, 1 and 5
