"""Prefect task of the file import: resolve the tenant, stream the file in. Logic is in audiapro.importing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import task
from prefect.cache_policies import NO_CACHE

from audiapro.importing import allowed_import_path, import_file
from audiapro.tenants import TenantSettings
from blocks.clouducm import load_tenant
from tasks.progress import ProgressReporter
from tasks.support import artifact_key, current_flow_run_id, retry_if_transient
from tasks.warehouse import warehouse_engine

#: A retry resumes after the last committed chunk, so retrying a transient failure costs little.
IMPORT_RETRIES = 2
IMPORT_RETRY_DELAYS: list[float] = [10.0, 60.0]
#: Files at least this large get a progress artifact (smaller ones load in a few seconds).
PROGRESS_MIN_BYTES = 5 << 20


def import_tenant(tenant: str, timezone: str | None) -> TenantSettings:
    """The tenant's settings for an import, with an optional time-zone override.

    An import needs only the tenant's zone and phone region, so an import-only tenant (a CloudUCM
    block with no host and no password) is enough.

    Raises:
        ValueError: No such tenant, or an unknown time zone.
    """
    try:
        settings = load_tenant(tenant).tenant_settings(tenant)
    except ValueError:
        raise ValueError(
            f"no tenant {tenant!r}: add it first, e.g. `audiapro tenant add {tenant} --timezone ZONE` "
            "(an import-only tenant needs no --host)"
        ) from None
    if timezone:
        try:
            ZoneInfo(timezone)  # an unknown zone fails here, before the file is read
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {timezone!r} (e.g. America/New_York)") from None
        settings = replace(settings, timezone=timezone)
    return settings


@task(
    name="import-file",
    task_run_name="import-{tenant}",
    retries=IMPORT_RETRIES,
    retry_delay_seconds=IMPORT_RETRY_DELAYS,
    retry_condition_fn=retry_if_transient,
    cache_policy=NO_CACHE,
)
def import_file_task(path: str, tenant: str, timezone: str | None, chunk_rows: int) -> dict[str, Any]:
    """Import one CDR file for a tenant: read, normalize and load it chunk by chunk.

    Returns:
        The import summary (read, new, duplicate, rejected, first rejects, ...).

    Raises:
        ImportPathRefused: ``path`` lies outside the import roots (nothing was opened).
    """
    file = allowed_import_path(path)  # first: the path comes from whoever started the run
    settings = import_tenant(tenant, timezone)
    if not file.is_file():
        raise FileNotFoundError(f"{path}: no such file (the path must be readable where the flow runs)")
    progress = ProgressReporter(
        key=artifact_key("import", tenant, "progress"),
        description=f"{tenant}: importing {file.name}",
        artifact=file.stat().st_size >= PROGRESS_MIN_BYTES,
    )

    def report(fraction: float, rows: int) -> None:
        progress.update(fraction, f"{tenant}: {file.name}, {rows} rows")

    summary = import_file(
        file,
        warehouse_engine(),
        settings,
        chunk_rows=chunk_rows,
        flow_run_id=current_flow_run_id(),
        on_progress=report,
    )
    return summary.as_row()
