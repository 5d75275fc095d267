"""What an idle tenant's poll costs Prefect (issue 13: 1,000 tenants in one 2-minute tick).

A shard reads its tenants' blocks in one API call, polls each tenant in a thread of its own run
(no task run per tenant) with the same retries on transient faults, and the PBX session slots reuse
one API client per process instead of building one (an SSL context each) per call.
"""

from __future__ import annotations

from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient

from audiapro.ucm.simulator import UcmSimulator
from blocks.clouducm import CloudUCM, load_tenant
from flows.poll import poll_shard
from tasks import poll as poll_tasks
from tasks.pbx import pbx_session
from tests.integration.pipeline_support import SIM_PASSWORD, TZ, save_simulated_tenant, simulator

pytestmark = pytest.mark.usefixtures("prefect_api")

TENANTS = ("cost-a", "cost-b")


class _Hiccup(ConnectionError):
    """A fault retrying can outlast (``audiapro.errors.is_transient`` reads ``transient``)."""

    transient = True


def _rows(state: Any) -> dict[str, dict[str, Any]]:
    """The shard's per-tenant rows by tenant."""
    return {row["tenant"]: row for row in state.result(raise_on_failure=False)}


@pytest.fixture
def pbx() -> Any:
    """One simulated PBX (calls in March 2026, so the wall-clock window is empty) for both tenants."""
    sim: UcmSimulator = simulator()
    with sim.serve() as url:
        for name in TENANTS:
            save_simulated_tenant(name, url, password=SIM_PASSWORD, timezone=TZ)
        yield sim
    for name in TENANTS:
        CloudUCM.delete(name)


def test_a_shard_reads_its_tenants_blocks_in_one_call(
    pbx: UcmSimulator, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def one_by_one(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a block read per tenant")

    monkeypatch.setattr(CloudUCM, "load", one_by_one)
    state = poll_shard([*TENANTS, "cost-gone"], analyze=False, return_state=True)

    rows = _rows(state)
    assert [rows[name]["status"] for name in TENANTS] == ["ok", "ok"], rows
    assert pbx.stats.logins == 2
    # A tenant deleted since the tick listed it still fails alone, named, as before.
    assert rows["cost-gone"]["status"] == "failed"
    assert state.is_failed() and "cost-gone" in (state.message or "")


def test_a_shard_retries_transient_faults_only_then_reports_the_tenant(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: dict[str, int] = {}

    def poll_once(tenant: str, block: Any = None, *, flow_run_id: str | None = None) -> dict[str, Any]:
        attempts[tenant] = attempts.get(tenant, 0) + 1
        if tenant == "flaky" and attempts[tenant] < 3:
            raise _Hiccup("PBX restarting")
        if tenant == "down":
            raise _Hiccup("PBX unreachable")
        if tenant == "refused":
            raise PermissionError("wrong password")
        assert flow_run_id, "loads are linked to their flow run"
        return {"tenant": tenant, "status": "ok"}

    monkeypatch.setattr(poll_tasks, "poll_tenant_once", poll_once)
    monkeypatch.setattr(poll_tasks, "POLL_RETRY_DELAYS", [0.0, 0.0])
    state = poll_shard(["flaky", "down", "refused"], analyze=False, return_state=True)

    rows = _rows(state)
    assert attempts == {"flaky": 3, "down": 3, "refused": 1}  # 2 retries; none for a permanent error
    assert rows["flaky"]["status"] == "ok"
    assert rows["down"]["status"] == rows["refused"]["status"] == "failed"
    assert "unreachable" in rows["down"]["error"] and "password" in rows["refused"]["error"]
    assert state.is_failed() and "2 of 3 tenants failed" in (state.message or "")


def test_pbx_sessions_reuse_one_prefect_client(
    pbx: UcmSimulator, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = load_tenant(TENANTS[0])
    with pbx_session(block, TENANTS[0], wait_s=5):  # creates the limits (and the shared client)
        pass
    built: list[int] = []
    original = SyncPrefectClient.__init__

    def counting(self: SyncPrefectClient, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "__init__", counting)
    for _ in range(3):
        with pbx_session(block, TENANTS[0], wait_s=5):
            pass
    assert built == []  # before: two clients per session (acquire, release) and one per lease renewer
