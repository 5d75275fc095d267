"""The insights artifact in the Prefect UI itself: `prefect server start` (UI on), the cdr-insights
flow run against it, and headless Debian Chromium showing the charts drawn, not their source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

import flows.insights as insights_flow
from audiapro.ingest import load_raw_legs
from audiapro.tenants import TenantSettings
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
from audiapro.ucm.simulator.config import FraudScenario
from audiapro.warehouse import RunInfo, get_engine, upgrade
from tests.browser_support import chromium_page, screenshot_path
from tests.e2e.conftest import PrefectServer, running_prefect_server
from tests.prefect_service_support import prefect_api_at

TENANT = TenantSettings(name="insights-ui", timezone="America/New_York")
FIRST, DAY = date(2026, 3, 10), date(2026, 3, 17)  # a week of history, then the day shown
NOW = datetime(2026, 3, 18, 12, tzinfo=UTC)
CHART_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` with its UI, on SQLite in a fresh home (the UI talks to this API)."""
    home = tmp_path_factory.mktemp("prefect-ui-home")
    with running_prefect_server(home, ui=True) as server:
        yield server


def _artifact_id(key: str, flow_run_id: UUID | None) -> str:
    """The artifact ``key`` written by that flow run (the key's newest version could be an earlier
    run's when two land within the server's clock resolution)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
            )
        )
    return str(artifact.id)


def test_the_insights_artifact_shows_rendered_charts(
    ui_server: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    monkeypatch.setenv("AUDIAPRO_DATABASE_URL", url)
    monkeypatch.setattr(insights_flow, "now_utc", lambda: NOW)
    engine = get_engine(url)
    upgrade(engine)
    fraud = (FraudScenario("premium_night", DAY, hour=1, calls=30),)
    sim = UcmSimulator(SimulatorConfig(seed=7, start=FIRST, days=8, calls_per_day=300, now=NOW, fraud=fraud))
    load_raw_legs(engine, TENANT, sim.ground_truth(), run=RunInfo(kind="import"), source="api")
    engine.dispose()
    with prefect_api_at(ui_server.api_url):
        from blocks.clouducm import CloudUCM

        CloudUCM(timezone=TENANT.timezone).save(TENANT.name, overwrite=True)
        before = DAY - timedelta(days=1)
        week = insights_flow.cdr_insights(
            tenant=TENANT.name, first_day=FIRST, last_day=before, return_state=True
        )
        assert week.is_completed(), week.message
        day = insights_flow.cdr_insights(tenant=TENANT.name, first_day=DAY, last_day=DAY, return_state=True)
        assert day.is_completed(), day.message
        artifact = _artifact_id(insights_flow.artifact_key(TENANT.name), day.state_details.flow_run_id)

    # docs/img/insights-artifact.png (README) is a copy of this screenshot.
    shot = screenshot_path("insights-artifact.png")
    with chromium_page(width=1280, height=1000) as page:
        # /v2: the default UI of Prefect 3.9 (the one a browser without a saved preference opens).
        page.goto(f"{ui_server.api_url.removesuffix('/api')}/v2/artifacts/artifact/{artifact}")
        page.wait_for_selector("svg[aria-roledescription='xychart']", timeout=CHART_TIMEOUT_MS)
        page.wait_for_selector("svg[aria-roledescription='pie']", timeout=CHART_TIMEOUT_MS)
        text = page.inner_text("body")
        bars = page.locator("svg[aria-roledescription='xychart'] rect").count()
        page.screenshot(path=str(shot), full_page=True)
    assert "xychart-beta" not in text and "pie showData" not in text  # drawn, not shown as code
    assert bars >= 24  # one bar per hour (plus the plot's background)
    assert "Week over week" in text and "intl_velocity" in text
