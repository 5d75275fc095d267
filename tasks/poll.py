"""Prefect task for one tenant's poll tick: names, retry policy and locking; logic is in audiapro.polling."""

from __future__ import annotations

from typing import Any

from audiapro.errors import describe_error
from audiapro.ingest import record_tick_failure
from audiapro.polling import poll_tenant
from audiapro.warehouse import tenant_lock
from blocks.clouducm import load_tenant
from tasks.insights import check_fraud
from tasks.pbx import PbxSessionsBusy, pbx_session
from tasks.support import current_flow_run_id, retrying_task
from tasks.warehouse import warehouse_engine

#: Task-level retries cover faults that outlived the client's own backoff (e.g. a PBX restart).
POLL_RETRIES = 2
POLL_RETRY_DELAYS: list[float] = [15.0, 45.0]
#: How long a tick waits for a free PBX session (all held by backfill windows) before reporting busy.
POLL_SESSION_WAIT_S = 60.0


@retrying_task("poll-tenant", "poll-{tenant}", retries=POLL_RETRIES, delays=POLL_RETRY_DELAYS)
def poll_tenant_task(tenant: str) -> dict[str, Any]:
    """Poll one tenant's PBX from its committed cursor and load the window.

    A per-tenant lock keeps overlapping ticks (and a backfill) from working the same tenant at once,
    and the tick's API session counts against the tenant's PBX session limit (``tasks.pbx``); a tick
    that finds the lock taken or no session free reports ``busy`` and the next tick covers its window.

    Returns:
        A small summary row: status, window, counts.
    """
    block = load_tenant(tenant)
    settings = block.tenant_settings(tenant)
    engine = warehouse_engine()
    busy = {"tenant": tenant, "status": "busy"}
    try:
        # The PBX session slot first, the tenant lock second: a tick waiting for a slot holds no lock
        # that a backfill window (which holds a slot) needs for its load.
        with (
            pbx_session(block, tenant, wait_s=POLL_SESSION_WAIT_S) as client,
            tenant_lock(engine, tenant, wait=False) as acquired,
        ):
            if not acquired:
                return busy
            summary = poll_tenant(client, engine, settings, flow_run_id=current_flow_run_id())
    except PbxSessionsBusy:
        return busy  # every session of the PBX is in use (backfills); the next tick covers the window
    row: dict[str, Any] = {"status": "ok", **summary.as_row()}
    if summary.inserted or summary.updated:  # new calls: the cheap fraud rules (never raises)
        row["fraud_alerts"] = check_fraud(engine, settings)
    return row


def failure_row(tenant: str, exc: BaseException) -> dict[str, Any]:
    """Record a tenant's failed tick (after retries) on its sync state; return its summary row."""
    try:
        error = record_tick_failure(warehouse_engine(), tenant, exc)
    except Exception:  # the warehouse itself may be what failed: still report the tenant
        error = describe_error(exc)
    return {"tenant": tenant, "status": "failed", "error": error}
