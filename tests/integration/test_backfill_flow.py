"""The backfill-cdrs flow on a real Prefect API: a failure in window k, a rerun (through the CLI) that skips
the done windows and ends with exactly the PBX's legs, artifacts, and no secrets or numbers in the logs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.ucm.client import UcmClient
from audiapro.ucm.records import CdrPage
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
from audiapro.warehouse import backfill_windows, get_engine, ingest_runs, read_sync_state
from blocks.clouducm import CloudUCM
from flows.backfill import backfill_cdrs
from tests.integration.pipeline_support import DAY, save_simulated_tenant
from tests.integration.prefect_support import flow_logs, latest_artifact, number_rows

pytestmark = pytest.mark.usefixtures("prefect_api")

TZ = "America/Chicago"
TENANT = "history-acme"
PASSWORD = "Hist0ry-Pa55word!"
WINDOW = timedelta(hours=12)
FAILING_WINDOW = 2  # 0-based: the third of four windows


@pytest.fixture
def pbx() -> Iterator[UcmSimulator]:
    """Three past weekdays of calls, saved as the tenant's CloudUCM block.

    Its manual clock stands where every call of those days has ended. The flow clamps the range to
    its own wall clock, which is months later: the dates, not the time of day, decide what loads.
    """
    config = SimulatorConfig(seed=8, calls_per_day=70, start=DAY, days=3, tz=TZ, password=PASSWORD)
    sim = UcmSimulator(config)
    with sim.serve() as url:
        save_simulated_tenant(TENANT, url, password=PASSWORD, timezone=TZ)
        yield sim
    CloudUCM.delete(TENANT)


def test_failed_window_then_rerun_resumes_and_ends_with_the_ground_truth(
    warehouse_url: str, pbx: UcmSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_day = pbx.history_start
    last_day = first_day + timedelta(days=1)
    fetched: list[datetime] = []
    real_fetch = UcmClient.iter_cdr_pages
    failing_start: dict[str, datetime] = {}

    def fetch(self: UcmClient, start_utc: datetime, end_utc: datetime, **kwargs: Any) -> Iterator[CdrPage]:
        fetched.append(start_utc)
        if start_utc == failing_start.get("at"):
            raise RuntimeError("injected: the worker died in this window")
        return real_fetch(self, start_utc, end_utc, **kwargs)

    monkeypatch.setattr(UcmClient, "iter_cdr_pages", fetch)
    local_midnight = datetime.combine(first_day, datetime.min.time(), ZoneInfo(TZ))
    failing_start["at"] = window_start(local_midnight, FAILING_WINDOW)

    state = backfill_cdrs(tenant=TENANT, start=first_day, end=last_day, window=WINDOW, max_parallel=1,
                          return_state=True)  # fmt: skip
    assert state.is_failed() and "injected" in (state.message or "")
    first = state.result(raise_on_failure=False)
    assert (first["planned"], first["loaded"], first["failed"], first["not_started"]) == (4, 2, 1, 1)
    assert len(fetched) == 3  # fail fast: the window after the failure was not started

    # The rerun, as an operator would do it: through the CLI (progress bar, counts), fault gone.
    failing_start.clear()
    fetched.clear()
    result = CliRunner().invoke(
        app,
        [
            "backfill",
            "--tenant",
            TENANT,
            "--start",
            str(first_day),
            "--end",
            str(last_day),
            "--window",
            "12h",
        ],
    )
    assert result.exit_code == 0, result.output
    # The estimate comes first: the windows still to do, from the legs the first run stored.
    assert f"backfill {TENANT}: 2 of 4 windows to load (2 already done), about " in result.output
    assert "PBX requests" in result.output and "legs a day as stored so far" in result.output
    # planned, skipped, loaded, failed, not started
    assert number_rows(result.output)[0][:5] == [4, 2, 2, 0, 0], result.output
    assert sorted(fetched) == [window_start(local_midnight, k) for k in (2, 3)]  # only the windows not done

    engine = get_engine(warehouse_url)
    span_start, span_end = local_midnight.astimezone(UTC), (local_midnight + 4 * WINDOW).astimezone(UTC)
    truth = sorted(leg["AcctId"] for leg in pbx.ground_truth(start=span_start, end=span_end))
    with engine.connect() as conn:
        stored = [
            row[0]
            for row in conn.execute(
                sa.text("SELECT acct_id FROM cdr_legs WHERE start_at BETWEEN :a AND :b ORDER BY acct_id"),
                {"a": span_start, "b": span_end},
            )
        ]
        windows = conn.scalar(sa.select(sa.func.count()).select_from(backfill_windows))
        runs = conn.scalar(
            sa.select(sa.func.count()).select_from(ingest_runs).where(ingest_runs.c.kind == "backfill")
        )
    assert stored == truth and len(truth) > 50
    assert (windows, runs) == (4, 4)  # each window loaded exactly once over the two runs
    assert read_sync_state(engine, TENANT) is None  # the live poll cursor was never touched

    progress = latest_artifact(f"backfill-{TENANT}-progress")
    assert progress.type == "progress" and float(progress.data) == 100.0
    summary = latest_artifact(f"backfill-{TENANT}-summary")
    assert summary.type == "table" and "2 already done" in (summary.description or "")

    captured = flow_logs(state.state_details.flow_run_id) + result.output + str(summary.data)
    assert PASSWORD not in captured
    numbers = {
        leg[f] for leg in pbx.ground_truth() for f in ("src", "dst") if len(re.sub(r"\D", "", leg[f])) >= 7
    }
    assert numbers and not [n for n in numbers if n in captured]


def window_start(local_midnight: datetime, k: int) -> datetime:
    return (local_midnight + k * WINDOW).astimezone(UTC)


def test_parameters_are_validated_for_the_ui_form(warehouse_url: str) -> None:
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(backfill_cdrs).model_dump()["properties"]
    assert schema["max_parallel"]["maximum"] == 4 and schema["max_parallel"]["default"] == 2
    assert schema["window"]["format"] == "duration" and schema["window"]["default"] == "P1D"
    assert "tenant's time zone" in schema["start"]["description"]
    state = backfill_cdrs(
        tenant=TENANT, start="2026-03-01", end="2026-03-02", max_parallel=9, return_state=True
    )
    assert state.is_failed() and "max_parallel" in (state.message or "")
