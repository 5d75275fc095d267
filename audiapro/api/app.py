"""The admin HTTP API (FastAPI): ``GET /api/health`` and ``POST /api/admin/sync-cdrs``.

Build it with ``create_app(orchestrator, read_states)``; ``audiapro api`` serves it with uvicorn and
the Prefect orchestrator, tests use ``audiapro.api.fake.InMemoryOrchestrator``.

Every request passes :class:`audiapro.api.gate.RequestGate` first: the admin token is checked from
the headers before any body is read, and bodies are capped per route. ``GET /api/health`` answers
only ``{"status": ...}`` without the token and the full report with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from audiapro import __version__
from audiapro.api.gate import UNAUTHORIZED_HEADERS, RequestGate, is_admin
from audiapro.api.health import Overall
from audiapro.api.orchestrator import (
    POLL_DEPLOYMENT,
    DeploymentMissing,
    IngestOrchestrator,
    Orchestrator,
    StartedRun,
)
from audiapro.api.service import (
    CompletenessReader,
    LoginBlockReader,
    SyncStateReader,
    describe,
    gather_health,
)
from audiapro.tenants import tenant_key

if TYPE_CHECKING:
    import sqlalchemy as sa

    from audiapro.push.receiver import PushReceiver

log = logging.getLogger("audiapro.api")

#: Longest tenant name accepted in a request (block names are short slugs).
MAX_TENANT_CHARS = 100


class SyncRequest(BaseModel):
    """Body of ``POST /api/admin/sync-cdrs`` (optional)."""

    tenant: str | None = Field(
        default=None, max_length=MAX_TENANT_CHARS, description="Poll only this tenant; all when omitted"
    )


class SyncStarted(BaseModel):
    """Answer of ``POST /api/admin/sync-cdrs``: the flow run created, or the tick already running."""

    flow_run_id: str = Field(description="Prefect flow run id")
    flow_run_name: str = Field(description="Flow run name as shown in the Prefect UI")
    state: str = Field(description="State right after creation (normally SCHEDULED), or RUNNING")
    deployment: str = Field(description="The deployment the run belongs to")
    tenant: str | None = Field(description="The one tenant polled, or null for all")
    already_running: bool = Field(
        default=False,
        description="True: nothing was started; flow_run_id is the tick already running (a new run "
        "would be cancelled by the deployment's concurrency limit); ask again once it ended",
    )
    message: str = Field(default="", description="What happened, in words")


def create_app(
    orchestrator: Orchestrator,
    read_states: SyncStateReader,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    read_completeness: CompletenessReader | None = None,
    read_login_blocks: LoginBlockReader | None = None,
    push: PushReceiver | None = None,
    uploads: sa.Engine | None = None,
    spool_dir: Path | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        orchestrator: Prefect (or a fake): deployment state, tenants, admin token, run creation.
        read_states: Returns the warehouse's sync_state rows.
        clock: The current time (tests pin it).
        read_completeness: Returns the recent reconcile_days rows (per-tenant completeness).
        read_login_blocks: Returns the tenants whose PBX logins are paused.
        push: The push receiver (``POST /api/push/ucm/{tenant}``); no push route without it.
        uploads: The warehouse the upload page's imports are read from; no upload page without it
            (the orchestrator must then be an ``IngestOrchestrator``).
        spool_dir: Where uploads are spooled (the import spool when omitted).
    """
    app = FastAPI(
        title="AudiaPro admin API",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )

    # The push and upload modules pull in the warehouse and the CDR readers: loaded when an app is built.
    from audiapro.api.ingest_routes import PUSH_MAX_BYTES, add_push_route, add_upload_routes
    from audiapro.api.uploads import UPLOAD_MAX_BYTES, UPLOAD_PREFIX
    from audiapro.push.config import PUSH_PATH

    # Checks the token (before any body is read) and caps the bodies; see audiapro.api.gate.
    app.add_middleware(
        RequestGate,
        admin_token=orchestrator.admin_token,
        describe=describe,
        prefix_limits={PUSH_PATH: PUSH_MAX_BYTES, UPLOAD_PREFIX: UPLOAD_MAX_BYTES},
    )

    def require_admin(request: Request) -> None:
        """Fail closed should a route under the admin prefix ever be reached without the gate's check."""
        if not is_admin(request.scope):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bearer token required", UNAUTHORIZED_HEADERS)

    @app.get(
        "/api/health",
        summary="Pipeline health: ok, degraded or error; with the admin token also the poller, "
        "per-tenant sync state and completeness",
    )
    def health(request: Request) -> JSONResponse:
        report = gather_health(orchestrator, read_states, clock(), read_completeness, read_login_blocks)
        code = status.HTTP_503_SERVICE_UNAVAILABLE if report.status is Overall.error else status.HTTP_200_OK
        # Tenant names, PBX hosts in error texts, run names: for the admin only.
        body = report.as_dict() if is_admin(request.scope) else {"status": report.status.value}
        return JSONResponse(body, status_code=code)

    @app.post(
        "/api/admin/sync-cdrs",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=[Depends(require_admin)],
        summary="Start a poll-cdrs run now (sync now); returns its flow run id",
    )
    def sync_cdrs(response: Response, body: SyncRequest | None = None) -> SyncStarted:
        tenant = body.tenant if body else None
        if tenant is not None:
            try:
                tenant = tenant_key(tenant)  # the spellings the CLI accepts: "Acme_Corp" is acme-corp
            except ValueError as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
            _check_tenant(orchestrator, tenant)
        try:
            run = orchestrator.start_poll(tenant)
        except DeploymentMissing:
            raise HTTPException(status.HTTP_409_CONFLICT, f"{POLL_DEPLOYMENT} is not deployed") from None
        except Exception as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, describe("Prefect API", exc)) from None
        if run.already_running:
            return _already_running(run, tenant, response)
        log.info("admin sync-cdrs started flow run %s (tenant %s)", run.name, tenant or "all")
        return SyncStarted(
            flow_run_id=run.id,
            flow_run_name=run.name,
            state=run.state,
            deployment=POLL_DEPLOYMENT,
            tenant=tenant,
            message=f"started {POLL_DEPLOYMENT} run {run.name} for {_whom(tenant)}",
        )

    if push is not None:
        add_push_route(app, push)
    if uploads is not None:
        add_upload_routes(app, _ingesting(orchestrator), uploads, require_admin, spool_dir)
    return app


