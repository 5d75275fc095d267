"""Scale-out end to end: 50 simulated PBXs, a Prefect server on Postgres, two workers, fanned-out ticks.

Every tick of `poll-cdrs` splits the 50 tenants into 5 `poll-shard` runs. The workers run at most
``WORKER_RUN_LIMIT`` flow runs each, fewer than a tick has, so both take part whichever polls first.
In the first tick, the worker that does not run the tick itself is killed (SIGKILL, with its flow
runs) while one of its shards runs: the tick gives that shard up after ``SHARD_WAIT_S`` and the
next ticks, on the surviving worker, complete its tenants from their cursors. Every wait is on a
condition with a generous timeout; nothing asserts on timing.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from pydantic import SecretStr

from audiapro.ops import processes
from audiapro.prefect_names import POLL_DEPLOYMENT
from audiapro.ucm.simulator import UcmSimulator
from audiapro.ucm.simulator.multi import MultiSimulator
from audiapro.warehouse import get_engine
from blocks.clouducm import CloudUCM
from tests.e2e.conftest import HOST, Worker
from tests.wall_clock_pbx import wall_clock_pbx

pytestmark = pytest.mark.usefixtures("prefect_client_settings")

TENANTS = [f"scale-{i:02d}" for i in range(50)]
TZ = "UTC"
CALLS_PER_DAY = 12
SHARD_SIZE = 10
#: How long a tick waits for its shards: far longer than a 10-tenant shard takes even on a loaded
#: machine, and the wait a killed worker's shard costs the tick that gave it up.
SHARD_WAIT_S = 90.0
TICK_PARAMETERS: dict[str, Any] = {"analyze": False, "shard_size": SHARD_SIZE, "parallel_shards": 5,
                                   "shard_wait_s": SHARD_WAIT_S}  # fmt: skip
RUN_TIMEOUT = 300.0
KILL_TIMEOUT = 240.0
ATTEMPTS = 4
#: Server start, deploy and three or four ticks of 50 tenants, one of which waits SHARD_WAIT_S for
#: the killed shard: minutes on a loaded 2-core machine.
E2E_TIMEOUT_S = 900
CLOCK_STEP = timedelta(minutes=2)
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
ACTIVE = {"PENDING", "RUNNING", "CANCELLING"}


def password(name: str) -> str:
    return f"Pa55-{name}-secret!"


@pytest.fixture(scope="module")
def poll_deployment_id(deployed: str) -> UUID:
    """poll-cdrs as deployed, every tick (also the schedule's) fanned out into shards of 10."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(POLL_DEPLOYMENT)
        client.update_deployment(deployment.id, DeploymentUpdate(parameters=TICK_PARAMETERS))
    return deployment.id


@pytest.fixture(scope="module")
def pbxs(deployed: str) -> Iterator[MultiSimulator]:
    """50 PBXs on one simulator port, each with its own password and manual clock."""
    multi = MultiSimulator()
    with multi.serve() as url:
        port = int(url.rsplit(":", 1)[1])
        for index, name in enumerate(TENANTS):
            config = wall_clock_pbx(
                seed=500 + index, calls_per_day=CALLS_PER_DAY, tz=TZ, password=password(name)
            )
            multi.add(name, UcmSimulator(config))
            CloudUCM(host=HOST, port=port, scheme="http", timezone=TZ, password=SecretStr(password(name)),
                     api_path=multi.api_path(name)).save(name, overwrite=True)  # fmt: skip
        yield multi


def state_of(run: FlowRun) -> str:
    return run.state.type.value if run.state else "NONE"


def read_run(run_id: UUID) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def poll_runs(deployment_id: UUID) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]))
        )


def shard_runs(tick: UUID) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[tick]))
        )


def wait_for(what: str, ready: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := ready()):
        assert time.monotonic() < deadline, f"{what} not reached after {timeout:.0f}s"
        time.sleep(0.5)
    return found


def start_tick(deployment_id: UUID) -> UUID:
    """Create a tick once no other tick is active (the schedule's own ticks run too)."""
    wait_for("no active tick", lambda: not any(state_of(r) in ACTIVE for r in poll_runs(deployment_id)),
             RUN_TIMEOUT)  # fmt: skip
    with get_client(sync_client=True) as client:
        return client.create_flow_run_from_deployment(deployment_id).id


def finished(run_id: UUID) -> FlowRun:
    return wait_for("tick final", lambda: (r := read_run(run_id)) and state_of(r) in FINAL and r, RUN_TIMEOUT)


def completed_tick(deployment_id: UUID) -> FlowRun:
    """Ticks until one completes (one that met a scheduled tick is cancelled by CANCEL_NEW)."""
    for _ in range(ATTEMPTS):
        run = finished(start_tick(deployment_id))
        if state_of(run) == "COMPLETED":
            return run
    pytest.fail(f"no tick completed in {ATTEMPTS} attempts")


