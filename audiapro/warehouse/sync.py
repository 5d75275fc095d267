"""``sync_state``: the live poll watermark per tenant and its health counters.

The watermark is written only inside the transaction that loads the data it covers (``load_batch``),
and it never moves backwards, so a late or retried run cannot rewind it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from audiapro.warehouse.dialect import upsert_insert
from audiapro.warehouse.engine import begin_write
from audiapro.warehouse.runs import RunInfo, finish_run, insert_run, utcnow
from audiapro.warehouse.tables import RUN_SUCCEEDED, cdr_legs, sync_state


@dataclass(frozen=True)
class SyncState:
    """One tenant's sync state.

    Attributes:
        tenant: Tenant name.
        cursor_at: Live poll watermark (UTC), ``None`` until the first successful poll.
        last_success_at: When a poll last committed.
        last_attempt_at: When a poll last committed or failed.
        last_error: Redacted error of the latest failure, cleared by a success.
        consecutive_failures: Failures since the last success.
        last_run_id: The latest run that touched this state.
        last_sweep_at: When the long-call sweep last completed.
        empty_ticks: Poll windows in a row that came back empty although earlier weeks had traffic
            at the same hours (reset by any window with legs).
    """

    tenant: str
    cursor_at: datetime | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    last_run_id: int | None
    last_sweep_at: datetime | None = None
    empty_ticks: int = 0


_FIELDS = (
    "tenant",
    "cursor_at",
    "last_success_at",
    "last_attempt_at",
    "last_error",
    "consecutive_failures",
    "last_run_id",
    "last_sweep_at",
    "empty_ticks",
)


def read_sync_state(engine: sa.Engine, tenant: str) -> SyncState | None:
    """The state of ``tenant``, or ``None`` if it never ran."""
    with engine.connect() as conn:
        row = conn.execute(_select_states().where(sync_state.c.tenant == tenant)).one_or_none()
    return None if row is None else SyncState(**row._mapping)


def list_sync_states(engine: sa.Engine) -> list[SyncState]:
    """The states of all tenants, by tenant name."""
    with engine.connect() as conn:
        rows = conn.execute(_select_states().order_by(sync_state.c.tenant)).all()
    return [SyncState(**row._mapping) for row in rows]


def commit_cursor(conn: sa.Connection, *, tenant: str, cursor: datetime, run_id: int, now: datetime) -> None:
    """Record a successful poll: watermark = max(stored, ``cursor``), failures reset, error cleared."""

    def forward(offered: Any) -> dict[str, Any]:
        stored, new = sync_state.c.cursor_at, offered.cursor_at
        # CASE rather than GREATEST: SQLite's scalar max() returns NULL when either side is NULL.
        return {"cursor_at": sa.case((sa.or_(stored.is_(None), new > stored), new), else_=stored)}

    _upsert_state(
        conn,
        tenant,
        {
            "cursor_at": cursor,
            "last_success_at": now,
            "last_attempt_at": now,
            "last_error": None,
            "consecutive_failures": 0,
            "last_run_id": run_id,
            "updated_at": now,
        },
        forward,
    )


def commit_unchanged_window(
    engine: sa.Engine,
    *,
    tenant: str,
    raw_legs: Collection[str],
    starts_between: tuple[datetime, datetime],
    run: RunInfo,
    cursor: datetime,
) -> int | None:
    """Commit a poll piece whose legs the warehouse already holds exactly as fetched, or do nothing.

    Every one of ``raw_legs`` (a leg's raw JSON as normalization stores it in ``cdr_legs.raw``) must
    be the stored raw text of a leg of ``tenant`` that started within ``starts_between``. Then
    normalizing and merging the piece would find every leg unchanged (a leg's content is derived
    from its raw text), so only what a load of unchanged legs writes is written, in one
    transaction: the ``ingest_runs`` row (``unchanged`` = the legs) and the cursor (an empty piece
    needs no comparison). A leg the PBX changed, a new one, or one whose raw text retention cleared
    is not found: nothing is written and the caller loads the piece as usual.

    Args:
        engine: Warehouse engine.
        tenant: Tenant name.
        raw_legs: The piece's legs' raw texts (distinct: the client de-duplicates legs by AcctId).
        starts_between: UTC bounds the stored legs' ``start_at`` lie in (the piece's window with a
            margin): they let the tenant's start-time index find the few candidate rows; a leg
            stored outside them is merely not found.
        run: The piece's run metadata (``fetched`` set).
        cursor: The piece's end: the new watermark.

    Returns:
        The ``ingest_runs`` id of the committed piece, or ``None`` when a leg was not found as is.
    """
    wanted = set(raw_legs)
    low, high = starts_between
    found = (
        sa.select(sa.func.count(sa.distinct(cdr_legs.c.raw)))
        .where(cdr_legs.c.tenant == tenant, cdr_legs.c.start_at >= low, cdr_legs.c.start_at <= high)
        .where(cdr_legs.c.raw.in_(sorted(wanted)))
    )
    now = utcnow()
    with begin_write(engine) as conn:
        if wanted and conn.scalar(found) != len(wanted):
            return None
        run_id = insert_run(conn, tenant=tenant, run=run, status=RUN_SUCCEEDED, now=now)
        finish_run(conn, run_id, now=utcnow(), unchanged=len(raw_legs))
        commit_cursor(conn, tenant=tenant, cursor=cursor, run_id=run_id, now=now)
    return run_id


def note_failure(conn: sa.Connection, *, tenant: str, error: str, run_id: int, now: datetime) -> None:
    """Record a failed run: one more consecutive failure; the watermark is left alone."""
    _upsert_state(
        conn,
        tenant,
        {
            "last_attempt_at": now,
            "last_error": error,
            "consecutive_failures": 1,
            "last_run_id": run_id,
            "updated_at": now,
        },
        lambda _offered: {"consecutive_failures": sync_state.c.consecutive_failures + 1},
    )


def _upsert_state(
    conn: sa.Connection,
    tenant: str,
    values: dict[str, Any],
    merged: Callable[[Any], dict[str, Any]],
) -> None:
    """Insert the tenant's sync row with ``values``, or update the stored one: each of those columns
    takes the offered value, except those ``merged`` (given the offered row) combines with the stored."""
    insert = upsert_insert(conn, sync_state).values(tenant=tenant, **values)
    offered = insert.excluded
    changes = {name: offered[name] for name in values} | merged(offered)
    conn.execute(insert.on_conflict_do_update(index_elements=["tenant"], set_=changes))


def note_sweep(engine: sa.Engine, *, tenant: str, at: datetime) -> None:
    """Record a completed long-call sweep (after its last piece loaded: a crash in between only means
    the next tick sweeps again, which adds nothing)."""
    with engine.begin() as conn:
        conn.execute(sa.update(sync_state).where(sync_state.c.tenant == tenant).values(last_sweep_at=at))


def note_traffic(engine: sa.Engine, tenant: str, *, unexpected_empty: bool | None, now: datetime) -> int:
    """Count unexpectedly empty poll windows in a row.

    Args:
        engine: Warehouse engine.
        tenant: Tenant name.
        unexpected_empty: True for an empty window where history expected calls (one more in the
            row), None for a window with legs (the row ends), False for an empty window at a quiet
            time (says nothing either way: the count stays).
        now: Timestamp for ``updated_at``.

    Returns:
        The count after this window.
    """
    with engine.begin() as conn:
        if unexpected_empty is not None and not unexpected_empty:
            value = conn.scalar(sa.select(sync_state.c.empty_ticks).where(sync_state.c.tenant == tenant))
            return int(value or 0)
        new = sync_state.c.empty_ticks + 1 if unexpected_empty else 0
        conn.execute(
            sa.update(sync_state).where(sync_state.c.tenant == tenant).values(empty_ticks=new, updated_at=now)
        )
        value = conn.scalar(sa.select(sync_state.c.empty_ticks).where(sync_state.c.tenant == tenant))
    return int(value or 0)


def weeks_with_traffic(engine: sa.Engine, tenant: str, start: datetime, end: datetime, *, weeks: int) -> int:
    """In how many of the previous ``weeks`` weeks a leg started in the same hours of the week.

    Whole weeks back in UTC: a DST change shifts the comparison by an hour twice a year, which does
    not matter for telling "usually busy" from "usually quiet".
    """
    with engine.connect() as conn:
        found = 0
        for k in range(1, weeks + 1):
            shift = timedelta(days=7 * k)
            hit = conn.scalar(
                sa.select(cdr_legs.c.id)
                .where(
                    cdr_legs.c.tenant == tenant,
                    cdr_legs.c.start_at >= start - shift,
                    cdr_legs.c.start_at <= end - shift,
                )
                .limit(1)
            )
            found += hit is not None
    return found


def _select_states() -> sa.Select[tuple[object, ...]]:
    return sa.select(*(sync_state.c[name] for name in _FIELDS))
