"""The live poll's tick for one tenant: catch up from the cursor in pieces, sweep for long calls,
notice silence.

::

    cursor --window--> [cursor - lookback, now - safety]
        --pieces (oldest first, halved while one holds too many legs)-->
            fetch --> zone check --> load + cursor (one transaction per piece)
    every sweep_every: legs that ENDED in the last sweep_span --> load (no cursor)
    empty window where earlier weeks had calls --> one more "empty tick" (silent after N)

A normal tick is one piece. After an outage, a paused tenant or a busy PBX's first tick, the window
can hold more than one piece should: the tick then loads at most ``max_pieces`` pieces, committing
the cursor after each, and the next tick continues from there. Memory stays bounded by one piece.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from audiapro import settings
from audiapro.ingest import CdrSource, LoadedSpan, WindowSummary, load_window, piece_totals
from audiapro.tenants import TenantSettings
from audiapro.warehouse import note_sweep, note_traffic, read_sync_state, weeks_with_traffic
from audiapro.windows import Window, fetch_pieces

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("audiapro.poll")

#: cdrapi ``timeFilterType`` of the long-call sweep: legs whose END lies in the span.
SWEEP_FILTER = "End"


@dataclass(frozen=True)
class TickSummary(LoadedSpan):
    """Small, serializable outcome of one tenant's tick (what the task returns and artifacts show).

    Attributes:
        tenant: Tenant name.
        window_start: Start of the first piece loaded (UTC, ISO), ``""`` when none was.
        window_end: End of the last piece loaded: the cursor after this tick.
        pieces: Pieces loaded (1 normally; more while catching up).
        fetched, inserted, updated, unchanged, rejected: Counts over the pieces.
        seconds: Wall time of the tick.
        run_id: The last piece's ``ingest_runs`` id.
        behind_seconds: How far the cursor still is from ``now - safety`` (0 when caught up).
        swept: Legs the long-call sweep read (``-1``: no sweep this tick).
        empty_ticks: Unexpectedly empty windows in a row (see ``audiapro.warehouse.note_traffic``).
        silent: ``empty_ticks`` reached the tenant's ``silent_ticks``.
    """

    tenant: str
    pieces: int
    run_id: int
    behind_seconds: int
    swept: int
    empty_ticks: int
    silent: bool


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


def plan_pieces(start: datetime, end: datetime, span: timedelta) -> list[Window]:
    """Contiguous windows of at most ``span`` covering ``[start, end]``, oldest first."""
    bounds = [start]
    while bounds[-1] < end:
        bounds.append(min(bounds[-1] + span, end))
    return [Window(a, b) for a, b in itertools.pairwise(bounds)]


def poll_tenant(
    source: CdrSource,
    engine: sa.Engine,
    tenant: TenantSettings,
    *,
    now: datetime | None = None,
    flow_run_id: str | None = None,
    piece_span: timedelta = timedelta(seconds=settings.POLL_PIECE_SECONDS),
    max_pieces: int = settings.POLL_MAX_PIECES_PER_TICK,
    max_legs: int = settings.POLL_PIECE_MAX_LEGS,
) -> TickSummary:
    """One live-poll tick for one tenant.

    Args:
        source: The tenant's API client.
        engine: Warehouse engine.
        tenant: Tenant settings.
        now: Current UTC time (tests pin it).
        flow_run_id: Recorded on the ingest runs.
        piece_span: Longest piece of a window being caught up.
        max_pieces: Pieces loaded per tick at most.
        max_legs: Most legs one piece holds in memory; fuller pieces are halved.

    Returns:
        The tick's counts.

    Raises:
        ZoneMismatchError: The PBX's epochs contradict the tenant's zone (pieces before the one
            that showed it stay loaded; normally that is the first, so nothing is).
        Exception: Whatever fetching raised; pieces loaded before stay loaded with their cursor.
    """
    began = time.monotonic()
    now = now or datetime.now(UTC)
    state = read_sync_state(engine, tenant.name)
    start, end = poll_window(now, state.cursor_at if state else None, tenant)
    loaded: list[WindowSummary] = []
    for planned in plan_pieces(start, end, piece_span):
        for piece, legs in fetch_pieces(source, planned, max_legs=max_legs):
            if len(loaded) >= max_pieces:
                break  # halves come oldest first: the cursor stays contiguous
            loaded.append(
                load_window(
                    engine,
                    tenant,
                    legs,
                    piece.start,
                    piece.end,
                    kind="poll",
                    cursor=piece.end,
                    flow_run_id=flow_run_id,
                )
            )
        if len(loaded) >= max_pieces:
            break
    reached = datetime.fromisoformat(loaded[-1].window_end) if loaded else start
    behind = max(0, int((end - reached).total_seconds()))
    if behind:
        log.warning(
            "tenant %s: catching up after a backlog, %d piece(s) loaded this tick, %.1f h still behind",
            tenant.name, len(loaded), behind / 3600,
        )  # fmt: skip
    swept = -1
    if state is None or state.cursor_at is None:
        # A first tick reads its whole initial history by start time; what began before it is a
        # backfill's job, so there is nothing for a sweep to add yet: the first is due in an hour.
        note_sweep(engine, tenant=tenant.name, at=now)
    elif not behind and _sweep_due(tenant, state.last_sweep_at, now):
        last_sweep = state.last_sweep_at if state else None
        swept = sweep_long_calls(
            source, engine, tenant, now=now, since=last_sweep, flow_run_id=flow_run_id, max_legs=max_legs
        )
    totals = piece_totals(loaded)
    empty_ticks = _note_traffic(engine, tenant, start, end, fetched=totals["fetched"], now=now)
    return TickSummary(
        tenant=tenant.name,
        window_start=loaded[0].window_start if loaded else "",
        window_end=loaded[-1].window_end if loaded else "",
        **totals,
        seconds=round(time.monotonic() - began, 3),
        run_id=loaded[-1].run_id if loaded else 0,
        behind_seconds=behind,
        swept=swept,
        empty_ticks=empty_ticks,
        silent=empty_ticks >= tenant.silent_ticks,
    )


def sweep_long_calls(
    source: CdrSource,
    engine: sa.Engine,
    tenant: TenantSettings,
    *,
    now: datetime,
    since: datetime | None = None,
    flow_run_id: str | None = None,
    piece_span: timedelta = timedelta(seconds=settings.POLL_PIECE_SECONDS),
    max_legs: int = settings.POLL_PIECE_MAX_LEGS,
) -> int:
    """Re-read the legs that ended in the last ``sweep_span`` and load them (idempotently).

    The PBX filters cdrapi on a leg's start by default but writes the CDR when the leg ends, so a
    call longer than the lookback was never inside a poll window when it appeared. Filtering on the
    END time finds it; everything else in the span is already stored and merges as unchanged. The
    cursor is not touched; the sweep's time is recorded once every piece is loaded.

    Args:
        since: When the previous sweep ran. After an outage longer than the span the sweep reaches
            back to it, so the END times it covers stay contiguous from sweep to sweep.

    Returns:
        Legs read.
    """
    safety = timedelta(seconds=tenant.safety_seconds)
    start = now - timedelta(seconds=tenant.sweep_span_seconds)
    if since is not None:
        start = min(start, since - 2 * safety)  # the previous sweep ended at since - safety
    end = now - safety
    read = new = 0
    for planned in plan_pieces(start, end, piece_span):
        for piece, legs in fetch_pieces(source, planned, time_filter=SWEEP_FILTER, max_legs=max_legs):
            summary = load_window(
                engine, tenant, legs, piece.start, piece.end, kind="sweep", flow_run_id=flow_run_id
            )
            read += summary.fetched
            new += summary.inserted + summary.updated
    note_sweep(engine, tenant=tenant.name, at=now)
    if new:
        log.warning(
            "tenant %s: the long-call sweep found %d leg(s) the poll windows had missed", tenant.name, new
        )
    return read


def _sweep_due(tenant: TenantSettings, last: datetime | None, now: datetime) -> bool:
    if tenant.sweep_span_seconds <= 0:
        return False
    return last is None or now - last >= timedelta(seconds=tenant.sweep_every_seconds)


def _note_traffic(
    engine: sa.Engine, tenant: TenantSettings, start: datetime, end: datetime, *, fetched: int, now: datetime
) -> int:
    """Count the window towards the tenant's silence: empty where earlier weeks had calls."""
    if fetched:
        return note_traffic(engine, tenant.name, unexpected_empty=None, now=now)
    busy_weeks = weeks_with_traffic(engine, tenant.name, start, end, weeks=settings.TRAFFIC_HISTORY_WEEKS)
    unexpected = busy_weeks >= settings.TRAFFIC_EXPECTED_WEEKS
    count = note_traffic(engine, tenant.name, unexpected_empty=unexpected, now=now)
    if unexpected:
        log.warning(
            "tenant %s: no calls in %s .. %s UTC although %d of the last %d weeks had calls then "
            "(%d such window(s) in a row)",
            tenant.name, f"{start:%m-%d %H:%M}", f"{end:%m-%d %H:%M}", busy_weeks,
            settings.TRAFFIC_HISTORY_WEEKS, count,
        )  # fmt: skip
    else:
        log.info("tenant %s: no calls in this window (usual at this time of the week)", tenant.name)
    return count
