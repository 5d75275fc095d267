"""cdr-insights on a real Prefect API and Postgres: artifacts per tenant, scheduled runs compute only
what changed, and the names agree with prefect.yaml."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa

import flows.insights as insights_flow
from audiapro.warehouse import get_engine, upgrade
from audiapro.warehouse.insights import read_daily_kpis
from blocks.clouducm import CloudUCM
from flows.insights import artifact_key, cdr_insights
from tests.integration.insights_support import DAY, NOW, TZ, early_legs, late_legs
from tests.integration.prefect_support import latest_artifact
from tests.integration.warehouse_support import TENANT, load

pytestmark = pytest.mark.usefixtures("prefect_api")


def _run(**parameters: Any) -> list[dict[str, Any]]:
    state = cdr_insights(tenant=TENANT, return_state=True, **parameters)
    assert state.is_completed(), state.message
    return cast(list[dict[str, Any]], state.result())


def _rows(artifact: Any) -> list[dict[str, Any]]:
    return list(json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data)


@pytest.fixture
def engine(warehouse_url: str) -> sa.Engine:
    engine = get_engine(warehouse_url)
    upgrade(engine)
    CloudUCM(timezone=TZ).save(TENANT, overwrite=True)
    return engine


def test_on_demand_run_leaves_the_report_and_tables(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(insights_flow, "now_utc", lambda: NOW)
    load(engine, early_legs() + late_legs())
    state = cdr_insights(tenant=TENANT, first_day=DAY, last_day=DAY, return_state=True)
    assert state.is_completed(), state.message
    report = str(latest_artifact(artifact_key(TENANT)).data)
    assert "```mermaid\nxychart-beta" in report and "```mermaid\npie" in report
    assert "bar [0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]" in report
    assert [row["number"] for row in _rows(latest_artifact(artifact_key(TENANT, "worklist")))] == [
        "+12125550111"
    ]
    extensions = _rows(latest_artifact(artifact_key(TENANT, "extensions")))
    assert [(row["extension"], row["calls"]) for row in extensions] == [("1002", 4), ("1001", 3)]


def test_scheduled_runs_compute_new_and_changed_days_only(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(insights_flow, "now_utc", lambda: NOW)
    load(engine, early_legs())
    first = _run()
    assert [(row["days"], row["last_day"]) for row in first] == [(2, str(DAY))]  # the day and the one before
    assert _run()[0]["days"] == 0  # nothing changed

    load(engine, late_legs())  # late legs of that day
    monkeypatch.setattr(insights_flow, "now_utc", lambda: NOW + timedelta(hours=1))
    again = _run()
    assert again[0]["days"] == 2
    (kpis,) = read_daily_kpis(engine, TENANT, DAY, DAY)
    assert kpis["calls"] == 6
