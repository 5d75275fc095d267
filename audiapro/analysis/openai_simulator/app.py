"""Transport-independent request handling: routing, auth, transport faults, stats.

`SimApp.handle` maps a `SimRequest` to a `SimResponse`; the HTTP layer in `server.py` only moves
bytes. Routes are the ones the project's client calls; any other path is a 404 like the real API's.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.batches import BatchStore
from audiapro.analysis.openai_simulator.config import OpenAISimConfig
from audiapro.analysis.openai_simulator.faults import (
    EP_BATCHES,
    EP_FILES,
    EP_RESPONSES,
    EP_TRANSCRIPTIONS,
    FaultInjector,
    FaultKind,
    FaultPlan,
    OpenAIFaults,
)
from audiapro.analysis.openai_simulator.multipart import parse_multipart
from audiapro.analysis.openai_simulator.stats import IdFactory, StatsRecorder
from audiapro.analysis.openai_simulator.structured import respond
from audiapro.analysis.openai_simulator.transcriptions import transcribe

API_PREFIX: Final = "/v1"
RATE_LIMIT_REQUESTS: Final = 500
DEFAULT_LIST_LIMIT: Final = 20
DROPPED_STATUS: Final = 0  # recorded in `statuses` when a hung connection is closed without a response
MILLIS: Final = 1000

Reply = dict[str, Any] | bytes


class DropConnection(Exception):
    """The HTTP layer must close the connection without answering (a hung request)."""


@dataclass(frozen=True)
class SimRequest:
    """An HTTP request as the app sees it: upper-case method, path, query, lower-case headers, body."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (400 otherwise)."""
        try:
            value = json.loads(self.body or b"null")
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise errors.SimError(400, "We could not parse the JSON body of your request.")
        return value

    def form(self) -> Any:
        """The body as `multipart/form-data`."""
        return parse_multipart(self.headers.get("content-type", ""), self.body)


