"""Insights and fraud checks for one tenant, tied to the warehouse (plain functions, no Prefect).

* :func:`compute_days`: recompute and store the KPIs, breakdowns and callback worklist of local days
  (idempotent: a day is replaced whole, so late legs are picked up by computing it again).
* :func:`check_after_poll`: the cheap fraud rules over the current local day, after a poll tick.
* :func:`evaluate_day`: all fraud rules for a closed day, with the tenant's own baseline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import pandas as pd

from audiapro.insights import fraud
from audiapro.insights.frames import OUTGOING, call_frame, extension_legs, outgoing_frame
from audiapro.insights.kpis import compute_day
from audiapro.insights.settings import InsightSettings, parse_settings
from audiapro.reconcile import latest_closed_day
from audiapro.tenants import TenantSettings
from audiapro.warehouse.insights import (
    StoredDay,
    latest_run_id,
    latest_window_ends,
    read_breakdowns,
    read_call_legs,
    read_daily_kpis,
    read_insight_settings,
    stale_days,
    store_day,
    upsert_alerts,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("audiapro.insights")

#: How far back the daily run looks for days whose calls changed after their KPIs were computed.
STALE_CHECK_DAYS: Final = 35
#: The per-poll check reads this many of its longest rule windows back (ticks are minutes apart).
POLL_LOOKBACK_WINDOWS: Final = 2
_TIME_COLUMNS: Final = ("start_at", "answer_at", "end_at", "call_started_at", "call_ended_at")


def day_span(day: date, timezone: str) -> tuple[datetime, datetime]:
    """UTC ``[start, end)`` of a local day (23 or 25 hours across DST)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def local_day(instant: datetime, timezone: str) -> date:
    """The tenant's local date at ``instant``."""
    return instant.astimezone(ZoneInfo(timezone)).date()


def load_settings(engine: sa.Engine, tenant: str) -> InsightSettings:
    """The tenant's stored insight settings (defaults for what is not stored)."""
    return parse_settings(read_insight_settings(engine, tenant))


def context(engine: sa.Engine, tenant: TenantSettings) -> fraud.TenantContext:
    """The rule context of a tenant (its zone, home region and stored thresholds)."""
    return fraud.TenantContext(
        tenant.name, tenant.timezone, tenant.region, load_settings(engine, tenant.name)
    )


def _read_legs(
    engine: sa.Engine, tenant: str, start: datetime, end: datetime, directions: tuple[str, ...] = ()
) -> pd.DataFrame:
    legs = read_call_legs(engine, tenant, start, end, directions=directions)
    for name in _TIME_COLUMNS:
        legs[name] = pd.to_datetime(legs[name], utc=True)
    return legs


def read_calls(
    engine: sa.Engine, tenant: str, start: datetime, end: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(calls, extension legs)`` of the calls started in ``[start, end)``."""
    legs = _read_legs(engine, tenant, start, end)
    return call_frame(legs), extension_legs(legs)


@dataclass(frozen=True)
class DayResult:
    """One computed tenant-day.

    Attributes:
        day: The local day.
        stored: What was written.
        calls: The day's call frame (for the fraud rules).
    """

    day: date
    stored: StoredDay
    calls: pd.DataFrame


def compute_days(
    engine: sa.Engine, tenant: TenantSettings, days: list[date], *, now: datetime
) -> list[DayResult]:
    """Recompute and store the insights of ``days`` (read in one pass), oldest first."""
    if not days:
        return []
    ctx = context(engine, tenant)
    ordered = sorted(set(days))
    first, _ = day_span(ordered[0] - timedelta(days=ctx.settings.repeat_days - 1), tenant.timezone)
    _, last = day_span(ordered[-1], tenant.timezone)
    through = latest_run_id(engine)  # before reading: a load racing this read makes the day stale
    calls, ext_legs = read_calls(
        engine, tenant.name, first, last + timedelta(hours=ctx.settings.callback_window_hours)
    )
    results = []
    for day in ordered:
        span = day_span(day, tenant.timezone)
        stored = compute_day(
            day,
            window_calls=calls,
            ext_legs=ext_legs,
            day_span=span,
            timezone=tenant.timezone,
            home_region=tenant.region,
            settings=ctx.settings,
        )
        stored.kpis["through_run_id"] = through
        store_day(engine, tenant.name, day, stored, now=now)
        in_day = (calls["started_at"] >= pd.Timestamp(span[0])) & (
            calls["started_at"] < pd.Timestamp(span[1])
        )
        results.append(DayResult(day, stored, calls[in_day]))
    return results


def days_to_compute(engine: sa.Engine, tenant: TenantSettings, *, now: datetime) -> list[date]:
    """The closed days a scheduled run computes: days never computed or changed by late legs (within
    :data:`STALE_CHECK_DAYS`), each with the day before it (whose callback worklist looks ahead)."""
    last = latest_closed_day(tenant, now)
    candidates = [last - timedelta(days=n) for n in range(STALE_CHECK_DAYS)]
    stale = stale_days(engine, tenant.name, [(d, *day_span(d, tenant.timezone)) for d in candidates])
    earliest = candidates[-1]
    return sorted({*stale, *(d - timedelta(days=1) for d in stale if d > earliest)})


def baseline(engine: sa.Engine, tenant: str, day: date, settings: InsightSettings) -> fraud.Baseline:
    """The tenant's stored history of the ``baseline_days`` before ``day``."""
    first, last = day - timedelta(days=settings.baseline_days), day - timedelta(days=1)
    rows = [row for row in read_daily_kpis(engine, tenant, first, last) if row["calls"] > 0]
    countries = {row["key"] for row in read_breakdowns(engine, tenant, first, last, "country")}
    return fraud.Baseline(
        days=len(rows),
        after_hours=[(row["day"], int(row["after_hours_external"])) for row in rows],
        outbound_peaks=[int(row["peak_concurrent_outbound"]) for row in rows],
        countries=frozenset(countries),
    )


def evaluate_day(
    engine: sa.Engine, tenant: TenantSettings, result: DayResult, *, now: datetime
) -> list[dict[str, Any]]:
    """All fraud rules for a computed day; returns the alerts that are new."""
    ctx = context(engine, tenant)
    base = baseline(engine, tenant.name, result.day, ctx.settings)
    peak = int(result.stored.kpis["peak_concurrent_outbound"])
    return upsert_alerts(engine, fraud.daily_rules(ctx, result.day, result.calls, peak, base), now=now)


def check_after_poll(engine: sa.Engine, tenant: TenantSettings, *, now: datetime) -> list[dict[str, Any]]:
    """The cheap fraud rules over the tenant's outgoing calls of the last few rule windows; returns
    the alerts that are new.

    Windowed rules resume after their latest stored window of each subject, so they find the same
    windows a search over the whole day would; per-call rules key their alerts by the local day
    (the daily run completes their counts).
    """
    ctx = context(engine, tenant)
    s = ctx.settings
    reach = max(
        timedelta(minutes=s.velocity_window_min),
        timedelta(minutes=s.burst_window_min),
        timedelta(seconds=s.sequential_window_s),
    )
    start = now - POLL_LOOKBACK_WINDOWS * reach
    resume = latest_window_ends(engine, tenant.name, fraud.WINDOWED_RULES, start)
    # Only outgoing calls matter to the poll rules: the read stays small on a busy day.
    legs = _read_legs(engine, tenant.name, start, now + timedelta(seconds=1), OUTGOING)
    return upsert_alerts(engine, fraud.poll_rules(replace(ctx, resume=resume), outgoing_frame(legs)), now=now)
