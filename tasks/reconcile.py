"""Prefect tasks of the reconciliation: which days to check, one tenant-day, the alert event.

Logic is in ``audiapro.reconcile``; these wrappers add retries (on I/O only), the PBX session slot
and lineage.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any, Final

from prefect.events import emit_event

from audiapro.ops.alerts import reconcile_incomplete_event
from audiapro.reconcile import days_to_check, reconcile_day, require_closed
from audiapro.warehouse import read_reconcile_days
from blocks.clouducm import load_tenant
from tasks.pbx import pbx_session
from tasks.support import current_flow_run_id, retrying_task
from tasks.warehouse import warehouse_engine

log = logging.getLogger("audiapro.events")

#: Retries for what outlived the client's own backoff: a PBX restart, a long-held tenant lock, every
#: PBX session taken by a long backfill. Never for a wrong password or bad data.
DAY_RETRIES: Final = 2
DAY_RETRY_DELAYS: Final[list[float]] = [60.0, 300.0]
PLAN_RETRIES: Final = 2
PLAN_RETRY_DELAYS: Final[list[float]] = [5.0, 30.0]
#: How long a tenant-day waits for a free PBX session (the poll and backfills share them).
DAY_SESSION_WAIT_S: Final = 600.0


def now_utc() -> datetime:
    """The reconciliation's clock: one reading per flow run (tests pin it here)."""
    return datetime.now(UTC)


@retrying_task(
    "plan-reconcile", "plan-reconcile-{tenant}", retries=PLAN_RETRIES, delays=PLAN_RETRY_DELAYS, cache=False
)
def plan_reconcile_task(
    tenant: str, day: date | None, days_back: int, now: datetime, *, explicit: bool
) -> dict[str, Any]:
    """The tenant's days to reconcile (ISO dates, oldest first).

    Args:
        tenant: Tenant (CloudUCM block) name.
        day: That day only; it must be closed.
        days_back: Without ``day``: closed days of this many past days not yet known complete, and
            always the most recent closed day.
        now: The run's clock.
        explicit: The operator named the tenant: an import-only tenant is then an error, not a skip.

    Returns:
        ``days`` and a ``note`` for tenants skipped.

    Raises:
        ValueError: The tenant has no PBX (when named), or ``day`` is not closed yet.
    """
    block = load_tenant(tenant)
    if not block.host:
        if explicit:
            raise ValueError(f"tenant {tenant} has no PBX host (import-only): no PBX to compare with")
        return {"days": [], "note": "import-only tenant: no PBX to compare with"}
    settings = block.tenant_settings(tenant)
    if day is not None:
        require_closed(settings, day, now)
        return {"days": [day.isoformat()], "note": ""}
    known = {row.day: row.completeness for row in read_reconcile_days(warehouse_engine(), tenant=tenant)}
    return {"days": [d.isoformat() for d in days_to_check(settings, now, days_back, known)], "note": ""}


@retrying_task(
    "reconcile-day", "reconcile-{tenant}-{day}", retries=DAY_RETRIES, delays=DAY_RETRY_DELAYS, cache=False
)
def reconcile_day_task(tenant: str, day: str, now: str) -> dict[str, Any]:
    """Reconcile one closed local day of a tenant against its PBX (one API session, one paged read).

    Args:
        tenant: Tenant (CloudUCM block) name.
        day: The PBX-local day, ISO date.
        now: The run's clock, ISO 8601 UTC.

    Returns:
        The day's result row (``DayReconciliation.as_row()``) with ``status`` ``ok``.
    """
    block = load_tenant(tenant)
    with pbx_session(block, tenant, wait_s=DAY_SESSION_WAIT_S, bulk=True) as client:
        result = reconcile_day(
            client,
            warehouse_engine(),
            block.tenant_settings(tenant),
            date.fromisoformat(day),
            now=datetime.fromisoformat(now),
            flow_run_id=current_flow_run_id(),
        )
    return {"status": "ok", **result.as_row()}


def emit_incomplete(tenant: str, rows: list[dict[str, Any]]) -> None:
    """Emit ``audiapro.reconcile.incomplete`` for the tenant's days below 100 %.

    Alerting must never break the run: a failure to emit is only logged.
    """
    try:
        emit_event(**reconcile_incomplete_event(tenant, rows))
    except Exception as exc:
        log.warning("could not emit the completeness event of tenant %s: %s", tenant, type(exc).__name__)
