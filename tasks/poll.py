"""One tenant's poll tick: retry policy, PBX session and locking; the logic is in audiapro.polling.

A tick polls each tenant in a thread of its flow run (``flows.poll``), not as a Prefect task run:
a task run per tenant cost the Prefect server three state events and a log line to record and the
flow-run process their bookkeeping, for every idle tenant every 2 minutes (docs/operations.md
"Fan-out"). What a task gave is kept here: the same retries after the same delays on transient
faults only, and the flow reports every tenant in its summary table artifact and failure events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from audiapro.errors import describe_error, is_transient
from audiapro.ingest import record_tick_failure
from audiapro.polling import poll_tenant
from audiapro.warehouse import tenant_lock
from blocks.clouducm import CloudUCM, load_tenant
from tasks.insights import check_fraud
from tasks.pbx import PbxSessionsBusy, pbx_session
from tasks.warehouse import warehouse_engine

#: Retries cover faults that outlived the client's own backoff (e.g. a PBX restart).
POLL_RETRIES = 2
POLL_RETRY_DELAYS: list[float] = [15.0, 45.0]
#: How long a tick waits for a free PBX session (all held by backfill windows) before reporting busy.
POLL_SESSION_WAIT_S = 60.0

log = logging.getLogger("audiapro.poll")


def poll_tenant_once(
    tenant: str, block: CloudUCM | None = None, *, flow_run_id: str | None = None
) -> dict[str, Any]:
    """Poll one tenant's PBX from its committed cursor and load the window (one attempt).

    A per-tenant lock keeps overlapping ticks (and a backfill) from working the same tenant at once,
    and the tick's API session counts against the tenant's PBX session limit (``tasks.pbx``); a tick
    that finds the lock taken or no session free reports ``busy`` and the next tick covers its window.

    Args:
        tenant: Tenant name.
        block: The tenant's block when the caller read it already (a shard reads all of its
            tenants' blocks at once); loaded here otherwise.
        flow_run_id: Recorded on the ingest runs (lineage).

    Returns:
        A small summary row: status, window, counts.
    """
    block = block if block is not None else load_tenant(tenant)
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
            summary = poll_tenant(client, engine, settings, flow_run_id=flow_run_id)
    except PbxSessionsBusy:
        return busy  # every session of the PBX is in use (backfills); the next tick covers the window
    row: dict[str, Any] = {"status": "ok", **summary.as_row()}
    if summary.inserted or summary.updated:  # new calls: the cheap fraud rules (never raises)
        row["fraud_alerts"] = check_fraud(engine, settings)
    return row


def poll_tenant_retrying(
    tenant: str,
    block: CloudUCM | None = None,
    *,
    flow_run_id: str | None = None,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = log,
    retries: int = POLL_RETRIES,
    delays: list[float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """:func:`poll_tenant_once`, tried again after ``delays`` while it fails transiently.

    Transient means :func:`audiapro.errors.is_transient` (network and PBX hiccups, a lost warehouse
    connection); a wrong password or a bad setting fails at once, so a refused login is never
    replayed against the PBX.

    Args:
        tenant, block, flow_run_id: As in :func:`poll_tenant_once`.
        logger: Where each retry is announced (the flow run's logger: its lines reach the UI).
        retries: Retries after the first attempt.
        delays: Seconds before each retry (the last repeats); ``POLL_RETRY_DELAYS`` by default.
        sleep: Waits between attempts (tests pass a recorder).

    Raises:
        Exception: The last attempt's error.
    """
    waits = delays if delays is not None else POLL_RETRY_DELAYS
    attempt = 0
    while True:
        try:
            return poll_tenant_once(tenant, block, flow_run_id=flow_run_id)
        except Exception as exc:
            if attempt >= retries or not is_transient(exc):
                raise
            delay = waits[min(attempt, len(waits) - 1)] if waits else 0.0
            attempt += 1
            logger.warning("tenant %s: attempt %d of %d failed (%s); retrying in %.0f s", tenant, attempt,
                           retries + 1, describe_error(exc), delay)  # fmt: skip
            sleep(delay)


def failure_row(tenant: str, exc: BaseException) -> dict[str, Any]:
    """Record a tenant's failed tick (after retries) on its sync state; return its summary row."""
    try:
        error = record_tick_failure(warehouse_engine(), tenant, exc)
    except Exception:  # the warehouse itself may be what failed: still report the tenant
        error = describe_error(exc)
    return {"tenant": tenant, "status": "failed", "error": error}
