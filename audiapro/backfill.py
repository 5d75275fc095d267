"""Backfill: a tenant's history, window by window, through the poll's own fetch -> normalize -> load.

::

    range (local dates/times) --plan--> windows minus time already done
        --per window--> page the PBX in a background thread (split on the page cap)
                        --> load every ~4,000 legs under the tenant write lock, marking a piece
                            of the window done in the transaction of its last legs

A backfill never touches the live poll's cursor (``advance_cursor=False``) and merges with update
semantics like the poll, so it may overlap polled time freely. Completed windows are recorded in
``backfill_windows`` in the transaction that loads their legs: a rerun after a crash plans only the
time not yet covered. Windows that end too recently for every call in them to have finished (later
than ``now - lookback``) are loaded but not recorded, so a rerun reads them again.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import threading
import time as clock
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from audiapro.allocator import pin_mmap_threshold
from audiapro.cdr.readers.prefetch import read_ahead
from audiapro.ingest import (
    CdrSource,
    LoadedSpan,
    WindowSummary,
    load_normalized,
    normalize_window,
    piece_totals,
    summarize,
    window_run,
)
from audiapro.tenants import TenantSettings
from audiapro.ucm.records import WindowLegs
from audiapro.warehouse import (
    DEFAULT_LOCK_TIMEOUT_S,
    CommitHook,
    LoadResult,
    completed_backfill_windows,
    prepare_batch,
    record_backfill_window,
    tenant_write_lock,
)
from audiapro.warehouse.dialect import POSTGRES
from audiapro.windows import MIN_WINDOW, Window, read_in_pieces, whole_second

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

    from audiapro.ucm.records import CdrPage
    from audiapro.warehouse import PreparedLegs

log = logging.getLogger("audiapro.backfill")

#: Most windows of one tenant fetched at once. The PBX serves a handful of API sessions per user and
#: answers more with "operating too frequently" (-45), so more parallelism only adds waiting.
PBX_PARALLEL_LIMIT: Final = 4
DEFAULT_MAX_PARALLEL: Final = 2
DEFAULT_WINDOW: Final = timedelta(days=1)
#: More windows than this is a mistake (a one-minute window over years), not a plan.
MAX_WINDOWS: Final = 20_000
#: cdrapi legs per page the client asks for (``numRecords``; the client's default).
LEGS_PER_PAGE: Final = 1000
#: Requests per window besides its pages: the session's challenge + login, and the empty page
#: that proves a window's end.
REQUESTS_PER_WINDOW: Final = 3
#: Seconds one PBX request takes, a cautious figure for a remote CloudUCM (a page of 1000 legs is
#: about 1 MB of JSON); the estimate says it assumed this.
SECONDS_PER_REQUEST: Final = 1.0
#: Legs loaded per second by one window (docs/benchmarks.md: about 5,000 legs/s on a 2-core host).
LOAD_LEGS_PER_S: Final = 5000.0

#: Legs normalized and loaded per transaction: a window is loaded in pieces of about this many legs
#: while its next pages are fetched, so memory holds a piece, not a window (a 30-day window of a
#: busy tenant is 50,000 legs). Each transaction also costs a run row, a commit and a calls rebuild.
LOAD_PIECE_LEGS: Final = 4000
#: cdrapi pages :func:`backfill_windows` fetches ahead of the load (each about 1 MB of JSON parsed):
#: one load's worth, so the next load's pages arrive while this one runs.
FETCH_AHEAD_PAGES: Final = 4
#: Loads normalized and rendered ahead of the one running (each holds its legs in memory).
PREPARE_AHEAD_LOADS: Final = 1

#: Names of the backfill's two background threads (the PBX pager; normalizing and rendering).
FETCH_THREAD: Final = "backfill-fetch"
PREPARE_THREAD: Final = "backfill-prepare"
#: What ``read_ahead`` (``audiapro.cdr.readers.prefetch``) names its producer threads.
_READ_AHEAD_THREAD: Final = "cdr-read-ahead"

#: Set to stop a running backfill: no new window starts, running ones stop before their next page.
#: One per process: the CLI sets it on Ctrl-C; window tasks run in threads of the same process.
CANCEL: Final = threading.Event()


class BackfillCancelled(Exception):
    """The backfill was asked to stop (:data:`CANCEL`); windows already loaded stay loaded."""

    #: Never retried (``audiapro.errors.is_transient`` reads it): stopping is what was asked.
    transient = False


def count_windows(count: int) -> str:
    """``1 window``, ``3 windows``."""
    return f"{count} window" if count == 1 else f"{count} windows"


def check_request(start: date | datetime, end: date | datetime, window: timedelta, max_parallel: int) -> None:
    """Refuse a request no tenant could run, before anything starts (no zone, no database needed).

    Start and end are compared when both are dates, or both carry (or both lack) an offset; a
    mixed pair is compared by :func:`resolve_range` once the tenant's zone is known.

    Raises:
        ValueError: One line saying what is wrong.
    """
    if window < MIN_WINDOW:
        raise ValueError(f"window {window} is shorter than {MIN_WINDOW}: use 1d, 6h or 30m")
    if not 1 <= max_parallel <= PBX_PARALLEL_LIMIT:
        raise ValueError(
            f"max parallel {max_parallel} is not 1..{PBX_PARALLEL_LIMIT} (the PBX serves few sessions)"
        )
    first, last = _local_bound(start), _local_bound(end, is_end=True)
    if (first.tzinfo is None) == (last.tzinfo is None) and first >= last:
        raise ValueError(f"end {end} is before start {start}: the end is the range's last day or instant")


def _local_bound(value: date | datetime, *, is_end: bool = False) -> datetime:
    """A date as the datetime it stands for in a range (an end date: the next midnight)."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value + timedelta(days=1) if is_end else value, time())


