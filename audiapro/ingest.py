"""One window of CDRs from a source into the warehouse: fetch -> check -> normalize -> load.

Plain functions shared by the poll, backfill and reconcile flows (and testable without Prefect). A
window is fetched completely (its size bounded by the caller, who splits windows that hold too many
legs), its time zone checked against the PBX's own epochs, then loaded in one transaction together
with its ``ingest_runs`` row, its quarantined entries and, for the live poll only, the cursor.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

from audiapro.cdr.normalize import NormalizeContext, NormalizedBatch, normalize_legs, raw_text
from audiapro.cdr.readers.common import reject_record
from audiapro.cdr.zonecheck import verify_zone
from audiapro.errors import describe_error
from audiapro.tenants import TenantSettings
from audiapro.ucm.records import CdrPage, WindowLegs, collect_pages
from audiapro.warehouse import (
    CommitHook,
    LoadResult,
    RunInfo,
    commit_unchanged_window,
    load_batch,
    record_failure,
)

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

    from audiapro.warehouse import PreparedLegs

log = logging.getLogger("audiapro.ingest")

#: Source name stored with legs and rejects that came from the PBX API.
API_SOURCE = "api"
#: A poll piece with at most this many legs is first compared with the warehouse as fetched (one
#: query), and committed without normalizing when every leg is stored unchanged: the lookback of an
#: idle tenant re-reads a few stored legs every tick, and normalizing them cost ~20 ms of CPU each
#: time whether 2 or 20. A fuller piece (a busy tenant catching up) has new legs anyway.
UNCHANGED_CHECK_MAX_LEGS: Final = 500
#: Stored legs are looked for among those starting this close to the piece's window (the PBX selects
#: legs by local start; a DST fold shifts a wall-clock time by an hour). A leg outside is merely not
#: found: the piece is then loaded as usual.
UNCHANGED_START_MARGIN: Final = timedelta(hours=2)


class CdrSource(Protocol):
    """Anything that pages through the raw legs of a UTC window (the UCM client, a fake in tests)."""

    def iter_cdr_pages(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> Iterator[CdrPage]:
        """Yield the window's cdrapi pages (``time_filter``: ``Start`` (default) or ``End``)."""
        ...


#: Fields a summary row shows first when it has them: whose and what kind of load it was.
ROW_LEAD: Final = ("tenant", "kind")


@dataclass(frozen=True)
class LoadedSpan:
    """What loading a span of time did: the fields every load summary (piece, tick, backfill
    window) shares. Small and serializable: what tasks return and artifacts show.

    Attributes:
        window_start, window_end: The span loaded (UTC, ISO), ``""`` when nothing was.
        fetched, inserted, updated, unchanged, rejected: Leg counts (see ``LoadResult``).
        seconds: Wall time.
    """

    window_start: str
    window_end: str
    fetched: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    seconds: float

    def as_row(self) -> dict[str, object]:
        """A flat dict for table artifacts and CLI output (``ROW_LEAD`` fields first)."""
        row: dict[str, object] = asdict(self)
        lead: dict[str, object] = {name: row.pop(name) for name in ROW_LEAD if name in row}
        return lead | row


@dataclass(frozen=True)
class WindowSummary(LoadedSpan):
    """The outcome of one loaded window or piece: whose, which kind of run, its ``ingest_runs`` id."""

    tenant: str
    kind: str
    run_id: int


def fetch_window(
    source: CdrSource,
    start: datetime,
    end: datetime,
    *,
    time_filter: str | None = None,
    max_legs: int | None = None,
) -> WindowLegs:
    """Every leg (and malformed entry) of a window, de-duplicated by AcctId.

    Raises:
        UcmPageCapExceeded: The window holds more than ``max_legs`` legs (or the client's page cap);
            split it.
    """
    return collect_pages(source.iter_cdr_pages(start, end, time_filter=time_filter), max_legs=max_legs)


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
    time_filter: str | None = None,
) -> WindowSummary:
    """Fetch one window completely, check, normalize and load it in one transaction.

    Args:
        source: Where the legs come from.
        engine: Warehouse engine.
        tenant: Tenant settings.
        start: Window start (UTC, inclusive).
        end: Window end (UTC, inclusive).
        kind: ``poll``, ``sweep``, ``backfill`` or ``reconcile`` (recorded on the ingest run).
        advance_cursor: True for the live poll: the cursor moves to ``end`` in the load transaction.
        flow_run_id: Prefect flow run id, recorded on the ingest run for lineage.
        on_commit: Runs inside the load transaction (a backfill marks its window done there).
        time_filter: cdrapi ``timeFilterType`` (``Start`` by default; the long-call sweep uses ``End``).

    Returns:
        Counts for the window.

    Raises:
        ZoneMismatchError: The PBX's epochs contradict the tenant's zone; nothing is written.
        Exception: Whatever the source raised. Nothing is written for a failed window; callers
            record the failure once per tick with :func:`record_tick_failure` (after retries).
    """
    began = time.monotonic()
    window = fetch_window(source, start, end, time_filter=time_filter)
    return load_window(
        engine,
        tenant,
        window,
        start,
        end,
        kind=kind,
        cursor=end if advance_cursor else None,
        flow_run_id=flow_run_id,
        on_commit=on_commit,
        began=began,
    )


