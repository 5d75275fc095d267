"""The load path: one batch of canonical legs into the warehouse, with its run, rejects and cursor.

Everything a batch writes commits together or not at all. In particular the poll watermark moves in
the same transaction as the legs it covers: a crash after the upsert but before the commit leaves
neither, and the next run simply re-reads the window (the merge makes re-reads free). Callers that
keep their own progress record (completed backfill windows, committed import chunks) write it through
the ``on_commit`` hook, so that record too commits together with the legs it describes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from audiapro.warehouse.calls import recompute_calls
from audiapro.warehouse.engine import begin_write
from audiapro.warehouse.frames import PreparedLegs, prepare_batch, reject_records
from audiapro.warehouse.runs import RunInfo, finish_run, insert_rejects, insert_run, redact_error, utcnow
from audiapro.warehouse.sync import commit_cursor, note_failure
from audiapro.warehouse.tables import RUN_FAILED, RUN_SUCCEEDED
from audiapro.warehouse.upsert import OnConflict, drop_scratch, merge_legs


@dataclass(frozen=True)
class LoadResult:
    """Summary of one loaded batch (small: safe to return from an orchestrator task).

    Attributes:
        run_id: The ``ingest_runs`` row of this batch.
        read: Rows in the leg frame as given (in-batch duplicates included).
        inserted: Legs new to the warehouse.
        updated: Known legs whose content changed.
        unchanged: Known legs re-read identically (no write).
        rejected: Quarantined rows newly stored.
        sessions_touched: Calls (sessions) rebuilt because a leg was inserted or changed.
        rejected_known: Quarantined rows not stored again: the tenant already had the same bad row
            (same source, reason and raw text), e.g. re-read by a poll's lookback.
    """

    run_id: int
    read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    sessions_touched: int
    rejected_known: int = 0


#: Called inside the load transaction, after everything else, with the batch's result; whatever it
#: writes commits (or rolls back) together with the legs.
CommitHook = Callable[[sa.Connection, LoadResult], None]


def load_batch(
    engine: sa.Engine,
    *,
    tenant: str,
    legs: pd.DataFrame | PreparedLegs,
    rejects: pd.DataFrame,
    run: RunInfo,
    cursor: datetime | None = None,
    on_conflict: OnConflict = "update",
    on_commit: CommitHook | None = None,
) -> LoadResult:
    """Load one batch in a single transaction.

    Steps: insert the run row; stage and merge the legs into ``cdr_legs`` (insert new legs, update
    legs whose content differs, leave identical ones untouched); rebuild the calls of the touched
    sessions; store the rejects; with ``cursor``, advance the tenant's watermark. Any exception
    rolls all of it back.

    Args:
        engine: Warehouse engine (Postgres loads through COPY; SQLite through executemany).
        tenant: Tenant of every leg.
        legs: Canonical leg frame (``audiapro.cdr.schema``); may be empty. Duplicate ``leg_key``s
            keep the last occurrence. Or the same already passed through ``prepare_batch`` (a file
            import prepares and renders the next chunk while this one loads).
        rejects: Quarantined rows (``REJECT_COLUMNS``); may be empty.
        run: Run metadata.
        cursor: New poll watermark (tz-aware). ``None`` for backfills and imports: the live poll's
            state is then not touched at all.
        on_conflict: ``update`` (polls, backfills: a changed leg is rewritten) or ``ignore`` (file
            imports: a leg already stored is left exactly as it is and counted as unchanged).
        on_commit: Hook run last inside the transaction (see :data:`CommitHook`).

    Returns:
        Exact counts of what the batch did.

    Raises:
        ValueError: The frame breaks the canonical contract, or ``cursor`` is naive.
    """
    if cursor is not None and cursor.tzinfo is None:
        raise ValueError("cursor must be tz-aware (UTC)")
    batch = legs if isinstance(legs, PreparedLegs) else prepare_batch(legs, tenant)
    quarantined = reject_records(rejects)
    now = utcnow()
    with begin_write(engine) as conn:
        run_id = insert_run(conn, tenant=tenant, run=run, status=RUN_SUCCEEDED, now=now)
        counts = merge_legs(conn, batch, tenant=tenant, run_id=run_id, now=now, on_conflict=on_conflict)
        touched = recompute_calls(conn, tenant=tenant, run_id=run_id, now=now) if counts.changed else 0
        rejected = insert_rejects(conn, quarantined, run_id=run_id, tenant=tenant, now=now)
        finish_run(
            conn,
            run_id,
            now=utcnow(),
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
            rejected=rejected,
        )
        if cursor is not None:
            commit_cursor(conn, tenant=tenant, cursor=cursor, run_id=run_id, now=now)
        drop_scratch(conn)
        result = LoadResult(
            run_id=run_id,
            read=batch.given,
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
            rejected=rejected,
            sessions_touched=touched,
            rejected_known=len(quarantined) - rejected,
        )
        if on_commit is not None:
            on_commit(conn, result)
    return result


def record_failure(engine: sa.Engine, *, tenant: str, run: RunInfo, error: str) -> int:
    """Record a failed run in its own transaction (the failed batch itself was rolled back).

    Writes an ``ingest_runs`` row with status ``failed`` and the redacted error, and bumps the
    tenant's ``consecutive_failures``/``last_error``/``last_attempt_at``; the watermark stays.

    Args:
        engine: Warehouse engine.
        tenant: Tenant of the run.
        run: Run metadata.
        error: Error text; credentials are redacted and long texts cut before storing.

    Returns:
        The id of the failed run's row.
    """
    now = utcnow()
    redacted = redact_error(error)
    with begin_write(engine) as conn:
        run_id = insert_run(conn, tenant=tenant, run=run, status=RUN_FAILED, now=now, error=redacted)
        note_failure(conn, tenant=tenant, error=redacted, run_id=run_id, now=now)
    return run_id
