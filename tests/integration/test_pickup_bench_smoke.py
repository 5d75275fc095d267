"""The pickup benchmark runs end to end at a tiny size and ends with one JSON line (no timing checks)."""

from __future__ import annotations

import pytest

from tests.integration.test_bench_smoke import URL, run_bench

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="TEST_DATABASE_URL not set: run through `make test`"),
]


def test_pickup_bench_tiny() -> None:
    figures = run_bench("pickup_bench.py", "--rows", "2000")
    assert figures["bench"] == "pickup" and figures["rows"] == 2000
    for method in ("local", "sftp", "imap"):
        details = figures["details"][method]
        assert details["new"] == details["legs_in_db"] == 2000, method  # every method loads every leg
        assert details["rejected_in_db"] == 0 and figures[f"{method}_peak_rss_mb"] > 0, method
    assert figures["details"]["sftp"]["imported"] == figures["details"]["imap"]["imported"] == 1
    assert figures["sftp_vs_local"] > 0 and figures["imap_vs_local"] > 0
    assert {"met_sftp_time", "met_imap_time", "met_sftp_rss", "met_imap_rss"} <= set(figures["targets"])
    assert {"cpus", "postgres", "python", "os"} <= set(figures["machine"])
