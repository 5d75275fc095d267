"""The reconcile-cdrs flow on a real Prefect API: rows, artifacts, the alert event, the CLI, isolation."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from typer.testing import CliRunner

import flows.reconcile as reconcile_flow
import tasks.reconcile as reconcile_tasks
from audiapro.cli import app
from audiapro.ingest import ingest_window
from audiapro.ops.alerts import COMPLETENESS_LABEL, RECONCILE_INCOMPLETE_EVENT
from audiapro.reconcile import day_bounds
from audiapro.tenants import TenantSettings
from audiapro.ucm.client import UcmClient
from audiapro.ucm.records import CdrPage
from audiapro.ucm.simulator import UcmSimulator
from audiapro.warehouse import cdr_legs, get_engine, read_reconcile_days, upgrade
from blocks.clouducm import CloudUCM
from flows.reconcile import REPORT_KEY, SUMMARY_KEY, reconcile_cdrs
from tests.integration import pipeline_support
from tests.integration.pipeline_support import DAY, SIM_PASSWORD, TZ, save_simulated_tenant
from tests.integration.prefect_support import flow_logs, latest_artifact, number_rows

pytestmark = pytest.mark.usefixtures("prefect_api")

GOOD, BROKEN, FILES = "rc-good", "rc-broken", "rc-files"
DAY2 = DAY + timedelta(days=1)
#: The run's pinned clock: both simulated days (2026-03-02 and 03-03, New York) are closed.
RUN_AT = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def pbx(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[UcmSimulator, str]]:
    """A simulated PBX saved as a healthy tenant and one with a wrong password; an import-only tenant."""
    monkeypatch.setattr(reconcile_flow, "now_utc", lambda: RUN_AT)
    sim = pipeline_support.simulator()
    sim.clock.set(RUN_AT)
    with sim.serve() as url:
        save_simulated_tenant(GOOD, url, password=SIM_PASSWORD, timezone=TZ)
        save_simulated_tenant(BROKEN, url, password="not-the-password", timezone=TZ)
        CloudUCM(timezone=TZ, password=SecretStr("")).save(FILES, overwrite=True)
        yield sim, url
    for name in (GOOD, BROKEN, FILES):
        CloudUCM.delete(name)


def artifact_rows(artifact: Any) -> list[dict[str, Any]]:
    data = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    return list(data)


def preload_first_day(sim: UcmSimulator, url: str, engine: sa.Engine) -> int:
    """Load the first day as a poll would have, then lose every 9th leg; returns how many were lost."""
    tenant = TenantSettings(name=GOOD, timezone=TZ)
    with pipeline_support.make_client(sim, url) as client:
        ingest_window(client, engine, tenant, *day_bounds(DAY, TZ), kind="poll", advance_cursor=False)
    with engine.begin() as conn:
        accts = sorted(conn.scalars(sa.select(cdr_legs.c.acct_id).where(cdr_legs.c.tenant == GOOD)))
        victims = accts[::9]
        conn.execute(sa.delete(cdr_legs).where(cdr_legs.c.acct_id.in_(victims)))
    return len(victims)


def test_the_flow_measures_repairs_and_reports_each_tenant_day(
    warehouse_url: str,
    pbx: tuple[UcmSimulator, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim, url = pbx
    engine = get_engine(warehouse_url)
    upgrade(engine)
    lost = preload_first_day(sim, url, engine)
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(reconcile_tasks, "emit_event", lambda **kwargs: events.append(kwargs))
    logins = sim.stats.failed_logins

    state = reconcile_cdrs(days_back=3, return_state=True)

    # The broken tenant fails (one wrong login, no retry, its other days not tried); the others don't.
    assert state.is_failed() and BROKEN in (state.message or "") and GOOD not in (state.message or "")
    assert sim.stats.failed_logins - logins == 1
    every = cast(list[dict[str, Any]], state.result(raise_on_failure=False))
    rows = [row for row in every if row["tenant"] in (GOOD, BROKEN, FILES)]
    by_key = {(row["tenant"], row["day"]): row for row in rows}
    days = [str(DAY - timedelta(days=1)), str(DAY), str(DAY2)]
    assert [by_key[(BROKEN, d)]["status"] for d in days] == ["failed", "skipped", "skipped"]
    assert not [row for row in rows if row["tenant"] == FILES]  # import-only: nothing to compare with
    good = [by_key[(GOOD, d)] for d in days]
    truth = {d: len([leg for leg in sim.ground_truth() if leg["start"].startswith(d)]) for d in days}
    assert [row["status"] for row in good] == ["ok"] * 3
    assert [row["pbx_legs"] for row in good] == [truth[d] for d in days] and truth[days[0]] == 0
    assert [row["missing_before"] for row in good] == [0, lost, truth[days[2]]]
    assert [row["loaded_now"] for row in good] == [0, lost, truth[days[2]]]
    assert [row["percent"] for row in good] == [100.0] * 3
    assert events == []  # every day ended complete

    stored = read_reconcile_days(engine, tenant=GOOD)
    assert [(r.day.isoformat(), r.completeness) for r in stored] == [(d, 1.0) for d in days]
    assert {r.flow_run_id for r in stored} == {str(state.state_details.flow_run_id)}

    summary = latest_artifact(SUMMARY_KEY)
    assert summary.type == "table"
    table = [row for row in artifact_rows(summary) if row["tenant"] == GOOD]
    assert [(row["day"], row["loaded_now"], row["percent"]) for row in table] == [
        (days[0], 0, 100.0),
        (days[1], lost, 100.0),
        (days[2], truth[days[2]], 100.0),
    ]
    report = latest_artifact(REPORT_KEY)
    assert report.type == "markdown" and "below 100 %" in report.data

    # The next run checks only the latest closed day: the others are known complete.
    again = reconcile_cdrs(tenant=GOOD, return_state=True)
    assert again.is_completed()
    again_rows = cast(list[dict[str, Any]], again.result())
    assert [(r["day"], r["loaded_now"]) for r in again_rows] == [(days[2], 0)]

    # No secret and no phone number in our logs, the flow's API logs, the rows or the artifacts.
    captured = caplog.text + flow_logs(state.state_details.flow_run_id) + str(rows)
    captured += json.dumps(artifact_rows(summary)) + report.data
    assert SIM_PASSWORD not in captured and "not-the-password" not in captured
    legs = sim.ground_truth()
    numbers = {leg[f] for leg in legs for f in ("src", "dst") if len(re.sub(r"\D", "", leg[f])) >= 7}
    assert numbers and not [n for n in numbers if n in captured]


def test_a_day_left_incomplete_alerts_and_fails_the_cli(
    warehouse_url: str, pbx: tuple[UcmSimulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, _ = pbx
    engine = get_engine(warehouse_url)
    upgrade(engine)
    # The PBX sends one leg of the day with a disposition nobody knows: it is quarantined, not stored.
    weird = sorted(leg["AcctId"] for leg in sim.ground_truth() if leg["start"].startswith(str(DAY)))[5]
    real_pages = UcmClient.iter_cdr_pages

    def pages(self: UcmClient, start: datetime, end: datetime, **kwargs: Any) -> Iterable[CdrPage]:
        for page in real_pages(self, start, end, **kwargs):
            for leg in page.legs:
                if leg.get("AcctId") == weird:
                    leg["disposition"] = "SOMETHING ODD"
            yield page

    monkeypatch.setattr(UcmClient, "iter_cdr_pages", pages)
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(reconcile_tasks, "emit_event", lambda **kwargs: events.append(kwargs))

    result = CliRunner().invoke(app, ["reconcile", "--tenant", GOOD, "--day", str(DAY)])

    assert result.exit_code == 1, result.output
    (row,) = read_reconcile_days(engine, tenant=GOOD)
    assert (row.rejected, row.matched_legs, row.pbx_legs) == (1, row.pbx_legs - 1, row.pbx_legs)
    assert 99 < row.percent < 100 and f"{row.percent:.2f} %" in result.output
    # PBX, stored before, missing, loaded, quarantined, phantom
    expected = [row.pbx_legs, 0, row.pbx_legs, row.pbx_legs - 1, 1, 0]
    assert number_rows(result.output) == [expected], result.output
    (event,) = events
    assert event["event"] == RECONCILE_INCOMPLETE_EVENT
    assert event["resource"]["prefect.resource.id"] == f"audiapro.tenant.{GOOD}"
    assert event["resource"][COMPLETENESS_LABEL] == "99"
    assert event["payload"]["worst_day"] == str(DAY) and event["payload"]["worst_percent"] == row.percent


@pytest.mark.usefixtures("warehouse_url", "pbx")
def test_a_day_that_is_not_closed_is_a_one_line_error() -> None:
    result = CliRunner().invoke(app, ["reconcile", "--tenant", GOOD, "--day", "2026-03-04"])
    assert result.exit_code == 1
    assert "not closed before 2026-03-05 07:00 UTC" in result.output and "Traceback" not in result.output
    bad = CliRunner().invoke(app, ["reconcile", "--day", "03/04/2026"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
