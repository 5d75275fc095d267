"""The simulator's own HTTP endpoints for out-of-process tests and demos (not part of the UCM API).

- ``GET /__sim__/truth[?start=ISO&end=ISO]`` -> ``{"now": ISO, "legs": [...]}``
- ``GET /__sim__/clock`` -> ``{"now": ISO}``; ``POST /__sim__/clock`` ``{"set": ISO}`` or ``{"advance": s}``
- ``GET /__sim__/stats`` -> the request counters
- ``GET|POST /__sim__/faults`` -> read or replace the fault configuration
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from audiapro.ucm.simulator.api import HttpReply, json_reply
from audiapro.ucm.simulator.config import FaultConfig
from audiapro.ucm.simulator.server import json_body

if TYPE_CHECKING:
    from audiapro.ucm.simulator.simulator import UcmSimulator

HTTP_BAD_REQUEST = 400
HTTP_NOT_FOUND = 404


def _error(message: str, status: int = HTTP_BAD_REQUEST) -> HttpReply:
    return json_reply({"error": message}, status)


class ControlEndpoints:
    """Routes ``/__sim__/*`` requests to a simulator."""

    def __init__(self, sim: UcmSimulator) -> None:
        """Bind to ``sim``."""
        self.sim = sim

    def handle(self, method: str, path: str, query: str, body: bytes) -> HttpReply:
        """Serve one control request."""
        name = path.removeprefix("/__sim__/").strip("/")
        try:
            if name == "truth" and method == "GET":
                return self._truth(parse_qs(query))
            if name == "clock" and method in ("GET", "POST"):
                return self._clock(json_body(body) if method == "POST" else {})
            if name == "stats" and method == "GET":
                return json_reply(self.sim.stats.as_dict())
            if name == "faults" and method in ("GET", "POST"):
                if method == "POST":
                    self.sim.faults = FaultConfig(**json_body(body))
                return json_reply(asdict(self.sim.faults))
        except (TypeError, ValueError) as exc:
            return _error(str(exc))
        return _error(f"unknown control endpoint {method} {path}", HTTP_NOT_FOUND)

    def _truth(self, params: dict[str, list[str]]) -> HttpReply:
        bounds: dict[str, datetime] = {}
        for key in ("start", "end"):
            if key in params:
                bounds[key] = datetime.fromisoformat(params[key][0])
        legs = self.sim.ground_truth(**bounds)
        return json_reply({"now": self.sim.clock.now().isoformat(), "legs": legs})

    def _clock(self, payload: dict[str, Any]) -> HttpReply:
        if "set" in payload:
            self.sim.clock.set(datetime.fromisoformat(str(payload["set"])))
        elif "advance" in payload:
            self.sim.clock.advance(float(payload["advance"]))
        elif payload:
            raise ValueError('expected {"set": ISO} or {"advance": seconds}')
        return json_reply({"now": self.sim.clock.now().isoformat()})