@dataclass(frozen=True)
class BackfillEstimate:
    """What a backfill will cost, told before it starts.

    Attributes:
        windows: Windows to load.
        legs: Legs expected (from the tenant's stored legs per day; 0 when none are stored).
        requests: PBX requests expected.
        seconds: Expected duration.
        basis: How ``legs`` and ``seconds`` were estimated, in words.
    """

    windows: int
    legs: int
    requests: int
    seconds: float
    basis: str


def estimate_backfill(plan: BackfillPlan, legs_per_day: float | None, max_parallel: int) -> BackfillEstimate:
    """Windows, PBX requests and duration of ``plan`` (see :class:`BackfillEstimate`).

    Args:
        plan: The planned windows.
        legs_per_day: The tenant's average stored legs per day, None when nothing is stored yet.
        max_parallel: Windows fetched at once.
    """
    rate = legs_per_day or 0.0
    legs = requests = 0
    for window in plan.windows:
        window_legs = rate * window.span.total_seconds() / 86400
        legs += round(window_legs)
        requests += REQUESTS_PER_WINDOW + math.ceil(window_legs / LEGS_PER_PAGE)
    seconds = requests * SECONDS_PER_REQUEST / max_parallel + legs / LOAD_LEGS_PER_S
    traffic = (
        f"{rate:,.0f} legs a day as stored so far" if legs_per_day else "no calls stored yet: 1 page a window"
    )
    basis = (
        f"{traffic}, {SECONDS_PER_REQUEST:g} s per PBX request, {max_parallel} windows at once, "
        f"{LOAD_LEGS_PER_S:,.0f} legs/s loading"
    )
    return BackfillEstimate(len(plan.windows), legs, requests, seconds, basis)


@dataclass(frozen=True)
class BackfillPlan:
    """What a backfill run will fetch.

    Attributes:
        span: The whole requested range in UTC (its end clamped to ``now - safety``).
        windows: Windows still to fetch, in time order (pieces of planned windows when part of a
            planned window is already done).
        planned: Windows the range splits into.
        skipped: Planned windows already completely done (0 with ``force``).
        settled_until: Windows ending after this instant are loaded but not recorded as done.
    """

    span: Window
    windows: list[Window]
    planned: int
    skipped: int
    settled_until: datetime


