"""The public facade: :class:`UcmSimulator` ties data, clock, API, faults and transport together."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from audiapro.ucm.simulator.api import UcmApi
from audiapro.ucm.simulator.builder import Tenant
from audiapro.ucm.simulator.calls import CallFactory
from audiapro.ucm.simulator.clock import SimClock, as_utc
from audiapro.ucm.simulator.config import FaultConfig, SimulatorConfig
from audiapro.ucm.simulator.control import ControlEndpoints
from audiapro.ucm.simulator.faults import FaultInjector, SimulatorStats
from audiapro.ucm.simulator.generator import DataStore, Timeline
from audiapro.ucm.simulator.legs import CallTruth, Leg, call_truth, render_leg
from audiapro.ucm.simulator.plan import Plan, build_plan, country_for_zone
from audiapro.ucm.simulator.server import ServerHandle, start_server
from audiapro.ucm.simulator.tls import TlsFiles, create_tls_files

DEFAULT_HOST = "127.0.0.1"
RawLeg = dict[str, str]
#: Margin after the last history call may have ended, for the default manual clock.
SETTLE_SECONDS = 60
#: Slack when mapping a start instant to the last day its legs can end on.
END_DAY_MARGIN = 3600


class UcmSimulator:
    """A fake Grandstream UCM63xx / CloudUCM speaking the real JSON API.

    Example:
        >>> sim = UcmSimulator(SimulatorConfig(seed=7, start=date(2026, 3, 1), days=2))
        >>> with sim.serve() as base_url:   # doctest: +SKIP
        ...     httpx.post(f"{base_url}/api", json={"request": {"action": "challenge", "user": "cdrapi"}})
    """

    def __init__(self, config: SimulatorConfig | None = None, faults: FaultConfig | None = None) -> None:
        """Build the tenant (nothing is generated until a request or ``ground_truth`` needs it).

        Args:
            config: The tenant and protocol settings (defaults: one day ending today, New York).
            faults: Fault injection (default: none).
        """
        self.config = cfg = config or SimulatorConfig()
        self.zone = ZoneInfo(cfg.tz)
        today = datetime.now(self.zone).date()
        self.history_start: date = cfg.start or today - timedelta(days=max(cfg.days, 1) - 1)
        history_end = self.history_start + timedelta(days=cfg.days)
        end_local = datetime(history_end.year, history_end.month, history_end.day, tzinfo=self.zone)
        self.history_end_utc = end_local.astimezone(UTC)
        live_start = as_utc(cfg.live_start) if cfg.live_start is not None else self.history_end_utc
        self.plan: Plan = build_plan(cfg.seed, cfg.extensions, cfg.country or country_for_zone(cfg.tz))
        store = DataStore(
            seed=cfg.seed,
            zone=self.zone,
            factory=CallFactory(Tenant(self.plan, self.zone, cfg)),
            timeline=Timeline(self.history_start, cfg.days, cfg.live_rate, int(live_start.timestamp())),
            calls_per_day=cfg.calls_per_day,
            weekend_factor=cfg.weekend_factor,
            max_call_seconds=cfg.max_call_seconds,
            cache_size=cfg.day_cache_size,
        )
        settled = self.history_end_utc + timedelta(seconds=cfg.max_call_seconds + SETTLE_SECONDS)
        self.clock = SimClock(cfg.clock, cfg.now or settled)
        self._api = UcmApi(cfg, self.zone, store, self.clock, FaultInjector(faults or FaultConfig()))
        self._control = ControlEndpoints(self)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._tls: TlsFiles | None = None
        if cfg.tls:
            directory = cfg.cert_dir
            if directory is None:
                # Removed when the simulator is garbage-collected or the interpreter exits.
                self._tmp = tempfile.TemporaryDirectory(prefix="ucm-sim-tls-")
                directory = Path(self._tmp.name)
            self._tls = create_tls_files(directory)

    # --- state ------------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultConfig:
        """The active fault configuration; assign a new one to change faults at runtime."""
        return self._api.injector.config

    @faults.setter
    def faults(self, value: FaultConfig) -> None:
        with self._api.lock:
            self._api.injector = FaultInjector(value)

    @property
    def stats(self) -> SimulatorStats:
        """Live request counters (see :class:`SimulatorStats`)."""
        return self._api.stats

    @property
    def ca_file(self) -> Path | None:
        """PEM file of the simulator's CA (verify HTTPS against it), ``None`` without TLS."""
        return self._tls.ca_file if self._tls else None

    @property
    def api(self) -> UcmApi:
        """The transport-independent protocol handler (for in-process use)."""
        return self._api

    def reset_bans(self) -> None:
        """Lift all login bans and forget failure counters."""
        with self._api.lock:
            self._api.auth.reset_bans()

    # --- ground truth -----------------------------------------------------------------------------
    def ground_truth(self, *, start: datetime | None = None, end: datetime | None = None) -> list[RawLeg]:
        """Every leg the PBX would have written by the simulator's now (leg end <= now).

        Args:
            start: Only legs starting at or after this instant (aware; naive = UTC).
            end: Only legs starting at or before this instant.

        Returns:
            Raw legs (all fields of the configured schema, including AcctId), in AcctId order.
        """
        with self._api.lock:
            return [render_leg(leg, self.zone, self._api.fields) for leg in self._visible(start, end)]

    def call_truth(
        self, *, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, CallTruth]:
        """Per session, the call the warehouse should hold for the visible legs (leg end <= now).

        ForkCDR copies left out, talk as the union of the answered intervals: see
        :class:`~audiapro.ucm.simulator.legs.CallTruth`. ``start``/``end`` select legs as in
        :meth:`ground_truth` (a call with legs outside them is described by the others).
        """
        with self._api.lock:
            return call_truth(self._visible(start, end))

    def true_start_utc(
        self, *, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, datetime]:
        """The true UTC start of every visible leg, by AcctId (an oracle for DST handling tests).

        Args:
            start: Only legs starting at or after this instant.
            end: Only legs starting at or before this instant.
        """
        with self._api.lock:
            return {
                str(leg.acct): datetime.fromtimestamp(leg.start, UTC) for leg in self._visible(start, end)
            }

    def _visible(self, start: datetime | None, end: datetime | None) -> list[Leg]:
        low = as_utc(start).timestamp() if start is not None else None
        high = as_utc(end).timestamp() if end is not None else None
        store = self._api.store
        now = self.clock.timestamp()
        # Only the end days such legs can fall on: a leg ends soon after max_call_seconds at most.
        first = store.local_date(low) if low is not None else store.first_day
        reach = self.config.max_call_seconds + END_DAY_MARGIN
        last = store.local_date(high + reach) if high is not None else store.local_date(now)
        return [
            leg
            for leg in store.visible(first, last, now)
            if (low is None or leg.start >= low) and (high is None or leg.start <= high)
        ]

    # --- serving ----------------------------------------------------------------------------------
    def start(self, host: str = DEFAULT_HOST, port: int = 0, *, allow_remote: bool = False) -> ServerHandle:
        """Start serving in a background thread; call ``.stop()`` on the result when done.

        Args:
            host: Bind address (loopback only unless ``allow_remote``).
            port: TCP port (0 = a free one; see ``handle.base_url``).
            allow_remote: Allow binding a non-loopback address.
        """
        context = self._tls.server_context() if self._tls else None
        control = self._control.handle if self.config.control_endpoints else None
        return start_server(host, port, self._api.handle, control, context, allow_remote=allow_remote)

    @contextmanager
    def serve(self, host: str = DEFAULT_HOST, port: int = 0, *, allow_remote: bool = False) -> Iterator[str]:
        """Serve while the ``with`` block runs; yields the base URL (``http(s)://127.0.0.1:PORT``)."""
        handle = self.start(host, port, allow_remote=allow_remote)
        try:
            yield handle.base_url
        finally:
            handle.stop()
