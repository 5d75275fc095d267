"""poll-cdrs: every enabled tenant's new CDRs, exactly once, every 2 minutes.

tenants --> poll-tenant (per tenant, bounded parallel) --> summary artifact
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, Failed, State

from audiapro.prefect_names import POLL_FLOW
from blocks.clouducm import list_tenants
from flows.analyze import trigger_analysis
from flows.support import parallel_flow
from tasks.events import emit_tenant_failed, emit_tenant_silent
from tasks.poll import failure_row, poll_tenant_task

#: How many tenants are polled at once (each tenant is still one PBX session at a time).
MAX_PARALLEL_TENANTS = 4
SUMMARY_COLUMNS = ("tenant", "status", "window_start", "window_end", "pieces", "fetched", "inserted",
                   "updated", "rejected", "behind_seconds", "swept", "empty_ticks", "seconds",
                   "error", "fraud_alerts")  # fmt: skip


@parallel_flow(POLL_FLOW, max_workers=MAX_PARALLEL_TENANTS)
def poll_cdrs(tenant: str | None = None, analyze: bool = True) -> State:
    """Poll every enabled CloudUCM tenant once (or only ``tenant``) and load new legs.

    Args:
        tenant: Poll only this tenant (a "sync now" for one customer); all enabled ones when empty.
        analyze: Start `analyze-calls` for tenants that loaded new calls (a deployment run when
            deployed, so the tick does not wait; a subflow otherwise).

    Returns:
        Completed when every tenant succeeded (or was busy), Failed naming the tenants that failed;
        the other tenants' data is loaded either way.
    """
    logger = get_run_logger()
    names = [tenant] if tenant else list_tenants()
    if not names:
        logger.warning("no enabled CloudUCM tenants: add one with `audiapro tenant add`")
    futures = {name: poll_tenant_task.submit(name) for name in names}
    rows: list[dict[str, Any]] = []
    for name, future in futures.items():
        try:
            rows.append(future.result())
            if rows[-1].get("silent"):
                logger.warning("tenant %s: %d empty windows in a row where calls are usual", name,
                               rows[-1]["empty_ticks"])  # fmt: skip
                emit_tenant_silent(rows[-1])  # the automations alert on it
        except Exception as exc:
            rows.append(failure_row(name, exc))
            logger.error("tenant %s failed: %s", name, rows[-1]["error"])
            emit_tenant_failed(name, rows[-1]["error"])  # the automations alert on a failure streak
    create_table_artifact(
        table=[{col: row.get(col, "") for col in SUMMARY_COLUMNS} for row in rows],
        key=f"{POLL_FLOW}-summary",
        description="Per-tenant result of this poll tick",
    )
    if analyze:
        trigger_analysis(rows)
    failed = [row["tenant"] for row in rows if row["status"] == "failed"]
    if failed:
        return Failed(message=f"{len(failed)} of {len(rows)} tenants failed: {', '.join(failed)}", data=rows)
    return Completed(message=f"{len(rows)} tenants polled", data=rows)
