"""One window of CDRs from a source into the warehouse: fetch -> normalize -> load (+ cursor).

Plain functions shared by the poll and backfill flows (and testable without Prefect). A window is
fetched completely before anything is written, then loaded in one transaction together with its
``ingest_runs`` row and, for the live poll only, the tenant's cursor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from audiapro import settings
from audiapro.cdr.normalize import NormalizeContext, normalize_legs
from audiapro.tenants import TenantSettings
from audiapro.warehouse import (
    CommitHook,
    LoadResult,
    RunInfo,
    load_batch,
    read_sync_state,
    record_failure,
)

log = logging.getLogger("audiapro.ingest")


class CdrSource(Protocol):
    """Anything that returns the raw legs of a UTC window (the UCM client, a fake in tests)."""

    def fetch_cdrs(self, start_utc: datetime, end_utc: datetime) -> list[dict[str, str]]:
        """Return every leg in the window as raw string dicts."""
        ...


@dataclass(frozen=True)
class WindowSummary:
    """Small, serializable outcome of one window (what tasks return and artifacts show)."""

    tenant: str
    kind: str
    window_start: str
    window_end: str
    fetched: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    seconds: float
    run_id: int

    def as_row(self) -> dict[str, object]:
        """A flat dict for table artifacts."""
        return asdict(self)


def poll_window(now: datetime, cursor: datetime | None, tenant: TenantSettings) -> tuple[datetime, datetime]:
    """The live poll's next window: ``[cursor - lookback, now - safety]``.

    Each tick reads the cursor from the warehouse, so late, skipped or cancelled ticks lose nothing.
    A new tenant starts ``DEFAULT_INITIAL_HISTORY_SECONDS`` back; older history is a backfill's job.

    Args:
        now: Current UTC time.
        cursor: The tenant's committed watermark, or None for a new tenant.
        tenant: Tenant settings.

    Returns:
        ``(start, end)`` in UTC; ``start < end``.
    """
    end = now - timedelta(seconds=tenant.safety_seconds)
    base = cursor if cursor is not None else end - timedelta(seconds=settings.DEFAULT_INITIAL_HISTORY_SECONDS)
    start = min(base, end) - timedelta(seconds=tenant.lookback_seconds)
    return start, end


def ingest_window(
    source: CdrSource,
    engine: sa.Engine,
    tenant: TenantSettings,
    start: datetime,
    end: datetime,
    *,
    kind: str,
    advance_cursor: bool,
    flow_run_id: str | None = None,
    on_commit: CommitHook | None = None,
) -> WindowSummary:
    """Fetch one window completely, normalize it and load it in one transaction.

    Args:
        source: Where the legs come from.
        engine: Warehouse engine.
        tenant: Tenant settings.
        start: Window start (UTC, inclusive).
        end: Window end (UTC, inclusive).
        kind: ``poll`` or ``backfill`` (recorded on the ingest run).
        advance_cursor: True for the live poll: the cursor moves to ``end`` in the load transaction.
        flow_run_id: Prefect flow run id, recorded on the ingest run for lineage.
        on_commit: Runs inside the load transaction (a backfill marks its window done there).

    Returns:
        Counts for the window.

    Raises:
        Exception: Whatever the source raised. Nothing is written for a failed window; callers
            record the failure once per tick with :func:`record_tick_failure` (after retries).
    """
    began = time.monotonic()
    run = RunInfo(
        kind=kind,
        window_start=start,
        window_end=end,
        source_ref=f"{start.isoformat()}/{end.isoformat()}",
        flow_run_id=flow_run_id,
    )
    raw = source.fetch_cdrs(start, end)
    run.fetched = len(raw)
    result = load_raw_legs(
        engine,
        tenant,
        raw,
        run=run,
        source="api",
        cursor=end if advance_cursor else None,
        on_commit=on_commit,
    )
    return summarize(tenant.name, run, result, time.monotonic() - began)


def load_raw_legs(
    engine: sa.Engine,
    tenant: TenantSettings,
    raw: Sequence[Mapping[str, str]],
    *,
    run: RunInfo,
    source: str,
    cursor: datetime | None = None,
    positions: Sequence[int] | None = None,
    on_commit: CommitHook | None = None,
) -> LoadResult:
    """Normalize raw legs and load them (rejects quarantined) in one transaction."""
    ctx = NormalizeContext(tenant=tenant.name, timezone=tenant.timezone, region=tenant.region, source=source)
    batch = normalize_legs(raw, ctx, positions=positions)
    result = load_batch(
        engine,
        tenant=tenant.name,
        legs=batch.legs,
        rejects=batch.rejects,
        run=run,
        cursor=cursor,
        on_commit=on_commit,
    )
    if result.rejected:
        log.warning(
            "tenant %s: %d legs quarantined in ingest run %d", tenant.name, result.rejected, result.run_id
        )
    return result


def summarize(tenant: str, run: RunInfo, result: LoadResult, seconds: float) -> WindowSummary:
    """Build the small summary of a loaded window."""
    return WindowSummary(
        tenant=tenant,
        kind=run.kind,
        window_start=run.window_start.isoformat() if run.window_start else "",
        window_end=run.window_end.isoformat() if run.window_end else "",
        fetched=run.fetched,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
        rejected=result.rejected,
        seconds=round(seconds, 3),
        run_id=result.run_id,
    )


def poll_tenant(
    source: CdrSource,
    engine: sa.Engine,
    tenant: TenantSettings,
    *,
    now: datetime | None = None,
    flow_run_id: str | None = None,
) -> WindowSummary:
    """One live-poll tick for one tenant: window from the committed cursor, load, move the cursor."""
    state = read_sync_state(engine, tenant.name)
    start, end = poll_window(now or datetime.now(UTC), state.cursor_at if state else None, tenant)
    return ingest_window(
        source, engine, tenant, start, end, kind="poll", advance_cursor=True, flow_run_id=flow_run_id
    )


def record_tick_failure(engine: sa.Engine, tenant: str, exc: BaseException, *, kind: str = "poll") -> str:
    """Record a failed tick on the tenant's sync state and ingest runs; return the error line."""
    error = describe_error(exc)
    record_failure(engine, tenant=tenant, run=RunInfo(kind=kind), error=error)
    return error


def describe_error(exc: BaseException) -> str:
    """A one-line error description for sync state and artifacts.

    The UCM client guarantees that its exception texts carry no secrets; other libraries' messages
    are cut short so that no large payload (which could contain numbers) is stored.
    """
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:300]}"


def is_transient(exc: BaseException) -> bool:
    """Whether retrying later can help: network trouble, throttling, a PBX paging hiccup.

    Authentication and configuration errors are permanent until a human acts: retrying them would
    only walk the PBX towards its login ban.
    """
    from audiapro.ucm import errors

    if isinstance(exc, errors.UcmAuthError | errors.UcmConfigError | errors.UcmTlsError):
        return False
    return isinstance(
        exc,
        errors.UcmTransportError | errors.UcmThrottledError | errors.UcmPagingError | sa.exc.OperationalError,
    )
