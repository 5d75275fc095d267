"""Prefect events the poll flow emits for alerting (matched by the automations in deployments/)."""

from __future__ import annotations

import logging
from typing import Any

from prefect.events import emit_event

from audiapro.ops.alerts import fraud_suspected_event, tenant_failed_event, tenant_silent_event
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


def emit_fraud_alerts(alerts: list[dict[str, Any]]) -> int:
    """Emit ``audiapro.fraud.suspected`` for each new fraud alert; return how many went out.

    Alerting must never break the run that found them: a failed emit is only logged (by alert id).
    """
    sent = 0
    for alert in alerts:
        try:
            emit_event(**fraud_suspected_event(alert))
            sent += 1
        except Exception as exc:
            log.warning("could not emit fraud alert %s: %s", alert.get("id"), type(exc).__name__)
    return sent
