"""Seeded fault decisions. Counting happens only when a fault is actually applied."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass

from audiapro.analysis.openai_simulator.config import (
    CONTENT_FAULTS,
    TRANSPORT_FAULTS,
    FaultKind,
    OpenAIFaults,
)
from audiapro.analysis.openai_simulator.stats import StatsRecorder


@dataclass(frozen=True)
class FaultPlan:
    """Faults chosen for one request.

    Attributes:
        transport: Fault that replaces the response (429, 5xx, hang), or None.
        content: Fault that corrupts a structured 200 answer, or None.
        knobs: The fault settings in force when the plan was made.
    """

    transport: FaultKind | None
    content: FaultKind | None
    knobs: OpenAIFaults


def _pick(rng: random.Random, rates: dict[FaultKind, float]) -> FaultKind | None:
    # One uniform draw per category keeps the rates independent of each other's values.
    draw = rng.random()
    cumulative = 0.0
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
        recorder: Stats sink for applied faults.
    """

    def __init__(self, seed: int, faults: OpenAIFaults, recorder: StatsRecorder) -> None:
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()
        self._recorder = recorder
        self._faults = faults
        self._script: deque[FaultKind | None] = deque(faults.script)

    @property
    def faults(self) -> OpenAIFaults:
        """Current knobs."""
        with self._lock:
            return self._faults

    @faults.setter
    def faults(self, value: OpenAIFaults) -> None:
        with self._lock:
            self._faults = value
            self._script = deque(value.script)

    def plan(self, endpoint: str) -> FaultPlan:
        """Choose the faults for one request to `endpoint` (an `EP_*` name)."""
        with self._lock:
            knobs = self._faults
            if endpoint not in knobs.endpoints:
                return FaultPlan(None, None, knobs)
            if self._script:
                forced = self._script.popleft()
                transport = forced if forced in TRANSPORT_FAULTS else None
                content = forced if forced in CONTENT_FAULTS else None
                return FaultPlan(transport, content, knobs)
            transport = _pick(self._rng, knobs.transport_rates())
            content = _pick(self._rng, knobs.content_rates())
            return FaultPlan(transport, content, knobs)

    def draw_content(self) -> FaultKind | None:
        """A content fault for one batch output line (scripts do not apply to batches)."""
        with self._lock:
            return _pick(self._rng, self._faults.content_rates())

    def draw_batch_line_error(self) -> bool:
        """Whether one batch line fails with a 500."""
        with self._lock:
            return self._rng.random() < self._faults.batch_line_error_rate

    def record(self, kind: FaultKind) -> None:
        """Count a fault that was applied."""
        self._recorder.fault(kind.value)
