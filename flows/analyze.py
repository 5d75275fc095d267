"""analyze-calls: AI analysis of new calls, per tenant, under its eligibility policy and daily budget.

tenants --> analyze-tenant (per tenant, bounded parallel) --> summary table artifact

Started by the poll flow for tenants that loaded new calls (`trigger_analysis`), by the `analyze-calls`
deployment's schedule (a sweep that also collects Batch API results), or by `audiapro analyze`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, Failed, State

from audiapro.analysis.summary import SUMMARY_COLUMNS
from audiapro.errors import describe_error
from audiapro.prefect_names import ANALYZE_DEPLOYMENT, ANALYZE_FLOW
from blocks.clouducm import list_tenants
from flows.support import parallel_flow
from tasks.analyze import analysis_failure_row, analyze_tenant_task

#: Tenants analysed at once (each runs its own bounded pool of calls).
MAX_PARALLEL_TENANTS: Final = 2
SUMMARY_KEY: Final = f"{ANALYZE_FLOW}-summary"


@parallel_flow(ANALYZE_FLOW, max_workers=MAX_PARALLEL_TENANTS)
def analyze_calls(
    tenant: str | None = None,
    since: datetime | None = None,
    use_batch: bool = False,
    max_calls: int | None = None,
    tenants: list[str] | None = None,
) -> State:
    """Analyse the calls of every enabled tenant (or only `tenant`) that started since `since`.

    Args:
        tenant: Only this tenant; all enabled CloudUCM tenants when empty.
        since: Calls that started at or after this instant (default: the last 24 hours).
        use_batch: Backfill mode: transcribe now, send the text step through the Batch API (half
            price); a later run collects the results.
        max_calls: Send at most this many new calls per tenant to the model in this run.
        tenants: Several tenants (the poll passes those that loaded new calls); overrides `tenant`.

    Returns:
        Completed when every tenant succeeded (or was busy/disabled), Failed naming the others;
        the data is in the state and in the `analyze-calls-summary` table artifact.
    """
    logger = get_run_logger()
    if max_calls is not None and max_calls < 1:
        raise ValueError("max_calls must be at least 1")
    names = list(dict.fromkeys(tenants)) if tenants else [tenant] if tenant else list_tenants()
    if not names:
        logger.warning("no enabled tenants to analyse")
    futures = {name: analyze_tenant_task.submit(name, since, use_batch, max_calls) for name in names}
    rows: list[dict[str, Any]] = []
    for name, future in futures.items():
        try:
            rows.append(future.result())
        except Exception as exc:
            rows.append(analysis_failure_row(name, exc))
            logger.error("tenant %s analysis failed: %s", name, rows[-1]["error"])
    create_table_artifact(
        table=[{column: row.get(column, "") for column in SUMMARY_COLUMNS} for row in rows],
        key=SUMMARY_KEY,
        description="Per-tenant result of this analysis run: analysed, skipped by reason, failed, cost",
    )
    failed = [row["tenant"] for row in rows if row["status"] == "failed"]
    if failed:
        return Failed(message=f"{len(failed)} of {len(rows)} tenants failed: {', '.join(failed)}", data=rows)
    return Completed(message=f"{len(rows)} tenants analysed", data=rows)


def _running_under_deployment() -> bool:
    from prefect.runtime import deployment

    return deployment.id is not None


def trigger_analysis(poll_rows: Iterable[dict[str, Any]]) -> list[str]:
    """Start analysis of the tenants whose poll tick loaded new or changed legs.

    One `analyze-calls` run covers all of them, from the earliest poll window start. Under a
    deployment it is a deployment run created with `timeout=0`, so the 2-minute poll tick never
    waits for OpenAI (the idempotency key keeps a retried tick from starting it twice); elsewhere
    (CLI, tests) it runs as a subflow. Failures are logged, never raised: the poll's data is loaded
    either way.

    Args:
        poll_rows: The poll flow's per-tenant rows (`status`, `inserted`, `updated`, `window_start`).

    Returns:
        The tenants whose analysis was started.
    """
    logger = get_run_logger()
    fresh = [r for r in poll_rows if r.get("status") == "ok" and (r.get("inserted") or r.get("updated"))]
    if not fresh:
        return []
    tenants = [str(row["tenant"]) for row in fresh]
    starts = [datetime.fromisoformat(str(row["window_start"])) for row in fresh if row.get("window_start")]
    since = min(starts) if starts else None
    try:
        if _running_under_deployment():
            _start_deployment_run(tenants, since)
        else:
            state = analyze_calls(tenants=tenants, since=since, return_state=True)
            if not state.is_completed():
                logger.warning("analysis after the poll: %s", state.message)
    except Exception as exc:
        logger.warning("analysis of %d tenant(s) not started: %s", len(tenants), describe_error(exc))
        return []
    return tenants


def _start_deployment_run(tenants: list[str], since: datetime | None) -> None:
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    parameters: dict[str, Any] = {"tenants": tenants, "since": since.isoformat() if since else None}
    run_deployment(
        ANALYZE_DEPLOYMENT,
        parameters=parameters,
        timeout=0,
        idempotency_key=f"poll-{flow_run.id}-analyze",
    )
