"""`POST /api/admin/sync-cdrs` ("sync now") through the Prefect orchestrator on a real Prefect API.

poll-cdrs has ``concurrency_limit: 1, CANCEL_NEW``: a run created while a tick runs is cancelled on the
spot. So while a tick of the deployment runs, sync now creates nothing and answers with that tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from audiapro.api.orchestrator import PrefectOrchestrator

pytestmark = pytest.mark.usefixtures("prefect_api")

FLOW, DEPLOYMENT = "poll-cdrs", "sync-now-test"


@pytest.fixture
def deployment_id() -> Iterator[UUID]:
    """A deployment of the poll flow (no worker: the runs only change state when the test says so)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(FLOW)
        deployment = client.create_deployment(flow_id=flow_id, name=DEPLOYMENT)
    yield deployment
    with get_client(sync_client=True) as client:
        client.delete_deployment(deployment)


def runs_of(deployment_id: UUID) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
    return sorted(str(run.id) for run in runs)


def test_sync_now_during_a_running_tick_returns_that_tick_and_starts_nothing(deployment_id: UUID) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Running

    with get_client(sync_client=True) as client:
        tick = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(tick.id, Running(), force=True)
    orchestrator = PrefectOrchestrator(deployment=f"{FLOW}/{DEPLOYMENT}")

    answer = orchestrator.start_poll("acme")
    assert answer.already_running and answer.id == str(tick.id) and answer.state == "RUNNING"
    assert answer.tenant is None  # the scheduled tick polls every tenant
    assert runs_of(deployment_id) == [str(tick.id)]

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(tick.id, Completed(), force=True)
    started = orchestrator.start_poll("acme")
    assert not started.already_running and started.tenant == "acme" and started.state == "SCHEDULED"
    assert runs_of(deployment_id) == sorted([str(tick.id), started.id])
