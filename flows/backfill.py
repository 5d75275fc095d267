"""backfill-cdrs: a tenant's CDR history over a date range, window by window, resumable.

plan-backfill (windows minus those done) --> backfill-window (per window, at most max_parallel at a
time: fetch completely, split on the page cap, load + mark done in one transaction) --> artifacts
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Cancelled, Completed, Failed, State
from pydantic import Field

from audiapro.backfill import (
    CANCEL,
    DEFAULT_MAX_PARALLEL,
    DEFAULT_WINDOW,
    PBX_PARALLEL_LIMIT,
    BackfillCancelled,
    count_windows,
)
from audiapro.errors import describe_error
from audiapro.prefect_names import BACKFILL_FLOW
from audiapro.windows import MIN_WINDOW
from flows.support import parallel_flow
from tasks.backfill import backfill_window_task, plan_backfill_task
from tasks.progress import ProgressReporter
from tasks.support import artifact_key

COUNT_COLUMNS = ("fetched", "inserted", "updated", "unchanged", "rejected")
TABLE_COLUMNS = ("window_start", "window_end", "status", "pieces", *COUNT_COLUMNS, "seconds", "recorded",
                 "error")  # fmt: skip


@parallel_flow(BACKFILL_FLOW, max_workers=PBX_PARALLEL_LIMIT)
def backfill_cdrs(
    tenant: str,
    start: date | datetime,
    end: date | datetime,
    window: Annotated[timedelta, Field(ge=MIN_WINDOW)] = DEFAULT_WINDOW,
    max_parallel: Annotated[int, Field(ge=1, le=PBX_PARALLEL_LIMIT)] = DEFAULT_MAX_PARALLEL,
    force: bool = False,
) -> State:
    """Load a tenant's CDRs for a past date range from its PBX; never moves the live poll cursor.

    Safe to run while poll-cdrs is scheduled (each window loads under the tenant lock, with the same
    upsert) and to rerun: windows already done are skipped, so a rerun after a failure resumes.

    Args:
        tenant: Tenant name (its CloudUCM block).
        start: First day (or local date-time) of the range, in the tenant's time zone.
        end: Last day (inclusive; or a local date-time) of the range, in the tenant's time zone.
        window: Length of one fetch window (local wall-clock time); a window that hits the PBX page
            cap is split further automatically.
        max_parallel: Windows fetched at the same time (the PBX allows only a few API sessions).
        force: Reload windows already done (e.g. after fixing normalization).

    Returns:
        Completed with the totals, Failed naming the first failed window, or Cancelled when the
        process was asked to stop (``audiapro.backfill.CANCEL``, Ctrl-C in the CLI); rerun to resume.
    """
    logger = get_run_logger()
    plan = plan_backfill_task(tenant, start, end, window, force)
    windows: list[list[str]] = plan["windows"]
    logger.info(
        "tenant %s: %d of %d windows to load (%d already done), %s → %s UTC",
        tenant, len(windows), plan["planned"], plan["skipped"], *plan["span"],
    )  # fmt: skip
    progress = ProgressReporter(
        key=artifact_key("backfill", tenant, "progress"),
        description=f"{tenant}: {len(windows)} windows to load ({plan['skipped']} already done)",
    )
    rows = _load_windows(tenant, windows, plan["settled_until"], max_parallel, progress)
    totals = {name: sum(int(row.get(name, 0)) for row in rows) for name in COUNT_COLUMNS}
    failed = [row for row in rows if row["status"] == "failed"]
    cancelled = sum(row["status"] == "cancelled" for row in rows)
    result = {
        "tenant": tenant,
        "span": plan["span"],
        "planned": plan["planned"],
        "skipped": plan["skipped"],
        "loaded": len(rows) - len(failed) - cancelled,
        "failed": len(failed),
        "not_started": len(windows) - len(rows) + cancelled,
        **totals,
        "windows": rows,
    }
    create_table_artifact(
        table=[{col: row.get(col, "") for col in TABLE_COLUMNS} for row in rows]
        + [{"window_start": "total", "status": f"{result['loaded']} loaded", **totals}],
        key=artifact_key("backfill", tenant, "summary"),
        description=(
            f"Backfill of {tenant}, {plan['span'][0]} → {plan['span'][1]} UTC: {plan['planned']} windows, "
            f"{plan['skipped']} already done, {result['loaded']} loaded, {len(failed)} failed"
        ),
    )
    if CANCEL.is_set():
        kept = count_windows(result["loaded"])
        return Cancelled(message=f"cancelled: {kept} loaded and kept; rerun to resume", data=result)
    if failed:
        first = failed[0]
        return Failed(
            message=f"window {first['window_start']} failed: {first['error']}; rerun to resume",
            data=result,
        )
    return Completed(
        message=f"{result['loaded']} windows loaded, {plan['skipped']} already done", data=result
    )


def _load_windows(
    tenant: str, windows: list[list[str]], settled_until: str, max_parallel: int, progress: ProgressReporter
) -> list[dict[str, Any]]:
    """Run the window tasks, at most ``max_parallel`` at a time; stop scheduling after a failure.

    Also stops scheduling once ``CANCEL`` is set (running windows stop before their next page).
    Stopping keeps a systematic fault (PBX down, bad credentials) from being retried window after
    window; the windows done so far are recorded, so the rerun continues from there.
    """
    logger = get_run_logger()
    rows: list[dict[str, Any]] = []
    pending: list[PrefectFuture[dict[str, Any]]] = []

    def collect(future: PrefectFuture[dict[str, Any]]) -> None:
        pending.remove(future)
        try:
            rows.append(future.result())
        except BackfillCancelled:
            start, end = windows_by_future[future]
            rows.append({"window_start": start, "window_end": end, "status": "cancelled"})
        except Exception as exc:
            start, end = windows_by_future[future]
            rows.append({"window_start": start, "window_end": end, "status": "failed",
                         "error": describe_error(exc)})  # fmt: skip
            logger.error("tenant %s: window %s failed: %s", tenant, start, rows[-1]["error"])
        progress.update(len(rows) / len(windows), f"{tenant}: {len(rows)} of {len(windows)} windows")

    windows_by_future: dict[PrefectFuture[dict[str, Any]], tuple[str, str]] = {}
    for start, end in windows:
        while len(pending) >= max_parallel:
            collect(next(as_completed(pending)))
        if CANCEL.is_set() or any(row["status"] == "failed" for row in rows):
            break
        future = backfill_window_task.submit(tenant, start, end, settled_until)
        windows_by_future[future] = (start, end)
        pending.append(future)
    for future in as_completed(list(pending)):
        collect(future)
    if not windows:
        progress.update(1.0, f"{tenant}: nothing to load")
    return sorted(rows, key=lambda row: row["window_start"])
