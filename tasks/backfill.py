"""Prefect tasks of the backfill: plan the windows, load one window. Logic is in audiapro.backfill."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from audiapro.backfill import CANCEL, backfill_window, plan_backfill
from audiapro.windows import Window
from blocks.clouducm import load_tenant
from tasks.pbx import pbx_session
from tasks.support import current_flow_run_id, retrying_task
from tasks.warehouse import warehouse_engine

#: Retries for what outlived the client's own backoff (a PBX restart, a long-held tenant lock).
WINDOW_RETRIES = 2
WINDOW_RETRY_DELAYS: list[float] = [15.0, 60.0]
PLAN_RETRIES = 2
#: How long a window waits for a free PBX session (the poll and other windows share them).
WINDOW_SESSION_WAIT_S = 1800.0
PLAN_RETRY_DELAYS: list[float] = [5.0, 30.0]


@retrying_task(
    "plan-backfill", "plan-backfill-{tenant}", retries=PLAN_RETRIES, delays=PLAN_RETRY_DELAYS, cache=False
)
def plan_backfill_task(
    tenant: str, start: date | datetime, end: date | datetime, window: timedelta, force: bool
) -> dict[str, Any]:
    """Split the range into windows, minus those already done (unless ``force``).

    Returns:
        ``span`` and ``windows`` (UTC ISO pairs), ``planned``, ``skipped``, ``settled_until``.
    """
    block = load_tenant(tenant)
    if not block.host:
        raise ValueError(
            f"tenant {tenant} has no PBX host (import-only): a backfill reads the PBX's API; "
            "import its CDR files with import-cdr-file instead"
        )
    settings = block.tenant_settings(tenant)
    plan = plan_backfill(warehouse_engine(), settings, start, end, window=window, force=force)
    return {
        "span": [plan.span.start.isoformat(), plan.span.end.isoformat()],
        "windows": [[w.start.isoformat(), w.end.isoformat()] for w in plan.windows],
        "planned": plan.planned,
        "skipped": plan.skipped,
        "settled_until": plan.settled_until.isoformat(),
    }


@retrying_task(
    "backfill-window",
    "backfill-{tenant}-{window_start}",
    retries=WINDOW_RETRIES,
    delays=WINDOW_RETRY_DELAYS,
    cache=False,
)
def backfill_window_task(
    tenant: str, window_start: str, window_end: str, settled_until: str
) -> dict[str, Any]:
    """Fetch one window from the tenant's PBX completely and load it (marked done if settled).

    Args:
        tenant: Tenant (CloudUCM block) name.
        window_start: Window start, UTC ISO 8601.
        window_end: Window end, UTC ISO 8601.
        settled_until: Windows ending later are loaded but not recorded done.

    Returns:
        The window's counts (``status`` ``ok``).
    """
    block = load_tenant(tenant)
    window = Window(datetime.fromisoformat(window_start), datetime.fromisoformat(window_end))
    with pbx_session(block, tenant, wait_s=WINDOW_SESSION_WAIT_S, bulk=True) as client:
        outcome = backfill_window(
            client,
            warehouse_engine(),
            block.tenant_settings(tenant),
            window,
            settled_until=datetime.fromisoformat(settled_until),
            flow_run_id=current_flow_run_id(),
            cancel=CANCEL,
        )
    return {"status": "ok", **outcome.as_row()}
