"""Completeness bookkeeping: the stored legs of a PBX-local day and the ``reconcile_days`` rows.

``audiapro.reconcile`` compares a day as the PBX has it with the legs stored for that day; this module
is its SQL: which leg keys the warehouse holds for a local day, and the latest result per
``(tenant, day)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa

from audiapro.warehouse.dialect import upsert_insert
from audiapro.warehouse.engine import begin_write
from audiapro.warehouse.tables import cdr_legs, reconcile_days

#: ``start_at`` of a stored leg lies within this of its local day's UTC bounds even when the leg came
#: from a file read in another zone (UTC offsets span 26 hours); the bound only lets the query use
#: the ``(tenant, start_at)`` index, the day itself is decided by ``start_local``.
START_AT_MARGIN: Final = timedelta(days=2)
#: First and last wall-clock second of a local day, appended to its ISO date.
DAY_FIRST_SECOND: Final = " 00:00:00"
DAY_LAST_SECOND: Final = " 23:59:59"
#: Hundredths of a percent in a whole: ``percent`` is computed in integers, free of float rounding.
_PERCENT_STEPS: Final = 10_000
#: Days of history the health report looks at (the latest reconciled day and the six before it).
RECENT_DAYS: Final = 7


@dataclass(frozen=True)
class DayReconciliation:
    """One tenant-day's latest reconciliation (a ``reconcile_days`` row).

    Attributes:
        tenant: Tenant name.
        day: The PBX-local calendar day.
        pbx_legs: Legs the PBX returned for the day (readable, de-duplicated by AcctId).
        malformed: cdrapi entries of the day that could not be read as legs.
        malformed_legs: Those of them that stand where a leg should be (they count as missing).
        stored_legs: Legs stored for the day before this run.
        missing_before: PBX legs not stored before this run.
        loaded_now: Legs this run inserted.
        rejected: PBX legs quarantined while loading (in ``rejected_rows``, not in ``cdr_legs``).
        phantom_legs: Legs stored for the day that the PBX does not have (reported, never deleted).
        matched_legs: PBX legs stored, measured after loading.
        completeness: ``matched_legs / (pbx_legs + malformed_legs)``; 1.0 for a day without legs.
        checked_at: When the day was measured (UTC).
        flow_run_id: The Prefect flow run that measured it.
        ingest_run_id: The ``ingest_runs`` row of the load of the missing legs, if there was one.
    """

    tenant: str
    day: date
    pbx_legs: int
    malformed: int
    malformed_legs: int
    stored_legs: int
    missing_before: int
    loaded_now: int
    rejected: int
    phantom_legs: int
    matched_legs: int
    completeness: float
    checked_at: datetime
    flow_run_id: str | None = None
    ingest_run_id: int | None = None

    @property
    def complete(self) -> bool:
        """Every PBX leg of the day is stored."""
        return self.completeness >= 1.0

    @property
    def percent(self) -> float:
        """Completeness in percent, rounded down to 0.01 (a day short of complete never shows 100)."""
        expected = self.pbx_legs + self.malformed_legs
        return 100.0 if not expected else (self.matched_legs * _PERCENT_STEPS // expected) / 100

    def as_row(self) -> dict[str, Any]:
        """A flat, JSON-ready dict (ISO day and time) with ``percent``."""
        row = asdict(self)
        row["day"] = self.day.isoformat()
        row["checked_at"] = self.checked_at.isoformat()
        row["percent"] = self.percent
        return row


_FIELDS: Final = tuple(DayReconciliation.__dataclass_fields__)


def stored_day_keys(
    engine: sa.Engine, tenant: str, day: date, start_utc: datetime, end_utc: datetime
) -> list[str]:
    """Leg keys of the legs stored for ``tenant`` whose PBX wall-clock start lies on ``day``.

    Args:
        engine: Warehouse engine.
        tenant: Tenant name.
        day: The PBX-local day (``start_local`` is its wall-clock start, as the PBX filters on it).
        start_utc: The day's first instant (UTC); see :data:`START_AT_MARGIN`.
        end_utc: The day's end (UTC).
    """
    table = cdr_legs
    first, last = f"{day.isoformat()}{DAY_FIRST_SECOND}", f"{day.isoformat()}{DAY_LAST_SECOND}"
    query = sa.select(table.c.leg_key).where(
        table.c.tenant == tenant,
        table.c.start_at.between(start_utc - START_AT_MARGIN, end_utc + START_AT_MARGIN),
        table.c.start_local.between(first, last),
    )
    with engine.connect() as conn:
        return list(conn.scalars(query))


def record_reconcile_day(engine: sa.Engine, result: DayReconciliation) -> None:
    """Store ``result`` as the latest reconciliation of its tenant-day (replacing an earlier one)."""
    values = {name: getattr(result, name) for name in _FIELDS}
    with begin_write(engine) as conn:
        insert = upsert_insert(conn, reconcile_days).values(**values)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["tenant", "day"],
                set_={name: insert.excluded[name] for name in _FIELDS if name not in ("tenant", "day")},
            )
        )


def read_reconcile_days(
    engine: sa.Engine, *, tenant: str | None = None, since: date | None = None
) -> list[DayReconciliation]:
    """Reconciled days, by tenant and day.

    Args:
        engine: Warehouse engine.
        tenant: Only this tenant's days.
        since: Only days from this one on.
    """
    query = sa.select(*(reconcile_days.c[name] for name in _FIELDS)).order_by(
        reconcile_days.c.tenant, reconcile_days.c.day
    )
    if tenant is not None:
        query = query.where(reconcile_days.c.tenant == tenant)
    if since is not None:
        query = query.where(reconcile_days.c.day >= since)
    with engine.connect() as conn:
        return [DayReconciliation(**row._mapping) for row in conn.execute(query)]


def recent_reconcile_days(engine: sa.Engine, days: int = RECENT_DAYS) -> list[DayReconciliation]:
    """Per tenant, its latest reconciled day and the days up to ``days - 1`` before it (health's input)."""
    with engine.connect() as conn:
        latest = {
            str(row.tenant): row.day
            for row in conn.execute(
                sa.select(reconcile_days.c.tenant, sa.func.max(reconcile_days.c.day).label("day")).group_by(
                    reconcile_days.c.tenant
                )
            )
        }
    if not latest:
        return []
    cutoff = {name: last - timedelta(days=days - 1) for name, last in latest.items()}
    rows = read_reconcile_days(engine, since=min(cutoff.values()))
    return [row for row in rows if row.day >= cutoff[row.tenant]]
