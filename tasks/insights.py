"""Prefect side of the insights: the fraud check after a poll tick, the per-tenant daily task."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from audiapro.insights import service
from audiapro.tenants import TenantSettings
from tasks.events import emit_fraud_alerts

log = logging.getLogger("audiapro.insights")

#: Reported in the tick row when the fraud check itself failed (the poll still succeeded).
CHECK_FAILED = -1


def check_fraud(engine: sa.Engine, tenant: TenantSettings, *, now: datetime | None = None) -> int:
    """The cheap fraud rules after a tenant's poll tick; emits an event per new alert.

    Never raises: a failing check must not fail the poll that already loaded its legs.

    Returns:
        New alerts, or :data:`CHECK_FAILED`.
    """
    try:
        alerts = service.check_after_poll(engine, tenant, now=now or datetime.now(UTC))
    except Exception as exc:
        log.warning("tenant %s: fraud check after the poll failed: %s", tenant.name, type(exc).__name__)
        return CHECK_FAILED
    emit_fraud_alerts(alerts)
    return len(alerts)


def insights_for_days(
    engine: sa.Engine, tenant: TenantSettings, days: list[date], *, now: datetime
) -> tuple[list[service.DayResult], list[dict[str, Any]]]:
    """Compute and store the insights of ``days``, evaluate every fraud rule on each, emit events.

    Returns:
        The computed days and the new alerts.
    """
    results = service.compute_days(engine, tenant, days, now=now)
    alerts: list[dict[str, Any]] = []
    for result in results:
        alerts += service.evaluate_day(engine, tenant, result, now=now)
    emit_fraud_alerts(alerts)
    return results, alerts
