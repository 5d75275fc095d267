"""Fault injection and the simulator's request counters.

The injector draws every decision from its own seeded RNG, so a test with a fixed ``fault_seed`` and
a deterministic client sees the same faults on every run.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from audiapro.ucm.simulator.config import FaultConfig

#: Fault kinds as counted in ``SimulatorStats.faults``.
FAULT_KINDS = (
    "cookie_expire", "throttle", "http500", "repeat_page", "short_page", "malformed_item", "slow", "hang",
)  # fmt: skip
_RATE_WINDOW_SECONDS = 1.0


@dataclass
class SimulatorStats:
    """Counters since the simulator was created (read them as attributes or ``stats["name"]``).

    Attributes:
        requests: Every HTTP request outside ``/__sim__/`` (valid or not, any path).
        invalid_requests: Requests answered with status -1 "Invalid parameters!".
        challenges: challenge actions.
        logins: Successful logins.
        failed_logins: Failed logins (wrong token, a challenge no longer pending, or unknown user).
        banned_requests: challenge/login attempts refused because the client IP was banned.
        bans: Times an IP got banned.
        logouts: logout actions.
        peak_sessions: Most API sessions open at once (live cookies, counted at each login).
        auth_errors: Requests refused with -5/-6.
        cdrapi_requests: cdrapi actions served (including empty/invalid ones).
        record_info_requests: getRecordInfosByCall actions.
        recapi_requests: recapi actions.
        recordings_served: recapi replies carrying audio.
        faults: Injected faults by kind (see ``FAULT_KINDS``).
    """

    requests: int = 0
    invalid_requests: int = 0
    challenges: int = 0
    logins: int = 0
    failed_logins: int = 0
    banned_requests: int = 0
    bans: int = 0
    logouts: int = 0
    peak_sessions: int = 0
    auth_errors: int = 0
    cdrapi_requests: int = 0
    record_info_requests: int = 0
    recapi_requests: int = 0
    recordings_served: int = 0
    faults: Counter[str] = field(default_factory=Counter)

    def __getitem__(self, name: str) -> Any:
        """Dict-style access: ``stats["failed_logins"]``."""
        return getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly snapshot."""
        snapshot = asdict(self)
        snapshot["faults"] = {kind: self.faults.get(kind, 0) for kind in FAULT_KINDS}
        return snapshot


@dataclass(frozen=True)
class RequestFaults:
    """Faults decided for one request before it is processed."""

    delay: float = 0.0
    hang: float = 0.0
    http500: bool = False
    throttle: int | None = None


class FaultInjector:
    """Decides, request by request, which faults of a :class:`FaultConfig` fire."""

    def __init__(self, config: FaultConfig) -> None:
        """Start a fresh RNG and counters for ``config``."""
        self.config = config
        self._rng = random.Random(config.fault_seed)
        self._authenticated = 0
        self._recent: deque[float] = deque()

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def before_request(self, auth_action: bool, stats: SimulatorStats) -> RequestFaults:
        """Faults for an incoming API request (``auth_action``: challenge or login)."""
        c = self.config
        delay = c.slow_ms / 1000.0
        if delay:
            stats.faults["slow"] += 1
        if auth_action and not c.apply_to_auth:
            return RequestFaults(delay=delay)
        hang = c.hang_seconds if self._roll(c.hang_rate) else 0.0
        if hang:
            stats.faults["hang"] += 1
        if self._roll(c.http500_rate):
            stats.faults["http500"] += 1
            return RequestFaults(delay=delay, hang=hang, http500=True)
        if self._roll(c.throttle_rate) or self._over_rate():
            stats.faults["throttle"] += 1
            return RequestFaults(delay=delay, hang=hang, throttle=c.throttle_code)
        return RequestFaults(delay=delay, hang=hang)

    def _over_rate(self) -> bool:
        limit = self.config.max_requests_per_second
        if limit <= 0:
            return False
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= _RATE_WINDOW_SECONDS:
            self._recent.popleft()
        self._recent.append(now)
        return len(self._recent) > limit

    def expire_cookie(self, stats: SimulatorStats) -> bool:
        """Count one authenticated request; True when this one should find its session dropped."""
        every = self.config.cookie_expire_every
        if every <= 0:
            return False
        self._authenticated += 1
        if self._authenticated % every:
            return False
        stats.faults["cookie_expire"] += 1
        return True

    def repeat_page(self, stats: SimulatorStats) -> bool:
        """Whether to answer this cdrapi request with the previous reply."""
        if self._roll(self.config.repeat_page_rate):
            stats.faults["repeat_page"] += 1
            return True
        return False

    def short_page(self, size: int, stats: SimulatorStats) -> int:
        """How many of ``size`` page entries to send (``size`` = no fault)."""
        if size >= 2 and self._roll(self.config.short_page_rate):
            stats.faults["short_page"] += 1
            return self._rng.randint(1, size - 1)
        return size
