"""Routes that bring CDRs in: the UCM push receiver and the upload page with its endpoints.

Thin on purpose: the receiver's work is in ``audiapro.push.receiver``, the spooling and status reads
in ``audiapro.api.uploads``; here are only HTTP concerns (status codes, headers, threads).

* ``POST /api/push/ucm/{tenant}``: HTTP Basic (the tenant's push login); 401 before any body is read
  (nothing stored), 503 with ``Retry-After`` while the load queue is full, else 202 with what happened
  to the body: ``pending`` (it will be loaded), ``duplicate``, ``captured`` or ``quarantined`` (kept
  with its reason; answered 202 too, so the PBX does not re-send a body that can never parse).
* ``GET /upload``: the page (one static file, no build step, nothing from a CDN).
* ``GET /api/admin/tenants``, ``PUT /api/admin/uploads/{tenant}``,
  ``GET /api/admin/uploads/{tenant}/{sha256}``: the page's calls, behind the admin token (the gate
  answers 401 before the body is read).
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from audiapro.api.orchestrator import DeploymentMissing, IngestOrchestrator
from audiapro.api.service import describe
from audiapro.api.uploads import (
    UPLOAD_PREFIX,
    already_imported,
    import_status,
    shown_name,
    spool_upload,
    unreadable_reason,
)
from audiapro.push.config import PUSH_PATH
from audiapro.push.receiver import RETRY_AFTER_S, PushReceiver
from audiapro.tenants import tenant_key

if TYPE_CHECKING:
    from collections.abc import Callable

    import sqlalchemy as sa

#: Largest pushed body (a replayed buffer may come as one batch: 10,000 records of ~700 bytes).
PUSH_MAX_BYTES: Final = 8 << 20
BASIC_CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="audiapro push"', "Connection": "close"}
PAGE_FILE: Final = Path(__file__).resolve().parent / "static" / "upload.html"
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
#: Header the page sends the file's name in (URL-encoded): shown back, never a path.
FILE_NAME_HEADER: Final = "x-file-name"


def add_push_route(app: FastAPI, receiver: PushReceiver) -> None:
    """``POST /api/push/ucm/{tenant}`` (module docstring)."""

    @app.post(PUSH_PATH + "{tenant}", status_code=status.HTTP_202_ACCEPTED, summary="UCM CDR push receiver")
    async def push_ucm(tenant: str, request: Request) -> JSONResponse:
        key = _key_or_none(tenant)
        authorization = request.headers.get("authorization")
        try:
            found = (
                None if key is None else await run_in_threadpool(receiver.authenticate, key, authorization)
            )
        except Exception as exc:
            return JSONResponse({"detail": describe("tenant settings", exc)}, status_code=503)
        if found is None:
            return JSONResponse({"detail": "push login required"}, status_code=401, headers=BASIC_CHALLENGE)
        if receiver.saturated():
            return JSONResponse(
                {"detail": "push queue full: retry later (nothing was stored)"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        body = await request.body()
        peer = request.client.host if request.client else None
        receipt = await run_in_threadpool(receiver.receive, found, body, dict(request.headers), peer=peer)
        return JSONResponse(
            {
                "status": receipt.status,
                "body_id": receipt.body_id,
                "legs": receipt.legs,
                "reason": receipt.reason,
            },
            status_code=status.HTTP_202_ACCEPTED,
        )


def add_upload_routes(
    app: FastAPI,
    orchestrator: IngestOrchestrator,
    engine: sa.Engine,
    require_admin: Callable[[Request], None],
    spool_dir: Path | None = None,
) -> None:
    """The upload page and its admin endpoints (module docstring)."""

    @app.get("/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload_page() -> HTMLResponse:
        return HTMLResponse(PAGE_FILE.read_text(encoding="utf-8"))

    @app.get("/api/admin/tenants", dependencies=[Depends(require_admin)], summary="Tenant names")
    def tenants() -> dict[str, list[str]]:
        return {"tenants": sorted(t.name for t in _tenants(orchestrator))}

    @app.put(UPLOAD_PREFIX + "{tenant}", dependencies=[Depends(require_admin)], summary="Upload a CDR file")
    async def upload(tenant: str, request: Request) -> JSONResponse:
        key = _known_tenant(tenant, await run_in_threadpool(_tenants, orchestrator))
        try:
            spooled = await spool_upload(request.stream(), key, spool_dir)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        name = shown_name(urllib.parse.unquote(request.headers.get(FILE_NAME_HEADER, "")))
        answer: dict[str, Any] = {"file": name, "sha256": spooled.sha256, "size_bytes": spooled.size_bytes,
                                  "status_url": f"{UPLOAD_PREFIX}{key}/{spooled.sha256}"}  # fmt: skip
        if await run_in_threadpool(already_imported, engine, key, spooled.sha256):
            if not spooled.existed:  # imported from elsewhere before: this copy is not needed
                spooled.path.unlink(missing_ok=True)
            return JSONResponse({**answer, "already_imported": True}, status_code=status.HTTP_200_OK)
        reason = await run_in_threadpool(unreadable_reason, spooled.path)
        if reason is not None:  # no run for a file that is no CDR export: say why at once
            if not spooled.existed:
                spooled.path.unlink(missing_ok=True)
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: {reason}")
        try:
            run = await run_in_threadpool(orchestrator.start_import, key, str(spooled.path))
        except DeploymentMissing as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, f"{exc} is not deployed") from None
        except Exception as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, describe("Prefect API", exc)) from None
        url = await run_in_threadpool(orchestrator.flow_run_url, run.id)
        run_info = {"flow_run_id": run.id, "flow_run_name": run.name, "flow_run_url": url,
                    "status_url": f"{answer['status_url']}?run={urllib.parse.quote(run.id)}"}  # fmt: skip
        return JSONResponse({**answer, **run_info, "already_imported": False}, status_code=202)

    @app.get(
        UPLOAD_PREFIX + "{tenant}/{sha256}", dependencies=[Depends(require_admin)], summary="Import status"
    )
    def upload_status(tenant: str, sha256: str, run: str | None = None) -> dict[str, Any]:
        key = _key_or_none(tenant)
        if key is None or not _SHA256.match(sha256):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such upload")
        try:
            run_state = orchestrator.run_state(run) if run else None
        except Exception:  # Prefect unreachable: the warehouse's record still tells the progress
            run_state = None
        return import_status(engine, key, sha256, run_state)


def _key_or_none(tenant: str) -> str | None:
    try:
        return tenant_key(tenant)
    except ValueError:
        return None


def _tenants(orchestrator: IngestOrchestrator) -> list[Any]:
    try:
        return list(orchestrator.tenants())
    except Exception as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, describe("Prefect API", exc)) from None


def _known_tenant(tenant: str, known: list[Any]) -> str:
    key = _key_or_none(tenant)
    if key is None or key not in {t.name for t in known}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tenant named {tenant!r}")
    return key
