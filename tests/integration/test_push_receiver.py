"""The push receiver end to end: the simulator's emitter POSTs live legs to the admin API, the loader
takes them into the warehouse, and the poll (the source of truth) finds them already there.

Deterministic: the simulator's clock is pinned and advanced by hand; the loader runs when the test
calls ``receiver.drain()`` (its thread is never started), never by waiting.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from audiapro.api.app import create_app
from audiapro.api.fake import InMemoryOrchestrator
from audiapro.api.ingest_routes import PUSH_MAX_BYTES
from audiapro.cdr.keys import raw_leg_keys
from audiapro.ingest import ingest_window
from audiapro.push.config import PUSH_CAPTURE, PUSH_LOAD, PUSH_OFF, PushTenant
from audiapro.push.receiver import MAX_PENDING, PushReceiver
from audiapro.push.reparse import reparse_quarantined
from audiapro.ucm.simulator import UcmSimulator
from audiapro.ucm.simulator.push import (
    VARIANTS,
    EmitResult,
    PushClient,
    PushEmitter,
    RemoteTruth,
    TruthSource,
    render_body,
)
from audiapro.warehouse import cdr_legs, read_sync_state
from audiapro.warehouse.push import quarantine_push_bodies, store_push_body
from audiapro.warehouse.retention import clear_raw_cdrs, count_purge, purge_rows
from audiapro.warehouse.tables import push_bodies
from tests.integration.pipeline_support import TENANT, make_client, simulator, table_count

URL = f"/api/push/ucm/{TENANT.name}"
USER, PASSWORD = "ucm-acme", "push-Pa55-0123456789"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
#: Midday of the simulator's second day (17:00 UTC = 12:00 in New York): calls are ending.
NOW = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
#: Simulated time the tests let pass: a few dozen legs end in it.
LIVE = timedelta(hours=2)


@pytest.fixture
def sim() -> UcmSimulator:
    pbx = simulator()
    pbx.clock.set(NOW)
    return pbx


def _receiver(
    engine: sa.Engine, mode: str = PUSH_LOAD, max_pending: int = MAX_PENDING
) -> tuple[PushReceiver, TestClient]:
    tenant = PushTenant(settings=TENANT, mode=mode, user=USER, password=PASSWORD)
    orchestrator = InMemoryOrchestrator(push_tenants={TENANT.name: tenant})
    receiver = PushReceiver(engine, orchestrator.push_tenant, max_pending=max_pending)
    return receiver, TestClient(create_app(orchestrator, list, push=receiver))


def _emitter(source: TruthSource, client: PushClient, **options: Any) -> PushEmitter:
    """An emitter that pushes to the tenant's URL with the credentials the receiver expects."""
    return PushEmitter(source, client, URL, user=USER, password=PASSWORD, **options)


def _emit_live(sim: UcmSimulator, emitter: PushEmitter) -> EmitResult:
    """Let ``LIVE`` pass on the simulator's clock, then push the legs that ended meanwhile."""
    sim.clock.advance(LIVE.total_seconds())
    return emitter.emit()


def _push_and_load(sim: UcmSimulator, api: tuple[PushReceiver, TestClient]) -> tuple[PushEmitter, EmitResult]:
    """Push the legs that end during ``LIVE`` to the receiver's API and load them; the emitter and what
    it sent."""
    receiver, client = api
    emitter = _emitter(sim, client)
    sent = _emit_live(sim, emitter)
    receiver.drain()
    return emitter, sent


@pytest.fixture
def api(engine: sa.Engine) -> Iterator[tuple[PushReceiver, TestClient]]:
    receiver, client = _receiver(engine)
    with client:
        yield receiver, client


def _stored_keys(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(sa.select(cdr_legs.c.leg_key)))


