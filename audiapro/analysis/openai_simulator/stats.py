"""Request, fault and billing statistics kept by the simulator, and the hashes and ids they name.

`StatsRecorder` is the thread-safe writer used by request handlers; `OpenAIStats` is the
snapshot tests read through `OpenAISimulator.stats`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


def fingerprint(*parts: Any) -> str:
    """SHA-256 over the parts as key-sorted JSON, so equal requests (sync or batch) hash equally."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdFactory:
    """Seeded, thread-safe OpenAI-looking ids (`resp_…`, `file-…`, `batch_…`): reruns give the same ids."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._serial = itertools.count()  # next() on a count is atomic under the GIL

    def new(self, prefix: str, length: int = 24) -> str:
        """`prefix` and `length` hex digits."""
        return prefix + fingerprint("id", self._seed, next(self._serial))[:length]


@dataclass
class ModelUsage:
    """Billed usage of one model. Batch figures are also included in the plain totals.

    Attributes:
        requests: Billed requests (sync and batch).
        audio_seconds: Billed audio duration.
        input_tokens: Billed input tokens.
        output_tokens: Billed output tokens.
        batch_requests: Billed requests that came through the Batch API.
        cost_usd: Estimated cost with the configured prices and batch discount.
    """

    requests: int = 0
    audio_seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    batch_requests: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class BilledRequest:
    """One billed (200) request.

    Attributes:
        fingerprint: SHA-256 of endpoint + canonical request (audio hashed); identical requests,
            sync or batch, share it, so a repeat shows up as a duplicate.
        endpoint: API path, e.g. `/v1/responses`.
        model: Model billed.
        batch: Whether it was billed through the Batch API.
        audio_seconds: Audio billed.
        input_tokens: Input tokens billed.
        output_tokens: Output tokens billed.
        cost_usd: Estimated cost.
        text_input: The `input` text of a `/v1/responses` request (what the text model read), so
            tests can check what left the process; None for other endpoints.
    """

    fingerprint: str
    endpoint: str
    model: str
    batch: bool
    audio_seconds: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    text_input: str | None = None


@dataclass
class OpenAIStats:
    """Snapshot of everything the simulator counted.

    Attributes:
        requests: Requests by route, e.g. `POST /v1/audio/transcriptions`, whatever the outcome.
        statuses: Response status counts by route.
        faults: Injected faults by kind (`FaultKind` values).
        usage_by_model: Billed usage by model.
        billed: Every billed request in billing order.
    """

    requests: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)
    usage_by_model: dict[str, ModelUsage] = field(default_factory=dict)
    billed: list[BilledRequest] = field(default_factory=list)

    @property
    def fingerprints(self) -> list[str]:
        """Fingerprints of billed requests, in billing order."""
        return [b.fingerprint for b in self.billed]

    def duplicate_fingerprints(self) -> list[str]:
        """Fingerprints billed more than once (empty when nothing was paid twice)."""
        counts = Counter(self.fingerprints)
        return sorted(fp for fp, n in counts.items() if n > 1)

    @property
    def text_inputs(self) -> list[str]:
        """What the text model was given (`input` of every billed `/v1/responses` request)."""
        return [b.text_input for b in self.billed if b.text_input is not None]

    @property
    def audio_seconds(self) -> float:
        """Total billed audio seconds."""
        return sum(u.audio_seconds for u in self.usage_by_model.values())

    @property
    def cost_usd(self) -> float:
        """Total estimated cost."""
        return sum(u.cost_usd for u in self.usage_by_model.values())


class StatsRecorder:
    """Thread-safe accumulator behind `OpenAIStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = OpenAIStats()

    def snapshot(self) -> OpenAIStats:
        """A deep copy that later requests do not change."""
        with self._lock:
            return copy.deepcopy(self._stats)

    def request(self, route: str, status: int) -> None:
        """Count one answered request."""
        with self._lock:
            self._stats.requests[route] += 1
            self._stats.statuses.setdefault(route, Counter())[status] += 1

    def fault(self, kind: str) -> None:
        """Count one injected fault."""
        with self._lock:
            self._stats.faults[kind] += 1

    def bill(self, entry: BilledRequest) -> None:
        """Record one billed request."""
        with self._lock:
            usage = self._stats.usage_by_model.setdefault(entry.model, ModelUsage())
            usage.requests += 1
            usage.audio_seconds += entry.audio_seconds
            usage.input_tokens += entry.input_tokens
            usage.output_tokens += entry.output_tokens
            usage.cost_usd += entry.cost_usd
            usage.batch_requests += entry.batch
            self._stats.billed.append(entry)
