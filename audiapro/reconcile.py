"""Completeness, measured: is every leg the PBX has for a local day stored in the warehouse?

::

    closed PBX-local day --one paged cdrapi read (timeFilterType=Start, the day's UTC bounds)-->
        raw legs --leg keys (the normalizer's own key code, no normalization)-->
        compare with the keys stored for the day (cdr_legs.start_local on that day)
        --> load the missing legs (normal load path, under the tenant write lock)
        --> measure again --> reconcile_days (latest result per tenant and day)

A day is **closed** once it ended at least the tenant's ``lookback_seconds + safety_seconds`` ago: the
lookback is the longest call the poll is built for and the safety the PBX's write delay, so every leg
that started that day has ended and been written by then, and the PBX's answer no longer changes.

Completeness is ``|stored ∩ PBX| / (|PBX| + unreadable legs)``, measured after loading; a day without
legs is complete. Legs stored for the day that the PBX does not have (*phantoms*) are counted and
reported, never deleted: the warehouse keeps what it was once given.

**Malformed cdrapi entries.** An entry that stands where a leg should be (a ``sub_cdr_N`` slot that is
not an object, or a top-level item that is neither an object nor empty) is a leg the PBX has and we
cannot read: it counts against completeness (``malformed_legs``). Entries that hold no leg (an empty
item, a grouped call with only its synthetic ``main_cdr``) are counted (``malformed``) but do not.

**Identical legs.** Legs equal in every key field are numbered ``#2``, ``#3`` in AcctId order within
a load. When only some legs are missing, every PBX leg of the day sharing a missing leg's digest is
loaded with it, so the numbers the load gives are the numbers of the whole day.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol
from zoneinfo import ZoneInfo

from audiapro.backfill import to_instant
from audiapro.cdr.keys import base_key, raw_leg_keys
from audiapro.cdr.zonecheck import verify_zone
from audiapro.ingest import load_raw_legs
from audiapro.tenants import TenantSettings
from audiapro.ucm.records import CdrPage, MalformedItem, RawLeg, collect_pages
from audiapro.warehouse import (
    DEFAULT_LOCK_TIMEOUT_S,
    DayReconciliation,
    LoadResult,
    RunInfo,
    record_reconcile_day,
    stored_day_keys,
    tenant_write_lock,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("audiapro.reconcile")

#: ``ingest_runs.kind`` of the loads a reconciliation makes.
RUN_KIND: Final = "reconcile"
#: Completeness of a day with every leg stored.
COMPLETE: Final = 1.0
#: Days a reconcile run looks back by default; the flow's most a run may ask for.
DEFAULT_DAYS_BACK: Final = 3
MAX_DAYS_BACK: Final = 31
_SECOND: Final = timedelta(seconds=1)


class DayNotClosedError(ValueError):
    """The day has not ended long enough ago for every call of it to be written."""


class CdrPageSource(Protocol):
    """What a reconciliation reads: cdrapi pages of a UTC window (``UcmClient`` or a fake)."""

    def iter_cdr_pages(self, start_utc: datetime, end_utc: datetime) -> Iterable[CdrPage]:
        """Every page of the window (``timeFilterType=Start``)."""
        ...


@dataclass(frozen=True)
class PbxDay:
    """A local day as the PBX has it.

    Attributes:
        legs: Legs that started on the day, de-duplicated by AcctId, in PBX order.
        keys: Their leg keys (numbered within the day).
        malformed: Entries that could not be read as legs.
        malformed_legs: Those of them that stand where a leg should be.
    """

    legs: list[RawLeg]
    keys: list[str]
    malformed: int
    malformed_legs: int


# --- which days ---------------------------------------------------------------------------------


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants of a local day's first and last whole second (23 or 25 hours across DST).

    The PBX filters inclusively at both ends, so the day ends one second before the next local
    midnight: a leg starting exactly at midnight belongs to the next day's read only.
    """
    zone = ZoneInfo(timezone)
    return to_instant(day, zone), to_instant(day, zone, is_end=True) - _SECOND


