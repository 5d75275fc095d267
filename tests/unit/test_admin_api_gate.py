"""The admin API's gate: the token is checked before a body is read, bodies are capped, memory stays
bounded whatever a client sends, and anonymous health says only whether the service is up.

Bodies are sent two ways: straight into the ASGI application (where nothing but the application
limits what ``receive`` hands over: a lying ``Content-Length`` is passed on as it is) and over a real
socket to the application served by uvicorn (chunked, declared too large, declared too small).
"""

from __future__ import annotations

import asyncio
import json
import socket
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from audiapro.api.app import create_app
from audiapro.api.fake import InMemoryOrchestrator
from audiapro.api.gate import BODY_LIMITS, DEFAULT_BODY_LIMIT
from audiapro.api.health import TenantInfo
from audiapro.api.serve import served_in_thread
from tests.unit.test_admin_api import AUTH, NOW, SYNC, TOKEN, deployed, synced

#: What a client sends in the large-body tests: far above any cap, small enough for the old code.
BIG_BODY = 32 << 20
BLOCK = b"x" * (64 << 10)
#: Memory one refused request may take, whatever its size (a server read buffer and the cap fit easily).
BOUNDED = 4 << 20
SYNC_LIMIT = BODY_LIMITS[SYNC]
HOST = "pbx-acme.example.net"


@pytest.fixture
def orchestrator() -> InMemoryOrchestrator:
    return InMemoryOrchestrator(deployment=deployed(), tenant_list=[TenantInfo("acme")], token=TOKEN)


@pytest.fixture
def app(orchestrator: InMemoryOrchestrator) -> FastAPI:
    error = f"UcmTransportError: cannot reach {HOST}:8443"
    return create_app(orchestrator, lambda: [synced("acme", error=error, failures=2)], clock=lambda: NOW)


# --- health -----------------------------------------------------------------------------------------


def test_anonymous_health_says_only_whether_the_service_is_up(
    app: FastAPI, orchestrator: InMemoryOrchestrator
) -> None:
    client = TestClient(app)
    degraded = client.get("/api/health")
    assert (degraded.status_code, degraded.json()) == (200, {"status": "degraded"})  # acme is failing
    for secret in ("acme", HOST, "8443", "brave-otter", "UcmTransportError"):
        assert secret not in degraded.text
    orchestrator.fail_with = ConnectionError("Prefect is down")
    down = client.get("/api/health")
    assert (down.status_code, down.json()) == (503, {"status": "error"})


def test_health_details_need_the_admin_token(app: FastAPI, orchestrator: InMemoryOrchestrator) -> None:
    client = TestClient(app)
    full = client.get("/api/health", headers=AUTH).json()
    assert full["status"] == "degraded" and full["tenants"][0]["tenant"] == "acme"
    assert HOST in full["tenants"][0]["last_error"]
    wrong = client.get("/api/health", headers={"Authorization": "Bearer wrong-token-wrong-token-wrong"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "invalid bearer token"})
    orchestrator.token = None
    unset = client.get("/api/health", headers=AUTH)
    assert unset.status_code == 503 and "audiapro admin-token set" in unset.json()["detail"]


# --- the ASGI application, called directly --------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    taken: int  # body bytes the application took from receive()


def call(app: FastAPI, headers: dict[str, str], chunks: Iterable[bytes], root_path: str = "") -> Answer:
    """POST ``chunks`` to sync-cdrs as one streamed body; nothing limits it but the application."""
    stream = iter(chunks)
    taken = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal taken
        chunk = next(stream, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        taken += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": root_path + SYNC, "raw_path": (root_path + SYNC).encode(),
        "query_string": b"", "root_path": root_path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    head = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return Answer(start["status"], head, body, taken)


def big_body(size: int = BIG_BODY) -> Iterator[bytes]:
    for _ in range(size // len(BLOCK)):
        yield BLOCK


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-wrong-token-wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "not-bearer"],
)
def test_a_request_without_the_token_is_refused_before_its_body_is_read(
    app: FastAPI, orchestrator: InMemoryOrchestrator, headers: dict[str, str]
) -> None:
    answer = call(app, {**headers, "Content-Type": "application/json"}, big_body())
    assert answer.status == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert answer.taken == 0
    assert answer.headers["connection"] == "close"  # the server stops reading the rest
    assert orchestrator.started == []


def test_a_declared_length_over_the_cap_is_413_before_the_body_is_read(
    app: FastAPI, orchestrator: InMemoryOrchestrator
) -> None:
    answer = call(app, {**AUTH, "Content-Length": str(BIG_BODY)}, big_body())
    assert answer.status == 413 and answer.taken == 0
    assert json.loads(answer.body) == {
        "detail": f"request body over {SYNC_LIMIT} bytes, the limit of POST {SYNC}"
    }
    assert orchestrator.started == []


@pytest.mark.parametrize("declared", [None, "20"], ids=["no-length", "lying-length"])
def test_streamed_bytes_over_the_cap_are_413_whatever_was_declared(
    app: FastAPI, orchestrator: InMemoryOrchestrator, declared: str | None
) -> None:
    headers = {**AUTH, **({"Content-Length": declared} if declared else {})}
    tracemalloc.start()
    try:
        answer = call(app, headers, big_body())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert answer.status == 413 and json.loads(answer.body)["detail"].startswith("request body over")
    assert answer.taken <= SYNC_LIMIT + len(BLOCK)  # it stopped reading at the first block over the cap
    assert peak < BOUNDED, peak
    assert orchestrator.started == []


