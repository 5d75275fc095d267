"""Prefect events the poll flow emits for alerting (matched by the automations in deployments/)."""

from __future__ import annotations

import logging

from prefect.events import emit_event

from audiapro.ops.alerts import tenant_failed_event, tenant_silent_event
from audiapro.warehouse import read_sync_state
from tasks.warehouse import warehouse_engine

log = logging.getLogger("audiapro.events")


def emit_tenant_failed(tenant: str, error: str) -> None:
    """Emit ``audiapro.tenant.failed`` with the tenant's consecutive failures from its sync state.

    Alerting must never break polling: a failure to read the count or to emit is only logged.
    """
    try:
        state = read_sync_state(warehouse_engine(), tenant)
        count = state.consecutive_failures if state else 0
        emit_event(**tenant_failed_event(tenant, count, error))
    except Exception as exc:
        log.warning("could not emit the failure event of tenant %s: %s", tenant, type(exc).__name__)


def emit_tenant_silent(row: dict[str, object]) -> None:
    """Emit ``audiapro.tenant.silent`` for a tick row whose tenant went silent (never raises)."""
    try:
        emit_event(
            **tenant_silent_event(
                str(row["tenant"]),
                int(str(row["empty_ticks"])),
                str(row["window_start"]),
                str(row["window_end"]),
            )
        )
    except Exception as exc:
        log.warning(
            "could not emit the silence event of tenant %s: %s", row.get("tenant"), type(exc).__name__
        )
