"""The simulator's notion of "now": a manual clock for tests or the wall clock (optionally shifted).

Everything time-dependent in the simulator (which legs are visible, session idle timeouts, IP bans,
the live call stream) reads this clock, so tests can move time deterministically.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from audiapro.ucm.simulator.config import ClockMode


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class SimClock:
    """Thread-safe clock.

    In ``"manual"`` mode time stands still until :meth:`set` or :meth:`advance` moves it. In
    ``"real"`` mode it follows the system clock; :meth:`set` and :meth:`advance` then shift it by an
    offset, which lets a demo jump ahead without waiting.
    """

    def __init__(self, mode: ClockMode, initial: datetime) -> None:
        """Create the clock.

        Args:
            mode: ``"manual"`` or ``"real"``.
            initial: Start time of a manual clock (ignored in real mode).
        """
        self._mode = mode
        self._lock = threading.Lock()
        self._manual = as_utc(initial).timestamp()
        self._offset = 0.0

    @property
    def mode(self) -> ClockMode:
        """``"manual"`` or ``"real"``."""
        return self._mode

    def timestamp(self) -> float:
        """Current time as Unix epoch seconds."""
        with self._lock:
            if self._mode == "manual":
                return self._manual
            return time.time() + self._offset

    def now(self) -> datetime:
        """Current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def set(self, value: datetime) -> datetime:
        """Jump to ``value`` (aware, or naive meaning UTC); returns the new now."""
        target = as_utc(value).timestamp()
        with self._lock:
            if self._mode == "manual":
                self._manual = target
            else:
                self._offset = target - time.time()
        return self.now()

    def advance(self, seconds: float) -> datetime:
        """Move forward (or backward, if negative) by ``seconds``; returns the new now."""
        with self._lock:
            if self._mode == "manual":
                self._manual += seconds
            else:
                self._offset += seconds
        return self.now()
