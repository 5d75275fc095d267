"""Fault knobs and their seeded draws. A fault is counted only when it is actually applied."""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from audiapro.analysis.openai_simulator.stats import StatsRecorder


class FaultKind(StrEnum):
    """Kinds of injected faults, as counted in `OpenAIStats.faults`."""

    RATE_LIMIT = "rate_limit"
    INSUFFICIENT_QUOTA = "insufficient_quota"
    SERVER_ERROR = "server_error"
    HANG = "hang"
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    BATCH_LINE_ERROR = "batch_line_error"


#: Faults that replace the answer (the HTTP exchange fails), drawn in this order.
TRANSPORT_FAULTS: Final = (
    FaultKind.RATE_LIMIT,
    FaultKind.INSUFFICIENT_QUOTA,
    FaultKind.SERVER_ERROR,
    FaultKind.HANG,
)
#: Faults that corrupt a 200 structured answer (sync or batch line), drawn in this order.
CONTENT_FAULTS: Final = (FaultKind.INVALID_JSON, FaultKind.SCHEMA_VIOLATION)
# Endpoint names for `OpenAIFaults.endpoints`.
EP_TRANSCRIPTIONS: Final = "audio.transcriptions"
EP_RESPONSES: Final = "responses"
EP_FILES: Final = "files"
EP_BATCHES: Final = "batches"
INFERENCE_ENDPOINTS: Final = frozenset({EP_TRANSCRIPTIONS, EP_RESPONSES})


@dataclass(frozen=True)
class OpenAIFaults:
    """Fault-injection knobs; assign `OpenAISimulator.faults` at any time to change them.

    Transport faults are drawn once per request to an endpoint in `endpoints` (their rates sum to at
    most 1); content faults once per 200 structured answer, sync or batch line. `script` forces the
    next eligible requests' faults in order (`None` = no fault) before random draws resume.

    Attributes:
        rate_limit_rate: 429 `rate_limit_exceeded` with `retry-after` / `retry-after-ms` headers.
        retry_after_s: Delay advertised in those headers.
        insufficient_quota_rate: 429 `insufficient_quota` (no retry-after header).
        server_error_rate: 500 `server_error`.
        hang_rate: The server waits `hang_s`, then closes the connection without answering.
        hang_s: Length of a hang in seconds (use a client timeout below it).
        invalid_json_rate: 200 whose output text is cut into invalid JSON.
        schema_violation_rate: 200 whose JSON lacks a required field.
        batch_line_error_rate: A batch line fails with a 500 (it goes to the error file).
        script: Faults forced on the next eligible requests, in order.
        endpoints: Endpoint names transport faults apply to (see `INFERENCE_ENDPOINTS`).
    """

    rate_limit_rate: float = 0.0
    retry_after_s: float = 1.0
    insufficient_quota_rate: float = 0.0
    server_error_rate: float = 0.0
    hang_rate: float = 0.0
    hang_s: float = 30.0
    invalid_json_rate: float = 0.0
    schema_violation_rate: float = 0.0
    batch_line_error_rate: float = 0.0
    script: tuple[FaultKind | None, ...] = ()
    endpoints: frozenset[str] = INFERENCE_ENDPOINTS

    def __post_init__(self) -> None:
        rates = self.transport_rates() | self.content_rates()
        rates[FaultKind.BATCH_LINE_ERROR] = self.batch_line_error_rate
        for kind, rate in rates.items():
            if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
                raise ValueError(f"{kind}_rate must be within [0, 1], got {rate!r}")
        for group in (self.transport_rates(), self.content_rates()):
            if sum(group.values()) > 1.0 + 1e-9:
                raise ValueError(f"the rates of {', '.join(group)} must sum to at most 1")
        if self.retry_after_s < 0 or self.hang_s < 0:
            raise ValueError("retry_after_s and hang_s must be >= 0")

    def transport_rates(self) -> dict[FaultKind, float]:
        """Rates of the faults drawn before a request is processed, in draw order."""
        rates = (self.rate_limit_rate, self.insufficient_quota_rate, self.server_error_rate, self.hang_rate)
        return dict(zip(TRANSPORT_FAULTS, rates, strict=True))

    def content_rates(self) -> dict[FaultKind, float]:
        """Rates of the faults that corrupt a structured 200 answer, in draw order."""
        return dict(zip(CONTENT_FAULTS, (self.invalid_json_rate, self.schema_violation_rate), strict=True))


@dataclass(frozen=True)
class FaultPlan:
    """Faults chosen for one request: one replacing the answer, one corrupting it, and the knobs."""

    transport: FaultKind | None
    content: FaultKind | None
    knobs: OpenAIFaults


def _pick(rng: random.Random, rates: dict[FaultKind, float]) -> FaultKind | None:
    # One uniform draw per category keeps the rates independent of each other's values.
    draw, cumulative = rng.random(), 0.0
    for kind, rate in rates.items():
        cumulative += rate
        if draw < cumulative:
            return kind
    return None


class FaultInjector:
    """Draws faults from a seeded RNG under a lock (handlers run on many threads).

    Args:
        seed: Simulator seed.
        faults: Initial knobs.
        recorder: Counts applied faults.
    """

    def __init__(self, seed: int, faults: OpenAIFaults, recorder: StatsRecorder) -> None:
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()
        self._recorder = recorder
        self.faults = faults

    @property
    def faults(self) -> OpenAIFaults:
        """Current knobs."""
        with self._lock:
            return self._faults

    @faults.setter
    def faults(self, value: OpenAIFaults) -> None:
        with self._lock:
            self._faults = value
            self._script: deque[FaultKind | None] = deque(value.script)

    def plan(self, endpoint: str) -> FaultPlan:
        """Choose the faults for one request to `endpoint` (an `EP_*` name)."""
        with self._lock:
            knobs = self._faults
            if endpoint not in knobs.endpoints:
                return FaultPlan(None, None, knobs)
            if self._script:
                forced = self._script.popleft()
                return FaultPlan(
                    forced if forced in TRANSPORT_FAULTS else None,
                    forced if forced in CONTENT_FAULTS else None,
                    knobs,
                )
            return FaultPlan(
                _pick(self._rng, knobs.transport_rates()), _pick(self._rng, knobs.content_rates()), knobs
            )

    def batch_line(self) -> FaultKind | None:
        """The fault of one batch line: a line error or a content fault (scripts do not apply)."""
        with self._lock:
            if self._rng.random() < self._faults.batch_line_error_rate:
                return FaultKind.BATCH_LINE_ERROR
            return _pick(self._rng, self._faults.content_rates())

    def record(self, kind: FaultKind) -> None:
        """Count a fault that was applied."""
        self._recorder.fault(kind.value)