def _ingesting(orchestrator: Orchestrator) -> IngestOrchestrator:
    """The orchestrator as one that can start imports (the upload page needs it)."""
    if not hasattr(orchestrator, "start_import"):
        raise TypeError(f"{type(orchestrator).__name__} cannot start imports: no upload page")
    return orchestrator  # type: ignore[return-value]


def _whom(tenant: str | None) -> str:
    return "every tenant" if tenant is None else f"tenant {tenant}"


def _already_running(run: StartedRun, tenant: str | None, response: Response) -> SyncStarted:
    """200 with the running tick: nothing was started (a new run would be cancelled on the spot)."""
    response.status_code = status.HTTP_200_OK
    covers = run.tenant is None or run.tenant == tenant
    after = "it covers this request" if covers else "ask again once it ended to poll " + _whom(tenant)
    log.info("admin sync-cdrs: %s already running, nothing started (tenant %s)", run.name, tenant or "all")
    return SyncStarted(
        flow_run_id=run.id,
        flow_run_name=run.name,
        state=run.state,
        deployment=POLL_DEPLOYMENT,
        tenant=run.tenant,
        already_running=True,
        message=f"nothing started: {POLL_DEPLOYMENT} run {run.name} is polling {_whom(run.tenant)} "
        f"right now; {after}",
    )


def _check_tenant(orchestrator: Orchestrator, tenant: str) -> None:
    """404 for an unknown tenant, 409 for one that is never polled (disabled or import-only)."""
    try:
        known = {t.name: t for t in orchestrator.tenants()}
    except Exception as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, describe("Prefect API", exc)) from None
    info = known.get(tenant)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tenant named {tenant!r}")
    if not info.enabled or not info.has_pbx:
        raise HTTPException(status.HTTP_409_CONFLICT, f"tenant {tenant!r} is disabled or has no PBX")
