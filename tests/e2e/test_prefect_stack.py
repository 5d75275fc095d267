"""End to end on a real Prefect server (on Postgres): deploy from prefect.yaml, scale out, health, alerts.

Two process workers serve the `audiapro` pool as if on two machines; ten simulated PBXs (in this
process, on loopback) are the tenants. The simulators' clocks are manual, so the warehouse can be
compared with exactly what each PBX had written at the time of the last tick. The workers' poll
windows follow their own wall clock, so the PBXs are built around it (`tests/wall_clock_pbx.py`): the
expectations hold at any time of day and on any weekday (`scripts/clock-shift-test.sh` proves it).

The tests share the module's server, workers and tenants and run in file order; each still works on
its own (it makes the ticks it needs), and the alert test, which leaves a failing tenant behind,
comes last.
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from pydantic import SecretStr
from typer.testing import CliRunner

from audiapro.api.app import create_app
from audiapro.api.orchestrator import PrefectOrchestrator
from audiapro.ops import alerts
from audiapro.settings import DEFAULT_SAFETY_SECONDS
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
from audiapro.warehouse import RunInfo, get_engine, list_sync_states, read_sync_state, record_failure
from blocks.clouducm import CloudUCM
from deployments.automations import (
    CALLS_MISSING,
    POLLER_SILENT,
    TENANT_FAILING,
    TENANT_SILENT,
    UNRESPONSIVE_RUNS,
)
from tests.e2e.conftest import BIN, HOST, ROOT, PrefectServer, Worker
from tests.wall_clock_pbx import BEHIND, FIRST_WINDOW, wall_clock_pbx

pytestmark = pytest.mark.usefixtures("prefect_client_settings")

POLL = "poll-cdrs/poll-cdrs"
TENANTS = [f"pbx-{i:02d}" for i in range(10)]
#: UTC keeps the ground-truth comparison simple (CDR wall-clock times are UTC); DST is tested elsewhere.
TZ = "UTC"
SIM_PASSWORD = "E2e-Pbx-Pa55word!"
CALLS_PER_DAY = 120
WRONG_PASSWORD = "not-the-Pa55word"
ADMIN_TOKEN = "e2e-admin-token-0123456789-abcdefghijklmnop"
RUN_TIMEOUT = 150.0
TICK_ATTEMPTS = 3
#: Simulated PBX time moves this much between ticks (new calls end, the next tick loads them).
CLOCK_STEP = timedelta(minutes=2)
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
ACTIVE = {"PENDING", "RUNNING", "CANCELLING"}
BROKEN = "broken"
BROKEN_RESOURCE = f"{alerts.TENANT_RESOURCE_PREFIX}{BROKEN}"


@pytest.fixture(scope="module")
def poll_deployment_id(deployed: str) -> UUID:
    """poll-cdrs as deployed; its automatic analysis hand-off is switched off to keep this test lean."""
    from prefect.client.schemas.actions import DeploymentUpdate

    from flows.poll import poll_cdrs

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(POLL)
        if "analyze" in inspect.signature(poll_cdrs.fn).parameters:
            client.update_deployment(deployment.id, DeploymentUpdate(parameters={"analyze": False}))
    return deployment.id


@pytest.fixture(scope="module")
def pbxs(deployed: str) -> Iterator[dict[str, UcmSimulator]]:
    """Ten simulated CloudUCMs around the wall clock, each saved as a CloudUCM block (``scheme="http"``)."""
    sims: dict[str, UcmSimulator] = {}
    with ExitStack() as stack:
        for index, name in enumerate(TENANTS):
            config = wall_clock_pbx(
                seed=200 + index, calls_per_day=CALLS_PER_DAY, tz=TZ, password=SIM_PASSWORD
            )
            sim = UcmSimulator(config)
            url = stack.enter_context(sim.serve())
            CloudUCM(host=HOST, port=int(url.rsplit(":", 1)[1]), scheme="http", timezone=TZ,
                     password=SecretStr(SIM_PASSWORD)).save(name, overwrite=True)  # fmt: skip
            sims[name] = sim
        yield sims


def create_run(deployment_id: UUID, parameters: dict[str, Any] | None = None) -> UUID:
    with get_client(sync_client=True) as client:
        return client.create_flow_run_from_deployment(deployment_id, parameters=parameters or {}).id


def wait_final(run_id: UUID, timeout: float = RUN_TIMEOUT) -> FlowRun:
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run_id)
            if run.state and run.state.type.value in FINAL:
                return run
            assert time.monotonic() < deadline, f"run {run.name} still {run.state} after {timeout}s"
            time.sleep(0.5)


def wait_idle(deployment_id: UUID, timeout: float = RUN_TIMEOUT) -> None:
    """Until no run of the deployment is pending or running (e.g. the schedule's own tick).

    On a slow machine a scheduled tick runs for a while; runs created meanwhile are all cancelled
    by CANCEL_NEW, however many a test makes in a row.
    """
    deadline = time.monotonic() + timeout
    while any(state_of(r) in ACTIVE for r in deployment_runs(deployment_id)):
        assert time.monotonic() < deadline, f"runs of the deployment still active after {timeout}s"
        time.sleep(0.5)


def tick(deployment_id: UUID, parameters: dict[str, Any] | None = None) -> FlowRun:
    """One poll tick through a worker; a run cancelled by CANCEL_NEW (it met a scheduled one) is redone
    once the run it met has ended (retrying at once would only meet it again)."""
    for _ in range(TICK_ATTEMPTS):
        wait_idle(deployment_id)
        run = wait_final(create_run(deployment_id, parameters))
        if run.state and run.state.type.value != "CANCELLED":
            return run
    pytest.fail(f"{TICK_ATTEMPTS} ticks in a row were cancelled")


def state_of(run: FlowRun) -> str:
    return run.state.type.value if run.state else "NONE"


def truth(sim: UcmSimulator, since: datetime) -> list[str]:
    """AcctIds of every leg the PBX had written whose start lies in the polled range.

    The client floors a window's start to the second (cdrapi takes whole seconds), so does this.
    """
    first = since.replace(microsecond=0)
    return sorted(
        leg["AcctId"]
        for leg in sim.ground_truth()
        if datetime.strptime(leg["start"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) >= first
    )


def deployment_runs(deployment_id: UUID) -> list[FlowRun]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]))
        )


def test_deploy_creates_every_deployment_and_the_automations(deployed: str, poll_deployment_id: UUID) -> None:
    import yaml

    expected = {d["name"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    with get_client(sync_client=True) as client:
        names = {d.name for d in client.read_deployments()}
        poll = client.read_deployment(poll_deployment_id)
        automations = {
            name: client.read_automations_by_name(name)
            for name in (POLLER_SILENT, TENANT_FAILING, CALLS_MISSING, TENANT_SILENT, UNRESPONSIVE_RUNS)
        }
    assert expected <= names
    assert (
        poll.work_pool_name == "audiapro"
        and poll.pull_steps
        and "set_working_directory" in str(poll.pull_steps)
    )
    assert [s.schedule.interval.total_seconds() for s in poll.schedules] == [120]  # type: ignore[union-attr]
    assert poll.concurrency_options and poll.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert all(len(found) == 1 and found[0].enabled for found in automations.values())
    assert "deploying to" in deployed


def test_scale_out_two_workers_ten_tenants_exactly_once(
    poll_deployment_id: UUID, pbxs: dict[str, UcmSimulator], workers: list[Worker], e2e_warehouse: str
) -> None:
    ticks = []
    for _ in range(2):
        run = tick(poll_deployment_id)
        assert state_of(run) == "COMPLETED", run.state
        ticks.append(run)
        for sim in pbxs.values():
            sim.clock.advance(CLOCK_STEP.total_seconds())
    # Two ticks at once (e.g. a manual "sync now" during a scheduled tick): CANCEL_NEW lets one run.
    for _ in range(TICK_ATTEMPTS):
        wait_idle(poll_deployment_id)
        pair = [
            wait_final(run_id) for run_id in (create_run(poll_deployment_id), create_run(poll_deployment_id))
        ]
        outcome = sorted(state_of(r) for r in pair)
        if outcome != ["CANCELLED", "CANCELLED"]:  # both cancelled: the schedule's own tick was running
            break
    assert outcome == ["CANCELLED", "COMPLETED"]
    ticks += [r for r in pair if state_of(r) == "COMPLETED"]

    engine = get_engine(e2e_warehouse)
    states = {s.tenant: s for s in list_sync_states(engine)}
    assert set(states) == set(TENANTS), "every tenant polled"
    assert all(s.consecutive_failures == 0 and s.last_success_at for s in states.values())
    with engine.connect() as conn:
        first_windows = sa.text(
            "SELECT tenant, min(window_start) FROM ingest_runs WHERE kind='poll' GROUP BY tenant"
        )
        starts = dict(conn.execute(first_windows).all())
        stored = conn.execute(sa.text("SELECT tenant, acct_id FROM cdr_legs")).all()
    for name, sim in pbxs.items():
        mine = sorted(str(acct) for tenant, acct in stored if tenant == name)
        expected = truth(sim, starts[name])
        assert mine == expected, f"{name}: {len(mine)} stored vs {len(expected)} written by the PBX"
        # The first window reached a whole day back, and every day has about calls_per_day calls of
        # one or more legs each: at any time of day, on any weekday, each PBX delivered at least that.
        assert len(expected) >= sim.config.calls_per_day, f"{name}: only {len(expected)} legs in the window"
    assert_first_windows_follow_this_clock(e2e_warehouse, pbxs)

    runs = [r for r in deployment_runs(poll_deployment_id) if r.start_time and state_of(r) != "CANCELLED"]
    spans = sorted((r.start_time, r.end_time or datetime.now(UTC)) for r in runs)
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans)), "poll runs overlapped"
    logs = {w.name: w.log.read_text(errors="replace") for w in workers}
    # Both workers may try to submit a run; the server lets exactly one of them start it.
    for run in runs:
        takers = [
            n for n, text in logs.items() if f"Flow run '{run.name}' submitted to infrastructure" in text
        ]
        assert len(takers) == 1, f"run {run.name} ({state_of(run)}) started by {takers}"
    print(
        "runs per worker:", {n: len(re.findall(r"submitted to infrastructure", t)) for n, t in logs.items()}
    )

    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        for run in ticks:
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
            )
            summary = [a for a in artifacts if a.key == "poll-cdrs-summary"]
            assert len(summary) == 1, f"run {run.name} left no summary artifact"
            table = summary[0].data if isinstance(summary[0].data, list) else json.loads(str(summary[0].data))
            assert sorted(row["tenant"] for row in table) == TENANTS
            assert {row["status"] for row in table} == {"ok"}


def assert_first_windows_follow_this_clock(warehouse_url: str, pbxs: dict[str, UcmSimulator]) -> None:
    """Each tenant's first poll window is the last 24 h + lookback by a clock that agrees with ours.

    The first tick loads that window in pieces (one ingest run each, same flow run): their union is
    the window. The workers' flow runs take ``now`` from their own wall clock; under a shifted clock
    (`scripts/clock-shift-test.sh`) this fails unless they were shifted alike.
    """
    with get_engine(warehouse_url).connect() as conn:
        firsts = conn.execute(
            sa.text(
                "SELECT tenant, min(window_start), max(window_end) FROM ingest_runs r WHERE kind='poll' "
                "AND flow_run_id = (SELECT flow_run_id FROM ingest_runs f WHERE f.kind='poll' "
                "AND f.tenant = r.tenant ORDER BY f.id LIMIT 1) GROUP BY tenant"
            )
        ).all()
    latest = datetime.now(UTC)
    for tenant, start, end in firsts:
        start, end = as_utc(start), as_utc(end)
        assert end - start == FIRST_WINDOW, f"{tenant}: first window {start} → {end}"
        # The PBX was built BEHIND our clock before the run started; the run ended before now.
        built = pbxs[tenant].config.now
        assert built is not None
        assert built + BEHIND - timedelta(seconds=DEFAULT_SAFETY_SECONDS) <= end <= latest, (tenant, end)


def as_utc(value: datetime) -> datetime:
    """A timestamp read back from the warehouse, as aware UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def admin_api(url: str) -> TestClient:
    """The admin API on the e2e Prefect server, called with the admin token (stored here, so that
    the test does not depend on the one that stores it through the CLI running first)."""
    from audiapro.cli import app as cli

    stored = CliRunner().invoke(cli, ["admin-token", "set", "--stdin"], input=f"{ADMIN_TOKEN}\n")
    assert stored.exit_code == 0, stored.output
    api = create_app(PrefectOrchestrator(), read_states_of(url))
    return TestClient(api, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def read_states_of(url: str) -> Any:
    engine = get_engine(url)
    return lambda: list_sync_states(engine)


#: Sync-now requests that may meet a running tick before one starts a run of its own.
SYNC_ATTEMPTS = 3


def test_admin_sync_needs_the_token_and_starts_a_run(
    poll_deployment_id: UUID, pbxs: dict[str, UcmSimulator], workers: list[Worker], e2e_warehouse: str
) -> None:
    from audiapro.cli import app as cli

    stored = CliRunner().invoke(cli, ["admin-token", "set", "--stdin"], input=f"{ADMIN_TOKEN}\n")
    assert stored.exit_code == 0 and ADMIN_TOKEN not in stored.output, stored.output
    api = TestClient(create_app(PrefectOrchestrator(), read_states_of(e2e_warehouse)))
    before = len(deployment_runs(poll_deployment_id))
    assert api.post("/api/admin/sync-cdrs").status_code == 401
    wrong = api.post(
        "/api/admin/sync-cdrs", headers={"Authorization": "Bearer wrong"}, json={"tenant": "pbx-03"}
    )
    assert wrong.status_code == 401
    assert len(deployment_runs(poll_deployment_id)) == before, "a refused request started a run"

    for _ in range(SYNC_ATTEMPTS):
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        response = api.post("/api/admin/sync-cdrs", headers=admin, json={"tenant": "pbx-03"})
        if response.status_code != 200:
            break
        # A scheduled tick was running: nothing was started, the answer names that tick.
        assert response.json()["already_running"] is True, response.text
        assert state_of(wait_final(UUID(response.json()["flow_run_id"]))) in ("COMPLETED", "FAILED")
    assert response.status_code == 202, response.text
    run = wait_final(UUID(response.json()["flow_run_id"]))
    assert run.parameters.get("tenant") == "pbx-03" and "admin-api" in run.tags
    # CANCELLED only if a scheduled tick began between the check for a running tick and the new run.
    assert state_of(run) in ("COMPLETED", "CANCELLED")


def test_health_and_status_report_an_active_poller(
    prefect_server: PrefectServer, poll_deployment_id: UUID, pbxs: dict[str, UcmSimulator],
    workers: list[Worker], e2e_warehouse: str,
) -> None:  # fmt: skip
    recent = datetime.now(UTC) - timedelta(minutes=5)
    if not any(state_of(r) == "COMPLETED" and r.end_time and r.end_time > recent
               for r in deployment_runs(poll_deployment_id)):  # fmt: skip
        assert state_of(tick(poll_deployment_id)) == "COMPLETED"  # run on its own: make a tick first
    anonymous = TestClient(create_app(PrefectOrchestrator(), read_states_of(e2e_warehouse)))
    assert list(anonymous.get("/api/health").json()) == ["status"]  # details need the token
    response = admin_api(e2e_warehouse).get("/api/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["cdr_poller"]) == ("ok", "active"), body
    assert [t["tenant"] for t in body["tenants"]] == TENANTS
    assert all(t["status"] == "ok" and isinstance(t["lag_seconds"], int) for t in body["tenants"])
    assert body["next_run_at"] is not None  # the 120 s schedule is live

    done = subprocess.run(
        [str(BIN / "audiapro"), "status", "--json"],
        env=prefect_server.env(AUDIAPRO_DATABASE_URL=e2e_warehouse),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    status = json.loads(done.stdout)
    assert status["cdr_poller"] == "active" and len(status["tenants"]) == len(TENANTS)
    assert SIM_PASSWORD not in done.stdout + done.stderr


def automation_firings(since: datetime, server: PrefectServer) -> list[dict[str, Any]]:
    body = {
        "filter": {
            "event": {"name": ["prefect.automation.triggered"]},
            "occurred": {"since": since.isoformat()},
        },
        "limit": 50,
    }
    response = httpx.post(f"{server.api_url}/events/filter", json=body, timeout=10)
    response.raise_for_status()
    return list(response.json()["events"])


def test_a_tenant_failing_five_ticks_in_a_row_raises_the_alert(
    prefect_server: PrefectServer, poll_deployment_id: UUID, workers: list[Worker], e2e_warehouse: str
) -> None:
    engine = get_engine(e2e_warehouse)
    for _ in range(alerts.TENANT_FAILURE_THRESHOLD - 1):  # four failed ticks already behind it
        record_failure(engine, tenant=BROKEN, run=RunInfo(kind="poll"), error="UcmTransportError: timeout")
    since = datetime.now(UTC)
    # Its history never gets read (the login fails), but no simulator here follows the wall clock.
    config = SimulatorConfig(
        seed=9, calls_per_day=20, start=date(2026, 3, 2), days=1, tz=TZ, password=SIM_PASSWORD
    )
    sim = UcmSimulator(config)
    with sim.serve() as url:
        CloudUCM(host=HOST, port=int(url.rsplit(":", 1)[1]), scheme="http", timezone=TZ,
                 password=SecretStr(WRONG_PASSWORD)).save(BROKEN, overwrite=True)  # fmt: skip
        try:
            run = tick(poll_deployment_id, {"tenant": BROKEN})
            health = admin_api(e2e_warehouse).get("/api/health")
        finally:
            CloudUCM.delete(BROKEN)
    assert state_of(run) == "FAILED"
    broken = read_sync_state(engine, BROKEN)
    assert broken is not None and broken.consecutive_failures >= alerts.TENANT_FAILURE_THRESHOLD
    assert broken.last_error and WRONG_PASSWORD not in broken.last_error
    body = health.json()
    assert (body["cdr_poller"], body["status"]) == ("failing", "degraded")
    line = next(t for t in body["tenants"] if t["tenant"] == BROKEN)
    assert line["status"] == "failing" and line["consecutive_failures"] >= alerts.TENANT_FAILURE_THRESHOLD
    assert "password" in line["last_error"].lower() and WRONG_PASSWORD not in health.text

    deadline = time.monotonic() + 60
    fired: list[dict[str, Any]] = []
    while not fired:
        assert time.monotonic() < deadline, "the tenant-failing automation did not fire"
        time.sleep(1)
        fired = [
            e for e in automation_firings(since, prefect_server)
            if e["payload"].get("triggering_labels", {}).get("prefect.resource.id") == BROKEN_RESOURCE
        ]  # fmt: skip
    assert fired[0]["resource"]["prefect.resource.name"] == TENANT_FAILING
    # No secret in the alert, nor anywhere the workers and their flow runs logged.
    seen = json.dumps(fired) + "".join(w.log.read_text(errors="replace") for w in workers)
    for secret in (WRONG_PASSWORD, SIM_PASSWORD, ADMIN_TOKEN):
        assert secret not in seen
