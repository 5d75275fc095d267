"""Calls an analysis run left out because they started before its window (``audiapro analyze``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from audiapro.warehouse.tables import call_analyses, calls


@dataclass(frozen=True)
class AnalysisBacklog:
    """Never-analysed calls of one tenant that started before a given instant.

    Attributes:
        calls: How many there are.
        oldest_start: Start of the oldest of them (None when there are none).
    """

    calls: int
    oldest_start: datetime | None


def unanalysed_before(engine: sa.Engine, tenant: str, before: datetime) -> AnalysisBacklog:
    """Calls of ``tenant`` that started before ``before`` and have no analysis row of any kind.

    A call with any ``call_analyses`` row (analysed, skipped by policy or budget, failed) was
    considered by some run, so only calls no run ever looked at count: a freshly imported history
    older than the window of ``audiapro analyze``.
    """
    c, a = calls.c, call_analyses.c
    analysed = sa.exists().where(a.tenant == c.tenant, a.session == c.session)
    query = sa.select(sa.func.count(), sa.func.min(c.started_at)).where(
        c.tenant == tenant, c.started_at < before, ~analysed
    )
    with engine.connect() as conn:
        count, oldest = conn.execute(query).one()
    return AnalysisBacklog(calls=int(count), oldest_start=oldest)