def taker(workers: list[Worker], run_name: str) -> str | None:
    """The worker that started the flow run named ``run_name`` (from the workers' logs)."""
    for worker in workers:
        if f"Flow run '{run_name}' submitted to infrastructure" in worker.log.read_text(errors="replace"):
            return worker.name
    return None


def kill_worker(worker: Worker) -> None:
    """SIGKILL the worker and every flow-run process it started, as when its machine dies."""
    family = processes.descendants(worker.pid)
    for pid in [worker.pid, *(pid for pid, _ in family)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_a_shard_worker(deployment_id: UUID, workers: list[Worker]) -> tuple[FlowRun, str, str]:
    """Start ticks until one has a RUNNING shard on the worker that does not run the tick; kill it.

    Returns:
        The tick, once final; the name of the shard run that was killed; the killed worker's name.
    """
    for _ in range(ATTEMPTS):
        tick = start_tick(deployment_id)

        def victim(tick: UUID = tick) -> tuple[str, str] | str | None:
            run = read_run(tick)
            if state_of(run) in FINAL:
                return "missed"
            parent = taker(workers, run.name)
            for shard in shard_runs(tick):
                owner = taker(workers, shard.name)
                if parent and state_of(shard) == "RUNNING" and owner and owner != parent:
                    return owner, shard.name
            return None

        found = wait_for("a shard running on the other worker", victim, KILL_TIMEOUT)
        if found != "missed":
            name, shard = found
            kill_worker(next(w for w in workers if w.name == name))
            return finished(tick), shard, name
    pytest.fail(f"no tick in {ATTEMPTS} had a shard running on the worker without the tick")


def missing_or_twice(warehouse: str, pbxs: MultiSimulator) -> dict[str, tuple[int, int]]:
    """Tenants whose stored legs differ from what their PBX wrote since their first window:
    ``{tenant: (stored, written)}`` (empty when every leg is stored exactly once)."""
    engine = get_engine(warehouse)
    first_windows = sa.text(
        "SELECT tenant, min(window_start) FROM ingest_runs WHERE kind='poll' GROUP BY tenant"
    )
    with engine.connect() as conn:
        starts = dict(conn.execute(first_windows).all())
        stored = conn.execute(sa.text("SELECT tenant, acct_id FROM cdr_legs")).all()
    engine.dispose()
    wrong = {}
    for name in TENANTS:
        mine = sorted(str(acct) for tenant, acct in stored if tenant == name)
        if name not in starts:
            wrong[name] = (len(mine), -1)
            continue
        first_second = starts[name].replace(microsecond=0)
        expected = sorted(
            leg["AcctId"] for leg in pbxs[name].ground_truth()
            if datetime.strptime(leg["start"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) >= first_second
        )  # fmt: skip
        if mine != expected:
            wrong[name] = (len(mine), len(expected))
    return wrong


@pytest.mark.timeout(E2E_TIMEOUT_S)
def test_two_workers_share_fanned_out_ticks_and_a_killed_worker_loses_nothing(
    poll_deployment_id: UUID, pbxs: MultiSimulator, workers: list[Worker], e2e_warehouse: str
) -> None:
    killed_tick, killed_shard, killed_worker = kill_a_shard_worker(poll_deployment_id, workers)
    survivor = taker(workers, killed_tick.name)
    assert survivor and survivor != killed_worker, "the tick ran on one worker, its killed shard on the other"
    assert killed_shard.startswith(killed_tick.name)
    # The tick gave the dead shard up (it stays RUNNING on the server until the unresponsive-runs
    # automation marks it Crashed: nobody is left to end it).
    message = str(killed_tick.state.message if killed_tick.state else "")
    assert state_of(killed_tick) == "FAILED" and "LOST" in message, killed_tick.state

    for name in TENANTS:  # new calls end on every PBX
        pbxs[name].clock.advance(CLOCK_STEP.total_seconds())
    for _ in range(ATTEMPTS):  # the surviving worker completes the lost shard's tenants
        last = completed_tick(poll_deployment_id)
        if not missing_or_twice(e2e_warehouse, pbxs):
            break
    assert missing_or_twice(e2e_warehouse, pbxs) == {}, "every leg stored exactly once"
    shards = shard_runs(last.id)
    assert len(shards) == len(TENANTS) // SHARD_SIZE
    assert {state_of(s) for s in shards} == {"COMPLETED"}
    assert {taker(workers, s.name) for s in shards} == {survivor}

    ticks = [r for r in poll_runs(poll_deployment_id) if r.start_time and state_of(r) != "CANCELLED"]
    spans = sorted((r.start_time, r.end_time or datetime.now(UTC)) for r in ticks)
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans)), "ticks overlapped"