@dataclass(frozen=True)
class WindowOutcome(LoadedSpan):
    """Counts of one backfill window over its pieces; ``recorded``: marked done (it was settled)."""

    pieces: int
    recorded: bool


# --- planning -------------------------------------------------------------------------------------


def to_instant(value: date | datetime, zone: ZoneInfo, *, is_end: bool = False) -> datetime:
    """A user's date or datetime as a UTC instant, read in the tenant's zone.

    A date means the start of that local day; as the end of a range it means the end of that day
    (the next local midnight), so ``start=end=2026-03-01`` is the whole day. Naive datetimes are local
    wall-clock times; aware ones keep their offset. Sub-second parts are dropped (the PBX stores
    whole seconds).
    """
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=zone)
        return whole_second(aware.astimezone(UTC))
    day = value + timedelta(days=1) if is_end else value
    return datetime.combine(day, time(), zone).astimezone(UTC)


def resolve_range(start: date | datetime, end: date | datetime, timezone: str) -> Window:
    """The UTC window of a user's ``start``/``end`` in the tenant's ``timezone`` (see :func:`to_instant`).

    Raises:
        ValueError: ``end`` is not after ``start``.
    """
    zone = ZoneInfo(timezone)
    first, last = to_instant(start, zone), to_instant(end, zone, is_end=True)
    if first >= last:
        raise ValueError(f"backfill end {end} must be after start {start}")
    return Window(first, last)


def split_range(span: Window, step: timedelta, timezone: str) -> list[Window]:
    """Split ``span`` into consecutive windows of ``step`` local wall-clock time.

    Steps are taken on the tenant's wall clock, so one-day windows run from local midnight to local
    midnight even across a DST change (those days are 23 or 25 hours long). The windows are
    contiguous (each starts where the previous ends) and cover ``span`` exactly.

    Raises:
        ValueError: ``step`` is shorter than :data:`MIN_WINDOW` or yields over :data:`MAX_WINDOWS`.
    """
    if step < MIN_WINDOW:
        raise ValueError(f"window must be at least {MIN_WINDOW}, got {step}")
    if span.span / step > MAX_WINDOWS:
        raise ValueError(
            f"{span.label()} in windows of {step} is over {MAX_WINDOWS} windows; use larger ones"
        )
    local_start = span.start.astimezone(ZoneInfo(timezone))
    bounds = [span.start]
    k = 1
    while bounds[-1] < span.end:
        # Aware + timedelta is wall-clock arithmetic; astimezone resolves the offset of the result.
        bound = min((local_start + k * step).astimezone(UTC), span.end)
        k += 1
        if bound > bounds[-1]:  # a boundary inside a spring-forward gap can repeat the previous one
            bounds.append(bound)
    return [Window(a, b) for a, b in itertools.pairwise(bounds)]


