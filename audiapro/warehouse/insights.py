"""SQL of the insights and toll-fraud alerts: read call legs, store a day, store and list alerts.

Everything here is portable SQL (Postgres and the embedded SQLite): the computations live in
``audiapro.insights`` and work on the frames read here. A day is always written whole (delete, then
insert, in one transaction), so recomputing it after late legs, or twice, leaves the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa

from audiapro.warehouse.dialect import in_small_set
from audiapro.warehouse.engine import begin_write
from audiapro.warehouse.tables import (
    callback_queue,
    calls,
    cdr_legs,
    daily_breakdowns,
    daily_kpis,
    fraud_alerts,
    ingest_runs,
    insight_settings,
)

#: The leg columns the insights read (with the call's own columns, prefixed ``call_``).
INSIGHT_LEG_COLUMNS: Final = (
    "session",
    "uniqueid",
    "leg_key",
    "start_at",
    "answer_at",
    "end_at",
    "billsec_s",
    "disposition",
    "direction",
    "src_raw",
    "dst_raw",
    "src_e164",
    "dst_e164",
    "answered_by",
    "action_type",
    "src_trunk",
    "dst_trunk",
    "dstchannel",
    "lastapp",
)
_CALL_COLUMNS: Final = ("started_at", "ended_at", "talk_s", "answered")
#: Severity order: an alert row only ever moves up.
SEVERITIES: Final = ("warning", "critical")


def read_call_legs(
    engine: sa.Engine, tenant: str, start: datetime, end: datetime, *, directions: Sequence[str] = ()
) -> pd.DataFrame:
    """The legs of the tenant's calls that started in ``[start, end)``, with their call's columns.

    Args:
        engine: Warehouse engine.
        tenant: Tenant name.
        start: First call start included.
        end: Call starts before this.
        directions: Only calls of these directions (the call's, i.e. its first leg's); all when empty.

    Returns:
        One row per leg: :data:`INSIGHT_LEG_COLUMNS` plus ``call_started_at``, ``call_ended_at``,
        ``call_talk_s``, ``call_answered`` (tz-aware UTC timestamps; an empty frame with these
        columns when there is none).
    """
    legs, c = cdr_legs, calls
    in_span = [c.c.tenant == tenant, c.c.started_at >= start, c.c.started_at < end]
    if directions:
        in_span.append(c.c.direction.in_(directions))
    query = (
        sa.select(
            *(legs.c[name] for name in INSIGHT_LEG_COLUMNS),
            *(c.c[name].label(f"call_{name}") for name in _CALL_COLUMNS),
        )
        .join(c, sa.and_(c.c.tenant == legs.c.tenant, c.c.session == legs.c.session))
        .where(legs.c.tenant == tenant, *in_span)
    )
    with engine.connect() as conn:
        if directions:
            # A few calls (the poll's check): their legs by index lookups, not a join over every leg
            # of the tenant (see dialect.in_small_set).
            query = query.where(in_small_set(conn, legs.c.session, sa.select(c.c.session).where(*in_span)))
        rows = conn.execute(query).all()
    columns = [*INSIGHT_LEG_COLUMNS, *(f"call_{name}" for name in _CALL_COLUMNS)]
    return pd.DataFrame.from_records(rows, columns=columns)


def latest_run_id(engine: sa.Engine) -> int:
    """The newest ``ingest_runs`` id (0 when none): stored with a computed day to detect late legs."""
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.max(ingest_runs.c.id))) or 0)


def stale_days(
    engine: sa.Engine, tenant: str, spans: Sequence[tuple[date, datetime, datetime]]
) -> list[date]:
    """Days with calls never computed, or changed by an ingest run after the day was computed.

    Compares ingest run ids, not clocks: a call whose ``last_ingest_run_id`` is newer than the run
    the day was computed through came (or changed) later.

    Args:
        engine: Warehouse engine.
        tenant: Tenant name.
        spans: ``(day, start, end)``: the day's UTC span.
    """
    stale: list[date] = []
    with engine.connect() as conn:
        for day, start, end in spans:
            through = conn.execute(
                sa.select(daily_kpis.c.through_run_id).where(
                    daily_kpis.c.tenant == tenant, daily_kpis.c.day == day
                )
            ).first()
            in_day = sa.and_(calls.c.tenant == tenant, calls.c.started_at >= start, calls.c.started_at < end)
            if through is not None:
                in_day = sa.and_(in_day, calls.c.last_ingest_run_id > (through.through_run_id or 0))
            if conn.scalar(sa.select(sa.exists().where(in_day))):
                stale.append(day)
    return stale


@dataclass(frozen=True)
class StoredDay:
    """What one tenant-day's insights write.

    Attributes:
        kpis: The ``daily_kpis`` row (without tenant, day, computed_at).
        breakdowns: ``daily_breakdowns`` rows (dimension, key, calls, answered, missed, talk_s,
            avg_ring_s).
        callbacks: ``callback_queue`` rows (number, missed_calls, first_missed_at, last_missed_at,
            last_session).
    """

    kpis: dict[str, Any]
    breakdowns: list[dict[str, Any]]
    callbacks: list[dict[str, Any]]


def store_day(engine: sa.Engine, tenant: str, day: date, stored: StoredDay, *, now: datetime) -> None:
    """Replace the tenant-day's KPI, breakdown and callback rows in one transaction."""
    key = {"tenant": tenant, "day": day}
    with begin_write(engine) as conn:
        for table in (daily_kpis, daily_breakdowns, callback_queue):
            conn.execute(sa.delete(table).where(table.c.tenant == tenant, table.c.day == day))
        conn.execute(sa.insert(daily_kpis), [{**key, **stored.kpis, "computed_at": now}])
        if stored.breakdowns:
            conn.execute(sa.insert(daily_breakdowns), [{**key, **row} for row in stored.breakdowns])
        if stored.callbacks:
            conn.execute(
                sa.insert(callback_queue), [{**key, **row, "computed_at": now} for row in stored.callbacks]
            )


