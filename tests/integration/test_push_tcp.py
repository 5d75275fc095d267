"""The optional TCP listener: one connection is one body (connect, send, close), stored and loaded like
an HTTP push; other addresses and oversized bodies are closed with nothing stored.

Deterministic without sleeps: the listener closes a connection only after it stored the body, so the
test's sender waits for that close.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from audiapro.api.fake import InMemoryOrchestrator
from audiapro.push.config import PUSH_LOAD, PushTenant
from audiapro.push.receiver import PushReceiver
from audiapro.push.tcp import LOOPBACK, TCP_MAX_BYTES, TcpPushListener
from audiapro.ucm.simulator.push import render_body
from audiapro.warehouse import cdr_legs
from audiapro.warehouse.tables import push_bodies
from tests.integration.pipeline_support import TENANT, simulator, table_count

#: Seconds the test's sender waits for the listener to close the connection.
CLOSE_TIMEOUT_S = 30.0


def _receiver(engine: sa.Engine) -> PushReceiver:
    tenant = PushTenant(settings=TENANT, mode=PUSH_LOAD, user="u", password="p-0123456789")
    return PushReceiver(engine, InMemoryOrchestrator(push_tenants={TENANT.name: tenant}).push_tenant)


@contextmanager
def _listening(
    receiver: PushReceiver, *, allowed: Sequence[str] = LOOPBACK, max_bytes: int = TCP_MAX_BYTES
) -> Iterator[TcpPushListener]:
    listener = TcpPushListener(receiver, TENANT.name, allowed=allowed, max_bytes=max_bytes)
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()


def _send(port: int, payload: bytes) -> None:
    """Connect, send, half-close, then wait until the listener closes its side."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_TIMEOUT_S) as conn:
        try:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(4096):
                pass
        except (ConnectionResetError, BrokenPipeError):  # closed before reading all: refused
            pass


@pytest.fixture
def legs() -> list[dict[str, str]]:
    return simulator(days=1).ground_truth()[:3]


def test_each_connection_is_one_body_and_is_loaded(engine: sa.Engine, legs: list[dict[str, str]]) -> None:
    receiver = _receiver(engine)
    with _listening(receiver) as listener:
        _send(listener.port, render_body(legs[:1], "xml")[0])
        # A firmware sending records back to back on one connection (NDJSON).
        _send(listener.port, b"".join(json.dumps(leg).encode() + b"\n" for leg in legs[1:]))
        receipts = [listener.receipts.get_nowait() for _ in range(2)]
        assert [(r.status, r.legs) for r in receipts] == [("pending", 1), ("pending", 2)]
    receiver.drain()
    assert table_count(engine, cdr_legs) == 3
    with engine.connect() as conn:
        assert set(conn.scalars(sa.select(push_bodies.c.peer))) == {"127.0.0.1"}


@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)
def test_other_addresses_and_oversized_bodies_store_nothing(
    engine: sa.Engine, legs: list[dict[str, str]]
) -> None:
    receiver = _receiver(engine)
    body = render_body(legs, "json")[0]
    with _listening(receiver, allowed=["192.0.2.0/24"]) as listener:
        _send(listener.port, body)
    with _listening(receiver, max_bytes=len(body) - 1) as listener:
        _send(listener.port, body)
    assert table_count(engine, push_bodies) == 0
