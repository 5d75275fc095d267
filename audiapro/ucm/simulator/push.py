"""The simulator's "CDR Real-time Output": legs POSTed to a receiver as they end.

A UCM sends each CDR as soon as the leg ends; when the receiver cannot be reached it keeps the
records in a buffer (at most 10,000) and sends them once it can again. :class:`PushEmitter` does the
same against the simulator's clock, deterministically: :meth:`PushEmitter.emit` sends what ended since
the last call (the buffer first), so a test advances ``sim.clock`` and calls it; nothing runs on its own.

The body shape is switchable (``VARIANTS``), because the real one is not pinned down publicly:
a flat JSON object with or without a JSON content type, a JSON array, ``{"cdr_root": [...]}``, a grouped
``main_cdr`` + ``sub_cdr_N`` object, form-encoded, XML.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol
from xml.sax.saxutils import escape

import httpx

RawLeg = dict[str, str]

VARIANTS: Final = ("json", "json-untyped", "json-array", "cdr-root", "grouped", "form", "xml")
#: Records a UCM keeps while the receiver is unreachable; older ones are lost beyond it.
BUFFER_LIMIT: Final = 10_000
_JSON: Final = "application/json"
_FORM: Final = "application/x-www-form-urlencoded"
_XML: Final = "application/xml"
#: Answers after which the record is kept and sent again later.
_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})


class TruthSource(Protocol):
    """Where the legs come from: a ``UcmSimulator``, or :class:`RemoteTruth` for one running elsewhere."""

    def ground_truth(self) -> list[RawLeg]:
        """Every leg that has ended by now."""
        ...


class PushClient(Protocol):
    """What the emitter POSTs through: an ``httpx.Client``, or a FastAPI ``TestClient``."""

    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Any:
        """POST ``content``; the answer has a ``status_code``."""
        ...


@dataclass(frozen=True)
class EmitResult:
    """What one :meth:`PushEmitter.emit` did.

    Attributes:
        bodies: Bodies the receiver accepted.
        legs: Legs in them.
        buffered: Legs still waiting in the buffer (receiver down or busy).
        dropped: Legs lost because the buffer was full (the oldest go first, as on a UCM).
        statuses: HTTP status of every answered POST, in order.
    """

    bodies: int
    legs: int
    buffered: int
    dropped: int
    statuses: tuple[int, ...]


def render_body(legs: Sequence[RawLeg], variant: str) -> tuple[bytes, str | None]:
    """A push body holding ``legs`` in the given shape, and its Content-Type (None: none sent).

    A shape holding one record (``json``, ``json-untyped``) with several legs becomes an array.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown push variant {variant!r}; one of {', '.join(VARIANTS)}")
    if variant in ("json", "json-untyped"):
        payload: Any = legs[0] if len(legs) == 1 else list(legs)
        return _json(payload), (_JSON if variant == "json" else "text/plain")
    if variant == "json-array":
        return _json(list(legs)), _JSON
    if variant == "cdr-root":
        return _json({"cdr_root": list(legs)}), _JSON
    if variant == "grouped":
        group: dict[str, Any] = {"main_cdr": _summary(legs)}
        group.update({f"sub_cdr_{n}": leg for n, leg in enumerate(legs, start=1)})
        return _json(group), _JSON
    if variant == "form":
        return urllib.parse.urlencode([pair for leg in legs for pair in leg.items()]).encode(), _FORM
    records = "".join(
        "<cdr>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in leg.items()) + "</cdr>" for leg in legs
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><cdr_root>{records}</cdr_root>'.encode(), _XML


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def _summary(legs: Sequence[RawLeg]) -> RawLeg:
    """A ``main_cdr`` like the PBX's: the call's first start, no AcctId and no disposition."""
    first = legs[0]
    return {**first, "AcctId": "", "disposition": "", "start": min(leg.get("start", "") for leg in legs)}


class PushEmitter:
    """Pushes the simulator's legs to a receiver as they end (module docstring)."""

    def __init__(
        self,
        sim: TruthSource,
        client: PushClient,
        url: str,
        *,
        user: str,
        password: str,
        variant: str = "json",
        replay_batch: int = 1,
        buffer_limit: int = BUFFER_LIMIT,
    ) -> None:
        """Push to ``url`` through ``client`` with HTTP Basic ``user``/``password``.

        Legs that ended before the emitter was created are history: never pushed.

        Args:
            sim: The simulated PBX (or :class:`RemoteTruth`).
            client: Any httpx client (a FastAPI ``TestClient`` too); its timeout applies.
            url: The receiver's URL (absolute, or relative to the client's base URL).
            user: Basic user.
            password: Basic password.
            variant: Body shape (``VARIANTS``); may be changed between calls.
            replay_batch: Legs per body when the buffer is replayed after an outage.
            buffer_limit: Records kept while the receiver is down.
        """
        if variant not in VARIANTS:
            raise ValueError(f"unknown push variant {variant!r}")
        self.sim = sim
        self.client = client
        self.url = url
        self.variant = variant
        self.replay_batch = max(1, replay_batch)
        self.buffer_limit = buffer_limit
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self._seen = {leg["AcctId"] for leg in sim.ground_truth()}
        self.buffer: list[RawLeg] = []
        self.delivered: list[RawLeg] = []
        self.dropped = 0

    def ended(self) -> list[RawLeg]:
        """Legs that ended since the last call (by the simulator's clock), in AcctId order."""
        new = [leg for leg in self.sim.ground_truth() if leg["AcctId"] not in self._seen]
        self._seen.update(leg["AcctId"] for leg in new)
        return new

    def emit(self) -> EmitResult:
        """Send the buffer (in ``replay_batch`` bodies), then each leg that ended since, one body each."""
        self.buffer.extend(self.ended())
        dropped = max(0, len(self.buffer) - self.buffer_limit)
        if dropped:
            del self.buffer[:dropped]
            self.dropped += dropped
        backlog, self.buffer = self.buffer, []
        bodies = legs = 0
        statuses: list[int] = []
        size = self.replay_batch if len(backlog) > 1 else 1
        while backlog:
            chunk = backlog[:size]
            status = self._post(chunk)
            if status is not None:
                statuses.append(status)
            if status is None or status in _RETRY_STATUSES:
                self.buffer = backlog  # receiver down or busy: keep the rest, in order
                break
            backlog = backlog[size:]
            if status < 300:
                bodies += 1
                legs += len(chunk)
                self.delivered.extend(chunk)
        return EmitResult(bodies, legs, len(self.buffer), dropped, tuple(statuses))

    def replay_delivered(self, batch: int | None = None) -> EmitResult:
        """Send every leg delivered so far once more (a UCM replaying a buffer it thought unsent)."""
        again, size = list(self.delivered), batch or self.replay_batch
        statuses = [self._post(again[i : i + size]) for i in range(0, len(again), size)]
        answered = tuple(s for s in statuses if s is not None)
        ok = sum(1 for s in answered if s < 300)
        return EmitResult(ok, len(again), len(self.buffer), 0, answered)

    def _post(self, legs: Sequence[RawLeg]) -> int | None:
        """POST one body; its status, None when the receiver could not be reached."""
        body, content_type = render_body(legs, self.variant)
        headers = dict(self.headers)
        if content_type is not None:
            headers["Content-Type"] = content_type
        try:
            return int(self.client.post(self.url, content=body, headers=headers).status_code)
        except httpx.TransportError:
            return None


#: How far back a remote simulator is asked for legs (by start): longer calls started earlier.
REMOTE_WINDOW: Final = timedelta(hours=2)
#: Seconds between two pushes of the live demo (``run_pusher``).
DEFAULT_EVERY_S: Final = 5.0
_TRUTH_PATH: Final = "/__sim__/truth"


class RemoteTruth:
    """The legs of a simulator running in another process (``audiapro simulate``), read from its
    control endpoint ``GET /__sim__/truth`` (legs started within ``window``)."""

    def __init__(
        self,
        client: httpx.Client,
        sim_url: str,
        clock: Callable[[], datetime] | None = None,
        window: timedelta = REMOTE_WINDOW,
    ) -> None:
        """Read from the simulator at ``sim_url`` (its base URL) through ``client``.

        Args:
            client: The HTTP client.
            sim_url: The simulator's base URL.
            clock: The simulator's now (default the wall clock: a live simulator's clock is real).
            window: How far back legs are asked for, by their start.
        """
        self.client = client
        self.window = window
        self.url = sim_url.rstrip("/") + _TRUTH_PATH
        self.clock = clock or (lambda: datetime.now(UTC))

    def ground_truth(self) -> list[RawLeg]:
        """The legs that ended by the simulator's now and started within the window."""
        start = (self.clock() - self.window).isoformat()
        answer = self.client.get(self.url, params={"start": start})
        answer.raise_for_status()
        return [dict(leg) for leg in answer.json()["legs"]]


def run_pusher(
    sim_url: str,
    url: str,
    *,
    user: str,
    password: str,
    every_s: float = DEFAULT_EVERY_S,
    variant: str = "json",
    stop: threading.Event | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Push a running simulator's legs to ``url`` as they end, until ``stop`` is set (the live demo).

    Failures are reported and retried on the next round: the simulator not up yet, the receiver down
    (the legs wait in the emitter's buffer, as on a UCM).
    """
    waiter = stop or threading.Event()
    with httpx.Client(timeout=10.0) as client:
        source = RemoteTruth(client, sim_url)
        emitter: PushEmitter | None = None
        while not waiter.wait(every_s):
            try:
                emitter = emitter or PushEmitter(
                    source, client, url, user=user, password=password, variant=variant
                )
                sent = emitter.emit()
            except httpx.HTTPError as exc:
                echo(f"push round failed: {type(exc).__name__}; retrying in {every_s:.0f} s")
                continue
            if sent.legs or sent.buffered:
                echo(
                    f"pushed {sent.legs} legs in {sent.bodies} bodies; {sent.buffered} waiting in the buffer"
                )
