"""bench/scale_bench.py end to end at a tiny size (2 tenants in shards of 1, no freshness run): it
starts its own Prefect server and workers and ends with one JSON line of figures (no timing checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scale_bench.py"
URL = os.environ.get("TEST_DATABASE_URL")
#: A Prefect server start, a deploy and five ticks on a loaded 2-core machine.
TIMEOUT_S = 600

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not URL, reason="TEST_DATABASE_URL not set: run through `make test` (starts Postgres)"
    ),
]


@pytest.mark.timeout(TIMEOUT_S + 30)
def test_scale_bench_tiny() -> None:
    # 2 calls a minute for 8 PBX minutes: the calls of the first 3 minutes have ended (none is longer
    # than 5) whichever wall-clock minutes the live stream is drawn for, so the busy tick loads legs.
    argv = [sys.executable, str(BENCH), "--sizes", "2", "--shard-size", "1", "--new-calls", "16",
            "--step-minutes", "8", "--freshness-minutes", "0", "--worker-query-s", "1",
            "--settle-max-s", "20", "--database-url", str(URL)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["bench"] == "scale" and figures["largest_size"] == 2
    for key in ("tick_idle_1_tenant_s", "tick_idle_1000_tenants_s", "workers_2_vs_1", "freshness_p95_s",
                "freshness_interval_s"):  # fmt: skip
        assert key in figures, key
    ticks = figures["ticks"]["2"]
    for workers in ("workers_1", "workers_2"):
        assert ticks[workers]["idle"]["state"] == ticks[workers]["busy"]["state"] == "COMPLETED"
        assert "2 tenants polled in 2 shards" in ticks[workers]["busy"]["message"]
    assert ticks["workers_1"]["busy"]["legs_loaded"] > 0  # the PBX clocks moved: new calls loaded
    # The time line of a tick: the tick's run, then each shard's, with its first and last poll.
    timeline = ticks["workers_1"]["idle"]["timeline"]
    assert len(timeline) == 3 and all("-shard-" in row["run"] for row in timeline[1:])
    assert all(row["running"] is not None and row["first_poll"] is not None for row in timeline[1:])
    assert ticks["workers_1"]["idle"]["run_s"] > 0 and figures["workers_2_vs_1"] > 0
    assert figures["tick_idle_1000_tenants_s"] is None  # not measured at this size: never a stand-in
    assert figures["tick_idle_1_tenant_s"] is None  # nor is size 2 reported as 1 tenant
