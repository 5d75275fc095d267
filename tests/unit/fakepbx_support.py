"""A scriptable in-process fake PBX for ``httpx.MockTransport`` (no tests here).

The ``test_ucm_*`` modules import :class:`FakePbx` and :func:`make_client` from here; the fake's own
sanity tests are in ``test_ucm_fakepbx.py``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from audiapro.ucm.client import UcmClient, UcmConnection
from audiapro.ucm.retry import RetryPolicy

PASSWORD = "pw-Xy9!correct-horse"
CHALLENGE = "0000001496038514"
COOKIE = "sid743052864-1771597757"

if TYPE_CHECKING:
    from audiapro.ucm.guard import LoginGuard

Scripted = dict[str, Any] | httpx.Response | Exception | Callable[[dict[str, Any]], Any]


def wav_bytes(payload: bytes = b"\x00\x01" * 50) -> bytes:
    """A minimal RIFF/WAVE file."""
    fmt = b"fmt " + (16).to_bytes(4, "little") + b"\x01\x00\x01\x00" + (8000).to_bytes(4, "little")
    fmt += (16000).to_bytes(4, "little") + b"\x02\x00\x10\x00"
    data = b"data" + len(payload).to_bytes(4, "little") + payload
    body = b"WAVE" + fmt + data
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def flat_leg(acct_id: int, **extra: Any) -> dict[str, Any]:
    """A flat cdr_root item with realistic string fields."""
    leg = {
        "cdr": "",
        "AcctId": str(acct_id),
        "src": "203",
        "dst": "204",
        "start": "2026-03-01 09:00:00",
        "uniqueid": f"17723{acct_id:05d}.{acct_id}",
        "session": f"17723{acct_id:05d}000001-203",
        "disposition": "ANSWERED",
    }
    leg.update(extra)
    return leg


class FakePbx:
    """Minimal UCM JSON API: challenge/login/logout, cdrapi paging, getRecordInfosByCall, recapi.

    ``script(action, *responses)`` queues replies that win over the default behaviour, one per
    request: a dict (JSON reply), an ``httpx.Response``, an exception to raise, or a callable taking
    the request object and returning one of those.
    """

    def __init__(self, *, password: str = PASSWORD, user: str = "cdrapi") -> None:
        self.password = password
        self.user = user
        self.requests: list[dict[str, Any]] = []
        self.http_requests: list[httpx.Request] = []
        self.scripts: dict[str, list[Scripted]] = defaultdict(list)
        self.items: list[Any] = []
        self.recordings: dict[tuple[str, str], bytes] = {}
        self.record_infos: dict[str, str] = {}
        self.cookie_serial = 0
        self.valid_cookies: set[str] = set()
        self.pending_challenge: str | None = None

    # -- helpers
    def script(self, action: str, *responses: Scripted) -> None:
        self.scripts[action].extend(responses)

    def actions(self) -> list[str]:
        return [req["action"] for req in self.requests]

    def count(self, action: str) -> int:
        return self.actions().count(action)

    def cdr_offsets(self) -> list[int]:
        return [int(req["offset"]) for req in self.requests if req["action"] == "cdrapi"]

    def expire_sessions(self) -> None:
        self.valid_cookies.clear()

    # -- transport entry point
    def handler(self, request: httpx.Request) -> httpx.Response:
        self.http_requests.append(request)
        req = json.loads(request.content)["request"]
        self.requests.append(req)
        action = req["action"]
        if self.scripts[action]:
            reply = self.scripts[action].pop(0)
            if callable(reply) and not isinstance(reply, httpx.Response | Exception):
                reply = reply(req)
            if isinstance(reply, Exception):
                raise reply
            if isinstance(reply, httpx.Response):
                return reply
            return httpx.Response(200, json=reply)
        return getattr(self, f"on_{action}")(req)

    # -- default behaviour
    def on_challenge(self, req: dict[str, Any]) -> httpx.Response:
        if req.get("user") != self.user:
            return httpx.Response(200, json={"status": -71, "response": {"error_msg": "no such user"}})
        self.pending_challenge = CHALLENGE
        return httpx.Response(200, json={"response": {"challenge": CHALLENGE}, "status": 0})

    def on_login(self, req: dict[str, Any]) -> httpx.Response:
        expected = hashlib.md5((CHALLENGE + self.password).encode()).hexdigest()
        if self.pending_challenge is None or req.get("token") != expected:
            self.pending_challenge = None
            return httpx.Response(
                200,
                json={
                    "response": {"remain_num": "4", "error_msg": "Wrong account or password!"},
                    "status": -37,
                },
            )
        self.pending_challenge = None
        self.cookie_serial += 1
        cookie = f"{COOKIE}{self.cookie_serial}"
        self.valid_cookies.add(cookie)
        return httpx.Response(200, json={"response": {"cookie": cookie}, "status": 0})

    def on_logout(self, req: dict[str, Any]) -> httpx.Response:
        self.valid_cookies.discard(req.get("cookie", ""))
        return httpx.Response(200, json={"status": 0})

    def _session_error(self, req: dict[str, Any]) -> httpx.Response | None:
        if "cookie" not in req:
            return httpx.Response(200, json={"status": -5})
        if req["cookie"] not in self.valid_cookies:
            return httpx.Response(200, json={"status": -6, "response": {"error_msg": "Cookie error"}})
        return None

    def on_cdrapi(self, req: dict[str, Any]) -> httpx.Response:
        error = self._session_error(req)
        if error is not None:
            return error
        offset, size = int(req["offset"]), int(req["numRecords"])
        return httpx.Response(200, json={"cdr_root": self.items[offset : offset + size]})

    def on_getRecordInfosByCall(self, req: dict[str, Any]) -> httpx.Response:
        error = self._session_error(req)
        if error is not None:
            return error
        files = self.record_infos.get(req["id"])
        if files is None:
            return httpx.Response(200, json={"status": -15})
        return httpx.Response(200, json={"response": {"recordfiles": files}, "status": 0})

    def on_recapi(self, req: dict[str, Any]) -> httpx.Response:
        error = self._session_error(req)
        if error is not None:
            return error
        data = self.recordings.get((req["filedir"], req["filename"]))
        if data is None:
            return httpx.Response(200, json={"status": -16, "response": {"error_msg": "No such item"}})
        return httpx.Response(200, content=data, headers={"Content-Type": "audio/x-wav"})

    def on_getSystemStatus(self, req: dict[str, Any]) -> httpx.Response:
        error = self._session_error(req)
        return error or httpx.Response(200, json={"status": 0, "response": {"up-time": "1"}})


def make_client(
    pbx: FakePbx, *, login_guard: LoginGuard | None = None, **settings: Any
) -> tuple[UcmClient, list[float]]:
    """A client wired to ``pbx`` (connection ``settings``); returns it and the list of every sleep."""
    sleeps: list[float] = []
    fields: dict[str, Any] = {
        "host": "pbx.example",
        "api_user": "cdrapi",
        "password": SecretStr(PASSWORD),
        "timezone": "America/New_York",
        "retry": RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=2.0, jitter=0.5),
    }
    fields.update(settings)
    # Only passed when given, so that the fake also drives clients that predate login guards.
    extra: dict[str, Any] = {"login_guard": login_guard} if login_guard is not None else {}
    client = UcmClient(
        UcmConnection(**fields),
        transport=httpx.MockTransport(pbx.handler),
        sleep=sleeps.append,
        rng=random.Random(1),
        **extra,
    )
    return client, sleeps
