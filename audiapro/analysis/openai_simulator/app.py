"""Transport-independent request handling: routing, auth, fault injection, stats.

`SimApp.handle` maps a `SimRequest` to a `SimResponse`; the HTTP layer in `server.py` only moves
bytes. Keeping the two apart lets the HTTP server stay a thin stdlib wrapper.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.batches import DEFAULT_LIST_LIMIT, BatchStore
from audiapro.analysis.openai_simulator.billing import Biller
from audiapro.analysis.openai_simulator.config import (
    EP_BATCHES,
    EP_CHAT,
    EP_FILES,
    EP_MODELS,
    EP_RESPONSES,
    EP_TRANSCRIPTIONS,
    FaultKind,
    OpenAIFaults,
    OpenAISimConfig,
)
from audiapro.analysis.openai_simulator.faults import FaultInjector, FaultPlan
from audiapro.analysis.openai_simulator.files import FileStore
from audiapro.analysis.openai_simulator.multipart import parse_multipart
from audiapro.analysis.openai_simulator.stats import StatsRecorder
from audiapro.analysis.openai_simulator.structured import TextEngine
from audiapro.analysis.openai_simulator.transcriptions import TranscriptionEngine
from audiapro.analysis.openai_simulator.util import IdFactory

API_PREFIX = "/v1"
OPENAI_VERSION = "2020-10-01"
MODEL_CREATED_AT = 1_767_225_600  # 2026-01-01, a fixed value keeps `GET /v1/models` stable
RATE_LIMIT_REQUESTS = 500
DROPPED_STATUS = 0  # recorded in `statuses` when a hung connection is closed without a response
UNKNOWN_ROUTE = "<unknown>"

Reply = dict[str, Any] | str | bytes


class DropConnection(Exception):
    """The HTTP layer must close the connection without answering (a hung request)."""


@dataclass(frozen=True)
class SimRequest:
    """An HTTP request as the app sees it.

    Attributes:
        method: Upper-case HTTP method.
        path: URL path without the query string.
        query: Parsed query string.
        headers: Header values by lower-case name.
        body: Raw body.
    """

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
            raise errors.invalid_json_body() from None
        if not isinstance(value, dict):
            raise errors.invalid_json_body()
        return value

    def form(self) -> Any:
        """The body as `multipart/form-data`."""
        return parse_multipart(self.headers.get("content-type", ""), self.body)


@dataclass(frozen=True)
class SimResponse:
    """What to send back.

    Attributes:
        status: HTTP status code.
        body: Encoded body.
        content_type: Content-Type header.
        headers: Extra headers.
    """

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[SimRequest, dict[str, str], FaultPlan], Reply]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    endpoint: str
    handler: Handler


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


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
        biller = Biller(config, self.recorder)
        self.files = FileStore(config, self.ids)
        self.text = TextEngine(config, self.ids, self.injector, biller)
        self.transcriptions = TranscriptionEngine(config, biller)
        self.batches = BatchStore(config, self.ids, self.files, self.text, self.injector)
        self._routes = self._build_routes()

    # -- routing ------------------------------------------------------------------------------

    def _build_routes(self) -> list[_Route]:
        table: list[tuple[str, str, str, Handler]] = [
            (
                "POST",
                "/audio/transcriptions",
                EP_TRANSCRIPTIONS,
                lambda r, p, f: self.transcriptions.transcribe(r.form()),
            ),
            (
                "POST",
                "/responses",
                EP_RESPONSES,
                lambda r, p, f: self.text.responses(r.json(), fault=f.content, batch=False),
            ),
            (
                "POST",
                "/chat/completions",
                EP_CHAT,
                lambda r, p, f: self.text.chat(r.json(), fault=f.content, batch=False),
            ),
            ("GET", "/models", EP_MODELS, lambda r, p, f: self._models()),
            ("GET", "/models/{model}", EP_MODELS, lambda r, p, f: self._model(p["model"])),
            ("POST", "/files", EP_FILES, lambda r, p, f: self.files.upload(r.form())),
            ("GET", "/files", EP_FILES, lambda r, p, f: self.files.list(_first(r.query, "purpose"))),
            ("GET", "/files/{file_id}", EP_FILES, lambda r, p, f: self.files.get(p["file_id"]).to_json()),
            ("DELETE", "/files/{file_id}", EP_FILES, lambda r, p, f: self.files.delete(p["file_id"])),
            ("GET", "/files/{file_id}/content", EP_FILES, lambda r, p, f: self.files.get(p["file_id"]).data),
            ("POST", "/batches", EP_BATCHES, lambda r, p, f: self.batches.create(r.json())),
            ("GET", "/batches", EP_BATCHES, lambda r, p, f: self._list_batches(r)),
            ("GET", "/batches/{batch_id}", EP_BATCHES, lambda r, p, f: self.batches.retrieve(p["batch_id"])),
            (
                "POST",
                "/batches/{batch_id}/cancel",
                EP_BATCHES,
                lambda r, p, f: self.batches.cancel(p["batch_id"]),
            ),
        ]
        return [
            _Route(method, _compile(API_PREFIX + path), f"{method} {API_PREFIX}{path}", endpoint, handler)
            for method, path, endpoint, handler in table
        ]

    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        for route in self._routes:
            found = route.pattern.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    # -- small handlers -----------------------------------------------------------------------

    def _model_json(self, model: str) -> dict[str, Any]:
        return {
            "id": model,
            "object": "model",
            "created": MODEL_CREATED_AT,
            "owned_by": "system",
            "shutdown_date": self.config.shutdown_dates.get(model),
        }

    def _all_models(self) -> tuple[str, ...]:
        return self.config.transcription_models + self.config.text_models

    def _models(self) -> dict[str, Any]:
        return {"object": "list", "data": [self._model_json(m) for m in self._all_models()]}

    def _model(self, model: str) -> dict[str, Any]:
        if model not in self._all_models():
            raise errors.model_not_found(model)
        return self._model_json(model)

    def _list_batches(self, request: SimRequest) -> dict[str, Any]:
        raw = _first(request.query, "limit")
        try:
            limit = int(raw) if raw is not None else DEFAULT_LIST_LIMIT
        except ValueError:
            raise errors.invalid_type("limit", "an integer") from None
        return self.batches.list(limit, _first(request.query, "after"))

    # -- request pipeline ---------------------------------------------------------------------

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.missing_api_key()
        # Constant-time comparison; the key itself never reaches an error message or a log.
        if not hmac.compare_digest(token.strip().encode(), self.config.api_key.encode()):
            raise errors.invalid_api_key()

    def _transport_fault(self, plan: FaultPlan, request: SimRequest, stop: threading.Event) -> None:
        kind, knobs = plan.transport, plan.knobs
        if kind is None:
            return
        self.injector.record(kind)
        if kind is FaultKind.HANG:
            stop.wait(knobs.hang_s)
            if not knobs.hang_bills or stop.is_set():
                raise DropConnection
            return
        if kind is FaultKind.RATE_LIMIT:
            millis = round(knobs.retry_after_s * 1000)
            raise errors.SimError(
                429,
                f"Rate limit reached for {_model_hint(request)} in organization org-simulator on "
                f"requests per min (RPM): Limit {RATE_LIMIT_REQUESTS}, Used {RATE_LIMIT_REQUESTS}, "
                f"Requested 1. Please try again in {millis}ms. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
                type="requests",
                code="rate_limit_exceeded",
                headers={
                    "retry-after": _format_seconds(knobs.retry_after_s),
                    "retry-after-ms": str(millis),
                    "x-ratelimit-limit-requests": str(RATE_LIMIT_REQUESTS),
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{millis}ms",
                },
            )
        if kind is FaultKind.INSUFFICIENT_QUOTA:
            raise errors.SimError(
                429,
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                type="insufficient_quota",
                code="insufficient_quota",
            )
        raise errors.SimError(
            knobs.server_error_status,
            "The server had an error while processing your request. Sorry about that!",
            type=errors.SERVER_ERROR,
        )

    def handle(self, request: SimRequest, stop: threading.Event) -> SimResponse:
        """Answer one request.

        Args:
            request: The decoded HTTP request.
            stop: Set when the server shuts down; interrupts hangs.

        Returns:
            The response to send.

        Raises:
            DropConnection: The connection must be closed without a response.
        """
        started = time.monotonic()
        path = request.path.rstrip("/") or "/"
        matched = self._match(request.method, path)
        route_name = matched[0].template if matched else f"{request.method} {UNKNOWN_ROUTE}"
        request_id = self.ids.hex("req_", 32)
        try:
            if path.startswith(API_PREFIX + "/") and matched is not None:
                self._authenticate(request.headers)
            if matched is None:
                raise errors.invalid_url(request.method, request.path)
            route, params = matched
            plan = self.injector.plan(route.endpoint)
            self._transport_fault(plan, request, stop)
            reply = route.handler(request, params, plan)
            response = _encode(200, reply, {})
        except errors.SimError as exc:
            response = _encode(exc.status, exc.body(), exc.headers)
        except DropConnection:
            self.recorder.request(route_name, DROPPED_STATUS)
            raise
        response.headers.update(
            {
                "x-request-id": request_id,
                "openai-version": OPENAI_VERSION,
                "openai-processing-ms": str(round((time.monotonic() - started) * 1000)),
            }
        )
        self.recorder.request(route_name, response.status)
        return response


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _model_hint(request: SimRequest) -> str:
    """The model named in a JSON body, for rate-limit messages (best effort)."""
    try:
        body = json.loads(request.body)
    except ValueError:
        return "default"
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else "default"


def _encode(status: int, reply: Reply, headers: dict[str, str]) -> SimResponse:
    if isinstance(reply, bytes):
        return SimResponse(status, reply, "application/octet-stream", dict(headers))
    if isinstance(reply, str):
        return SimResponse(status, reply.encode(), "text/plain; charset=utf-8", dict(headers))
    return SimResponse(
        status, json.dumps(reply, ensure_ascii=False).encode(), "application/json", dict(headers)
    )


def parse_query(raw: str) -> dict[str, list[str]]:
    """Parse a URL query string."""
    return parse_qs(raw, keep_blank_values=True)
