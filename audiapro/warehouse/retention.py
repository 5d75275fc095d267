"""Retention and purge in SQL: clear old transcripts and raw CDR JSON, remove a tenant's rows.

Every statement touches at most ``batch_rows`` rows and commits on its own (one transaction per
table batch): a long purge never holds locks over a large part of a table, and a crash loses at
most one batch of progress; rerunning continues where it stopped, because every statement selects
only rows still to be done. ``audiapro.retention`` decides what to clear and when.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from audiapro.warehouse.engine import begin_write
from audiapro.warehouse.history import forget_chunk_digests
from audiapro.warehouse.tables import (
    PUSH_PENDING,
    analysis_batches,
    backfill_windows,
    call_analyses,
    callback_queue,
    calls,
    cdr_legs,
    daily_breakdowns,
    daily_kpis,
    fraud_alerts,
    imported_files,
    ingest_runs,
    insight_settings,
    login_blocks,
    push_bodies,
    reconcile_days,
    rejected_rows,
    sync_state,
)

#: Tables a full purge empties of the tenant's rows, in an order that never breaks a foreign key
#: (``ingest_runs`` last: legs, calls, quarantined rows, windows and sync state point at it).
FULL_PURGE_TABLES: Final = (
    call_analyses, analysis_batches, cdr_legs, calls, rejected_rows, reconcile_days, backfill_windows,
    imported_files, sync_state, login_blocks, push_bodies,
    # insights and fraud alerts (revision 0009): they hold callers' numbers too
    daily_kpis, daily_breakdowns, callback_queue, fraud_alerts, insight_settings,
    ingest_runs,
)  # fmt: skip
#: Tables a purge ``--before`` a date touches: the call data. Run bookkeeping, the cursor
#: (``sync_state``) and the completed backfill windows stay, so polls and backfills do not re-load
#: what was removed.
BEFORE_PURGE_TABLES: Final = (call_analyses, cdr_legs, calls, rejected_rows, push_bodies)


def _purged_sessions(tenant: str, before: datetime) -> sa.Select[Any]:
    """Sessions of the tenant's calls that started before ``before``."""
    return sa.select(calls.c.session).where(calls.c.tenant == tenant, calls.c.started_at < before)


def _purge_condition(table: sa.Table, tenant: str, before: datetime | None) -> sa.ColumnElement[bool]:
    """The tenant's rows of ``table`` a purge removes (every row without ``before``)."""
    mine = table.c.tenant == tenant
    if before is None:
        return mine
    if table is calls:
        return sa.and_(mine, calls.c.started_at < before)
    if table is call_analyses:
        return sa.and_(mine, call_analyses.c.session.in_(_purged_sessions(tenant, before)))
    if table is cdr_legs:
        # A leg of a call that started before the date goes with it, even if the leg itself started later.
        started = sa.func.coalesce(cdr_legs.c.start_at, cdr_legs.c.loaded_at) < before
        return sa.and_(mine, sa.or_(started, cdr_legs.c.session.in_(_purged_sessions(tenant, before))))
    if table is rejected_rows:
        return sa.and_(mine, rejected_rows.c.created_at < before)
    if table is push_bodies:  # pushed bodies are raw CDRs: they go with the calls of their time
        return sa.and_(mine, push_bodies.c.received_at < before)
    raise ValueError(f"a purge before a date does not touch {table.name}")


def purge_tables(before: datetime | None) -> Sequence[sa.Table]:
    """The tables a purge touches, in the order it empties them."""
    return FULL_PURGE_TABLES if before is None else BEFORE_PURGE_TABLES


def count_purge(engine: sa.Engine, tenant: str, before: datetime | None) -> dict[str, int]:
    """Rows a purge would remove now, per table (in purge order).

    Args:
        engine: The warehouse.
        tenant: Tenant key.
        before: Only data before this instant (see :func:`purge_rows`); None: all of the tenant's.
    """
    with engine.connect() as conn:
        return {
            table.name: int(
                conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(_purge_condition(table, tenant, before))
                )
                or 0
            )
            for table in purge_tables(before)
        }


def purge_rows(engine: sa.Engine, tenant: str, before: datetime | None, *, batch_rows: int) -> dict[str, int]:
    """Delete the tenant's rows, table by table, ``batch_rows`` per transaction.

    Without ``before`` every table that holds the tenant's rows is emptied of them, sync state (the
    poll cursor) included. With ``before``: analyses and legs of calls that started before it, those
    calls, legs that started before it, and rows quarantined before it.

    Args:
        engine: The warehouse.
        tenant: Tenant key.
        before: Only data before this instant; None: everything of the tenant.
        batch_rows: Rows deleted per transaction.

    Returns:
        Rows deleted per table, in purge order (zeros on a rerun).
    """
    # First: a digest left behind would let a later import skip chunks whose legs are gone.
    with begin_write(engine) as conn:
        forget_chunk_digests(conn, tenant=tenant)
    return {
        table.name: _delete_batched(engine, table, _purge_condition(table, tenant, before), batch_rows)
        for table in purge_tables(before)
    }


