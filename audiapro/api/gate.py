"""The admin API's front door (ASGI middleware): who may ask, and how much a request may carry.

It runs before FastAPI reads anything of a request, so nothing a client sends reaches memory unchecked:

* **Token first.** Admin routes (``ADMIN_PREFIX``) need the admin bearer token, checked from the
  headers alone: a request without it, or with a wrong one, is answered 401 and its body is never
  read. On ``TOKEN_OPTIONAL_PATHS`` (``/api/health``) a presented token is checked the same way and
  unlocks the full answer; without one the request goes on as anonymous.
* **Bodies capped per route** (``BODY_LIMITS``, else ``DEFAULT_BODY_LIMIT``): a ``Content-Length``
  over the cap is answered 413 at once; otherwise the body bytes are counted as they stream in and
  the request is answered 413 the moment they pass the cap, whatever ``Content-Length`` said (a
  chunked body has none). Memory stays at one server read buffer plus the cap.
* Refusals answer ``{"detail": "<one line>"}`` and close the connection, so the server stops reading
  whatever else the client meant to send.

The route handlers see ``scope[ADMIN_SCOPE_KEY] is True`` for a request that presented the token.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from audiapro.api.auth import bearer_token, token_matches

log = logging.getLogger("audiapro.api")

#: Routes under this prefix change something: they need the admin bearer token.
ADMIN_PREFIX: Final = "/api/admin/"
#: Routes that answer more to a caller with the token (a presented token is checked there too).
TOKEN_OPTIONAL_PATHS: Final = frozenset({"/api/health"})
#: Largest request body per route, in bytes. sync-cdrs takes ``{"tenant": "<at most 100 characters>"}``.
BODY_LIMITS: Final[Mapping[str, int]] = {"/api/admin/sync-cdrs": 4 << 10}
#: Largest body of every other route (none of them reads one).
DEFAULT_BODY_LIMIT: Final = 1 << 10
#: Scope key the gate sets to True when the request presented the admin token.
ADMIN_SCOPE_KEY: Final = "audiapro.admin"
UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": "Bearer"}
#: Sent with every refusal: the server closes the connection instead of reading the rest of a body.
_CLOSE: Final = {"Connection": "close"}

#: Returns the configured admin token (None when there is none); may block (it asks Prefect).
TokenSource = Callable[[], "str | None"]
#: Turns a failure to read the token into one redacted line.
Describer = Callable[[str, BaseException], str]


class _BodyTooLarge(Exception):
    """Raised into the application when the streamed body passes the route's cap."""


@dataclass
class _BodyCount:
    limit: int
    received: int = 0
    exceeded: bool = False
    response_started: bool = False


class RequestGate:
    """ASGI middleware: token check from the headers, then a counted, capped body (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        admin_token: TokenSource,
        describe: Describer,
        body_limits: Mapping[str, int] = BODY_LIMITS,
        default_body_limit: int = DEFAULT_BODY_LIMIT,
        prefix_limits: Mapping[str, int] | None = None,
    ) -> None:
        """Wrap ``app``.

        Args:
            app: The application behind the gate.
            admin_token: Reads the configured token (on every checked request, so rotation is at once).
            describe: One redacted line for a failure to read the token (``service.describe``).
            body_limits: Largest body per route path, in bytes.
            default_body_limit: Largest body of any other path.
            prefix_limits: Largest body of the paths under each prefix (push, uploads).
        """
        self.app = app
        self.admin_token = admin_token
        self.describe = describe
        self.body_limits = dict(body_limits)
        self.default_body_limit = default_body_limit
        self.prefix_limits = dict(prefix_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check, then pass the request on with a counting ``receive``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        headers = _headers(scope)
        if path.startswith(ADMIN_PREFIX) or (path in TOKEN_OPTIONAL_PATHS and "authorization" in headers):
            refusal = await self._check_token(scope, headers.get("authorization"))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        limit = self._limit(path)
        declared = headers.get("content-length")
        if declared is not None and not declared.strip().isdigit():
            await _refuse(400, "invalid Content-Length header")(scope, receive, send)
            return
        if declared is not None and int(declared) > limit:
            await _too_large(scope, limit)(scope, receive, send)
            return
        await self._pass_counted(scope, receive, send, _BodyCount(limit))

    def _limit(self, path: str) -> int:
        """The route's cap: its own, else its prefix's (the longest matching), else the default."""
        if path in self.body_limits:
            return self.body_limits[path]
        prefixes = [prefix for prefix in self.prefix_limits if path.startswith(prefix)]
        return self.prefix_limits[max(prefixes, key=len)] if prefixes else self.default_body_limit

    async def _check_token(self, scope: Scope, authorization: str | None) -> JSONResponse | None:
        """None when the request carries the admin token (and marks it so), else the refusal."""
        presented = bearer_token(authorization)
        if presented is None:
            return _refuse(401, "bearer token required", UNAUTHORIZED_HEADERS)
        try:
            expected = await run_in_threadpool(self.admin_token)
        except Exception as exc:
            return _refuse(503, self.describe("Prefect API", exc))
        if expected is None:
            return _refuse(503, "no admin token configured: run `audiapro admin-token set`")
        if not token_matches(presented, expected):
            client = scope.get("client")
            log.warning("admin request with a wrong token from %s refused", client[0] if client else "?")
            return _refuse(401, "invalid bearer token", UNAUTHORIZED_HEADERS)
        scope[ADMIN_SCOPE_KEY] = True
        return None

    async def _pass_counted(self, scope: Scope, receive: Receive, send: Send, count: _BodyCount) -> None:
        async def counted_receive() -> Message:
            if count.exceeded:  # the application asks again after the refusal: it gets nothing more
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                count.received += len(message.get("body", b""))
                if count.received > count.limit:
                    count.exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if count.exceeded and not count.response_started:
                return  # the application's answer to a body it could not read; the 413 replaces it
            count.response_started = count.response_started or message["type"] == "http.response.start"
            await send(message)

        # An application that lets the exception through is answered below like one that caught it.
        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, counted_receive, guarded_send)
        if count.exceeded and not count.response_started:
            await _too_large(scope, count.limit)(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the router matches (without the ``root_path`` a proxy mount adds), like Starlette."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :]
    return path


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (a repeated header: the last one, Content-Length: see below)."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "content-length" and name in found and found[name] != value:
            value = "conflicting"  # two different lengths: refused as invalid
        found[name] = value
    return found


def _refuse(code: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers={**(headers or {}), **_CLOSE})


def _too_large(scope: Scope, limit: int) -> JSONResponse:
    route = f"{scope.get('method', '')} {_route_path(scope)}".strip()
    return _refuse(413, f"request body over {limit} bytes, the limit of {route}")


def is_admin(scope: Mapping[str, Any]) -> bool:
    """Whether the gate let this request in with the admin token."""
    return scope.get(ADMIN_SCOPE_KEY) is True