@dataclass(frozen=True)
class SimResponse:
    """What to send back: status, encoded body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[SimRequest, dict[str, str], FaultPlan], Reply]


def _rate_limited(knobs: OpenAIFaults) -> errors.SimError:
    millis = round(knobs.retry_after_s * MILLIS)
    seconds = knobs.retry_after_s
    return errors.SimError(
        429,
        f"Rate limit reached for requests per min (RPM): Limit {RATE_LIMIT_REQUESTS}, Used "
        f"{RATE_LIMIT_REQUESTS}, Requested 1. Please try again in {millis}ms.",
        type="requests",
        code="rate_limit_exceeded",
        headers={
            "retry-after": str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}",
            "retry-after-ms": str(millis),
        },
    )


class SimApp:
    """All simulator state and request handling.

    Args:
        config: Static configuration.
        faults: Initial fault knobs.
    """

    def __init__(self, config: OpenAISimConfig, faults: OpenAIFaults) -> None:
        self.config = config
        self.recorder = StatsRecorder()
        self.injector = FaultInjector(config.seed, faults, self.recorder)
        self.ids = IdFactory(config.seed)
        self.store = BatchStore(config, self.ids, self.injector, self.recorder)
        routes: list[tuple[str, str, str, Handler]] = [
            ("POST", "/audio/transcriptions", EP_TRANSCRIPTIONS, self._transcribe),
            ("POST", "/responses", EP_RESPONSES, self._respond),
            ("POST", "/files", EP_FILES, lambda r, p, f: self.store.upload(r.form())),
            ("GET", "/files/{file_id}", EP_FILES, lambda r, p, f: self.store.file(p["file_id"]).to_json()),
            ("GET", "/files/{file_id}/content", EP_FILES, lambda r, p, f: self.store.file(p["file_id"]).data),
            ("POST", "/batches", EP_BATCHES, lambda r, p, f: self.store.create(r.json())),
            ("GET", "/batches", EP_BATCHES, lambda r, p, f: self._list_batches(r)),
            ("GET", "/batches/{batch_id}", EP_BATCHES, lambda r, p, f: self.store.retrieve(p["batch_id"])),
            (
                "POST",
                "/batches/{batch_id}/cancel",
                EP_BATCHES,
                lambda r, p, f: self.store.cancel(p["batch_id"]),
            ),
        ]
        self._routes = [
            (
                f"{method} {API_PREFIX}{path}",
                re.compile(API_PREFIX + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)),
                endpoint,
                handler,
            )
            for method, path, endpoint, handler in routes
        ]

    def _match(self, method: str, path: str) -> tuple[str, str, Handler, dict[str, str]] | None:
        """The route name, fault endpoint, handler and path parameters of a request, if any."""
        for template, pattern, endpoint, handler in self._routes:
            found = pattern.fullmatch(path)
            if found and template.startswith(method + " "):
                return template, endpoint, handler, found.groupdict()
        return None

    def _transcribe(self, request: SimRequest, params: dict[str, str], plan: FaultPlan) -> Reply:
        return transcribe(request.form(), self.config, self.recorder)

    def _respond(self, request: SimRequest, params: dict[str, str], plan: FaultPlan) -> Reply:
        return respond(request.json(), self.config, self.recorder, self.ids, fault=plan.content, batch=False)

    def _list_batches(self, request: SimRequest) -> Reply:
        limit = request.query.get("limit", [str(DEFAULT_LIST_LIMIT)])[0]
        if not limit.isdigit():
            raise errors.invalid("limit", "Invalid type for 'limit': expected an integer.", "invalid_type")
        return self.store.list(int(limit), request.query.get("after", [None])[0])

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        # Constant-time comparison; the key itself never reaches an error message or a log.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.config.api_key.encode()
        ):
            message = "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
            raise errors.SimError(401, message, code="invalid_api_key")

    def _transport_fault(self, plan: FaultPlan, stop: threading.Event) -> None:
        kind, knobs = plan.transport, plan.knobs
        if kind is None:
            return
        self.injector.record(kind)
        if kind is FaultKind.HANG:
            stop.wait(knobs.hang_s)
            raise DropConnection
        if kind is FaultKind.RATE_LIMIT:
            raise _rate_limited(knobs)
        if kind is FaultKind.INSUFFICIENT_QUOTA:
            message = "You exceeded your current quota, please check your plan and billing details."
            raise errors.SimError(429, message, type="insufficient_quota", code="insufficient_quota")
        message = "The server had an error while processing your request. Sorry about that!"
        raise errors.SimError(500, message, type=errors.SERVER_ERROR)

    def handle(self, request: SimRequest, stop: threading.Event) -> SimResponse:
        """Answer one request (`stop` is set when the server shuts down; it interrupts hangs).

        Raises:
            DropConnection: The connection must be closed without a response.
        """
        matched = self._match(request.method, request.path.rstrip("/"))
        route = matched[0] if matched else f"{request.method} <unknown>"
        try:
            if matched is None:
                raise errors.SimError(404, f"Invalid URL ({request.method} {request.path})")
            _, endpoint, handler, params = matched
            self._authenticate(request.headers)
            plan = self.injector.plan(endpoint)
            self._transport_fault(plan, stop)
            reply = handler(request, params, plan)
            response = _encode(200, reply, {})
        except errors.SimError as exc:
            response = _encode(exc.status, exc.body(), exc.headers)
        except DropConnection:
            self.recorder.request(route, DROPPED_STATUS)
            raise
        response.headers["x-request-id"] = self.ids.new("req_", 32)
        self.recorder.request(route, response.status)
        return response


def _encode(status: int, reply: Reply, headers: dict[str, str]) -> SimResponse:
    if isinstance(reply, bytes):
        return SimResponse(status, reply, "application/octet-stream", dict(headers))
    return SimResponse(
        status, json.dumps(reply, ensure_ascii=False).encode(), "application/json", dict(headers)
    )