def _statuses(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(push_bodies.c.status, sa.func.count()).group_by(push_bodies.c.status))
        return {status: count for status, count in rows}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_body_variant_loads_the_legs_that_ended(
    variant: str, sim: UcmSimulator, api: tuple[PushReceiver, TestClient], engine: sa.Engine
) -> None:
    receiver, client = api
    emitter = _emitter(sim, client, variant=variant)
    sent = _emit_live(sim, emitter)
    assert sent.legs >= 10 and sent.buffered == 0 and set(sent.statuses) == {202}
    loads = receiver.drain()
    assert sum(load.inserted for load in loads) == sent.legs
    # The very keys a poll of the same legs computes: push and poll converge on one row per leg.
    assert _stored_keys(engine) == set(raw_leg_keys(emitter.delivered).keys)
    assert _statuses(engine) == {"loaded": sent.bodies}


def test_a_replayed_buffer_adds_nothing(
    sim: UcmSimulator, api: tuple[PushReceiver, TestClient], engine: sa.Engine
) -> None:
    receiver, _client = api
    emitter, first = _push_and_load(sim, api)
    legs = table_count(engine, cdr_legs)
    assert legs == first.legs
    # The same single-leg bodies again: recognised by their hash, nothing stored twice.
    again = emitter.replay_delivered(batch=1)
    assert again.bodies == first.bodies
    assert table_count(engine, push_bodies) == first.bodies
    # The whole buffer as batches in another shape: stored, loaded, every leg already there.
    emitter.variant = "cdr-root"
    emitter.replay_delivered(batch=7)
    loads = receiver.drain()
    assert loads and sum(load.inserted for load in loads) == 0
    assert sum(load.duplicates for load in loads) == first.legs
    assert table_count(engine, cdr_legs) == legs


def test_receiver_down_then_up_loses_nothing_once_the_poll_ran(
    sim: UcmSimulator, api: tuple[PushReceiver, TestClient], engine: sa.Engine
) -> None:
    receiver, client = api

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    down = httpx.Client(transport=httpx.MockTransport(refuse), base_url="http://testserver")
    # A UCM with a tiny buffer: while we are down, it drops its oldest records.
    emitter = _emitter(sim, down, replay_batch=10, buffer_limit=12)
    start = sim.clock.now()
    outage = _emit_live(sim, emitter)
    assert outage.bodies == 0 and outage.buffered == 12 and outage.dropped > 0
    emitter.client = client
    back = emitter.emit()
    assert back.legs == 12 and back.buffered == 0
    receiver.drain()
    assert table_count(engine, cdr_legs) == 12
    assert read_sync_state(engine, TENANT.name) is None  # push never moves the poll cursor
    # The poll (the source of truth) fills what the UCM dropped and finds the pushed legs stored.
    with sim.serve() as base_url, make_client(sim, base_url) as pbx:
        window_end = sim.clock.now()
        summary = ingest_window(pbx, engine, TENANT, start - timedelta(days=1), window_end, kind="poll",
                                advance_cursor=True)  # fmt: skip
    truth = sim.ground_truth(start=start - timedelta(days=1), end=window_end)
    assert summary.inserted == len(truth) - 12  # everything but the pushed legs, which were there
    assert _stored_keys(engine) == set(raw_leg_keys(truth).keys)
    assert summary.updated == 0  # a pushed leg is stored exactly as the poll reads it


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + "dWNtLWFjbWU6d3Jvbmc="},  # ucm-acme:wrong
        {"Authorization": "Bearer push-Pa55-0123456789"},
        {"Authorization": "Basic !!!"},
    ],
    ids=["none", "wrong-password", "not-basic", "garbage"],
)
def test_bad_credentials_are_refused_and_nothing_is_stored(
    headers: dict[str, str], api: tuple[PushReceiver, TestClient], engine: sa.Engine
) -> None:
    _, client = api
    body, content_type = render_body([{"uniqueid": "1.1", "start": "2026-03-03 11:00:00"}], "json")
    answer = client.post(URL, content=body, headers={**headers, "Content-Type": str(content_type)})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert table_count(engine, push_bodies) == 0


