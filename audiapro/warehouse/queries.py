"""Read-side helpers for the CLI, the admin API and the demo (the SQL stays in this package)."""

from __future__ import annotations

from typing import Final

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
