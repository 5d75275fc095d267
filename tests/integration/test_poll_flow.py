"""The poll-cdrs flow on a real Prefect API: blocks, partial failure, artifacts, no secrets in logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime

import pytest
import sqlalchemy as sa

from audiapro.ucm.simulator import UcmSimulator
from audiapro.warehouse import get_engine, read_sync_state
from blocks.clouducm import CloudUCM, list_tenants
from flows.poll import poll_cdrs
from tests.integration.pipeline_support import save_simulated_tenant
from tests.integration.prefect_support import flow_logs
from tests.wall_clock_pbx import wall_clock_pbx

pytestmark = pytest.mark.usefixtures("prefect_api")

TZ = "America/Chicago"
GOOD_PASSWORD = "G00d-Pa55word!"
WRONG_PASSWORD = "not-the-password"


@pytest.fixture
def two_pbxs() -> Iterator[dict[str, UcmSimulator]]:
    """A healthy tenant and one whose stored password is wrong, each on its own simulated PBX.

    The flow takes its window from the wall clock, so the PBXs are built around it (manual clocks).
    """
    sims: dict[str, UcmSimulator] = {}
    with ExitStack() as stack:
        for name, seed, password in (("healthy", 3, GOOD_PASSWORD), ("broken", 4, WRONG_PASSWORD)):
            sim = UcmSimulator(wall_clock_pbx(seed=seed, calls_per_day=80, tz=TZ, password=GOOD_PASSWORD))
            url = stack.enter_context(sim.serve())
            save_simulated_tenant(name, url, password=password, timezone=TZ)
            sims[name] = sim
        yield sims
    for name in sims:
        CloudUCM.delete(name)  # leave other tests a clean tenant list


def test_failing_tenant_does_not_block_a_healthy_one(
    warehouse_url: str,
    two_pbxs: dict[str, UcmSimulator],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    assert set(list_tenants()) >= {"healthy", "broken"}
    state = poll_cdrs(return_state=True)

    assert state.is_failed()
    assert "broken" in (state.message or "") and "healthy" not in (state.message or "")
    rows = {row["tenant"]: row for row in state.result(raise_on_failure=False)}
    assert rows["healthy"]["status"] == "ok"
    # Every leg the PBX had written since the window start (floored to the second, as cdrapi takes it):
    # a whole day of calls, whatever the time of day.
    since = datetime.fromisoformat(rows["healthy"]["window_start"]).replace(microsecond=0)
    written = two_pbxs["healthy"].ground_truth(start=since)
    assert rows["healthy"]["inserted"] == len(written) >= two_pbxs["healthy"].config.calls_per_day
    assert rows["broken"]["status"] == "failed" and "password" in rows["broken"]["error"].lower()

    engine = get_engine(warehouse_url)
    with engine.connect() as conn:
        healthy_rows = conn.execute(sa.text("SELECT count(*) FROM cdr_legs WHERE tenant='healthy'")).scalar()
        broken_rows = conn.execute(sa.text("SELECT count(*) FROM cdr_legs WHERE tenant='broken'")).scalar()
        lineage = conn.execute(sa.text("SELECT flow_run_id FROM ingest_runs WHERE tenant='healthy'")).scalar()
    assert healthy_rows == rows["healthy"]["inserted"] and broken_rows == 0
    assert lineage == str(state.state_details.flow_run_id)  # every load links back to its flow run
    broken = read_sync_state(engine, "broken")
    assert broken is not None and broken.consecutive_failures == 1 and broken.cursor_at is None
    assert broken.last_error and "password" in broken.last_error.lower()
    healthy = read_sync_state(engine, "healthy")
    assert healthy is not None and healthy.last_error is None and healthy.cursor_at is not None
    # Exactly one wrong login reached the PBX: task retries never replay an authentication failure.
    assert two_pbxs["broken"].stats["failed_logins"] == 1

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
        keys = {a.key for a in artifact}
    assert "poll-cdrs-summary" in keys

    # No secret and no phone number in anything we logged or printed, nor in the flow's API logs.
    captured = caplog.text + "\n".join(capsys.readouterr()) + flow_logs(state.state_details.flow_run_id)
    captured += broken.last_error
    for secret in (GOOD_PASSWORD, WRONG_PASSWORD):
        assert secret not in captured
    numbers = {
        leg[field]
        for sim in two_pbxs.values()
        for leg in sim.ground_truth()
        for field in ("src", "dst")
        if len(re.sub(r"\D", "", leg[field])) >= 7
    }
    assert numbers, "the simulated day must contain external numbers"
    leaked = [n for n in numbers if n in captured]
    assert not leaked, f"{len(leaked)} phone numbers found in logs"


def test_second_tick_adds_nothing_and_moves_the_cursor(
    warehouse_url: str, two_pbxs: dict[str, UcmSimulator]
) -> None:
    first = poll_cdrs(tenant="healthy", return_state=True)
    engine = get_engine(warehouse_url)
    cursor_1 = read_sync_state(engine, "healthy")
    second = poll_cdrs(tenant="healthy", return_state=True)
    cursor_2 = read_sync_state(engine, "healthy")
    assert first.is_completed() and second.is_completed()
    # The PBX's clock did not move between the ticks: nothing new, nothing changed, at any time of day.
    (first_row,) = first.result()
    assert first_row["inserted"] > 0
    (row,) = second.result()
    assert row["inserted"] == 0 and row["updated"] == 0
    assert cursor_1 is not None and cursor_2 is not None
    assert cursor_2.cursor_at is not None and cursor_1.cursor_at is not None
    assert cursor_2.cursor_at > cursor_1.cursor_at
