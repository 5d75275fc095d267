"""Ctrl-C during `audiapro backfill`: the real command in a subprocess, sent SIGINT (to its whole process
group, as a terminal does) once the first window is loaded. It stops within seconds, the flow run is
Cancelled, loaded windows stay and a rerun skips them, and the terminal gets one line saying how to resume
(no traceback, no wall of connection errors).

Both ways the CLI finds Prefect: a server at ``PREFECT_API_URL`` (the `make up` stack; here the test
session's API) and, with no URL, Prefect's temporary server, which the CLI starts as its child: the
Ctrl-C must not stop that server before the run has reported its end.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from audiapro.backfill import plan_backfill
from audiapro.prefect_names import BACKFILL_FLOW
from audiapro.ucm.simulator import FaultConfig, SimulatorConfig, UcmSimulator
from audiapro.warehouse import backfill_windows, ingest_runs
from blocks.clouducm import CloudUCM, load_tenant
from tests.integration.pipeline_support import DAY, save_simulated_tenant

pytestmark = pytest.mark.usefixtures("prefect_api")

TENANT = "cancel-acme"
TZ = "America/Chicago"
PASSWORD = "Canc3l-Pa55word!"
DAYS = 12
#: Every PBX answer waits this long: each one-day window takes a few seconds, the whole range far longer
#: than the cancellation may take.
SLOW_MS = 700
#: Generous bounds for a busy machine; the conditions waited for are deterministic.
FIRST_WINDOW_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0
POLL_S = 0.2
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def slow_pbx() -> Iterator[tuple[UcmSimulator, int]]:
    """Twelve past days of calls behind a slow PBX (and its port), saved as the tenant's CloudUCM block."""
    config = SimulatorConfig(seed=5, calls_per_day=40, start=DAY, days=DAYS, tz=TZ, password=PASSWORD)
    sim = UcmSimulator(config, faults=FaultConfig(slow_ms=SLOW_MS))
    with sim.serve() as url:
        save_simulated_tenant(TENANT, url, password=PASSWORD, timezone=TZ)
        yield sim, int(url.rsplit(":", 1)[1])
    CloudUCM.delete(TENANT)


def done_windows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(backfill_windows)) or 0)


def latest_backfill_state() -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[BACKFILL_FLOW])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    assert runs and runs[0].state is not None
    return runs[0].state.type.value


def temporary_api_env(tmp_path: Path, pbx_port: int) -> dict[str, str]:
    """A fresh machine's environment (no Prefect API, no `make up` stack) holding the tenant.

    The tenant is added with the CLI itself, which stores it through its own temporary API.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AUDIAPRO_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", AUDIAPRO_HOME=str(tmp_path / "home"), AUDIAPRO_RUN_DIR=str(tmp_path / "run"),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=str(int(FIRST_WINDOW_TIMEOUT_S)))  # fmt: skip
    argv = [
        sys.executable,
        "-m",
        "audiapro.cli",
        "tenant",
        "add",
        TENANT,
        "--host",
        "127.0.0.1",
        "--port",
        str(pbx_port),
        "--scheme",
        "http",
        "--timezone",
        TZ,
        "--password-stdin",
        "--no-check",
    ]
    added = subprocess.run(argv, cwd=REPO, env=env, input=f"{PASSWORD}\n", capture_output=True, text=True,
                           timeout=FIRST_WINDOW_TIMEOUT_S)  # fmt: skip
    assert added.returncode == 0, added.stderr
    return env


def temporary_api_state(tmp_path: Path) -> str:
    """The state of the latest flow run in the temporary API's database (the API stopped with the CLI)."""
    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as db:
        (state,) = db.execute("SELECT state_type FROM flow_run ORDER BY start_time DESC LIMIT 1").fetchone()
    return str(state)


@pytest.mark.parametrize("api", ["server", "temporary"])
def test_ctrl_c_cancels_within_seconds_keeps_loaded_windows_and_says_how_to_resume(
    pg_engine: sa.Engine, slow_pbx: tuple[UcmSimulator, int], tmp_path: Path, api: str
) -> None:
    from prefect.settings import PREFECT_API_URL

    pbx, port = slow_pbx
    first, last = pbx.history_start, pbx.history_start + timedelta(days=DAYS - 1)
    if api == "server":
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    else:
        env = temporary_api_env(tmp_path, port)
    env["AUDIAPRO_DATABASE_URL"] = pg_engine.url.render_as_string(hide_password=False)
    argv = [sys.executable, "-m", "audiapro.cli", "backfill", "--tenant", TENANT, "--start", str(first),
            "--end", str(last), "--max-parallel", "1"]  # fmt: skip
    err = (tmp_path / "stderr").open("w+")
    child = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=err, start_new_session=True, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + FIRST_WINDOW_TIMEOUT_S
        while done_windows(pg_engine) == 0:  # the marker: the first window is committed
            assert child.poll() is None, (child.stdout.read() if child.stdout else "", err.read())
            assert time.monotonic() < deadline, "no window was loaded"
            time.sleep(POLL_S)
        os.killpg(child.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        stdout, _ = child.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    err.seek(0)
    stderr = err.read()

    assert child.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr and "ConnectError" not in stderr, stderr
    assert "Finished in state Completed()" not in stderr, stderr  # no line per window: the bar says it
    (resume,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert re.match(r"error: backfill cancelled: \d+ windows? loaded and kept; ", resume), resume
    assert f"resume with `audiapro backfill --tenant {TENANT} --start {first} --end {last}" in resume
    assert (latest_backfill_state() if api == "server" else temporary_api_state(tmp_path)) == "CANCELLED"

    kept = done_windows(pg_engine)
    assert 1 <= kept < DAYS  # stopped early, and what was loaded stays
    with pg_engine.connect() as conn:
        statuses = set(conn.scalars(sa.select(ingest_runs.c.status)))
    assert "running" not in statuses  # every window either committed or never began its load
    rerun = plan_backfill(pg_engine, load_tenant(TENANT).tenant_settings(TENANT), first, last)
    assert rerun.skipped == kept and len(rerun.windows) == DAYS - kept
