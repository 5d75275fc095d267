"""The Prefect-free readers give Prefect's own answers (a real Prefect API on loopback).

``audiapro status`` and ``tenant list`` read blocks and the poll deployment with plain REST calls
when a local Prefect API runs (``audiapro.ops.prefect_store``, ``RestOrchestrator``); these tests
compare them with Prefect's client on the same server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, Running, Scheduled
from pydantic import SecretStr

from audiapro.api.local_orchestrators import RestOrchestrator
from audiapro.api.orchestrator import PrefectOrchestrator
from audiapro.ops import prefect_store
from blocks.clouducm import CloudUCM

pytestmark = pytest.mark.usefixtures("prefect_api")

#: Flow and deployment names of this test (not the real poll-cdrs: other tests may deploy that).
FLOW, DEPLOYMENT = "store-test-flow", "store-test"


@pytest.fixture
def api_url() -> str:
    url = PREFECT_API_URL.value()
    assert url and url.startswith("http://127.0.0.1"), url
    return str(url)


@pytest.fixture
def tenants() -> Iterator[list[str]]:
    names = ["store-b", "store-a"]
    for index, name in enumerate(names):
        CloudUCM(host=f"pbx{index}.example", password=SecretStr(f"pw-{index}"), timezone="Europe/Paris",
                 enabled=bool(index)).save(name, overwrite=True)  # fmt: skip
    yield sorted(names)
    for name in names:
        CloudUCM.delete(name)


def test_the_rest_reader_gives_prefects_block_documents_without_secrets(
    api_url: str, tenants: list[str]
) -> None:
    documents = prefect_store._from_local_api(api_url, "clouducm", include_secrets=False)
    assert documents is not None
    ours = {d.name: d.data for d in documents if d.name in tenants}
    with get_client(sync_client=True) as client:
        theirs = {
            d.name: d.data for d in client.read_block_documents_by_type("clouducm") if d.name in tenants
        }
    assert list(ours) == tenants  # sorted by name
    secret = {"password", "push_password"}  # the block's SecretStr fields: Prefect shows them masked
    assert ours == {name: {k: v for k, v in data.items() if k not in secret} for name, data in theirs.items()}
    with_secrets = prefect_store._from_local_api(api_url, "clouducm", include_secrets=True) or []
    assert {d.name: d.data["password"] for d in with_secrets if d.name in tenants} == {
        "store-a": "pw-1",
        "store-b": "pw-0",
    }


def test_an_unregistered_block_type_has_no_documents(api_url: str) -> None:
    assert prefect_store._from_local_api(api_url, "no-such-type", include_secrets=False) == []


def test_the_rest_orchestrator_answers_like_prefects_client(api_url: str, tenants: list[str]) -> None:
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(FLOW)
        deployment_id = client.create_deployment(flow_id=flow_id, name=DEPLOYMENT, paused=False)
        done = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(done.id, Running(), force=True)
        client.set_flow_run_state(done.id, Completed(), force=True)
        client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=now + timedelta(minutes=2))
        )
    name = f"{FLOW}/{DEPLOYMENT}"
    try:
        rest, prefect = RestOrchestrator(api_url, deployment=name), PrefectOrchestrator(deployment=name)
        ours, theirs = rest.poll_deployment(), prefect.poll_deployment()
        assert ours is not None and ours.last_finished is not None and ours.next_run_at is not None
        assert ours == theirs
        assert [t for t in rest.tenants() if t.name in tenants] == [
            t for t in prefect.tenants() if t.name in tenants
        ]
        assert RestOrchestrator(api_url, deployment="nothing/here").poll_deployment() is None
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)