def _delete_batched(
    engine: sa.Engine, table: sa.Table, where: sa.ColumnElement[bool], batch_rows: int
) -> int:
    """Delete the rows of ``table`` matching ``where``: batches by id, or one statement for small
    keyed tables (one row per tenant or per tenant-day)."""
    if "id" not in table.c:
        with begin_write(engine) as conn:
            return int(conn.execute(sa.delete(table).where(where)).rowcount or 0)
    total = 0
    while True:
        batch = sa.select(table.c.id).where(where).order_by(table.c.id).limit(batch_rows)
        with begin_write(engine) as conn:
            deleted = int(conn.execute(sa.delete(table).where(table.c.id.in_(batch))).rowcount or 0)
        total += deleted
        if deleted < batch_rows:
            return total


def _update_batched(
    engine: sa.Engine, table: sa.Table, where: sa.ColumnElement[bool], values: dict[str, Any], batch_rows: int
) -> int:
    """Set ``values`` on the rows of ``table`` matching ``where``, ``batch_rows`` per transaction."""
    total = 0
    while True:
        batch = sa.select(table.c.id).where(where).order_by(table.c.id).limit(batch_rows)
        with begin_write(engine) as conn:
            changed = int(
                conn.execute(sa.update(table).where(table.c.id.in_(batch)).values(values)).rowcount or 0
            )
        total += changed
        if changed < batch_rows:
            return total


def clear_transcripts(engine: sa.Engine, tenant: str, older_than: datetime, *, batch_rows: int) -> int:
    """Clear the transcript text of the tenant's analyses created before ``older_than``: the stored
    (redacted) transcript and the encrypted original kept under ``redact_keep_encrypted``.

    The analysis row stays (insights, costs, redaction counts, the key that keeps a rerun from
    paying twice).

    Returns:
        Analyses whose transcript was cleared now (0 on a rerun).
    """
    where = sa.and_(
        call_analyses.c.tenant == tenant,
        call_analyses.c.created_at < older_than,
        sa.or_(call_analyses.c.transcript.is_not(None), call_analyses.c.transcript_encrypted.is_not(None)),
    )
    cleared = {"transcript": None, "transcript_encrypted": None}
    return _update_batched(engine, call_analyses, where, cleared, batch_rows)


def clear_raw_cdrs(engine: sa.Engine, tenant: str, older_than: datetime, *, batch_rows: int) -> int:
    """Clear the raw CDR JSON of the tenant's legs that started before ``older_than`` and of rows
    quarantined before it, and delete the bodies its PBX pushed before it (once processed). Legs and
    their normalized columns stay.

    Returns:
        Rows (legs, quarantined rows, pushed bodies) cleared or deleted now (0 on a rerun).
    """
    legs = sa.and_(
        cdr_legs.c.tenant == tenant,
        sa.func.coalesce(cdr_legs.c.start_at, cdr_legs.c.loaded_at) < older_than,
        cdr_legs.c.raw.is_not(None),
    )
    rejects = sa.and_(
        rejected_rows.c.tenant == tenant,
        rejected_rows.c.created_at < older_than,
        rejected_rows.c.raw.is_not(None),
    )
    # A pushed body is nothing but raw CDRs: it is deleted once processed (a pending one waits).
    bodies = sa.and_(
        push_bodies.c.tenant == tenant,
        push_bodies.c.received_at < older_than,
        push_bodies.c.status != PUSH_PENDING,
    )
    return (
        _update_batched(engine, cdr_legs, legs, {"raw": None}, batch_rows)
        + _update_batched(engine, rejected_rows, rejects, {"raw": None}, batch_rows)
        + _delete_batched(engine, push_bodies, bodies, batch_rows)
    )


def sessions_started_before(
    engine: sa.Engine, tenant: str, sessions: Sequence[str], before: datetime
) -> set[str]:
    """Which of ``sessions`` are calls of the tenant that started before ``before``."""
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(sessions), _IN_LIST_ROWS):
            chunk = list(sessions[start : start + _IN_LIST_ROWS])
            query = sa.select(calls.c.session).where(
                calls.c.tenant == tenant, calls.c.session.in_(chunk), calls.c.started_at < before
            )
            found.update(str(row) for row in conn.scalars(query))
    return found


#: Values per ``IN`` list (SQLite allows 32766 bound parameters; far below both limits).
_IN_LIST_ROWS: Final = 1_000
