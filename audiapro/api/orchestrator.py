"""What the admin API needs from the orchestrator, and its Prefect implementation.

This module is the API's Prefect edge (like ``audiapro/cli.py`` for the CLI): Prefect is imported
lazily inside ``PrefectOrchestrator`` only, so the rest of ``audiapro/api`` stays testable with the
in-memory fake (``audiapro.api.fake``) and no server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from audiapro.api.health import FINISHED_BAD, FINISHED_OK, FinishedRun, PollDeployment, TenantInfo
from audiapro.push.config import PushTenant

POLL_DEPLOYMENT = "poll-cdrs/poll-cdrs"
#: Prefect Secret block holding the admin API's bearer token (`audiapro admin-token set`).
ADMIN_TOKEN_BLOCK = "audiapro-admin-token"
TENANT_BLOCK_TYPE = "clouducm"
#: Tag on runs started through the admin API, so the UI shows where a run came from.
ADMIN_RUN_TAG = "admin-api"
#: States of a run that holds the deployment's concurrency slot: a new run would be cancelled.
ACTIVE_STATES = ("RUNNING", "PENDING", "CANCELLING")


class DeploymentMissing(LookupError):
    """The poll deployment does not exist on the Prefect server."""


@dataclass(frozen=True)
class StartedRun:
    """A flow run created on request.

    Attributes:
        id: Flow run id.
        name: Flow run name (as the UI shows it).
        state: State type right after creation (normally ``SCHEDULED``), or the running tick's.
        already_running: No run was created: ``id`` is the tick already running, which the
            deployment's ``CANCEL_NEW`` limit would have cancelled a new run for.
        tenant: The tenant the returned run polls (None: every tenant).
    """

    id: str
    name: str
    state: str
    already_running: bool = False
    tenant: str | None = None


class Orchestrator(Protocol):
    """The orchestrator queries the admin API and ``audiapro status`` make."""

    def poll_deployment(self) -> PollDeployment | None:
        """The poll deployment's state, None when it is not deployed."""
        ...

    def tenants(self) -> list[TenantInfo]:
        """Configured tenants (no secrets)."""
        ...

    def admin_token(self) -> str | None:
        """The admin API's bearer token, None when none is configured."""
        ...

    def start_poll(self, tenant: str | None) -> StartedRun:
        """Create a poll-cdrs run now (optionally for one tenant); do not wait for it.

        When a tick of the deployment is already running (or about to), create nothing and return
        that tick (``already_running``): a new run would be cancelled by the deployment's
        ``CANCEL_NEW`` concurrency limit without a word.

        Raises:
            DeploymentMissing: poll-cdrs is not deployed.
        """
        ...


#: The deployment uploads are imported by, and the tag its runs get.
IMPORT_DEPLOYMENT = "import-cdr-file/import-cdr-file"
UPLOAD_RUN_TAG = "upload"
#: The deployment pushed calls are analysed by, and the tag of the runs push starts.
ANALYZE_DEPLOYMENT = "analyze-calls/analyze-calls"
PUSH_RUN_TAG = "push"
#: Path of a flow run's page under the Prefect UI's address.
FLOW_RUN_UI_PATH = "/runs/flow-run/"


class IngestOrchestrator(Orchestrator, Protocol):
    """What the push receiver and the upload page need besides (``create_app`` takes this one)."""

    def push_tenant(self, tenant: str) -> PushTenant | None:
        """The tenant's push settings with its push password, None when there is no such tenant."""
        ...

    def start_import(self, tenant: str, path: str) -> StartedRun:
        """Create an import-cdr-file run for a spooled file; do not wait for it.

        Raises:
            DeploymentMissing: import-cdr-file is not deployed.
        """
        ...

    def flow_run_url(self, run_id: str) -> str | None:
        """The run's page in the Prefect UI, None when no UI address is known."""
        ...

    def start_analysis(self, tenant: str) -> None:
        """Start an analyze-calls run for the tenant's recent calls; do not wait for it."""
        ...

    def run_state(self, run_id: str) -> str | None:
        """A flow run's state type (``SCHEDULED``, ``RUNNING``, ``FAILED``...), None when unknown."""
        ...


