"""``sync_state``: the live poll watermark per tenant and its health counters.

The watermark is written only inside the transaction that loads the data it covers (``load_batch``),
and it never moves backwards, so a late or retried run cannot rewind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from audiapro.warehouse.dialect import upsert_insert
from audiapro.warehouse.tables import sync_state


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
    """

    tenant: str
    cursor_at: datetime | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    last_run_id: int | None


_FIELDS = (
    "tenant",
    "cursor_at",
    "last_success_at",
    "last_attempt_at",
    "last_error",
    "consecutive_failures",
    "last_run_id",
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
    insert = upsert_insert(conn, sync_state).values(
        tenant=tenant,
        cursor_at=cursor,
        last_success_at=now,
        last_attempt_at=now,
        last_error=None,
        consecutive_failures=0,
        last_run_id=run_id,
        updated_at=now,
    )
    stored, offered = sync_state.c.cursor_at, insert.excluded.cursor_at
    # CASE rather than GREATEST: SQLite's scalar max() returns NULL when either side is NULL.
    forward = sa.case((sa.or_(stored.is_(None), offered > stored), offered), else_=stored)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["tenant"],
            set_={
                "cursor_at": forward,
                "last_success_at": insert.excluded.last_success_at,
                "last_attempt_at": insert.excluded.last_attempt_at,
                "last_error": None,
                "consecutive_failures": 0,
                "last_run_id": insert.excluded.last_run_id,
                "updated_at": insert.excluded.updated_at,
            },
        )
    )


def note_failure(conn: sa.Connection, *, tenant: str, error: str, run_id: int, now: datetime) -> None:
    """Record a failed run: one more consecutive failure; the watermark is left alone."""
    insert = upsert_insert(conn, sync_state).values(
        tenant=tenant,
        last_attempt_at=now,
        last_error=error,
        consecutive_failures=1,
        last_run_id=run_id,
        updated_at=now,
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["tenant"],
            set_={
                "last_attempt_at": insert.excluded.last_attempt_at,
                "last_error": insert.excluded.last_error,
                "consecutive_failures": sync_state.c.consecutive_failures + 1,
                "last_run_id": insert.excluded.last_run_id,
                "updated_at": insert.excluded.updated_at,
            },
        )
    )


def _select_states() -> sa.Select[tuple[object, ...]]:
    return sa.select(*(sync_state.c[name] for name in _FIELDS))
