"""The PBX session cap (``tasks/pbx.py``).

Poll ticks and backfill windows share the block's ``api_sessions``: a backfill asking for more
parallel windows than that never has more sessions open on the PBX, bulk work always leaves one
session to the poll, and a tick that finds every session taken reports ``busy`` without touching the
PBX or the cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from prefect.client.orchestration import SyncPrefectClient as PrefectClient
from prefect.client.orchestration import get_client

from audiapro.ucm.simulator import FaultConfig, SimulatorConfig, UcmSimulator
from audiapro.warehouse import get_engine, read_sync_state
from blocks.clouducm import CloudUCM, load_tenant
from flows.backfill import backfill_cdrs
from tasks import poll as poll_tasks
from tasks.pbx import PbxSessionsBusy, pbx_limit_name, pbx_session, pbx_slot
from tests.integration.pipeline_support import DAY, TZ, save_simulated_tenant

pytestmark = pytest.mark.usefixtures("prefect_api")

TENANT = "sessions-acme"
PASSWORD = "Sess10ns-Pa55word!"


@pytest.fixture
def pbx() -> Iterator[UcmSimulator]:
    """Four days of calls on a slow PBX, saved as a tenant that allows two API sessions."""
    config = SimulatorConfig(seed=21, calls_per_day=60, start=DAY, days=4, tz=TZ, password=PASSWORD)
    # A slow PBX (every request 150 ms) keeps parallel windows' sessions overlapping for certain.
    sim = UcmSimulator(config, FaultConfig(slow_ms=150))
    with sim.serve() as url:
        _save_block(url, api_sessions=2)
        yield sim
    CloudUCM.delete(TENANT)


def pbx_url(sim: UcmSimulator) -> str:
    """Where the fixture's simulator serves (read back from the saved block)."""
    block = load_tenant(TENANT)
    return f"http://{block.host}:{block.port}"


def _save_block(url: str, *, api_sessions: int) -> None:
    save_simulated_tenant(TENANT, url, password=PASSWORD, timezone=TZ, api_sessions=api_sessions)


def _limit() -> tuple[int, int]:
    """(slots, slots in use) of the tenant's limit."""
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(pbx_limit_name(TENANT))
    return limit.limit, limit.active_slots


def test_a_session_holds_one_slot_and_the_limit_follows_the_block(pbx: UcmSimulator) -> None:
    block = load_tenant(TENANT)
    with pbx_session(block, TENANT, wait_s=5) as client:
        client.login()
        assert _limit() == (2, 1)
    assert _limit() == (2, 0)
    assert pbx.stats.logins == pbx.stats.logouts == 1

    block.api_sessions = 3  # an operator edits the block: the next session resizes the limit
    with pbx_session(block, TENANT, wait_s=5):
        assert _limit() == (3, 1)


def test_a_backfill_never_opens_more_sessions_than_the_pbx_allows(
    pbx: UcmSimulator, warehouse_url: str
) -> None:
    with pbx_session(load_tenant(TENANT), TENANT, wait_s=5):  # saved with 2 sessions: resize to 3
        pass
    _save_block(pbx_url(pbx), api_sessions=3)
    state = backfill_cdrs(
        tenant=TENANT,
        start=DAY,
        end=DAY + timedelta(days=3),
        window=timedelta(hours=6),
        max_parallel=4,
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert pbx.stats.logins >= 4  # one session per window: several windows ran
    assert pbx.stats.peak_sessions == 2  # ... but never more than two at once: the third is the poll's
    assert _limit() == (3, 0)


def test_bulk_work_always_leaves_one_session_to_the_poll(pbx: UcmSimulator, warehouse_url: str) -> None:
    block = load_tenant(TENANT)
    with pbx_session(block, TENANT, wait_s=5, bulk=True):  # a backfill window holds the bulk slot
        with pytest.raises(PbxSessionsBusy), pbx_slot(TENANT, wait_s=1, bulk=True):
            pass  # a second backfill window (or recording download) waits
        row = poll_tasks.poll_tenant_once(TENANT)  # ... but the live poll gets its session
    assert row["status"] == "ok", row
    assert _limit() == (2, 0)


def test_a_tick_with_every_session_taken_is_busy_and_leaves_the_pbx_alone(
    pbx: UcmSimulator, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poll_tasks, "POLL_SESSION_WAIT_S", 1.0)
    with pbx_session(load_tenant(TENANT), TENANT, wait_s=5):  # the first session creates the limit
        pass
    with pbx_slot(TENANT, wait_s=5), pbx_slot(TENANT, wait_s=5):  # both of the PBX's sessions
        row = poll_tasks.poll_tenant_once(TENANT)
    assert row == {"tenant": TENANT, "status": "busy"}
    assert pbx.stats.logins == 0  # neither the session above (never used) nor the tick logged in
    assert read_sync_state(get_engine(warehouse_url), TENANT) is None


def test_a_deleted_limit_stops_sessions_rather_than_lifting_the_cap(pbx: UcmSimulator) -> None:
    with pbx_session(load_tenant(TENANT), TENANT, wait_s=5):
        pass
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(pbx_limit_name(TENANT))
    with pytest.raises(RuntimeError, match="does not exist"), pbx_slot(TENANT, wait_s=5):
        pass
    with pbx_session(load_tenant(TENANT), TENANT, wait_s=5):  # a session recreates it from the block
        assert _limit() == (2, 1)


def test_a_session_on_limits_in_line_with_the_block_asks_only_to_acquire_and_release(
    pbx: UcmSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = load_tenant(TENANT)
    with pbx_session(block, TENANT, wait_s=5):  # the first session creates the limits
        pass
    upserts: list[str] = []
    original = PrefectClient.upsert_global_concurrency_limit_by_name

    def counting(self: PrefectClient, name: str, limit: int) -> None:
        upserts.append(name)
        original(self, name, limit)

    monkeypatch.setattr(PrefectClient, "upsert_global_concurrency_limit_by_name", counting)
    with pbx_session(block, TENANT, wait_s=5), pbx_session(block, TENANT, wait_s=5, bulk=True):
        assert _limit() == (2, 2)
    assert upserts == []  # before: two upserts (each a read at least) per session


def test_a_block_raised_while_every_session_is_taken_grows_the_limit_at_once(pbx: UcmSimulator) -> None:
    block = load_tenant(TENANT)
    with pbx_session(block, TENANT, wait_s=5), pbx_session(block, TENANT, wait_s=5):  # both slots
        block.api_sessions = 3
        with pbx_session(block, TENANT, wait_s=5):  # waits no longer than the resize takes
            assert _limit() == (3, 3)
