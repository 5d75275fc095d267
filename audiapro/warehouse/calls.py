"""Recompute ``calls`` (one row per tenant and session) from ``cdr_legs``, in SQL.

Legs of one call can arrive in different batches (a long call's last leg ends after the next poll),
so a call is always rebuilt from *all* of its stored legs, never from one batch in pandas. Only
sessions that gained, lost or changed a leg in this batch are rebuilt, inside the load transaction.
Legs without a session belong to no call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from audiapro.warehouse.dialect import in_small_set, seconds_between, upsert_insert
from audiapro.warehouse.tables import ANSWERED, UtcDateTime, calls, cdr_legs
from audiapro.warehouse.upsert import changed, touched_sessions

#: Call columns derived from legs; a recomputed call is only written when one of them differs.
CALL_VALUE_COLUMNS: Final = (
    "started_at",
    "ended_at",
    "direction",
    "answered",
    "answered_by",
    "leg_count",
    "talk_s",
    "duration_s",
    "recording_count",
    "src_e164",
    "src_raw",
    "dst_raw",
)


def recompute_calls(conn: sa.Connection, *, tenant: str, run_id: int, now: datetime) -> int:
    """Rebuild the calls of the sessions touched by the batch just merged.

    Args:
        conn: Connection inside the load transaction, after ``merge_legs``.
        tenant: Tenant of the batch.
        run_id: This load's ``ingest_runs`` id (stamped on created or changed calls).
        now: Timestamp for ``created_at``/``updated_at``.

    Returns:
        The number of sessions rebuilt.
    """
    touched = touched_sessions()
    computed = _computed_calls(
        conn, tenant=tenant, sessions=sa.select(touched.c.session), run_id=run_id, now=now
    )
    insert = upsert_insert(conn, calls).from_select([*computed.selected_columns.keys()], computed)
    excluded = insert.excluded
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["tenant", "session"],
            set_={
                **{name: excluded[name] for name in CALL_VALUE_COLUMNS},
                "last_ingest_run_id": excluded.last_ingest_run_id,
                "updated_at": excluded.updated_at,
            },
            where=sa.or_(*(calls.c[name].is_distinct_from(excluded[name]) for name in CALL_VALUE_COLUMNS)),
        )
    )
    # A session whose every leg moved to another session (re-normalized) no longer is a call. Only a
    # leg that changed its session can leave one behind (never so in file imports and first loads).
    if _legs_moved(conn):
        orphaned = ~sa.exists().where(
            cdr_legs.c.tenant == calls.c.tenant, cdr_legs.c.session == calls.c.session
        )
        conn.execute(
            sa.delete(calls).where(
                calls.c.tenant == tenant, calls.c.session.in_(sa.select(touched.c.session)), orphaned
            )
        )
    return int(conn.scalar(sa.select(sa.func.count()).select_from(touched)) or 0)


def _legs_moved(conn: sa.Connection) -> bool:
    """Whether a changed leg of this batch left its previous session."""
    moved = sa.exists().where(
        changed.c.old_session.is_not(None), changed.c.old_session.is_distinct_from(changed.c.session)
    )
    return bool(conn.scalar(sa.select(moved)))


def _computed_calls(
    conn: sa.Connection, *, tenant: str, sessions: sa.Select[Any], run_id: int, now: datetime
) -> sa.Select[Any]:
    legs = cdr_legs
    is_answered = legs.c.disposition == ANSWERED
    # "First leg": earliest start; ties by uniqueid in numeric order ("<epoch>.<seq>": shorter text
    # first, then lexical), then leg_key, so the choice never depends on arrival order.
    first_order = (
        legs.c.start_at.asc().nulls_last(),
        sa.func.length(legs.c.uniqueid).asc().nulls_last(),
        legs.c.uniqueid.asc().nulls_last(),
        legs.c.leg_key.asc(),
    )
    answer_order = (sa.case((is_answered, 0), else_=1), legs.c.billsec_s.desc().nulls_last(), *first_order)
    ranked = (
        sa.select(
            legs.c.session,
            legs.c.start_at,
            legs.c.end_at,
            legs.c.direction,
            legs.c.billsec_s,
            legs.c.recording_count,
            legs.c.answered_by,
            legs.c.src_e164,
            legs.c.src_raw,
            legs.c.dst_raw,
            sa.case((is_answered, 1), else_=0).label("answered"),
            sa.func.row_number().over(partition_by=legs.c.session, order_by=first_order).label("first_rank"),
            sa.func.row_number()
            .over(partition_by=legs.c.session, order_by=answer_order)
            .label("answer_rank"),
        )
        .where(legs.c.tenant == tenant, in_small_set(conn, legs.c.session, sessions))
        .subquery("ranked")
    )
    r = ranked.c

    def of_first_leg(column: Any) -> Any:
        return sa.func.max(sa.case((r.first_rank == 1, column)))

    started_at = sa.func.min(r.start_at)
    ended_at = sa.func.max(r.end_at)
    return (
        sa.select(
            sa.literal(tenant).label("tenant"),
            r.session.label("session"),
            started_at.label("started_at"),
            ended_at.label("ended_at"),
            of_first_leg(r.direction).label("direction"),
            (sa.func.max(r.answered) == 1).label("answered"),
            sa.func.max(sa.case((sa.and_(r.answer_rank == 1, r.answered == 1), r.answered_by))).label(
                "answered_by"
            ),
            sa.func.count().label("leg_count"),
            sa.func.coalesce(sa.func.sum(r.answered * sa.func.coalesce(r.billsec_s, 0)), 0).label("talk_s"),
            seconds_between(conn, started_at, ended_at).label("duration_s"),
            sa.func.coalesce(sa.func.sum(r.recording_count), 0).label("recording_count"),
            of_first_leg(r.src_e164).label("src_e164"),
            of_first_leg(r.src_raw).label("src_raw"),
            of_first_leg(r.dst_raw).label("dst_raw"),
            sa.literal(run_id, sa.BigInteger).label("ingest_run_id"),
            sa.literal(run_id, sa.BigInteger).label("last_ingest_run_id"),
            sa.literal(now, UtcDateTime).label("created_at"),
            sa.literal(now, UtcDateTime).label("updated_at"),
        )
        # SQLite needs a WHERE in INSERT ... SELECT ... ON CONFLICT to parse it; harmless elsewhere.
        .where(sa.true())
        .group_by(r.session)
    )
