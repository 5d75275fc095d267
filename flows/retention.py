"""cleanup-retention: the daily retention cleanup of every tenant (docs/operations.md).

tenants --> cleanup-tenant (per tenant: expired recordings, transcripts, raw CDR JSON)
        --> table artifact with what was removed per tenant
"""

from __future__ import annotations

from typing import Any, Final

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, Failed, State

from audiapro.errors import describe_error
from audiapro.prefect_names import RETENTION_FLOW
from blocks.clouducm import list_tenants
from flows.support import parallel_flow
from tasks.retention import cleanup_tenant_task, now_utc

#: Tenants cleaned at once (each is a few batched statements and a folder scan).
MAX_PARALLEL_TENANTS: Final = 4
TABLE_COLUMNS: Final = ("tenant", "status", "files_deleted", "bytes_freed", "transcripts_cleared",
                        "raw_rows_cleared", "error")  # fmt: skip
SUMMARY_KEY: Final = f"{RETENTION_FLOW}-summary"


@parallel_flow(RETENTION_FLOW, max_workers=MAX_PARALLEL_TENANTS)
def cleanup_retention(tenant: str | None = None) -> State:
    """Delete kept recordings past their tenant's retention, clear older transcripts and raw CDR JSON.

    Every tenant is cleaned, disabled ones too (retention applies to data already stored). Calls,
    legs and analyses are never deleted here; `audiapro tenant purge` does that on request.

    Args:
        tenant: Only this tenant (its CloudUCM block name); every tenant when empty.

    Returns:
        Completed with one row per tenant, Failed naming the tenants whose cleanup failed.
    """
    logger = get_run_logger()
    now = now_utc()
    names = [tenant] if tenant else list_tenants(only_enabled=False)
    futures = {name: cleanup_tenant_task.submit(name, now) for name in names}
    rows: list[dict[str, Any]] = []
    for name, future in futures.items():
        try:
            rows.append(future.result())
        except Exception as exc:
            error = describe_error(exc)
            logger.error("tenant %s: retention cleanup failed: %s", name, error)
            rows.append({"tenant": name, "status": "failed", "error": error})
    rows.sort(key=lambda row: row["tenant"])
    create_table_artifact(
        table=[{col: row.get(col, "") for col in TABLE_COLUMNS} for row in rows],
        key=SUMMARY_KEY,
        description="Retention cleanup per tenant: files deleted, bytes freed, transcripts, raw rows cleared",
    )
    failed = [row["tenant"] for row in rows if row["status"] != "ok"]
    if failed:
        return Failed(message=f"retention cleanup failed for {', '.join(failed)}", data=rows)
    return Completed(message=f"{len(rows)} tenants cleaned", data=rows)