def load_window(
    engine: sa.Engine,
    tenant: TenantSettings,
    window: WindowLegs,
    start: datetime,
    end: datetime,
    *,
    kind: str,
    cursor: datetime | None = None,
    flow_run_id: str | None = None,
    on_commit: CommitHook | None = None,
    began: float | None = None,
) -> WindowSummary:
    """Check and load a fetched window: legs, malformed entries (quarantined) and the cursor.

    The zone check comes first: a tenant whose zone contradicts the PBX's epochs loads nothing and
    moves no cursor (every leg would be stored hours off).

    Raises:
        ZoneMismatchError: See :func:`audiapro.cdr.zonecheck.verify_zone`.
    """
    began = time.monotonic() if began is None else began
    run = window_run(kind, start, end, flow_run_id, fetched=len(window.legs))
    if cursor is not None and on_commit is None:
        unchanged = _commit_if_unchanged(engine, tenant, window, start, end, run=run, cursor=cursor)
        if unchanged is not None:
            return summarize(tenant.name, run, unchanged, time.monotonic() - began)
    batch = normalize_window(tenant, window)
    result = load_normalized(engine, tenant.name, batch.legs, batch.rejects, run=run, cursor=cursor,
                             on_commit=on_commit)  # fmt: skip
    return summarize(tenant.name, run, result, time.monotonic() - began)


def _commit_if_unchanged(
    engine: sa.Engine,
    tenant: TenantSettings,
    window: WindowLegs,
    start: datetime,
    end: datetime,
    *,
    run: RunInfo,
    cursor: datetime,
) -> LoadResult | None:
    """Commit a poll piece whose every leg is stored exactly as fetched (run row and cursor only).

    An empty piece (a quiet PBX) is committed the same way, without a comparison. The zone is
    checked as for any load. ``None`` (nothing written) when the piece holds a malformed entry or
    more than ``UNCHANGED_CHECK_MAX_LEGS`` legs, or any leg is new or changed.
    """
    legs = window.legs
    if window.malformed or len(legs) > UNCHANGED_CHECK_MAX_LEGS:
        return None
    verify_zone(legs, tenant.timezone, tenant=tenant.name)
    between = (start - UNCHANGED_START_MARGIN, end + UNCHANGED_START_MARGIN)
    texts = [raw_text(leg) for leg in legs]
    run_id = commit_unchanged_window(
        engine, tenant=tenant.name, raw_legs=texts, starts_between=between, run=run, cursor=cursor
    )
    if run_id is None:
        return None
    return LoadResult(run_id=run_id, read=len(legs), inserted=0, updated=0, unchanged=len(legs), rejected=0,
                      sessions_touched=0)  # fmt: skip


def normalize_window(
    tenant: TenantSettings, window: WindowLegs, *, first_position: int = 1
) -> NormalizedBatch:
    """Check a fetched window's zone, then normalize its legs and quarantine its malformed entries.

    Args:
        tenant: Tenant settings (zone, region).
        window: The fetched legs and malformed entries.
        first_position: Position of the first leg in its window (a backfill loads a window in
            pieces: later pieces go on numbering where the one before stopped).

    Raises:
        ZoneMismatchError: See :func:`audiapro.cdr.zonecheck.verify_zone`.
    """
    verify_zone(window.legs, tenant.timezone, tenant=tenant.name)
    if not window.legs and not window.malformed:
        return empty_batch()
    raw, positions, texts = _with_malformed(window, first_position, tenant=tenant.name)
    return normalize_legs(raw, api_context(tenant), positions=positions, raw_json=texts)


def empty_batch() -> NormalizedBatch:
    """What normalizing no legs gives (the same for every tenant), without pandas building it again.

    An idle tenant's window is often empty (a quiet PBX at night): building the empty frames cost
    ~20 ms of CPU per tenant and tick. Copies of one batch built per process, so callers may change
    theirs.
    """
    legs, rejects = _empty_frames()
    return NormalizedBatch(legs.copy(), rejects.copy())