def closes_at(tenant: TenantSettings, day: date) -> datetime:
    """When ``day`` is closed: its end plus the tenant's lookback and safety (see the module doc)."""
    end = to_instant(day, ZoneInfo(tenant.timezone), is_end=True)
    return end + timedelta(seconds=tenant.lookback_seconds + tenant.safety_seconds)


def require_closed(tenant: TenantSettings, day: date, now: datetime) -> None:
    """Refuse a day that is not closed at ``now``.

    Raises:
        DayNotClosedError: With a one-line message saying when it closes.
    """
    closed = closes_at(tenant, day)
    if closed > now:
        raise DayNotClosedError(
            f"day {day} of tenant {tenant.name} is not closed before {closed:%Y-%m-%d %H:%M} UTC "
            f"(its end plus lookback {tenant.lookback_seconds} s and safety {tenant.safety_seconds} s)"
        )


def latest_closed_day(tenant: TenantSettings, now: datetime) -> date:
    """The most recent local day of the tenant that is closed at ``now``."""
    day = now.astimezone(ZoneInfo(tenant.timezone)).date()
    while closes_at(tenant, day) > now:
        day -= timedelta(days=1)
    return day


def recent_closed_days(tenant: TenantSettings, now: datetime, days_back: int) -> list[date]:
    """The ``days_back`` most recent closed local days, oldest first."""
    if days_back < 1:
        raise ValueError(f"days_back must be at least 1, got {days_back}")
    last = latest_closed_day(tenant, now)
    return [last - timedelta(days=k) for k in range(days_back - 1, -1, -1)]


def days_to_check(
    tenant: TenantSettings, now: datetime, days_back: int, completeness: dict[date, float]
) -> list[date]:
    """Closed days of the last ``days_back`` that are not known complete, and always the latest one.

    Args:
        tenant: Tenant settings.
        now: Current time (UTC).
        days_back: How many closed days to consider.
        completeness: Stored completeness of already reconciled days.
    """
    days = recent_closed_days(tenant, now, days_back)
    return [d for d in days if d == days[-1] or completeness.get(d, 0.0) < COMPLETE]


# --- reading the PBX ------------------------------------------------------------------------------


def holds_leg(item: MalformedItem) -> bool:
    """Whether a malformed cdrapi entry stands where a leg should be (see the module docstring)."""
    if item.path:  # a sub_cdr_N slot: always a leg of a grouped call
        return True
    if isinstance(item.value, dict):  # a grouped call without sub_cdr: only the synthetic main_cdr
        return False
    return item.value not in (None, "", [], {})


def read_pbx_day(source: CdrPageSource, tenant: TenantSettings, day: date) -> PbxDay:
    """Read one local day from the PBX (one paged read) and key its legs.

    Legs seen on an earlier page (same AcctId) are dropped, as ``UcmClient.fetch_cdrs`` does. Legs
    whose start parses to another day are left out (the PBX filtered on another reading of it).

    Raises:
        ZoneMismatchError: The PBX's epochs contradict the tenant's zone: the day's bounds (and any
            leg loaded) would be hours off.
    """
    start, end = day_bounds(day, tenant.timezone)
    window = collect_pages(source.iter_cdr_pages(start, end))
    legs = window.legs
    verify_zone(legs, tenant.timezone, tenant=tenant.name)
    malformed = len(window.malformed)
    malformed_legs = sum(holds_leg(item) for item in window.malformed)
    keyed = raw_leg_keys(legs)
    prefix = f"{day.isoformat()} "
    # An unparseable start stays: the PBX placed the leg on this day, and its load quarantines it.
    on_day = [i for i, local in enumerate(keyed.starts) if not local or local.startswith(prefix)]
    if len(on_day) < len(legs):
        other = len(legs) - len(on_day)
        log.info("tenant %s day %s: %d legs of other days left out", tenant.name, day, other)
    return PbxDay(
        legs=[legs[i] for i in on_day],
        keys=[keyed.keys[i] for i in on_day],
        malformed=malformed,
        malformed_legs=malformed_legs,
    )


