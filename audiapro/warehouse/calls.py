"""Recompute ``calls`` (one row per tenant and session) from ``cdr_legs``, in SQL.

Legs of one call can arrive in different batches (a long call's last leg ends after the next poll),
so a call is always rebuilt from *all* of its stored legs, never from one batch in pandas. Only
sessions that gained, lost or changed a leg in this batch are rebuilt, inside the load transaction.
Legs without a session belong to no call.

Every leg stays in ``cdr_legs``; a call is computed from the session's *call legs*, so nothing is
counted twice:

* **Bookkeeping rows are left out.** A ForkCDR row (``lastapp = 'ForkCDR'``) is a copy of another leg
  (same uniqueid, channels and end), so it changes none of the call's columns: not ``leg_count``,
  ``talk_s`` or ``recording_count``, not ``answered``/``answered_by`` (the call's answer is its
  real legs' answer), not ``started_at``/``ended_at``/``duration_s``, not the first leg's
  ``direction`` and numbers. Only a session whose stored legs are *all* bookkeeping rows (its real
  leg not loaded, e.g. a filtered export) is described by them, so every session with legs has a call.
* **talk_s is the length of the union of the answered intervals.** Each ANSWERED call leg talks
  from ``answer_at`` to ``end_at``; overlapping talk (a leg and its twin over a Local channel, two
  trunks dialled at once that both answered) counts once, disjoint talk (a transfer, a pickup after
  parking) adds up. The interval is taken as the ``billsec_s`` seconds that end at ``end_at``: the
  PBX writes answer and end cut to the second but computes billsec from exact times, so a call with
  one answered leg keeps ``talk_s = billsec_s`` exactly. (Without ``end_at`` the end is
  ``start_at + duration_s``; without ``billsec_s`` the interval starts at ``answer_at``.) It is
  computed in the same pass as the other columns, with one more window per session: each interval
  adds what lies beyond the latest end of the intervals starting before it.
* ``leg_count`` counts the call legs; ``recording_count`` counts the *distinct* recording files
  they list (a file named by two legs counts once).
* ``answered``: some call leg is ANSWERED; ``answered_by``: the ANSWERED call leg with the longest
  billsec; ``started_at``/``ended_at``: earliest start, latest end; ``duration_s`` between them;
  ``direction``, ``src_*``, ``dst_raw``: of the first call leg (earliest start, then uniqueid).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from audiapro.warehouse.dialect import (
    count_distinct_strings,
    epoch_seconds,
    in_small_set,
    joined_text,
    seconds_between,
    upsert_insert,
)
from audiapro.warehouse.tables import ANSWERED, UtcDateTime, calls, cdr_legs
from audiapro.warehouse.upsert import changed, touched_sessions

#: ``lastapp`` values of bookkeeping rows: copies of another leg that add nothing to the call.
BOOKKEEPING_APPS: Final = ("ForkCDR",)

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
    per_call = _aggregated_legs(conn, _ranked(_call_legs(conn, tenant=tenant, sessions=sessions)))
    p = per_call.c
    # Only a call listing several files needs its lists parsed to find a file listed twice.
    recordings = sa.case(
        (p.recording_sum > 1, count_distinct_strings(conn, "[" + p.recording_lists + "]")),
        else_=p.recording_sum,
    )
    return (
        sa.select(
            sa.literal(tenant).label("tenant"),
            *(p[name] for name in _AGGREGATED),
            recordings.label("recording_count"),
            sa.literal(run_id, sa.BigInteger).label("ingest_run_id"),
            sa.literal(run_id, sa.BigInteger).label("last_ingest_run_id"),
            sa.literal(now, UtcDateTime).label("created_at"),
            sa.literal(now, UtcDateTime).label("updated_at"),
        )
        # SQLite needs a WHERE in INSERT ... SELECT ... ON CONFLICT to parse it; harmless elsewhere.
        .where(sa.true())
    )


def _call_legs(conn: sa.Connection, *, tenant: str, sessions: sa.Select[Any]) -> sa.Subquery:
    """The call legs of the sessions (see the module docstring) with their talk intervals.

    ``talk_to``/``answer_s`` are epoch seconds of answered legs (NULL otherwise).
    """
    legs = cdr_legs
    is_answered = legs.c.disposition == ANSWERED
    end_s = sa.func.coalesce(
        epoch_seconds(conn, legs.c.end_at),
        epoch_seconds(conn, legs.c.start_at) + legs.c.duration_s,
        epoch_seconds(conn, legs.c.answer_at) + legs.c.billsec_s,
    )
    # A bookkeeping row counts only when its session has no other leg: an index probe run for
    # bookkeeping rows alone (a few percent of the legs), cheaper than a window over all of them.
    real = cdr_legs.alias("real")
    real_leg_exists = sa.exists().where(
        real.c.tenant == legs.c.tenant, real.c.session == legs.c.session, _not_bookkeeping(real)
    )
    return (
        sa.select(
            *(legs.c[name] for name in _LEG_COLUMNS_USED),
            sa.case((is_answered, 1), else_=0).label("answered"),
            sa.case((is_answered, end_s)).label("talk_to"),
            sa.case((is_answered, epoch_seconds(conn, legs.c.answer_at))).label("answer_s"),
        )
        .where(
            legs.c.tenant == tenant,
            in_small_set(conn, legs.c.session, sessions),
            sa.or_(_not_bookkeeping(legs), ~real_leg_exists),
        )
        .subquery("call_legs")
    )


def _not_bookkeeping(legs: sa.FromClause) -> sa.ColumnElement[bool]:
    """The leg is a call leg of its own (a NULL ``lastapp`` is one too)."""
    return sa.func.coalesce(legs.c.lastapp, "").not_in(BOOKKEEPING_APPS)


#: Columns of ``_aggregated_legs`` that are call columns as they are (``recording_count`` is
#: computed from the recording lists in ``_computed_calls``).
_AGGREGATED: Final = ("session", *(name for name in CALL_VALUE_COLUMNS if name != "recording_count"))

#: The ``cdr_legs`` columns a call is computed from.
_LEG_COLUMNS_USED: Final = (
    "session",
    "start_at",
    "end_at",
    "uniqueid",
    "leg_key",
    "direction",
    "billsec_s",
    "recording_files",
    "recording_count",
    "answered_by",
    "src_e164",
    "src_raw",
    "dst_raw",
)


def _ranked(legs: sa.Subquery) -> sa.Subquery:
    """The call legs with their rank as first leg and as answering leg, and their talk interval.

    ``covered_until``: the latest end among the answered intervals that start before this one.
    """
    c = legs.c
    # "First leg": earliest start; ties by uniqueid in numeric order ("<epoch>.<seq>": shorter text
    # first, then lexical), then leg_key, so the choice never depends on arrival order.
    first_order = (
        c.start_at.asc().nulls_last(),
        sa.func.length(c.uniqueid).asc().nulls_last(),
        c.uniqueid.asc().nulls_last(),
        c.leg_key.asc(),
    )
    answer_order = (c.answered.desc(), c.billsec_s.desc().nulls_last(), *first_order)
    talk_from = sa.func.coalesce(c.talk_to - c.billsec_s, c.answer_s)
    return sa.select(
        c.session,
        c.start_at,
        c.end_at,
        c.direction,
        c.answered_by,
        c.src_e164,
        c.src_raw,
        c.dst_raw,
        c.recording_files,
        c.recording_count,
        c.answered,
        talk_from.label("talk_from"),
        c.talk_to,
        sa.func.max(c.talk_to)
        .over(partition_by=c.session, order_by=(talk_from, c.talk_to), rows=(None, -1))
        .label("covered_until"),
        sa.func.row_number().over(partition_by=c.session, order_by=first_order).label("first_rank"),
        sa.func.row_number().over(partition_by=c.session, order_by=answer_order).label("answer_rank"),
    ).subquery("ranked")


def _aggregated_legs(conn: sa.Connection, ranked: sa.Subquery) -> sa.Subquery:
    """Per session, every call column computed from its ranked call legs.

    For the file count: ``recording_sum`` (files listed, over all legs) and ``recording_lists``
    (the JSON lists of the legs listing any, joined by commas).
    """
    r = ranked.c

    def of_first_leg(column: Any) -> Any:
        return sa.func.max(sa.case((r.first_rank == 1, column)))

    # Sweep over the answered intervals by start: each adds only what lies beyond the latest end
    # of those before it (whatever the order among equal starts), so overlaps count once.
    covered_from = sa.case((r.covered_until > r.talk_from, r.covered_until), else_=r.talk_from)
    added = sa.case((r.talk_to > covered_from, r.talk_to - covered_from), else_=0)
    started_at = sa.func.min(r.start_at)
    ended_at = sa.func.max(r.end_at)
    return (
        sa.select(
            r.session.label("session"),
            started_at.label("started_at"),
            ended_at.label("ended_at"),
            of_first_leg(r.direction).label("direction"),
            (sa.func.max(r.answered) == 1).label("answered"),
            sa.func.max(sa.case((sa.and_(r.answer_rank == 1, r.answered == 1), r.answered_by))).label(
                "answered_by"
            ),
            sa.func.count().label("leg_count"),
            sa.cast(sa.func.round(sa.func.coalesce(sa.func.sum(added), 0)), sa.Integer).label("talk_s"),
            seconds_between(conn, started_at, ended_at).label("duration_s"),
            of_first_leg(r.src_e164).label("src_e164"),
            of_first_leg(r.src_raw).label("src_raw"),
            of_first_leg(r.dst_raw).label("dst_raw"),
            sa.func.coalesce(sa.func.sum(r.recording_count), 0).label("recording_sum"),
            joined_text(conn, sa.case((r.recording_count > 0, r.recording_files)), ",").label(
                "recording_lists"
            ),
        )
        .group_by(r.session)
        .subquery("per_call")
    )
