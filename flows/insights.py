"""cdr-insights: per tenant, the closed days' KPIs, callback worklist and fraud alerts, with artifacts.

tenants --> insights-tenant (per tenant: compute the days, every fraud rule, events)
        --> per tenant: markdown artifact (charts), table artifacts (worklist, top extensions)
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed, Failed, State

from audiapro.errors import describe_error
from audiapro.prefect_names import INSIGHTS_ARTIFACT_PREFIX, INSIGHTS_FLOW
from audiapro.tenants import tenant_key
from blocks.clouducm import list_tenants
from flows.support import parallel_flow
from tasks.insights import insights_tenant_task, now_utc

MAX_PARALLEL_TENANTS: Final = 2
SUMMARY_COLUMNS: Final = ("tenant", "status", "days", "first_day", "last_day", "new_alerts", "error")


def artifact_key(tenant: str, kind: str = "") -> str:
    """Artifact key of a tenant's insights (``cdr-insights-acme``, ``cdr-insights-acme-worklist``)."""
    return f"{INSIGHTS_ARTIFACT_PREFIX}{tenant_key(tenant)}" + (f"-{kind}" if kind else "")


def publish(row: dict[str, Any]) -> None:
    """The tenant's artifacts: the markdown report, the worklist and the top extensions."""
    tenant = row["tenant"]
    create_markdown_artifact(
        markdown=row["markdown"],
        key=artifact_key(tenant),
        description=f"Call insights of {tenant}, {row['span']}",
    )
    create_table_artifact(
        table=row["worklist"] or [{"number": "", "missed_calls": 0}],
        key=artifact_key(tenant, "worklist"),
        description=f"Missed calls to return, {tenant}, {row['span']} (oldest first)",
    )
    create_table_artifact(
        table=row["extensions"] or [{"extension": "", "calls": 0}],
        key=artifact_key(tenant, "extensions"),
        description=f"Top extensions of {tenant}, {row['span']}",
    )


@parallel_flow(INSIGHTS_FLOW, max_workers=MAX_PARALLEL_TENANTS)
def cdr_insights(
    tenant: str | None = None, first_day: date | None = None, last_day: date | None = None
) -> State:
    """Compute each tenant's insights and run the fraud rules; leave artifacts per tenant.

    Args:
        tenant: Only this tenant; every enabled tenant when empty.
        first_day: With ``last_day``: recompute this span of PBX-local days (on demand). Without:
            the closed days not computed yet or changed by late legs.
        last_day: Last day of the span (default: ``first_day``).

    Returns:
        Completed with one row per tenant, Failed naming the tenants that failed.
    """
    logger = get_run_logger()
    now = now_utc()
    names = [tenant] if tenant else list_tenants()
    futures = {name: insights_tenant_task.submit(name, now, first_day, last_day) for name in names}
    rows: list[dict[str, Any]] = []
    for name, future in futures.items():
        try:
            row = future.result()
            if row.get("markdown"):
                publish(row)
        except Exception as exc:
            row = {"tenant": name, "status": "failed", "days": 0, "error": describe_error(exc)}
            logger.error("tenant %s: insights failed: %s", name, row["error"])
        rows.append(row)
    create_table_artifact(
        table=[{col: row.get(col, "") for col in SUMMARY_COLUMNS} for row in rows],
        key=f"{INSIGHTS_FLOW}-summary",
        description="Days computed and new fraud alerts per tenant",
    )
    failed = [row["tenant"] for row in rows if row["status"] != "ok"]
    if failed:
        return Failed(message=f"insights failed for {', '.join(failed)}", data=rows)
    return Completed(message=f"{len(rows)} tenants", data=rows)
