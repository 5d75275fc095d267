"""The admin API with the upload page on an in-memory orchestrator that runs imports in-process."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI

from audiapro.api.app import create_app
from audiapro.api.fake import InMemoryOrchestrator
from audiapro.api.health import TenantInfo
from audiapro.importing import allowed_import_path, import_file
from tests.integration.pipeline_support import TENANT

TOKEN = "upload-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def upload_app(engine: sa.Engine, spool_dir: Path | None = None) -> tuple[FastAPI, InMemoryOrchestrator]:
    """The API for tenant ``acme``; its import-cdr-file runs do what the flow does, in this process.

    The runner admits the path exactly as the flow's task does (inside an import root), so a spooled
    file outside the spool would fail here as it would on a worker.
    """

    def run_import(tenant: str, path: str) -> object:
        assert tenant == TENANT.name
        return import_file(allowed_import_path(path), engine, TENANT)

    orchestrator = InMemoryOrchestrator(
        tenant_list=[TenantInfo(name=TENANT.name), TenantInfo(name="other")],
        token=TOKEN,
        run_import=run_import,
    )
    return create_app(orchestrator, list, uploads=engine, spool_dir=spool_dir), orchestrator
