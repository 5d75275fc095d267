"""A wrong password on a real Prefect API: the PBX sees one failed login per block period, whatever
polls, backfills and analysis runs try; a corrected password works at once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest

from audiapro.analysis.recordings import CallAudioFetcher
from audiapro.logins import active_block
from audiapro.ucm.guard import UcmLoginBlocked
from audiapro.ucm.simulator import UcmSimulator
from audiapro.warehouse import RecordingRef, clear_login_block, get_engine, read_login_block, read_sync_state
from blocks.clouducm import CloudUCM, load_tenant
from flows.backfill import backfill_cdrs
from flows.poll import poll_cdrs
from tasks.pbx import pbx_client_pool
from tests.integration.pipeline_support import save_simulated_tenant, simulator

pytestmark = pytest.mark.usefixtures("prefect_api")

TENANT = "locked-out"
TZ = "America/Chicago"
PASSWORD = "R1ght-Pa55word"


@pytest.fixture
def pbx() -> Iterator[tuple[UcmSimulator, str]]:
    sim = simulator(
        seed=9,
        calls_per_day=60,
        start=date(2026, 1, 12),
        tz=TZ,
        password=PASSWORD,
        now=datetime(2026, 1, 14, 12, tzinfo=UTC),
    )
    with sim.serve() as url:
        save_simulated_tenant(TENANT, url, password="an-old-password", timezone=TZ)
        yield sim, url
    CloudUCM.delete(TENANT)


def _download_in_threads(threads: int) -> list[BaseException | None]:
    refs = [
        RecordingRef(
            session="1768230000123456-200", path="2026-01/auto-1768230000-200-201.wav", action_type=""
        )
    ]
    block = load_tenant(TENANT)
    with pbx_client_pool(block, TENANT, size=threads, wait_s=30) as pool, CallAudioFetcher(pool) as fetcher:

        def fetch(_: int) -> BaseException | None:
            try:
                fetcher.fetch(refs)
            except Exception as exc:
                return exc
            return None

        with ThreadPoolExecutor(threads) as executor:
            return list(executor.map(fetch, range(threads)))


def test_ten_ticks_a_backfill_and_an_analysis_make_one_failed_login(
    pbx: tuple[UcmSimulator, str], warehouse_url: str
) -> None:
    sim, url = pbx
    engine = get_engine(warehouse_url)
    rows = [
        poll_cdrs(tenant=TENANT, analyze=False, return_state=True).result(raise_on_failure=False)
        for _ in range(10)
    ]
    assert all(r[0]["status"] == "failed" for r in rows)
    backfill = backfill_cdrs(tenant=TENANT, start=date(2026, 1, 12), end=date(2026, 1, 12), return_state=True)
    assert backfill.is_failed()
    errors = _download_in_threads(4)
    assert all(isinstance(e, UcmLoginBlocked) for e in errors), errors

    assert sim.stats["failed_logins"] == 1 and sim.stats["bans"] == 0
    block = read_login_block(engine, TENANT)
    assert block is not None and block.status == -37
    state = read_sync_state(engine, TENANT)
    assert state is not None and state.consecutive_failures == 10
    assert state.last_error and "paused until" in state.last_error and "wrong password" in state.last_error
    assert "an-old-password" not in state.last_error

    # The operator rotates the password (the CLI clears the block with it): the next tick works.
    save_simulated_tenant(TENANT, url, password=PASSWORD, timezone=TZ)
    clear_login_block(engine, TENANT)
    ok = poll_cdrs(tenant=TENANT, analyze=False, return_state=True).result(raise_on_failure=False)
    assert ok[0]["status"] == "ok", ok
    assert active_block(engine, TENANT, datetime.now(UTC)) is None
    assert sim.stats["failed_logins"] == 1
