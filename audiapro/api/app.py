"""The admin HTTP API (FastAPI): ``GET /api/health`` and ``POST /api/admin/sync-cdrs``.

Build it with ``create_app(orchestrator, read_states)``; ``audiapro api`` serves it with uvicorn and
the Prefect orchestrator, tests use ``audiapro.api.fake.InMemoryOrchestrator``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from audiapro import __version__
from audiapro.api.auth import bearer_token, token_matches
from audiapro.api.health import Overall
from audiapro.api.orchestrator import POLL_DEPLOYMENT, DeploymentMissing, Orchestrator
from audiapro.api.service import (
    CompletenessReader,
    LoginBlockReader,
    SyncStateReader,
    describe,
    gather_health,
)
from audiapro.tenants import tenant_key

log = logging.getLogger("audiapro.api")

#: Longest tenant name accepted in a request (block names are short slugs).
MAX_TENANT_CHARS = 100
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


class SyncRequest(BaseModel):
    """Body of ``POST /api/admin/sync-cdrs`` (optional)."""

    tenant: str | None = Field(
        default=None, max_length=MAX_TENANT_CHARS, description="Poll only this tenant; all when omitted"
    )


class SyncStarted(BaseModel):
    """Answer of ``POST /api/admin/sync-cdrs``: the flow run that was created."""

    flow_run_id: str = Field(description="Prefect flow run id")
    flow_run_name: str = Field(description="Flow run name as shown in the Prefect UI")
    state: str = Field(description="State right after creation, normally SCHEDULED")
    deployment: str = Field(description="The deployment the run belongs to")
    tenant: str | None = Field(description="The one tenant polled, or null for all")


def create_app(
    orchestrator: Orchestrator,
    read_states: SyncStateReader,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    read_completeness: CompletenessReader | None = None,
    read_login_blocks: LoginBlockReader | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        orchestrator: Prefect (or a fake): deployment state, tenants, admin token, run creation.
        read_states: Returns the warehouse's sync_state rows.
        clock: The current time (tests pin it).
        read_completeness: Returns the recent reconcile_days rows (per-tenant completeness).
        read_login_blocks: Returns the tenants whose PBX logins are paused.
    """
    app = FastAPI(
        title="AudiaPro admin API",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )

    def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
        """Let the request through only with the configured bearer token."""
        presented = bearer_token(authorization)
        if presented is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bearer token required", UNAUTHORIZED_HEADERS)
        try:
            expected = orchestrator.admin_token()
        except Exception as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, describe("Prefect API", exc)) from None
        if expected is None:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "no admin token configured: run `audiapro admin-token set`",
            )
        if not token_matches(presented, expected):
            client = request.client.host if request.client else "?"
            log.warning("admin request with a wrong token from %s refused", client)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid bearer token", UNAUTHORIZED_HEADERS)

    @app.get("/api/health", summary="Pipeline health: poller, per-tenant sync state and completeness")
    def health() -> JSONResponse:
        report = gather_health(orchestrator, read_states, clock(), read_completeness, read_login_blocks)
        code = status.HTTP_503_SERVICE_UNAVAILABLE if report.status is Overall.error else status.HTTP_200_OK
        return JSONResponse(report.as_dict(), status_code=code)

    @app.post(
        "/api/admin/sync-cdrs",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=[Depends(require_admin)],
        summary="Start a poll-cdrs run now (sync now); returns its flow run id",
    )
    def sync_cdrs(body: SyncRequest | None = None) -> SyncStarted:
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
        log.info("admin sync-cdrs started flow run %s (tenant %s)", run.name, tenant or "all")
        return SyncStarted(
            flow_run_id=run.id,
            flow_run_name=run.name,
            state=run.state,
            deployment=POLL_DEPLOYMENT,
            tenant=tenant,
        )

    return app


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
