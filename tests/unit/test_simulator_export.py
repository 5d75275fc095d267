"""UCM simulator web-UI CSV export: one row per leg, human headers, no AcctId."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator, write_ui_export

LEGS = UcmSimulator(SimulatorConfig(seed=4, calls_per_day=80, start=date(2026, 3, 2), days=1)).ground_truth()


def read(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle))


def test_round_trip_contains_every_leg(tmp_path: Path) -> None:
    path = write_ui_export(LEGS, tmp_path / "cdr.csv")
    rows = read(path)
    assert len(rows) == len(LEGS)
    header = list(rows[0])
    assert "AcctId" not in header and not any("acct" in h.lower() for h in header)
    for required in ("Caller Number", "Callee Number", "Source Channel", "Dest. Channel", "Last app.",
                     "Start Time", "Answer Time", "End Time", "Call Time", "Talk Time", "Call Status",
                     "Unique ID", "Session", "Action Type", "Answered by", "Source Trunk Name",
                     "Destination Trunk Name", "Caller Name", "Call Type", "Context", "Caller ID",
                     "Account Code", "AMA Flags", "Last data"):  # fmt: skip
        assert required in header
    for row, leg in zip(rows, LEGS, strict=True):
        assert row["Caller Number"] == leg["src"] and row["Callee Number"] == leg["dst"]
        assert row["Start Time"] == leg["start"] and row["Answer Time"] == leg["answer"]
        assert row["Unique ID"] == leg["uniqueid"] and row["Session"] == leg["session"]
        assert row["Caller ID"] == leg["clid"] and row["Last data"] == leg["lastdata"]  # quoting survives
        assert row["Call Time"] == leg["duration"] and row["Call Status"] == leg["disposition"]
    # The export identifies legs by the same natural key fields as the API (minus AcctId).
    api_keys = {(x["uniqueid"], x["channel"], x["dstchannel"], x["start"], x["lastapp"]) for x in LEGS}
    csv_keys = {
        (r["Unique ID"], r["Source Channel"], r["Dest. Channel"], r["Start Time"], r["Last app."])
        for r in rows
    }
    assert csv_keys == api_keys


def test_legacy_headers_bom_and_hms(tmp_path: Path) -> None:
    path = write_ui_export(LEGS, tmp_path / "old.csv", header_style="legacy", bom=True, durations="hms")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    rows = read(path, encoding="utf-8-sig")
    assert {"Dest Channel", "Last App", "Disposition", "Dest Trunk Name"} <= set(rows[0])
    long_leg = max(range(len(LEGS)), key=lambda i: int(LEGS[i]["duration"]))
    seconds = int(LEGS[long_leg]["duration"])
    assert rows[long_leg]["Call Time"] == f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def test_column_subset_and_order(tmp_path: Path) -> None:
    path = write_ui_export(LEGS[:5], tmp_path / "sub.csv", columns=["Session", "src", "Call Status"])
    with path.open(encoding="utf-8") as handle:
        assert handle.readline().strip() == "Session,Caller Number,Call Status"
    with pytest.raises(ValueError, match="unknown export columns"):
        write_ui_export(LEGS, tmp_path / "bad.csv", columns=["AcctId"])