@functools.cache
def _empty_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    batch = normalize_legs([], NormalizeContext(tenant="", timezone="UTC", region="", source=API_SOURCE))
    return batch.legs, batch.rejects


def api_context(tenant: TenantSettings) -> NormalizeContext:
    """How legs from ``tenant``'s PBX API are normalized."""
    return NormalizeContext(
        tenant=tenant.name, timezone=tenant.timezone, region=tenant.region, source=API_SOURCE
    )


def window_run(
    kind: str, start: datetime, end: datetime, flow_run_id: str | None, *, fetched: int
) -> RunInfo:
    """The ``ingest_runs`` metadata of loading (part of) the window ``start``..``end``."""
    run = RunInfo(
        kind=kind,
        window_start=start,
        window_end=end,
        source_ref=f"{start.isoformat()}/{end.isoformat()}",
        flow_run_id=flow_run_id,
    )
    run.fetched = fetched
    return run


def _with_malformed(
    window: WindowLegs, first_position: int = 1, *, tenant: str
) -> tuple[list[Mapping[str, str]], list[int] | None, list[str | None] | None]:
    """The window's legs followed by one reject-marked row per malformed cdrapi entry.

    Legs keep positions ``first_position``.. (their order in the window); a malformed entry's position
    is its 1-based record number on the PBX (page offset + place in the page), and its reason says
    where. The log line names ``tenant`` (its name only: an entry may hold phone numbers).
    """
    if not window.malformed and first_position == 1:
        return list(window.legs), None, None
    raw: list[Mapping[str, str]] = list(window.legs)
    positions = list(range(first_position, first_position + len(raw)))
    texts: list[str | None] = [None] * len(raw)
    for item in window.malformed:
        where = f"cdrapi record {item.record_number}" + (f", {item.path}" if item.path else "")
        row, text = reject_record(f"malformed cdrapi entry ({where}): {item.reason}", item.value)
        raw.append(row)
        positions.append(item.record_number)
        texts.append(text)
    if window.malformed:
        log.warning("tenant %s: %d malformed cdrapi entr(y/ies) quarantined", tenant, len(window.malformed))
    return raw, positions, texts


def load_raw_legs(
    engine: sa.Engine,
    tenant: TenantSettings,
    raw: Sequence[Mapping[str, str]],
    *,
    run: RunInfo,
    source: str,
    cursor: datetime | None = None,
    positions: Sequence[int] | None = None,
    raw_json: Sequence[str | None] | None = None,
    on_commit: CommitHook | None = None,
) -> LoadResult:
    """Normalize raw legs and load them (rejects quarantined) in one transaction."""
    ctx = NormalizeContext(tenant=tenant.name, timezone=tenant.timezone, region=tenant.region, source=source)
    batch = normalize_legs(raw, ctx, positions=positions, raw_json=raw_json)
    return load_normalized(engine, tenant.name, batch.legs, batch.rejects, run=run, cursor=cursor,
                           on_commit=on_commit)  # fmt: skip


def load_normalized(
    engine: sa.Engine,
    tenant: str,
    legs: pd.DataFrame | PreparedLegs,
    rejects: pd.DataFrame,
    *,
    run: RunInfo,
    cursor: datetime | None = None,
    on_commit: CommitHook | None = None,
) -> LoadResult:
    """:func:`load_batch` of normalized legs (or legs prepared from them) and their rejects in one
    transaction; logs how many legs it quarantined."""
    result = load_batch(
        engine,
        tenant=tenant,
        legs=legs,
        rejects=rejects,
        run=run,
        cursor=cursor,
        on_commit=on_commit,
    )
    if result.rejected:
        log.warning("tenant %s: %d legs quarantined in ingest run %d", tenant, result.rejected, result.run_id)
    return result


#: The counts of a window's loaded pieces that add up over the window (a tick, a backfill window).
PIECE_COUNTS: Final = ("fetched", "inserted", "updated", "unchanged", "rejected")  # of LoadedSpan


def piece_totals(loaded: Sequence[WindowSummary]) -> dict[str, int]:
    """``pieces`` and the sums of ``PIECE_COUNTS`` over the pieces of one window, loaded in order."""
    totals = {name: sum(getattr(piece, name) for piece in loaded) for name in PIECE_COUNTS}
    return {"pieces": len(loaded), **totals}


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


def record_tick_failure(engine: sa.Engine, tenant: str, exc: BaseException, *, kind: str = "poll") -> str:
    """Record a failed tick on the tenant's sync state and ingest runs; return the error line."""
    error = describe_error(exc)
    record_failure(engine, tenant=tenant, run=RunInfo(kind=kind), error=error)
    return error
