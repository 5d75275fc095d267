"""UTC time windows and fetching one completely, split in halves where it holds too much.

Shared by the live poll (catching up after an outage), the long-call sweep and backfills: a window is
fetched whole or not at all, and a window that holds more legs than one piece may (the client's page
cap, or a bound that keeps memory flat) is split in two, recursively, oldest half first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Generic, TypeVar

from audiapro.ingest import CdrSource, fetch_window
from audiapro.ucm.errors import UcmPageCapExceeded
from audiapro.ucm.records import WindowLegs

log = logging.getLogger("audiapro.windows")

#: Shortest window a user may ask for, and the shortest piece a page-capped window is split into.
MIN_WINDOW: Final = timedelta(minutes=1)

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Window:
    """A UTC time range ``[start, end]``, inclusive at both ends as the PBX filters it.

    Adjacent windows share their boundary second, so a leg starting exactly there is read twice and
    merged once: overlap is free, a gap would lose legs.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be tz-aware")
        if self.start >= self.end:
            raise ValueError(f"empty window {self.start.isoformat()}..{self.end.isoformat()}")

    @property
    def span(self) -> timedelta:
        """Length of the window."""
        return self.end - self.start

    def halves(self) -> tuple[Window, Window]:
        """Two windows covering this one, split at a whole second near the middle."""
        middle = whole_second(self.start + self.span / 2)
        if not self.start < middle < self.end:
            raise ValueError(f"window {self.label()} is too short to split")
        return Window(self.start, middle), Window(middle, self.end)

    def label(self) -> str:
        """Short human label in UTC, e.g. ``2026-03-01 05:00 → 2026-03-02 05:00 UTC``."""
        return f"{self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class PieceRead(Generic[T]):
    """One step of :func:`read_in_pieces`: an item read from ``piece``; without an item, the end of
    ``piece``: read completely, or abandoned for its halves when ``split``."""

    piece: Window
    item: T | None = None
    split: bool = False


def read_in_pieces(
    window: Window, read: Callable[[Window], Iterable[T]], *, min_span: timedelta = MIN_WINDOW
) -> Iterator[PieceRead[T]]:
    """Read ``window`` with ``read``, halving (recursively, oldest half first) a piece that overflows.

    The one place that decides how a window too large for the PBX's page cap (or a memory bound) is
    split: the live poll and the sweep read whole pieces (:func:`fetch_pieces`), the backfill streams
    their pages. Items of a piece abandoned for its halves were already yielded: the halves read them
    again, so a consumer merges by key (as every load does).

    Args:
        window: What to read.
        read: Reads one piece; raises ``UcmPageCapExceeded`` (at any item) when it holds too much.
        min_span: A piece this short that still overflows is an error, not split further.

    Yields:
        Each item with its piece, then the piece's end; pieces in time order.

    Raises:
        UcmPageCapExceeded: A piece of ``min_span`` or less still holds too much.
    """
    pending = [window]
    while pending:
        piece = pending.pop()
        try:
            for item in read(piece):
                yield PieceRead(piece, item)
        except UcmPageCapExceeded:
            if piece.span <= min_span:
                raise
            log.info("window %s holds too much for one piece; splitting it in two", piece.label())
            first, second = piece.halves()
            pending += [second, first]
            yield PieceRead(piece, split=True)
            continue
        yield PieceRead(piece)


def fetch_pieces(
    source: CdrSource,
    window: Window,
    *,
    time_filter: str | None = None,
    max_legs: int | None = None,
    min_span: timedelta = MIN_WINDOW,
) -> Iterator[tuple[Window, WindowLegs]]:
    """Fetch ``window`` completely, in pieces: one, or halves (recursively) where it holds too much.

    Args:
        source: The tenant's API client (or any ``CdrSource``).
        window: What to fetch.
        time_filter: cdrapi ``timeFilterType`` (default ``Start``).
        max_legs: Most legs one piece may hold in memory (``None``: only the client's page cap).
        min_span: A piece this short that still overflows is an error, not split further.

    Yields:
        ``(piece, legs)`` in time order; every piece was fetched completely.

    Raises:
        UcmPageCapExceeded: A piece of ``min_span`` or less still holds too much.
    """

    def fetch_whole(piece: Window) -> Iterator[WindowLegs]:
        yield fetch_window(source, piece.start, piece.end, time_filter=time_filter, max_legs=max_legs)

    for step in read_in_pieces(window, fetch_whole, min_span=min_span):
        if step.item is not None:
            yield step.piece, step.item


def whole_second(value: datetime) -> datetime:
    """``value`` without its sub-second part (the PBX stores whole seconds)."""
    return value.replace(microsecond=0)
