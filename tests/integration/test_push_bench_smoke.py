"""bench/push_bench.py end to end at a tiny size: its last line is the JSON figures (no timing checks)."""

from __future__ import annotations

import pytest

from tests.integration.test_bench_smoke import URL, run_bench

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not URL, reason="TEST_DATABASE_URL not set: run through `make test` (starts Postgres)"
    ),
]


def test_push_bench_tiny() -> None:
    figures = run_bench("push_bench.py", "--minutes", "2", "--burst", "60", "--senders", "2")
    assert figures["bench"] == "push" and figures["legs"] > 0 and figures["burst_legs"] == 60
    for key in (
        "push_p50_s",
        "push_p95_s",
        "poll_p50_s",
        "poll_p95_s",
        "accepted_legs_per_s",
        "loaded_legs_per_s",
    ):
        assert figures[key] > 0, key
    assert figures["push_p50_s"] <= figures["push_p95_s"] and figures["poll_p50_s"] <= figures["poll_p95_s"]
    assert isinstance(figures["met_goal"], bool)
    assert {"cpus", "postgres", "python", "os"} <= set(figures["machine"])
