"""reconcile-cdrs: are all calls there, on every PBX, every day? Measured against each PBX, repaired.

tenants --> plan-reconcile (per tenant: closed days not known complete + the latest closed day)
        --> reconcile-day (per tenant-day; one tenant's days one after another, tenants in parallel)
        --> table + markdown artifacts, ``audiapro.reconcile.incomplete`` for days below 100 %
"""

from __future__ import annotations

from collections import deque
from datetime import date
from typing import Annotated, Any, Final

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Completed, Failed, State
from pydantic import Field

from audiapro.errors import describe_error
from audiapro.prefect_names import RECONCILE_FLOW
from audiapro.reconcile import DEFAULT_DAYS_BACK, MAX_DAYS_BACK
from blocks.clouducm import list_tenants
from flows.support import parallel_flow
from tasks.reconcile import emit_incomplete, now_utc, plan_reconcile_task, reconcile_day_task

#: Tenants reconciled at once; each tenant's days run one after another (one PBX session each).
MAX_PARALLEL_TENANTS: Final = 4
#: Columns of the table artifact (and of ``audiapro reconcile``).
TABLE_COLUMNS: Final = ("tenant", "day", "status", "pbx_legs", "stored_legs", "missing_before", "loaded_now",
                        "rejected", "phantom_legs", "percent", "error")  # fmt: skip
SUMMARY_KEY: Final = f"{RECONCILE_FLOW}-summary"
REPORT_KEY: Final = f"{RECONCILE_FLOW}-report"

FutureRow = PrefectFuture[dict[str, Any]]


@parallel_flow(RECONCILE_FLOW, max_workers=MAX_PARALLEL_TENANTS)
def reconcile_cdrs(
    tenant: str | None = None,
    day: date | None = None,
    days_back: Annotated[int, Field(ge=1, le=MAX_DAYS_BACK)] = DEFAULT_DAYS_BACK,
) -> State:
    """Check that every leg each PBX has for a local day is in the warehouse; load what is missing.

    A day is checked once it is closed (ended at least the tenant's lookback + safety ago). Legs the
    PBX has and the warehouse lacks are loaded; legs only the warehouse has are reported, never
    deleted. Each day's result is stored in ``reconcile_days`` and shown by ``audiapro status``.

    Args:
        tenant: Only this tenant (its CloudUCM block name); every enabled tenant with a PBX when empty.
        day: Only this PBX-local day (YYYY-MM-DD, the tenant's calendar); it must be closed.
        days_back: Without a day: check the closed days of this many past days not yet at 100 %, and
            always the most recent closed day.

    Returns:
        Completed with one row per tenant-day (also when days are below 100 %: the event and the
        automation report those), Failed naming the tenants whose check failed.
    """
    logger = get_run_logger()
    now = now_utc()
    names = [tenant] if tenant else list_tenants()
    if not names:
        logger.warning("no enabled CloudUCM tenants: add one with `audiapro tenant add`")
    plans = {
        name: plan_reconcile_task.submit(name, day, days_back, now, explicit=bool(tenant)) for name in names
    }
    rows: list[dict[str, Any]] = []
    work: dict[str, deque[str]] = {}
    for name, future in plans.items():
        try:
            plan = future.result()
        except Exception as exc:
            rows.append(_failed(name, "", exc))
            continue
        if plan["note"]:
            logger.info("tenant %s skipped: %s", name, plan["note"])
        work[name] = deque(plan["days"])
    rows = sorted(rows + _run_days(work, now.isoformat()), key=lambda row: (row["tenant"], row["day"]))
    _publish(rows)
    for name in sorted({row["tenant"] for row in rows}):
        incomplete = [r for r in rows if r["tenant"] == name and r["status"] == "ok" and r["percent"] < 100]
        if incomplete:
            logger.warning("tenant %s: %d day(s) below 100 %%", name, len(incomplete))
            emit_incomplete(name, incomplete)
    failed = sorted({row["tenant"] for row in rows if row["status"] == "failed"})
    if failed:
        return Failed(message=f"reconciliation failed for {', '.join(failed)}", data=rows)
    below = sum(1 for row in rows if row["status"] == "ok" and row["percent"] < 100)
    return Completed(message=f"{len(rows)} tenant-days checked, {below} below 100 %", data=rows)


def _run_days(work: dict[str, deque[str]], now: str) -> list[dict[str, Any]]:
    """Run the tenant-day tasks: each tenant's days in turn, the tenants side by side.

    A tenant whose day failed gets no further attempt in this run (a wrong password must not be tried
    day after day: the PBX bans an IP after 5 failed logins); its remaining days are listed skipped.
    """
    pending: dict[FutureRow, tuple[str, str]] = {}
    rows: list[dict[str, Any]] = []

    def submit_next(name: str) -> None:
        if work[name]:
            day = work[name].popleft()
            pending[reconcile_day_task.submit(name, day, now)] = (name, day)

    for name in work:
        submit_next(name)
    while pending:
        future = next(as_completed(list(pending)))
        name, day = pending.pop(future)
        try:
            rows.append(future.result())
        except Exception as exc:
            rows.append(_failed(name, day, exc))
            skipped = {"status": "skipped", "error": "not tried after the failure above"}
            rows += [{"tenant": name, "day": rest, **skipped} for rest in work.pop(name)]
            continue
        submit_next(name)
    return rows


def _failed(tenant: str, day: str, exc: BaseException) -> dict[str, Any]:
    error = describe_error(exc)
    get_run_logger().error("tenant %s %s: reconciliation failed: %s", tenant, day or "plan", error)
    return {"tenant": tenant, "day": day, "status": "failed", "error": error}


def _publish(rows: list[dict[str, Any]]) -> None:
    """The run's table artifact and markdown summary."""
    create_table_artifact(
        table=[{col: row.get(col, "") for col in TABLE_COLUMNS} for row in rows],
        key=SUMMARY_KEY,
        description="Completeness per tenant and PBX-local day (PBX legs vs stored legs)",
    )
    create_markdown_artifact(
        markdown=summary_markdown(rows), key=REPORT_KEY, description="Completeness summary"
    )


def summary_markdown(rows: list[dict[str, Any]]) -> str:
    """A short report: counts, then every day below 100 % or failed, with what to look at."""
    ok = [row for row in rows if row["status"] == "ok"]
    below = [row for row in ok if row["percent"] < 100]
    failed = [row for row in rows if row["status"] != "ok"]
    lines = [
        "# Completeness",
        "",
        f"{len(rows)} tenant-days: {len(ok) - len(below)} complete, {len(below)} below 100 %, "
        f"{len(failed)} not checked. Loaded now: {sum(int(r['loaded_now']) for r in ok)} legs; "
        f"phantom legs (stored, not on the PBX; kept): {sum(int(r['phantom_legs']) for r in ok)}.",
    ]
    if below:
        lines += ["", "| tenant | day | complete | PBX legs | stored of them | quarantined | unreadable |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {r['tenant']} | {r['day']} | {r['percent']:.2f} % | {r['pbx_legs']} | {r['matched_legs']} | "
            f"{r['rejected']} | {r['malformed_legs']} |"
            for r in below
        ]
        lines += ["", "Quarantined legs are in `rejected_rows` (reason and raw leg); rerun after fixing."]
    lines += [f"- {r['tenant']} {r['day'] or '(plan)'}: {r['status']}: {r.get('error', '')}" for r in failed]
    return "\n".join(lines)
