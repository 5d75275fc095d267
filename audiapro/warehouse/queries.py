"""Read-side helpers for the CLI, the admin API and the demo (the SQL stays in this package)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa

from audiapro.warehouse.tables import call_analyses, calls, cdr_legs, ingest_runs, rejected_rows, sync_state

#: Tables shown in summaries, in data-path order.
SUMMARY_TABLES: Final = (cdr_legs, calls, call_analyses, rejected_rows, ingest_runs, sync_state)


def summary_counts(engine: sa.Engine, tenant: str | None = None) -> dict[str, int]:
    """Row count per warehouse table, optionally for one tenant.

    Args:
        engine: Warehouse engine (schema at head).
        tenant: Only this tenant's rows; ``None`` counts everything.

    Returns:
        ``{table name: rows}`` in data-path order.
    """
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for table in SUMMARY_TABLES:
            query = sa.select(sa.func.count()).select_from(table)
            if tenant is not None:
                query = query.where(table.c.tenant == tenant)
            counts[table.name] = int(conn.scalar(query) or 0)
    return counts


#: Stored days a tenant's traffic is averaged over for a backfill estimate (recent weeks say most).
TRAFFIC_DAYS: Final = 28
#: Columns of :func:`recent_calls`, in the order `audiapro calls` prints them.
CALL_COLUMNS: Final = ("id", "started_at", "direction", "answered", "answered_by", "duration_s", "talk_s",
                       "leg_count", "recording_count", "src_raw", "dst_raw")  # fmt: skip


def legs_per_day(engine: sa.Engine, tenant: str) -> float | None:
    """The tenant's average legs per day over its last :data:`TRAFFIC_DAYS` stored days.

    Returns:
        Legs per day, None when the warehouse holds no leg of the tenant (or no schema yet).
    """
    with engine.connect() as conn:
        latest = conn.scalar(sa.select(sa.func.max(cdr_legs.c.start_at)).where(cdr_legs.c.tenant == tenant))
        if latest is None:
            return None
        since = latest - timedelta(days=TRAFFIC_DAYS)
        recent = (cdr_legs.c.tenant == tenant) & (cdr_legs.c.start_at > since)
        count, first = conn.execute(
            sa.select(sa.func.count(), sa.func.min(cdr_legs.c.start_at)).where(recent)
        ).one()
    days = max((latest - first).total_seconds() / 86400, 1.0)
    return float(count) / days


def recent_calls(
    engine: sa.Engine, tenant: str, *, since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """A tenant's calls, newest first (the columns :data:`CALL_COLUMNS`, no raw legs).

    Args:
        engine: Warehouse engine.
        tenant: Tenant name.
        since: Only calls that started at or after this instant.
        limit: At most this many calls (None: all).

    Returns:
        One dict per call; ``started_at`` is an aware UTC datetime.
    """
    query = (
        sa.select(*(calls.c[name] for name in CALL_COLUMNS))
        .where(calls.c.tenant == tenant)
        .order_by(calls.c.started_at.desc(), calls.c.id.desc())
    )
    if since is not None:
        query = query.where(calls.c.started_at >= since)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