class PrefectOrchestrator:
    """The Prefect API at ``PREFECT_API_URL`` (sync client: FastAPI runs sync endpoints in threads)."""

    def __init__(self, deployment: str = POLL_DEPLOYMENT, token_block: str = ADMIN_TOKEN_BLOCK) -> None:
        """Use the deployment ``flow/deployment`` and the Secret block ``token_block``."""
        self.deployment = deployment
        self.token_block = token_block

    def poll_deployment(self) -> PollDeployment | None:
        """Read the deployment, its latest finished run and its next scheduled run."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.sorting import FlowRunSort
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                deployment = client.read_deployment_by_name(self.deployment)
            except ObjectNotFound:
                return None
            finished = client.read_flow_runs(
                flow_run_filter=_runs_filter(deployment.id, [FINISHED_OK, *FINISHED_BAD]),
                sort=FlowRunSort.END_TIME_DESC,
                limit=1,
            )
            upcoming = client.read_flow_runs(
                flow_run_filter=_runs_filter(deployment.id, ["SCHEDULED"]),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                limit=1,
            )
        last = None
        run = finished[0] if finished else None
        if run is not None and run.state is not None and run.end_time is not None:
            last = FinishedRun(name=run.name, state_type=run.state.type.value, finished_at=run.end_time)
        return PollDeployment(
            paused=bool(deployment.paused),
            schedule_active=any(s.active for s in deployment.schedules or []),
            last_finished=last,
            next_run_at=upcoming[0].expected_start_time if upcoming else None,
        )

    def tenants(self) -> list[TenantInfo]:
        """The CloudUCM block documents, read without secrets."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                documents = client.read_block_documents_by_type(TENANT_BLOCK_TYPE, include_secrets=False)
            except ObjectNotFound:  # block type not registered yet: no tenants
                return []
        return [TenantInfo.from_block(d.name, d.data) for d in documents if d.name]

    def admin_token(self) -> str | None:
        """Load the token from its Secret block (read on every request, so rotation is immediate)."""
        from prefect.blocks.system import Secret

        try:
            block: Any = Secret.load(self.token_block)
        except ValueError:  # no such block document
            return None
        value = block.get()
        return value if isinstance(value, str) and value else None

    def start_poll(self, tenant: str | None) -> StartedRun:
        """The running tick, else ``run_deployment(..., timeout=0)``: create the run, return at once."""
        from prefect.deployments import run_deployment
        from prefect.exceptions import ObjectNotFound

        running = self.running_tick()
        if running is not None:
            return running
        try:
            run: Any = run_deployment(
                self.deployment,
                parameters={"tenant": tenant} if tenant else {},
                timeout=0,
                as_subflow=False,
                tags=[ADMIN_RUN_TAG],
            )
        except ObjectNotFound as exc:
            raise DeploymentMissing(self.deployment) from exc
        state = run.state.type.value if run.state else "SCHEDULED"
        return StartedRun(id=str(run.id), name=str(run.name), state=state, tenant=tenant)

    def running_tick(self) -> StartedRun | None:
        """The deployment's run holding its concurrency slot (running or pending), if any.

        Raises:
            DeploymentMissing: The deployment does not exist.
        """
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.sorting import FlowRunSort
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                deployment = client.read_deployment_by_name(self.deployment)
            except ObjectNotFound as exc:
                raise DeploymentMissing(self.deployment) from exc
            runs = client.read_flow_runs(
                flow_run_filter=_runs_filter(deployment.id, list(ACTIVE_STATES)),
                sort=FlowRunSort.START_TIME_DESC,
                limit=1,
            )
        if not runs:
            return None
        run = runs[0]
        state = run.state.type.value if run.state else "RUNNING"
        tenant = (run.parameters or {}).get("tenant")
        return StartedRun(
            id=str(run.id), name=str(run.name), state=state, already_running=True, tenant=tenant
        )

    def push_tenant(self, tenant: str) -> PushTenant | None:
        """Read the tenant's CloudUCM block with its secrets (the receiver caches the answer)."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                document = client.read_block_document_by_name(
                    tenant, block_type_slug=TENANT_BLOCK_TYPE, include_secrets=True
                )
            except ObjectNotFound:
                return None
        return PushTenant.from_block(tenant, dict(document.data))

    def start_import(self, tenant: str, path: str) -> StartedRun:
        """``run_deployment(import-cdr-file, timeout=0)``: create the run, return at once."""
        from prefect.deployments import run_deployment
        from prefect.exceptions import ObjectNotFound

        try:
            run: Any = run_deployment(
                IMPORT_DEPLOYMENT,
                parameters={"path": path, "tenant": tenant},
                timeout=0,
                as_subflow=False,
                tags=[ADMIN_RUN_TAG, UPLOAD_RUN_TAG],
            )
        except ObjectNotFound as exc:
            raise DeploymentMissing(IMPORT_DEPLOYMENT) from exc
        state = run.state.type.value if run.state else "SCHEDULED"
        return StartedRun(id=str(run.id), name=str(run.name), state=state, tenant=tenant)

    def start_analysis(self, tenant: str) -> None:
        """``run_deployment(analyze-calls, timeout=0)`` for the tenant (its default: the last 24 h)."""
        from prefect.deployments import run_deployment

        run_deployment(ANALYZE_DEPLOYMENT, parameters={"tenants": [tenant]}, timeout=0, as_subflow=False,
                       tags=[PUSH_RUN_TAG])  # fmt: skip

    def run_state(self, run_id: str) -> str | None:
        """Read the run's state type."""
        import uuid

        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        try:
            key = uuid.UUID(run_id)
        except ValueError:
            return None
        with get_client(sync_client=True) as client:
            try:
                run = client.read_flow_run(key)
            except ObjectNotFound:
                return None
        return run.state.type.value if run.state else None

    def flow_run_url(self, run_id: str) -> str | None:
        """``PREFECT_UI_URL`` + the run's path (the UI address Prefect itself links to)."""
        from prefect.settings import PREFECT_UI_URL

        base = PREFECT_UI_URL.value()
        return f"{str(base).rstrip('/')}{FLOW_RUN_UI_PATH}{run_id}" if base else None


def _runs_filter(deployment_id: Any, state_types: list[str]) -> Any:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    return FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(t) for t in state_types])),
    )