def legs_to_load(keys: Sequence[str], missing: set[str]) -> list[int]:
    """Positions of the legs to load for ``missing`` keys: every leg sharing a missing leg's digest.

    Loading all identical legs together keeps their ``#n`` numbers those of the whole day.
    """
    digests = {base_key(key) for key in missing}
    return [i for i, key in enumerate(keys) if base_key(key) in digests]


# --- one day --------------------------------------------------------------------------------------


def reconcile_day(
    source: CdrPageSource,
    engine: sa.Engine,
    tenant: TenantSettings,
    day: date,
    *,
    now: datetime,
    flow_run_id: str | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> DayReconciliation:
    """Measure one closed local day against the PBX, load what is missing, store the result.

    The PBX is read outside the tenant lock (the slow part, writes nothing); comparing, loading and
    measuring run under it, so a poll or backfill loading the same day cannot skew the counts.

    Args:
        source: The tenant's API client.
        engine: Warehouse engine.
        tenant: Tenant settings.
        day: The PBX-local day.
        now: Current time (UTC); the day must be closed at it.
        flow_run_id: Recorded on the result and on the load's ingest run.
        lock_timeout_s: How long to wait for the tenant lock.

    Returns:
        The day's result, as stored in ``reconcile_days``.

    Raises:
        DayNotClosedError: The day is not closed yet at ``now``.
        TenantBusyError: The tenant lock stayed taken.
    """
    require_closed(tenant, day, now)
    began = time.monotonic()
    pbx = read_pbx_day(source, tenant, day)
    start, end = day_bounds(day, tenant.timezone)
    pbx_keys = set(pbx.keys)
    with tenant_write_lock(engine, tenant.name, timeout_s=lock_timeout_s):
        stored = set(stored_day_keys(engine, tenant.name, day, start, end))
        missing = pbx_keys - stored
        loaded = _load_missing(engine, tenant, pbx, missing, day, flow_run_id) if missing else None
        after = stored if loaded is None else set(stored_day_keys(engine, tenant.name, day, start, end))
        matched = len(pbx_keys & after)
        expected = len(pbx_keys) + pbx.malformed_legs
        result = DayReconciliation(
            tenant=tenant.name,
            day=day,
            pbx_legs=len(pbx_keys),
            malformed=pbx.malformed,
            malformed_legs=pbx.malformed_legs,
            stored_legs=len(stored),
            missing_before=len(missing),
            loaded_now=0 if loaded is None else loaded.inserted,
            rejected=0 if loaded is None else loaded.rejected + loaded.rejected_known,
            phantom_legs=len(after - pbx_keys),
            matched_legs=matched,
            completeness=matched / expected if expected else COMPLETE,
            checked_at=now.astimezone(UTC),
            flow_run_id=flow_run_id,
            ingest_run_id=None if loaded is None else loaded.run_id,
        )
        record_reconcile_day(engine, result)
    log.info(
        "tenant %s day %s: %d PBX legs, %d stored before, %d missing, %d loaded, %d phantom, %.2f %% "
        "complete (%.1f s)",
        tenant.name, day, result.pbx_legs, result.stored_legs, result.missing_before, result.loaded_now,
        result.phantom_legs, result.completeness * 100, time.monotonic() - began,
    )  # fmt: skip
    return result


def _load_missing(
    engine: sa.Engine,
    tenant: TenantSettings,
    pbx: PbxDay,
    missing: set[str],
    day: date,
    flow_run_id: str | None,
) -> LoadResult:
    """Load the PBX legs behind ``missing`` (with their identical siblings) through the normal load path."""
    positions = legs_to_load(pbx.keys, missing)
    start, end = day_bounds(day, tenant.timezone)
    run = RunInfo(
        kind=RUN_KIND,
        window_start=start,
        window_end=end,
        source_ref=f"reconcile {day.isoformat()}",
        flow_run_id=flow_run_id,
        fetched=len(positions),
    )
    return load_raw_legs(
        engine,
        tenant,
        [pbx.legs[i] for i in positions],
        run=run,
        source="api",
        positions=[i + 1 for i in positions],  # the leg's place in the day's read, for rejected rows
    )
