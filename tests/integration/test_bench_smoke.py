"""The benchmarks run end to end at a tiny size and end with one JSON line of figures (no timing checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
URL = os.environ.get("TEST_DATABASE_URL")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not URL, reason="TEST_DATABASE_URL not set: run through `make test` (starts Postgres)"
    ),
]


def run_bench(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--database-url", str(URL)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    figures: dict[str, Any] = json.loads(last)
    return figures


def test_import_bench_tiny() -> None:
    figures = run_bench("import_bench.py", "--rows", "5000", "--no-dlt")  # make test never installs dlt
    assert figures["bench"] == "import" and figures["rows"] == 5000
    for key in ("ours_rows_per_s", "naive_rows_per_s", "ceiling_rows_per_s", "ours_peak_rss_mb"):
        assert figures[key] > 0, key
    assert figures["ours_vs_ceiling"] > 0 and figures["ours_vs_naive"] > 0
    assert set(figures["targets"]) >= {"met_vs_ceiling", "met_vs_naive", "met_rss"}
    ours = figures["details"]["ours"]
    assert ours["new"] == ours["legs_in_db"] == 5000 and ours["rejected"] == 0
    assert figures["details"]["ceiling"]["legs_in_db"] == 5000
    assert figures["details"]["naive"]["rows_in_db"] == 5000
    assert {"cpus", "postgres", "python", "os"} <= set(figures["machine"])
    assert figures["dlt_merge_rows_per_s"] is figures["ours_vs_dlt_merge"] is None
    reimport = figures["details"]["reimport"]
    assert (reimport["new"], reimport["duplicate"], reimport["legs_in_db"]) == (0, 5000, 5000)
    assert reimport["chunks_known"] == reimport["chunks"] - 1
    # CPU seconds of the import's process and of the (local) Postgres cluster: the load-robust figure.
    cpu = ours["cpu_s"]
    assert cpu["client"] > 0 and cpu["server"] > 0 and figures["ours_cpu_s"] == cpu["total"]


def test_backfill_bench_tiny() -> None:
    figures = run_bench(
        "backfill_bench.py",
        "--days",
        "3",
        "--calls-per-day",
        "60",
        "--window-days",
        "1",
        "--rss-window-days",
        "2",
    )
    assert figures["bench"] == "backfill" and figures["legs"] > 0
    for key in (
        "backfill_legs_per_s",
        "fetch_only_legs_per_s",
        "backfill_vs_fetch_only",
        "backfill_peak_rss_mb",
    ):
        assert figures[key] > 0, key
    backfill = figures["details"]["backfill"]
    assert backfill["same_windows"] and backfill["windows_done"] == figures["windows"]
    assert backfill["legs_in_db"] == figures["legs"] == figures["details"]["fetch_only"]["legs"]
    assert set(figures["peak_rss_mb_per_window_days"]) == {"1", "2"}
    assert all(value > 0 for value in figures["peak_rss_mb_per_window_days"].values())
    # CPU seconds per process kind: what bounds the backfill shows in every run, whatever the load.
    fetch_cpu, backfill_cpu = figures["cpu_s"]["fetch_only"], figures["cpu_s"]["backfill"]
    assert fetch_cpu["client"] > 0 and fetch_cpu["simulator"] > 0
    assert backfill_cpu["client"] > 0 and backfill_cpu["simulator"] > 0 and backfill_cpu["postgres"] > 0
    assert backfill_cpu["total"] >= backfill_cpu["client"] + backfill_cpu["postgres"] - 0.01
    assert backfill["cpu"]["threads_s"]["main"] > 0 and backfill["cpu"]["postgres_backends_s"] > 0
    assert "idle_ceiling" in figures


def test_insights_bench_tiny() -> None:
    figures = run_bench("insights_bench.py", "--days", "10", "--calls-per-day", "60", "--tick-legs", "100")
    assert figures["bench"] == "insights" and figures["days"] == 10 and figures["legs"] > 0
    for key in ("insights_s", "fraud_daily_s", "year_legs_per_s", "tick_s", "fraud_check_s"):
        assert figures[key] > 0, key
    assert figures["ticks"] >= 1 and "met" in figures["targets"]
    # The simulator's two fraud scenarios fall in the span: their alerts are found.
    assert {"intl_velocity:critical", "short_call_burst:warning"} <= set(figures["alerts"])