def merge_intervals(intervals: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Union of closed intervals as sorted, disjoint intervals (touching ones are joined)."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def uncovered(window: Window, done: Sequence[tuple[datetime, datetime]]) -> list[Window]:
    """The parts of ``window`` not covered by ``done`` (sorted, disjoint: from :func:`merge_intervals`)."""
    gaps: list[Window] = []
    cursor = window.start
    first = bisect.bisect_left([end for _, end in done], window.start)
    for start, end in done[first:]:
        if start >= window.end or cursor >= window.end:
            break
        if start > cursor:
            gaps.append(Window(cursor, start))
        cursor = max(cursor, end)
    if cursor < window.end:
        gaps.append(Window(cursor, window.end))
    return gaps


def plan_backfill(
    engine: sa.Engine,
    tenant: TenantSettings,
    start: date | datetime,
    end: date | datetime,
    *,
    window: timedelta = DEFAULT_WINDOW,
    force: bool = False,
    now: datetime | None = None,
) -> BackfillPlan:
    """Split the range into windows and drop the time already done (unless ``force``).

    The range ends at the latest at ``now - safety`` (the PBX's write delay, as for the poll).

    Raises:
        ValueError: The range is empty, lies in the future, or splits into too many windows.
    """
    now = now or datetime.now(UTC)
    requested = resolve_range(start, end, tenant.timezone)
    latest = now - timedelta(seconds=tenant.safety_seconds)
    if requested.start >= latest:
        raise ValueError(f"backfill range {requested.label()} has not happened yet")
    span = Window(requested.start, min(requested.end, latest))
    planned = split_range(span, window, tenant.timezone)
    settled_until = now - timedelta(seconds=tenant.lookback_seconds)
    if force:
        return BackfillPlan(span, planned, len(planned), 0, settled_until)
    done = merge_intervals(completed_backfill_windows(engine, tenant.name, span.start, span.end))
    todo: list[Window] = []
    skipped = 0
    for planned_window in planned:
        gaps = uncovered(planned_window, done)
        skipped += not gaps
        todo.extend(gaps)
    return BackfillPlan(span, todo, len(planned), skipped, settled_until)


# --- one window -----------------------------------------------------------------------------------


def backfill_window(
    source: CdrSource,
    engine: sa.Engine,
    tenant: TenantSettings,
    window: Window,
    *,
    settled_until: datetime,
    flow_run_id: str | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    cancel: threading.Event | None = None,
) -> WindowOutcome:
    """Fetch one window and load it as its pages arrive; record each piece done with its last legs.

    The window is fetched in pieces (the window, or its halves after a page-cap split) and loaded in
    transactions of about :data:`LOAD_PIECE_LEGS` legs while the next pages are fetched (see
    :func:`backfill_windows`). A piece is recorded in ``backfill_windows`` in the transaction that
    loads its last legs, after every earlier transaction of the piece committed: a crash inside a
    piece leaves it unrecorded, so a rerun fetches it again and the merge (update semantics, keyed
    by leg) stores nothing twice and loses nothing.

    Args:
        source: The tenant's API client (or any :class:`CdrSource`).
        engine: Warehouse engine.
        tenant: Tenant settings.
        window: The window to load.
        settled_until: Pieces ending after this are loaded but not recorded done (calls may still be
            running; see the module docstring).
        flow_run_id: Recorded on the ingest runs and window rows.
        lock_timeout_s: How long each load waits for the tenant lock.
        cancel: When set, stop before the next page or load (what was committed stays).

    Returns:
        The window's counts.

    Raises:
        TenantBusyError: The tenant lock stayed taken (legs loaded before stay loaded).
        BackfillCancelled: ``cancel`` was set (legs loaded before stay loaded).
    """
    (outcome,) = backfill_windows(
        source,
        engine,
        tenant,
        [window],
        settled_until=settled_until,
        flow_run_id=flow_run_id,
        lock_timeout_s=lock_timeout_s,
        cancel=cancel,
    )
    return outcome


def backfill_windows(
    source: CdrSource,
    engine: sa.Engine,
    tenant: TenantSettings,
    windows: Sequence[Window],
    *,
    settled_until: datetime,
    flow_run_id: str | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    cancel: threading.Event | None = None,
) -> Iterator[WindowOutcome]:
    """:func:`backfill_window` for each window in turn, the PBX paged in the background.

    One background thread pages the PBX (``source`` is used from that thread only), at most
    :data:`FETCH_AHEAD_PAGES` pages ahead of the load, across window boundaries; the calling thread
    normalizes and loads pieces of about :data:`LOAD_PIECE_LEGS` legs. The fetch's JSON parsing and
    the warehouse's work (psycopg2 releases the GIL while Postgres runs) overlap, and memory holds a
    piece and a few pages, never a whole window.

    Yields:
        Each window's outcome once its last legs are loaded (its ``seconds`` run from the end of
        the previous window's load).

    Raises:
        TenantBusyError: The tenant lock stayed taken (legs loaded before stay loaded).
        BackfillCancelled: ``cancel`` was set (legs loaded before stay loaded).
    """
    if cancel is not None:
        source = _Cancellable(source, cancel)
    pin_mmap_threshold()
    pages = read_ahead(_fetch_steps(source, windows), depth=FETCH_AHEAD_PAGES)
    chunker = _Chunker(tenant, render_copy=engine.dialect.name == POSTGRES)
    loader = _Loader(engine, tenant, settled_until, flow_run_id, lock_timeout_s, cancel)
    with closing(read_ahead(chunker.prepared(pages), depth=PREPARE_AHEAD_LOADS)) as prepared:
        for item in prepared:
            if item.piece is None:
                yield loader.outcome(item.window, item.pieces)
            else:
                loader.load(item)


def _name_producer(name: str) -> None:
    """Name the read-ahead thread this runs in, so profiles and the bench's CPU figures tell the
    backfill's stages apart (a caller's own thread, when nothing reads ahead, keeps its name)."""
    thread = threading.current_thread()
    if thread.name == _READ_AHEAD_THREAD:
        thread.name = name


@dataclass(frozen=True)
class _Step:
    """One step of the fetch: a page of ``piece``; without a page, the end of ``piece`` (fetched
    completely, or abandoned for its halves when ``split``); without a piece, the end of ``window``.
    """

    window: Window
    piece: Window | None = None
    page: CdrPage | None = None
    split: bool = False


def _fetch_steps(source: CdrSource, windows: Sequence[Window]) -> Iterator[_Step]:
    """Every page of every window, piece by piece (a piece halved on the page cap by
    :func:`audiapro.windows.read_in_pieces`), with the ends of pieces and windows marked."""
    _name_producer(FETCH_THREAD)
    for window in windows:
        for step in read_in_pieces(window, lambda piece: source.iter_cdr_pages(piece.start, piece.end)):
            yield _Step(window, step.piece, step.item, split=step.split)
        yield _Step(window)


@dataclass(frozen=True)
class _Prepared:
    """One load transaction, normalized and rendered; without a piece, the end of ``window``.

    Attributes:
        window: The window it belongs to.
        piece: The piece of the window the legs were fetched for (recorded on the ingest run).
        legs: The normalized legs prepared for ``load_batch`` (COPY text rendered on Postgres).
        rejects: The quarantined rows.
        fetched: Legs fetched (after de-duplication).
        done: The piece's last load: it records the piece done (when settled).
        pieces: With no piece: how many pieces the window had.
    """

    window: Window
    piece: Window | None = None
    legs: PreparedLegs | None = None
    rejects: pd.DataFrame | None = None
    fetched: int = 0
    done: bool = False
    pieces: int = 0


class _Chunker:
    """Turns fetch steps into load transactions of about :data:`LOAD_PIECE_LEGS` legs, normalized.

    Runs in a background thread (the Python work of a load, while the calling thread waits for
    Postgres). Legs are de-duplicated by AcctId over the whole window (pages may overlap, and the
    halves of a split piece re-read what the abandoned piece had loaded), so the legs stored and the
    window's counts are those of loading it whole; positions (of quarantined rows) are numbered over
    the window. The zone is checked on every load's legs before any of them is normalized.
    """

    def __init__(self, tenant: TenantSettings, *, render_copy: bool) -> None:
        self._tenant = tenant
        self._render_copy = render_copy
        self._start_window()

    def _start_window(self) -> None:
        self._seen: set[str] = set()
        self._buffer = WindowLegs()
        self._next_position = 1
        self._pieces = 0

    def prepared(self, steps: Generator[_Step, None, None]) -> Iterator[_Prepared]:
        """The loads of ``steps`` in order, and each window's end (``steps`` closed when done)."""
        _name_producer(PREPARE_THREAD)
        with closing(steps):
            for step in steps:
                if step.piece is None:
                    yield _Prepared(step.window, pieces=self._pieces)
                    self._start_window()
                elif step.page is not None:
                    if len(self._buffer.legs) >= LOAD_PIECE_LEGS:
                        # Sent only now that another page came: a piece's last load always has legs.
                        yield self._prepare(step.window, step.piece, done=False)
                    self._add(step.page)
                elif not step.split:
                    yield self._prepare(step.window, step.piece, done=True)
                    self._pieces += 1
                elif self._buffer.legs or self._buffer.malformed:
                    yield self._prepare(step.window, step.piece, done=False)

    def _add(self, page: CdrPage) -> None:
        self._buffer.add_page(page, self._seen)

    def _prepare(self, window: Window, piece: Window, *, done: bool) -> _Prepared:
        legs, self._buffer = self._buffer, WindowLegs()
        batch = normalize_window(self._tenant, legs, first_position=self._next_position)
        self._next_position += len(legs.legs)
        prepared = prepare_batch(batch.legs, self._tenant.name, render_copy=self._render_copy)
        return _Prepared(window, piece, prepared, batch.rejects, fetched=len(legs.legs), done=done)


@dataclass
class _Loader:
    """Loads prepared transactions in order and sums them per window.

    Attributes:
        engine: Warehouse engine.
        tenant: Tenant settings.
        settled_until: A piece ending later is loaded but not recorded done.
        flow_run_id: Recorded on the ingest runs and window rows.
        lock_timeout_s: How long each load waits for the tenant lock.
        cancel: When set, stop before the next load.
    """

    engine: sa.Engine
    tenant: TenantSettings
    settled_until: datetime
    flow_run_id: str | None
    lock_timeout_s: float
    cancel: threading.Event | None
    # The current window's loads, whether all its pieces were recorded done, and when it began.
    _loaded: list[WindowSummary] = field(init=False, default_factory=list)
    _recorded: bool = field(init=False, default=True)
    _began: float = field(init=False, default_factory=clock.monotonic)

    def _start_window(self) -> None:
        self._loaded = []
        self._recorded = True
        self._began = clock.monotonic()

    def load(self, item: _Prepared) -> None:
        """Load one transaction; the piece's last one records it done when it is settled."""
        piece, tenant = item.piece, self.tenant
        assert piece is not None and item.legs is not None and item.rejects is not None
        if self.cancel is not None and self.cancel.is_set():
            raise BackfillCancelled(f"backfill cancelled before loading {piece.label()}")
        began = clock.monotonic()
        settled = piece.end <= self.settled_until
        if item.done:
            self._recorded &= settled
        record = item.done and settled
        run = window_run("backfill", piece.start, piece.end, self.flow_run_id, fetched=item.fetched)
        with tenant_write_lock(self.engine, tenant.name, timeout_s=self.lock_timeout_s):
            result = load_normalized(
                self.engine,
                tenant.name,
                item.legs,
                item.rejects,
                run=run,
                on_commit=mark_piece_done(tenant.name, piece, self.flow_run_id) if record else None,
            )
        self._loaded.append(summarize(tenant.name, run, result, clock.monotonic() - began))

    def outcome(self, window: Window, pieces: int) -> WindowOutcome:
        """The window's counts over everything loaded; starts the next window's."""
        outcome = WindowOutcome(
            window_start=window.start.isoformat(),
            window_end=window.end.isoformat(),
            seconds=round(clock.monotonic() - self._began, 3),
            recorded=self._recorded,
            **{**piece_totals(self._loaded), "pieces": pieces},
        )
        self._start_window()
        return outcome


class _Cancellable:
    """A :class:`CdrSource` that stops between pages once ``cancel`` is set."""

    def __init__(self, source: CdrSource, cancel: threading.Event) -> None:
        self._source = source
        self._cancel = cancel

    def iter_cdr_pages(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> Iterator[CdrPage]:
        """The source's pages, checking ``cancel`` before each one is asked for."""
        pages = self._source.iter_cdr_pages(start_utc, end_utc, time_filter=time_filter)
        while True:
            if self._cancel.is_set():
                raise BackfillCancelled("backfill cancelled between two pages")
            try:
                yield next(pages)
            except StopIteration:
                return


def mark_piece_done(tenant: str, piece: Window, flow_run_id: str | None) -> CommitHook:
    """The commit hook that records ``piece`` of a backfill done, in the transaction loading its legs.

    Args:
        tenant: Tenant key.
        piece: The piece the load covers.
        flow_run_id: Recorded on the window row (None outside a flow run).
    """

    def hook(conn: sa.Connection, result: LoadResult) -> None:
        record_backfill_window(
            conn,
            tenant=tenant,
            start=piece.start,
            end=piece.end,
            run_id=result.run_id,
            flow_run_id=flow_run_id,
        )

    return hook