def test_unknown_tenant_and_push_off_answer_401_alike(engine: sa.Engine, sim: UcmSimulator) -> None:
    _, client = _receiver(engine, mode=PUSH_OFF)
    with client:
        emitter = _emitter(sim, client)
        assert set(_emit_live(sim, emitter).statuses) == {401}
        emitter.url = "/api/push/ucm/nobody"
        assert set(_emit_live(sim, emitter).statuses) == {401}
    assert table_count(engine, push_bodies) == 0


def test_oversized_bodies_are_refused_with_413(
    api: tuple[PushReceiver, TestClient], engine: sa.Engine
) -> None:
    _, client = api
    declared = client.post(URL, content=b"x", headers={**BASIC, "Content-Length": str(PUSH_MAX_BYTES + 1)})
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the running count stops it
        for _ in range(PUSH_MAX_BYTES // (1 << 20) + 1):
            yield b"[" * (1 << 20)

    streamed = client.post(URL, content=chunks(), headers=BASIC)
    assert streamed.status_code == 413
    assert table_count(engine, push_bodies) == 0


def test_a_malformed_body_is_kept_quarantined_and_can_be_reparsed(
    api: tuple[PushReceiver, TestClient], engine: sa.Engine
) -> None:
    receiver, client = api
    answer = client.post(URL, content=b"<cdr><src>1001</src>", headers=BASIC)
    assert answer.status_code == 202
    assert answer.json()["status"] == "quarantined" and "invalid XML" in answer.json()["reason"]
    with engine.connect() as conn:
        row = conn.execute(sa.select(push_bodies)).one()
    assert row.status == "quarantined" and bytes(row.body) == b"<cdr><src>1001</src>"
    assert "authorization" not in json.loads(row.headers)  # credentials never stored
    assert receiver.drain() == [] and table_count(engine, cdr_legs) == 0
    # A body quarantined by an older parser that this one reads: reparse loads it.
    leg = {"uniqueid": "9.1", "start": "2026-03-03 11:00:00", "disposition": "ANSWERED",
           "channel": "PJSIP/1001-1", "lastapp": "Dial", "AcctId": "9"}  # fmt: skip
    good, _ = render_body([leg], "json")
    stored = store_push_body(engine, tenant=TENANT.name, body=good, sha256="0" * 64, headers={}, peer=None,
                             content_type=None)  # fmt: skip
    quarantine_push_bodies(engine, {stored.id: "unknown shape (older parser)"})
    result = reparse_quarantined(engine, {TENANT.name: TENANT}.get, tenant=TENANT.name)
    assert (result.tried, result.requeued, result.inserted) == (2, 1, 1)
    assert _statuses(engine) == {"quarantined": 1, "loaded": 1}


def test_a_quarantined_body_is_logged_by_id_without_its_content(
    api: tuple[PushReceiver, TestClient], engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    _, client = api
    body = b"src=+15551234567&dst=+15557654321&garbage"  # no leg field: unparseable, numbers in front
    with caplog.at_level(logging.WARNING):
        answer = client.post(URL, content=body, headers=BASIC)
    assert answer.json()["status"] == "quarantined"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "quarantined" in logged and "5551234567" not in logged and "5557654321" not in logged


def test_capture_mode_stores_bodies_without_loading(engine: sa.Engine, sim: UcmSimulator) -> None:
    receiver, client = _receiver(engine, mode=PUSH_CAPTURE)
    with client:
        emitter = _emitter(sim, client, variant="xml")
        sent = _emit_live(sim, emitter)
    assert receiver.drain() == []
    assert _statuses(engine) == {"captured": sent.bodies}
    assert table_count(engine, cdr_legs) == 0


def test_a_full_queue_answers_503_and_stores_nothing(engine: sa.Engine, sim: UcmSimulator) -> None:
    receiver, client = _receiver(engine, max_pending=3)
    with client:
        emitter = _emitter(sim, client)
        sim.clock.advance(LIVE.total_seconds() / 4)  # a dozen legs: enough to fill a queue of 3
        busy = emitter.emit()
        assert busy.statuses == (202, 202, 202, 503) and busy.buffered > 0
        assert table_count(engine, push_bodies) == 3
        for _ in range(busy.buffered):  # each drained queue takes the next 3 buffered records
            receiver.drain()
            if not emitter.emit().buffered:
                break
    assert not emitter.buffer and emitter.dropped == 0
    receiver.drain()
    assert table_count(engine, cdr_legs) == len(emitter.delivered) == busy.legs + busy.buffered


def test_new_pushed_legs_start_the_analysis_at_most_once_a_minute(
    engine: sa.Engine, sim: UcmSimulator
) -> None:
    tenant = PushTenant(settings=TENANT, mode=PUSH_LOAD, user=USER, password=PASSWORD)
    orchestrator = InMemoryOrchestrator(push_tenants={TENANT.name: tenant})
    seconds = [1000.0]
    receiver = PushReceiver(engine, orchestrator.push_tenant, monotonic=lambda: seconds[0],
                            start_analysis=orchestrator.start_analysis)  # fmt: skip
    with TestClient(create_app(orchestrator, list, push=receiver)) as client:
        emitter = _emitter(sim, client)
        for _ in range(3):  # new legs every simulated 10 minutes, within one real minute
            sim.clock.advance(600)
            emitter.emit()
            receiver.drain()
            seconds[0] += 10
        assert orchestrator.analyses == [TENANT.name]
        emitter.variant = "json-array"
        emitter.replay_delivered(batch=5)  # nothing new: no analysis
        seconds[0] += 120
        receiver.drain()
        assert orchestrator.analyses == [TENANT.name]
        sim.clock.advance(600)
        emitter.emit()
        receiver.drain()
    assert orchestrator.analyses == [TENANT.name, TENANT.name]


def test_a_simulator_in_another_process_pushes_through_its_control_endpoint(
    sim: UcmSimulator, api: tuple[PushReceiver, TestClient], engine: sa.Engine
) -> None:
    receiver, client = api
    with sim.serve() as base_url, httpx.Client() as http:
        source = RemoteTruth(http, base_url, clock=sim.clock.now, window=timedelta(days=2))
        emitter = _emitter(source, client, variant="form")
        before = {leg["AcctId"] for leg in sim.ground_truth()}
        sent = _emit_live(sim, emitter)
    ended = [leg for leg in sim.ground_truth() if leg["AcctId"] not in before]
    assert sent.legs == len(ended) > 0
    receiver.drain()
    assert _stored_keys(engine) == set(raw_leg_keys(ended).keys)


def test_a_tenant_purge_and_raw_cdr_retention_remove_pushed_bodies(
    sim: UcmSimulator, api: tuple[PushReceiver, TestClient], engine: sa.Engine
) -> None:
    receiver, client = api
    emitter, sent = _push_and_load(sim, api)
    client.post(URL, content=b"no cdr", headers=BASIC)  # one quarantined body too
    later = datetime.now(UTC) + timedelta(days=1)
    # Raw CDR retention: processed bodies received before the cut-off go (they are raw CDRs).
    assert clear_raw_cdrs(engine, TENANT.name, later, batch_rows=7) >= sent.bodies + 1
    assert table_count(engine, push_bodies) == 0
    emitter.replay_delivered(batch=4)
    receiver.drain()
    # A full purge empties push_bodies before ingest_runs, which the loaded bodies point at.
    assert count_purge(engine, TENANT.name, None)["push_bodies"] == table_count(engine, push_bodies) > 0
    purge_rows(engine, TENANT.name, None, batch_rows=5)
    assert table_count(engine, push_bodies) == table_count(engine, cdr_legs) == 0
