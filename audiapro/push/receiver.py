"""The push receiver behind ``POST /api/push/ucm/{tenant}``: authenticate, store, parse; load later.

The request path does only what must happen before answering: check the tenant's HTTP Basic login
(constant time; the tenant's push settings are cached for ``TENANT_CACHE_S``), refuse when the load
queue is full, store the body verbatim (one insert), parse it to say at once whether it is usable
(a body that does not parse is quarantined with its reason). Loading runs off the request path: a
background thread (:meth:`PushReceiver.start`) drains pending bodies in small batches
(``audiapro.push.loader``); tests call :meth:`PushReceiver.drain` instead, deterministically.

Memory stays bounded: the queue is the ``push_bodies`` table, not a list in memory; only its length is
counted here, and at ``max_pending`` bodies the receiver answers 503 with ``Retry-After`` so the PBX
keeps the records in its own buffer rather than anything being dropped.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from audiapro.errors import describe_error
from audiapro.push.config import PUSH_CAPTURE, PUSH_OFF, PushTenant
from audiapro.push.loader import PushLoad, load_pending
from audiapro.push.parse import PushParseError, parse_push_body
from audiapro.tenants import TenantSettings
from audiapro.warehouse.push import count_pending_push, quarantine_push_bodies, store_push_body

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("audiapro.push")

#: Pending bodies at which new ones are refused with 503 (a replayed 10,000-record buffer fits).
MAX_PENDING: Final = 20_000
#: Seconds a tenant's push settings are reused before they are read again (a rotated password
#: takes effect within this time).
TENANT_CACHE_S: Final = 30.0
#: Seconds the loader thread sleeps when nothing woke it (bodies stored by another process).
IDLE_WAKE_S: Final = 5.0
#: Seconds the loader waits after a failed batch before trying again (the bodies stay pending).
RETRY_AFTER_S: Final = 5
#: Headers never stored with a body (credentials).
SECRET_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})

#: Seconds between two analysis runs started for one tenant by pushed calls (one run covers them all).
ANALYSIS_EVERY_S: Final = 60.0

#: Reads a tenant's push settings (secrets included); None when there is no such tenant.
PushTenantReader = Callable[[str], "PushTenant | None"]
#: Starts an analysis run for a tenant whose pushed legs added calls (``IngestOrchestrator.start_analysis``).
AnalysisStarter = Callable[[str], None]


@dataclass(frozen=True)
class Receipt:
    """The answer to one pushed body.

    Attributes:
        body_id: Its ``push_bodies`` row (or the earlier identical body's).
        status: ``pending`` (will be loaded), ``captured``, ``quarantined`` or ``duplicate``.
        legs: Legs parsed from it (0 when captured or quarantined).
        reason: Why it was quarantined.
    """

    body_id: int
    status: str
    legs: int = 0
    reason: str = ""


class PushReceiver:
    """Stores pushed bodies and loads them off the request path (module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        read_tenant: PushTenantReader,
        *,
        max_pending: int = MAX_PENDING,
        cache_seconds: float = TENANT_CACHE_S,
        monotonic: Callable[[], float] = time.monotonic,
        start_analysis: AnalysisStarter | None = None,
        analysis_every_s: float = ANALYSIS_EVERY_S,
    ) -> None:
        """Receive for the tenants ``read_tenant`` knows, into ``engine``'s warehouse.

        Args:
            engine: The warehouse.
            read_tenant: Reads a tenant's push settings.
            max_pending: Pending bodies at which new ones are refused (503).
            cache_seconds: How long a tenant's settings are reused.
            monotonic: The clock of the caches and the analysis spacing (tests pin it).
            start_analysis: Called for a tenant whose pushed legs were new, at most once per
                ``analysis_every_s`` (the poll starts analysis the same way after a tick).
            analysis_every_s: Least seconds between two analysis starts for one tenant.
        """
        self.engine = engine
        self._read_tenant = read_tenant
        self.max_pending = max_pending
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, PushTenant | None]] = {}
        self._lock = threading.Lock()
        self._pending = count_pending_push(engine)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_analysis = start_analysis
        self._analysis_every_s = analysis_every_s
        self._analysed_at: dict[str, float] = {}

    # --- request path ---------------------------------------------------------------------------

    def tenant(self, name: str) -> PushTenant | None:
        """The tenant's push settings (cached ``cache_seconds``)."""
        now = self._monotonic()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        found = self._read_tenant(name)
        with self._lock:
            self._cache[name] = (now, found)
        return found

    def authenticate(self, name: str, authorization: str | None) -> PushTenant | None:
        """The tenant when ``authorization`` carries its push login and push is on, else None."""
        tenant = self.tenant(name)
        if tenant is None or tenant.mode == PUSH_OFF or not tenant.accepts(authorization):
            return None
        return tenant

    def saturated(self) -> bool:
        """Whether the load queue is full (new bodies are refused until it drains)."""
        with self._lock:
            return self._pending >= self.max_pending

    def receive(
        self, tenant: PushTenant, body: bytes, headers: Mapping[str, str], *, peer: str | None
    ) -> Receipt:
        """Store ``body`` verbatim, then parse it (quarantined when it does not parse)."""
        kept = {name: value for name, value in headers.items() if name.lower() not in SECRET_HEADERS}
        content_type = kept.get("content-type")
        capture = tenant.mode == PUSH_CAPTURE
        stored = store_push_body(
            self.engine,
            tenant=tenant.settings.name,
            body=body,
            sha256=hashlib.sha256(body).hexdigest(),
            headers=kept,
            peer=peer,
            content_type=content_type,
            capture=capture,
        )
        if stored.duplicate:
            return Receipt(stored.id, "duplicate")
        if capture:
            return Receipt(stored.id, "captured")
        try:
            legs = len(parse_push_body(body, content_type).legs)
        except PushParseError as exc:
            quarantine_push_bodies(self.engine, {stored.id: str(exc)})
            # The reason quotes the body's start (caller numbers, perhaps): it is stored with the body
            # and answered to the PBX, and the log names the body by id only.
            log.warning("tenant %s: pushed body %d quarantined (unparseable; reason stored with it)",
                        tenant.settings.name, stored.id)  # fmt: skip
            return Receipt(stored.id, "quarantined", reason=str(exc))
        with self._lock:
            self._pending += 1
        self._wake.set()
        return Receipt(stored.id, "pending", legs=legs)

    # --- loading --------------------------------------------------------------------------------

    def _settings(self, name: str) -> TenantSettings | None:
        found = self.tenant(name)
        return found.settings if found is not None else None

    def drain(self) -> list[PushLoad]:
        """Load every pending body now, batch by batch (the loader thread's work; tests call it)."""
        loads: list[PushLoad] = []
        while (done := load_pending(self.engine, self._settings)) is not None:
            loads.append(done)
            with self._lock:
                self._pending = max(0, self._pending - done.bodies)
            if done.inserted:
                self._analyse(done.tenant)
        with self._lock:  # bodies stored by another process, or counted before a restart
            self._pending = count_pending_push(self.engine)
        return loads

    def _analyse(self, tenant: str) -> None:
        """Start the tenant's analysis unless one was started within ``analysis_every_s`` (never raises)."""
        now = self._monotonic()
        last = self._analysed_at.get(tenant)
        if self._start_analysis is None or (last is not None and now - last < self._analysis_every_s):
            return
        self._analysed_at[tenant] = now
        try:
            self._start_analysis(tenant)
        except Exception as exc:  # analysis is a bonus here: the hourly sweep catches up
            log.warning("tenant %s: analysis after push not started: %s", tenant, describe_error(exc))

    def start(self) -> None:
        """Run the loader in a background thread until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audiapro-push-loader", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loader thread (after the batch it is loading)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(IDLE_WAKE_S)
            self._wake.clear()
            try:
                self.drain()
            except Exception as exc:  # the warehouse or the lock: the bodies stay pending, try again soon
                log.warning(
                    "push loader: batch failed (%s); retrying in %d s", describe_error(exc), RETRY_AFTER_S
                )
                self._stop.wait(RETRY_AFTER_S)