def read_daily_kpis(engine: sa.Engine, tenant: str, first: date, last: date) -> list[dict[str, Any]]:
    """The stored ``daily_kpis`` rows of ``first..last`` (inclusive), oldest first."""
    t = daily_kpis
    query = sa.select(t).where(t.c.tenant == tenant, t.c.day >= first, t.c.day <= last).order_by(t.c.day)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def read_breakdowns(
    engine: sa.Engine, tenant: str, first: date, last: date, dimension: str
) -> list[dict[str, Any]]:
    """Stored breakdown rows of one dimension over ``first..last``, by day then key."""
    t = daily_breakdowns
    query = (
        sa.select(t)
        .where(t.c.tenant == tenant, t.c.day >= first, t.c.day <= last, t.c.dimension == dimension)
        .order_by(t.c.day, t.c.key)
    )
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def read_callbacks(engine: sa.Engine, tenant: str, first: date, last: date) -> list[dict[str, Any]]:
    """The callback worklist of ``first..last``: oldest missed call first."""
    t = callback_queue
    query = (
        sa.select(t)
        .where(t.c.tenant == tenant, t.c.day >= first, t.c.day <= last)
        .order_by(t.c.first_missed_at, t.c.number)
    )
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


# --- fraud alerts ---------------------------------------------------------------------------------


