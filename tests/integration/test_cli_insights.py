"""`audiapro insights` and `audiapro alerts` on a warehouse holding the hand-computed day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.warehouse.insights import list_alerts, upsert_alerts
from tests.integration.insights_support import DAY, TZ, early_legs, late_legs
from tests.integration.warehouse_support import TENANT, load

runner = CliRunner()
WINDOW = datetime(2026, 3, 2, 6, tzinfo=UTC)


@pytest.fixture
def url(engine: sa.Engine) -> str:
    load(engine, early_legs() + late_legs())
    alert = {"tenant": TENANT, "rule": "intl_velocity", "severity": "critical", "subject": "ext:1002",
             "window_start": WINDOW, "window_end": WINDOW + timedelta(hours=1), "calls": 21,
             "evidence": {"countries": ["GB"]}, "estimated_cost": 12.5}  # fmt: skip
    upsert_alerts(engine, [alert], now=WINDOW)
    return engine.url.render_as_string(hide_password=False)


def test_insights_prints_the_days_figures(url: str) -> None:
    args = ["insights", "--tenant", TENANT, "--day", str(DAY), "--timezone", TZ, "--url", url]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "calls per hour" in out and "+12125550111" in out  # the worklist
    assert "│ 6 " in out and "66.7" in out  # calls and ASR
    assert "intl_velocity" in out


def test_alerts_lists_and_acknowledges(url: str, engine: sa.Engine) -> None:
    listed = runner.invoke(app, ["alerts", "--tenant", TENANT, "--url", url], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "intl_velocity" in listed.output, listed.output
    (alert,) = list_alerts(engine, tenant=TENANT)
    acked = runner.invoke(app, ["alerts", "ack", str(alert["id"]), "--by", "noc", "--url", url])
    assert acked.exit_code == 0 and f"alert {alert['id']} acknowledged" in acked.output
    assert list_alerts(engine, tenant=TENANT) == []
    again = runner.invoke(app, ["alerts", "--tenant", TENANT, "--url", url])
    assert "toll-fraud alerts: none" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["alerts", "ack", "4242"], "no fraud alert with id 4242"),
        (["insights", "--tenant", TENANT, "--since", "7w", "--timezone", TZ], "give a number of days"),
        (["insights", "--tenant", TENANT, "--day", "03/02", "--timezone", TZ], "is not a date"),
        (["insights", "--tenant", TENANT, "--timezone", "Mars/Olympus"], "is not a time zone"),
    ],
)
def test_user_mistakes_get_one_line(url: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--url", url])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
