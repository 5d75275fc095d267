"""Many simulated PBXs behind one HTTP server: ``POST /<tenant>/api`` is that tenant's UCM API.

Scale tests and benchmarks need hundreds of PBXs. One server (one port, one accept thread) with a
path per tenant costs a dictionary lookup per request instead of a listening thread per PBX. Each
tenant is a full :class:`UcmSimulator` with its own credentials, data, clock, faults and counters;
a CloudUCM block reaches it with ``api_path="/<tenant>/api"`` (see :meth:`MultiSimulator.api_path`).

Control endpoints: ``/__sim__/<tenant>/<name>`` is that tenant's ``/__sim__/<name>`` (truth, clock,
stats, faults); ``GET /__sim__/stats`` sums the request counters of every tenant.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from urllib.parse import quote, unquote

from audiapro.ucm.simulator.api import API_PATH, INVALID_BODY, HttpReply, json_reply
from audiapro.ucm.simulator.control import HTTP_NOT_FOUND, ControlEndpoints
from audiapro.ucm.simulator.faults import SimulatorStats
from audiapro.ucm.simulator.server import CONTROL_PREFIX, ServerHandle, start_server
from audiapro.ucm.simulator.simulator import DEFAULT_HOST, UcmSimulator


class MultiSimulator:
    """Serve several :class:`UcmSimulator` instances from one port, one path prefix per tenant.

    Example:
        >>> multi = MultiSimulator()
        >>> multi.add("acme", UcmSimulator(SimulatorConfig(password="Pa55-word!")))  # doctest: +SKIP
        >>> with multi.serve() as base_url:  # doctest: +SKIP
        ...     httpx.post(f"{base_url}{multi.api_path('acme')}", json={...})
    """

    def __init__(self) -> None:
        """Start with no tenant; :meth:`add` them (also while serving)."""
        self._tenants: dict[str, UcmSimulator] = {}
        self._lock = threading.Lock()

    def add(self, name: str, sim: UcmSimulator) -> UcmSimulator:
        """Serve ``sim`` under ``/<name>/api``; returns ``sim``.

        Raises:
            ValueError: ``name`` is empty or already served.
        """
        if not name:
            raise ValueError("a tenant name is needed")
        with self._lock:
            if name in self._tenants:
                raise ValueError(f"tenant {name!r} is already served")
            self._tenants[name] = sim
        return sim

    def __getitem__(self, name: str) -> UcmSimulator:
        """The simulator of tenant ``name``."""
        return self._tenants[name]

    @property
    def names(self) -> list[str]:
        """The tenants served, in the order they were added."""
        return list(self._tenants)

    @staticmethod
    def api_path(name: str) -> str:
        """The API path of tenant ``name`` (the CloudUCM block's ``api_path``)."""
        return f"/{quote(name, safe='')}{API_PATH}"

    def stats(self) -> SimulatorStats:
        """Every tenant's request counters summed (``peak_sessions``: the highest of any tenant)."""
        total = SimulatorStats()
        for sim in list(self._tenants.values()):
            for field in fields(SimulatorStats):
                mine, theirs = getattr(total, field.name), getattr(sim.stats, field.name)
                if field.name == "peak_sessions":
                    setattr(total, field.name, max(mine, theirs))
                else:
                    setattr(total, field.name, mine + theirs)
        return total

    def handle(
        self, method: str, path: str, body: bytes, client_ip: str, cancel: threading.Event
    ) -> HttpReply:
        """Route ``/<tenant>/api`` to the tenant's protocol handler; anything else is invalid."""
        name, rest = _split(path)
        sim = self._tenants.get(name)
        if sim is None:
            return json_reply(INVALID_BODY)  # what a UCM answers on any path that is not its API
        return sim.api.handle(method, rest, body, client_ip, cancel)

    def control(self, method: str, path: str, query: str, body: bytes) -> HttpReply:
        """``/__sim__/<tenant>/<name>`` -> that tenant's control endpoint; ``/__sim__/stats`` summed."""
        inner = path.removeprefix(CONTROL_PREFIX).strip("/")
        if inner == "stats" and method == "GET":
            return json_reply(self.stats().as_dict())
        name, rest = _split("/" + inner)
        sim = self._tenants.get(name)
        if sim is None:
            return json_reply({"error": f"no simulated tenant {name!r}"}, HTTP_NOT_FOUND)
        return ControlEndpoints(sim).handle(method, CONTROL_PREFIX + rest.lstrip("/"), query, body)

    def start(self, host: str = DEFAULT_HOST, port: int = 0) -> ServerHandle:
        """Start serving in a background thread (loopback only); ``.stop()`` the result when done."""
        return start_server(host, port, self.handle, self.control)

    @contextmanager
    def serve(self, host: str = DEFAULT_HOST, port: int = 0) -> Iterator[str]:
        """Serve while the ``with`` block runs; yields the base URL (``http://127.0.0.1:PORT``)."""
        handle = self.start(host, port)
        try:
            yield handle.base_url
        finally:
            handle.stop()


def _split(path: str) -> tuple[str, str]:
    """``/acme/api`` -> ``("acme", "/api")``."""
    head, _, rest = path.lstrip("/").partition("/")
    return unquote(head), "/" + rest