def test_the_gate_sees_admin_routes_under_a_proxy_prefix_too(
    app: FastAPI, orchestrator: InMemoryOrchestrator
) -> None:
    refused = call(app, {"Content-Type": "application/json"}, big_body(), root_path="/ops")
    assert (refused.status, refused.taken) == (401, 0)
    body = json.dumps({"tenant": "acme"}).encode()
    assert call(app, {**AUTH, "Content-Type": "application/json"}, [body], root_path="/ops").status == 202
    assert orchestrator.started == ["acme"]


@pytest.mark.parametrize("length", ["12x", "-1", "5, 6"])
def test_an_invalid_content_length_is_refused(app: FastAPI, length: str) -> None:
    assert call(app, {**AUTH, "Content-Length": length}, [b"{}"]).status == 400


def test_bodies_within_the_cap_still_work(app: FastAPI, orchestrator: InMemoryOrchestrator) -> None:
    body = json.dumps({"tenant": "acme"}).encode()
    answer = call(app, {**AUTH, "Content-Type": "application/json", "Content-Length": str(len(body))}, [body])
    assert answer.status == 202 and orchestrator.started == ["acme"]
    padded = json.dumps({"tenant": "acme", "pad": " " * (SYNC_LIMIT - 40)}).encode()
    assert len(padded) <= SYNC_LIMIT
    assert call(app, {**AUTH, "Content-Type": "application/json"}, [padded]).status == 202
    client = TestClient(app)
    assert client.post("/api/health", content=b"x" * (DEFAULT_BODY_LIMIT + 1)).status_code == 413
    assert client.get("/api/health", headers={"Content-Length": "0"}).status_code == 200


# --- a real client over a real socket -----------------------------------------------------------------


@pytest.fixture
def served(app: FastAPI) -> Iterator[int]:
    """The application under uvicorn on a free loopback port (in a thread of this process)."""
    with served_in_thread(app) as url:
        yield int(url.rsplit(":", 1)[1])


def chunked(size: int) -> Iterator[bytes]:
    frame = b"%x\r\n" % len(BLOCK) + BLOCK + b"\r\n"
    for _ in range(size // len(BLOCK)):
        yield frame
    yield b"0\r\n\r\n"


def post_raw(port: int, headers: dict[str, str], body: Iterable[bytes]) -> tuple[int, dict[str, Any]]:
    """POST to sync-cdrs over a socket, sending ``body`` until done or until the server hangs up.

    Returns:
        The status code and the JSON body of the (first) answer.
    """
    lines = "".join(f"{name}: {value}\r\n" for name, value in {"Host": "127.0.0.1", **headers}.items())
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(f"POST {SYNC} HTTP/1.1\r\n{lines}\r\n".encode())
        try:
            for part in body:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed: the answer was sent before
        answer = b""
        while (expected := _answer_length(answer)) is None or len(answer) < expected:
            try:
                data = sock.recv(1 << 16)
            except ConnectionResetError:  # the answer arrived before the reset; recv returned it first
                break
            if not data:
                break
            answer += data
    head, _, rest = answer.partition(b"\r\n\r\n")
    body_length = (_answer_length(answer) or 0) - len(head) - 4
    return int(head.split()[1]), json.loads(rest[:body_length])


def _answer_length(answer: bytes) -> int | None:
    """Bytes of the whole answer (head and body), None while its head is incomplete."""
    head, found, _ = answer.partition(b"\r\n\r\n")
    if not found:
        return None
    fields = (line.split(b":", 1) for line in head.split(b"\r\n")[1:])
    length = next((int(value) for name, value in fields if name.strip().lower() == b"content-length"), 0)
    return len(head) + 4 + length


def measured(send: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any], int]:
    """``send()``'s answer and the peak of Python memory (server and client) while it ran."""
    tracemalloc.start()
    try:
        status, body = send()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return status, body, peak


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token-wrong-token-wrong"}, 401),
        (AUTH, 413),
    ],
    ids=["no-token", "wrong-token", "token"],
)
def test_a_large_chunked_body_keeps_memory_bounded(
    served: int, orchestrator: InMemoryOrchestrator, headers: dict[str, str], status: int
) -> None:
    sent = {**headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    answer, body, peak = measured(lambda: post_raw(served, sent, chunked(BIG_BODY)))
    assert peak < BOUNDED, peak
    assert answer == status, body
    assert orchestrator.started == []


def test_a_declared_large_body_is_refused_unread(served: int, orchestrator: InMemoryOrchestrator) -> None:
    sent = {**AUTH, "Content-Type": "application/json", "Content-Length": str(BIG_BODY)}
    answer, body, peak = measured(lambda: post_raw(served, sent, big_body()))
    assert peak < BOUNDED, peak
    assert (answer, body) == (
        413,
        {"detail": f"request body over {SYNC_LIMIT} bytes, the limit of POST {SYNC}"},
    )
    assert orchestrator.started == []


def test_a_body_longer_than_declared_keeps_memory_bounded(
    served: int, orchestrator: InMemoryOrchestrator
) -> None:
    # The server hands the application the declared bytes only (not JSON: 422); the rest is not a request.
    sent = {**AUTH, "Content-Type": "application/json", "Content-Length": "1000"}
    answer, body, peak = measured(lambda: post_raw(served, sent, big_body()))
    assert answer == 422, body
    assert peak < BOUNDED, peak
    assert orchestrator.started == []
