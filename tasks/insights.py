"""Prefect side of the insights: the fraud check after a poll tick, the per-tenant daily task."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from audiapro.insights import report, service
from audiapro.tenants import TenantSettings
from blocks.clouducm import load_tenant
from tasks.events import emit_fraud_alerts
from tasks.support import retrying_task
from tasks.warehouse import warehouse_engine

if TYPE_CHECKING:
    import sqlalchemy as sa

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


def now_utc() -> datetime:
    """The insights run's clock: one reading per flow run (tests pin it here)."""
    return datetime.now(UTC)


def tenant_report(
    engine: sa.Engine, tenant: TenantSettings, days: list[date], alerts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The summary row of a tenant's run, with its report (markdown and table rows)."""
    row: dict[str, Any] = {
        "tenant": tenant.name,
        "status": "ok",
        "days": len(days),
        "new_alerts": len(alerts),
    }
    if not days:
        return row
    first, last = min(days), max(days)
    built = report.build_report(engine, tenant.name, first, last)
    return row | {
        "first_day": str(first),
        "last_day": str(last),
        "span": built.span,
        "markdown": report.markdown(built),
        "worklist": report.worklist_rows(built),
        "extensions": built.extensions,
    }


@retrying_task("insights-tenant", "insights-{tenant}", retries=1, delays=[60.0], cache=False)
def insights_tenant_task(
    tenant: str, now: datetime, first_day: date | None = None, last_day: date | None = None
) -> dict[str, Any]:
    """One tenant's insights: the given span, or the closed days not computed yet (or stale).

    The report covers the last computed day (a scheduled run), or the whole span (on demand).
    """
    settings = load_tenant(tenant).tenant_settings(tenant)
    engine = warehouse_engine()
    if first_day is not None:
        days = [first_day + timedelta(days=n) for n in range(((last_day or first_day) - first_day).days + 1)]
    else:
        days = service.days_to_compute(engine, settings, now=now)
    _, alerts = insights_for_days(engine, settings, days, now=now)
    shown = days if first_day is not None else days[-1:]
    return tenant_report(engine, settings, shown, alerts) | {"days": len(days)}
