"""Orchestrators that answer ``audiapro status`` without importing Prefect (seconds saved per call).

* ``RestOrchestrator``: a Prefect API on loopback over HTTP (the `make up` stack), asked with the
  standard library through ``audiapro.ops.prefect_rest``: the same REST calls Prefect's client makes.
* ``NoServerOrchestrator``: no Prefect API is configured and none runs, so nothing polls on a
  schedule; the tenants are read from Prefect's database (``audiapro.ops.prefect_store``) instead of
  starting a temporary Prefect server that would report the same and then stop.

``PrefectOrchestrator`` (``audiapro.api.orchestrator``) stays the one for every other setup.
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime
from typing import Any, Final

from audiapro.api.health import FINISHED_BAD, FINISHED_OK, FinishedRun, PollDeployment, TenantInfo
from audiapro.api.orchestrator import ADMIN_RUN_TAG, POLL_DEPLOYMENT, DeploymentMissing, StartedRun
from audiapro.ops import prefect_rest
from audiapro.ops.prefect_store import BlockDocument
from audiapro.prefect_names import ADMIN_TOKEN_BLOCK

SECRET_BLOCK_TYPE: Final = "secret"
NO_SERVER: Final = "no Prefect server runs"


def tenant_infos(documents: list[BlockDocument]) -> list[TenantInfo]:
    """The health view of CloudUCM block documents (as ``PrefectOrchestrator.tenants`` builds it)."""
    return [TenantInfo.from_block(d.name, d.data) for d in documents]


class RestOrchestrator:
    """A Prefect API reached with plain REST calls (loopback, no authentication)."""

    def __init__(self, api_url: str, deployment: str = POLL_DEPLOYMENT) -> None:
        """Ask the API at ``api_url`` (``.../api``) about the deployment ``flow/deployment``."""
        self.api_url = api_url
        self.deployment = deployment

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return prefect_rest.call(self.api_url, method, path, body, attempts=2)

    def _get_or_none(self, path: str) -> Any:
        """``GET path``; ``None`` when the API answers 404 (no such object)."""
        try:
            return self._call("GET", path)
        except prefect_rest.ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _deployment(self) -> dict[str, Any] | None:
        found = self._get_or_none(f"/deployments/name/{urllib.parse.quote(self.deployment)}")
        return None if found is None else dict(found)

    def _runs(self, deployment_id: str, states: list[str], sort: str) -> list[dict[str, Any]]:
        query = {
            "flow_runs": {"deployment_id": {"any_": [deployment_id]}, "state": {"type": {"any_": states}}},
            "sort": sort,
            "limit": 1,
        }
        return list(self._call("POST", "/flow_runs/filter", query) or [])

    def poll_deployment(self) -> PollDeployment | None:
        """Read the deployment, its latest finished run and its next scheduled run."""
        deployment = self._deployment()
        if deployment is None:
            return None
        finished = self._runs(deployment["id"], [FINISHED_OK, *FINISHED_BAD], "END_TIME_DESC")
        upcoming = self._runs(deployment["id"], ["SCHEDULED"], "EXPECTED_START_TIME_ASC")
        last = None
        run = finished[0] if finished else None
        if run is not None and run.get("state") and run.get("end_time"):
            last = FinishedRun(
                name=str(run["name"]),
                state_type=str(run["state"]["type"]),
                finished_at=_time(run["end_time"]),
            )
        return PollDeployment(
            paused=bool(deployment.get("paused")),
            schedule_active=any(s.get("active") for s in deployment.get("schedules") or []),
            last_finished=last,
            next_run_at=_time(upcoming[0]["expected_start_time"]) if upcoming else None,
        )

    def tenants(self) -> list[TenantInfo]:
        """The CloudUCM block documents, read without secrets."""
        documents = prefect_rest.tenant_documents(self.api_url)
        return tenant_infos([BlockDocument(str(d["name"]), dict(d.get("data") or {})) for d in documents])

    def admin_token(self) -> str | None:
        """The admin token from its Secret block, None when there is none."""
        path = f"/block_types/slug/{SECRET_BLOCK_TYPE}/block_documents/name/{ADMIN_TOKEN_BLOCK}"
        found = self._get_or_none(f"{path}?include_secrets=true")
        if found is None:
            return None
        value = (found.get("data") or {}).get("value")
        return value if isinstance(value, str) and value else None

    def start_poll(self, tenant: str | None) -> StartedRun:
        """Create a poll-cdrs run now (as ``run_deployment(..., timeout=0)`` does); do not wait."""
        deployment = self._deployment()
        if deployment is None:
            raise DeploymentMissing(self.deployment)
        body = {"parameters": {"tenant": tenant} if tenant else {}, "tags": [ADMIN_RUN_TAG]}
        run = self._call("POST", f"/deployments/{deployment['id']}/create_flow_run", body)
        state = (run.get("state") or {}).get("type") or "SCHEDULED"
        return StartedRun(id=str(run["id"]), name=str(run["name"]), state=str(state))


class NoServerOrchestrator:
    """No Prefect API configured or running: nothing is scheduled; tenants come from Prefect's database."""

    def __init__(self, tenants: list[BlockDocument]) -> None:
        """Report these tenant documents (``prefect_store.block_documents`` of the CloudUCM type)."""
        self._tenants = tenants

    def poll_deployment(self) -> PollDeployment | None:
        """None: without a running Prefect server no deployment runs, whatever its database holds."""
        return None

    def tenants(self) -> list[TenantInfo]:
        """The tenants read from Prefect's database."""
        return tenant_infos(self._tenants)

    def admin_token(self) -> str | None:
        """None: the admin API needs a Prefect API (`audiapro api` starts one)."""
        return None

    def start_poll(self, tenant: str | None) -> StartedRun:
        """Refused: there is no server to run the deployment."""
        raise DeploymentMissing(f"{POLL_DEPLOYMENT} ({NO_SERVER})")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
