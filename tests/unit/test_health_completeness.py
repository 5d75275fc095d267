"""Completeness in the health report: the latest reconciled day, the worst of the last 7, degraded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient

from audiapro.api.app import create_app
from audiapro.api.fake import InMemoryOrchestrator
from audiapro.api.health import (
    FinishedRun,
    Overall,
    PollDeployment,
    TenantInfo,
    compute_health,
    tenant_completeness,
)
from audiapro.commands.ops import completeness_cell
from audiapro.warehouse import DayReconciliation, SyncState

NOW = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)
LATEST = date(2026, 3, 11)
LAST_RUN = FinishedRun(name="brave-otter", state_type="COMPLETED", finished_at=NOW - timedelta(minutes=1))
POLLING = PollDeployment(paused=False, schedule_active=True, last_finished=LAST_RUN)


def day(tenant: str, when: date, matched: int, pbx: int = 400, malformed_legs: int = 0) -> DayReconciliation:
    return DayReconciliation(
        tenant=tenant, day=when, pbx_legs=pbx, malformed=malformed_legs, malformed_legs=malformed_legs,
        stored_legs=matched, missing_before=0, loaded_now=0, rejected=pbx - matched, phantom_legs=0,
        matched_legs=matched, completeness=matched / (pbx + malformed_legs) if pbx + malformed_legs else 1.0,
        checked_at=NOW - timedelta(hours=2),
    )  # fmt: skip


def synced(tenant: str) -> SyncState:
    return SyncState(tenant, NOW - timedelta(seconds=150), NOW - timedelta(seconds=90), NOW, None, 0, 1)


def days_ago(n: int) -> date:
    return LATEST - timedelta(days=n)


def test_latest_day_and_the_worst_of_the_last_seven() -> None:
    history = [day("acme", days_ago(n), 400) for n in range(10)]
    history[6] = day("acme", days_ago(6), 380)  # 95 %, six days before the latest: inside the window
    history[8] = day("acme", days_ago(8), 100)  # 25 %, eight days before: outside
    found = tenant_completeness(history)
    assert found is not None and found.complete
    assert (found.day, found.percent, found.missing) == (LATEST, 100.0, 0)
    assert (found.worst_day, found.worst_percent) == (days_ago(6), 95.0)
    assert tenant_completeness([day("acme", days_ago(n), 400) for n in range(3)]).worst_day is None  # type: ignore[union-attr]
    assert tenant_completeness([]) is None


def test_percent_is_rounded_down_so_a_day_short_of_complete_never_shows_100() -> None:
    assert day("a", LATEST, 9_999, pbx=10_000).percent == 99.99
    assert day("a", LATEST, 99_999, pbx=100_000).percent == 99.99
    assert day("a", LATEST, 29, pbx=100).percent == 29.0  # integers: no float rounding
    assert day("a", LATEST, 2, pbx=2, malformed_legs=1).percent == 66.66  # unreadable legs count as missing
    assert day("a", LATEST, 0, pbx=0).percent == 100.0  # a day without calls is complete


def test_a_tenant_whose_latest_day_is_below_100_makes_the_pipeline_degraded() -> None:
    tenants = [TenantInfo("acme"), TenantInfo("globex"), TenantInfo("old", enabled=False)]
    states = [synced("acme"), synced("globex")]
    complete = [day("acme", LATEST, 400), day("globex", LATEST, 250, pbx=250)]
    assert compute_health(NOW, POLLING, tenants, states, reconciled=complete).status is Overall.ok
    # An earlier bad day alone does not degrade (it is shown as the worst day); the latest one does.
    earlier = [*complete, day("globex", days_ago(1), 240, pbx=250)]
    report = compute_health(NOW, POLLING, tenants, states, reconciled=earlier)
    assert report.status is Overall.ok
    latest_bad = [day("acme", LATEST, 399), day("globex", LATEST, 250, pbx=250)]
    report = compute_health(NOW, POLLING, tenants, states, reconciled=latest_bad)
    assert report.status is Overall.degraded
    acme = report.as_dict()["tenants"][0]
    assert acme["status"] == "ok"  # polling is fine; the calls of a day are not all there
    assert acme["completeness"] == {
        "day": "2026-03-11",
        "percent": 99.75,
        "missing": 1,
        "checked_at": "2026-03-12T10:00:00+00:00",
        "worst_day": "2026-03-11",
        "worst_percent": 99.75,
    }
    # A disabled tenant's old incomplete day is shown but does not degrade the pipeline.
    disabled_bad = [*complete, day("old", LATEST, 10, pbx=20)]
    report = compute_health(NOW, POLLING, tenants, states, reconciled=disabled_bad)
    assert report.status is Overall.ok
    assert [(t.tenant, t.completeness is not None) for t in report.tenants] == [
        ("acme", True),
        ("globex", True),
        ("old", True),
    ]


def test_health_endpoint_and_status_show_completeness() -> None:
    token = "completeness-admin-token-0123456789"
    auth = {"Authorization": f"Bearer {token}"}  # the full report is for the admin only
    orchestrator = InMemoryOrchestrator(deployment=POLLING, tenant_list=[TenantInfo("acme")], token=token)
    history = [day("acme", LATEST, 396), day("acme", days_ago(2), 300)]
    states = lambda: [synced("acme")]  # noqa: E731
    app = create_app(orchestrator, states, clock=lambda: NOW, read_completeness=lambda: history)
    body = TestClient(app).get("/api/health", headers=auth).json()
    assert body["status"] == "degraded"
    assert body["tenants"][0]["completeness"]["percent"] == 99.0
    assert body["tenants"][0]["completeness"]["worst_day"] == "2026-03-09"

    def broken() -> list[DayReconciliation]:
        raise ConnectionError("warehouse down")

    failing = create_app(orchestrator, states, clock=lambda: NOW, read_completeness=broken)
    response = TestClient(failing).get("/api/health", headers=auth)
    assert response.status_code == 503 and "warehouse" in response.json()["errors"][0]

    found = tenant_completeness(history)
    assert completeness_cell(found) == "03-11 [red]99.00 %[/] (worst 03-09 [red]75.00 %[/])"
    assert completeness_cell(tenant_completeness([day("acme", LATEST, 400)])) == "03-11 [green]100.00 %[/]"
    assert completeness_cell(None) == "not reconciled"