def upsert_alerts(
    engine: sa.Engine, alerts: Iterable[dict[str, Any]], *, now: datetime
) -> list[dict[str, Any]]:
    """Store alerts idempotently per (tenant, rule, subject, window_start); return the new ones.

    An alert already stored is updated in place (calls, window end, evidence, cost; never by fewer
    calls than it has) and its severity only ever rises; it is not returned again, so each alert is
    announced once.

    Args:
        engine: Warehouse engine.
        alerts: Rows with tenant, rule, severity, subject, window_start, window_end, calls, evidence
            (a dict) and estimated_cost.
        now: ``detected_at``/``updated_at`` stamp.

    Returns:
        The alerts inserted now, each with its ``id``.
    """
    t = fraud_alerts
    created: list[dict[str, Any]] = []
    alerts = list(alerts)
    if not alerts:  # the usual case after a poll tick: no write transaction at all
        return created
    with begin_write(engine) as conn:
        for alert in alerts:
            row = {**alert, "evidence": json.dumps(alert["evidence"], sort_keys=True, default=str)}
            key = sa.and_(
                t.c.tenant == row["tenant"],
                t.c.rule == row["rule"],
                t.c.subject == row["subject"],
                t.c.window_start == row["window_start"],
            )
            stored = conn.execute(sa.select(t.c.id, t.c.severity, t.c.calls).where(key)).first()
            if stored is None:
                new_id = conn.execute(
                    sa.insert(t).values(**row, detected_at=now, updated_at=now).returning(t.c.id)
                ).scalar_one()
                created.append({**alert, "id": int(new_id), "detected_at": now})
                continue
            severity = max(stored.severity, row["severity"], key=SEVERITIES.index)
            values = {name: row[name] for name in ("window_end", "calls", "evidence", "estimated_cost")}
            if row["calls"] < stored.calls:
                # A poll tick sees only the last hours of a day-long window: fewer calls never replace
                # more (the daily run, which sees the whole day, completes the row).
                values = {}
            conn.execute(
                sa.update(t).where(t.c.id == stored.id).values(**values, severity=severity, updated_at=now)
            )
    return created


def latest_window_ends(
    engine: sa.Engine, tenant: str, rules: Sequence[str], since: datetime
) -> dict[tuple[str, str], datetime]:
    """Per (rule, subject): the end of the tenant's latest stored window ending after ``since``."""
    t = fraud_alerts
    query = (
        sa.select(t.c.rule, t.c.subject, sa.func.max(t.c.window_end))
        .where(t.c.tenant == tenant, t.c.rule.in_(rules), t.c.window_end > since)
        .group_by(t.c.rule, t.c.subject)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {(rule, subject): _utc(end) for rule, subject, end in rows}


def _utc(value: Any) -> datetime:
    """A stored instant read through an aggregate (SQLite hands back its text, naive UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def list_alerts(
    engine: sa.Engine, *, tenant: str | None = None, include_acknowledged: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    """Stored alerts, newest window first (evidence parsed back into a dict)."""
    t = fraud_alerts
    query = sa.select(t).order_by(t.c.window_start.desc(), t.c.id.desc()).limit(limit)
    if tenant:
        query = query.where(t.c.tenant == tenant)
    if not include_acknowledged:
        query = query.where(t.c.acknowledged_at.is_(None))
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
    for row in rows:
        row["evidence"] = json.loads(row["evidence"])
    return rows


def acknowledge_alert(engine: sa.Engine, alert_id: int, *, by: str, now: datetime) -> bool:
    """Mark an alert acknowledged; False when no such alert (acknowledging twice keeps the first)."""
    t = fraud_alerts
    with begin_write(engine) as conn:
        exists = conn.scalar(sa.select(sa.exists().where(t.c.id == alert_id)))
        conn.execute(
            sa.update(t)
            .where(t.c.id == alert_id, t.c.acknowledged_at.is_(None))
            .values(acknowledged_at=now, acknowledged_by=by)
        )
    return bool(exists)


# --- settings -------------------------------------------------------------------------------------


def read_insight_settings(engine: sa.Engine, tenant: str) -> str | None:
    """The tenant's stored insight settings JSON (``None``: defaults)."""
    t = insight_settings
    with engine.connect() as conn:
        return conn.scalar(sa.select(t.c.settings).where(t.c.tenant == tenant))


def write_insight_settings(engine: sa.Engine, tenant: str, settings_json: str, *, now: datetime) -> None:
    """Store the tenant's insight settings JSON (replacing any)."""
    t = insight_settings
    with begin_write(engine) as conn:
        conn.execute(sa.delete(t).where(t.c.tenant == tenant))
        conn.execute(sa.insert(t).values(tenant=tenant, settings=settings_json, updated_at=now))
