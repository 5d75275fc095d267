"""Health classification from plain inputs: poller status, tenant status, overall status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from audiapro.api.health import (
    FinishedRun,
    Overall,
    PollDeployment,
    PollerStatus,
    TenantInfo,
    TenantStatus,
    compute_health,
    poller_status,
)
from audiapro.warehouse import SyncState

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def run(state: str, minutes_ago: float) -> FinishedRun:
    return FinishedRun(name="brave-otter", state_type=state, finished_at=NOW - timedelta(minutes=minutes_ago))


def scheduled(last: FinishedRun | None) -> PollDeployment:
    return PollDeployment(paused=False, schedule_active=True, last_finished=last)


def state(
    tenant: str, *, success_minutes_ago: float | None, failures: int = 0, error: str | None = None
) -> SyncState:
    success = None if success_minutes_ago is None else NOW - timedelta(minutes=success_minutes_ago)
    cursor = None if success is None else success - timedelta(seconds=60)
    return SyncState(
        tenant=tenant,
        cursor_at=cursor,
        last_success_at=success,
        last_attempt_at=NOW,
        last_error=error,
        consecutive_failures=failures,
        last_run_id=1,
    )


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        (None, PollerStatus.not_deployed),
        (
            PollDeployment(paused=True, schedule_active=True, last_finished=run("COMPLETED", 1)),
            PollerStatus.paused,
        ),
        (
            PollDeployment(paused=False, schedule_active=False, last_finished=run("COMPLETED", 1)),
            PollerStatus.paused,
        ),
        (scheduled(None), PollerStatus.stale),
        (scheduled(run("COMPLETED", 2)), PollerStatus.active),
        (scheduled(run("COMPLETED", 9.9)), PollerStatus.active),
        (scheduled(run("COMPLETED", 10.5)), PollerStatus.stale),
        (scheduled(run("FAILED", 1)), PollerStatus.failing),
        (scheduled(run("CRASHED", 30)), PollerStatus.failing),
    ],
)
def test_poller_status(deployment: PollDeployment | None, expected: PollerStatus) -> None:
    status, detail = poller_status(deployment, NOW)
    assert status is expected
    assert detail


def test_healthy_pipeline_is_ok_with_lag_and_last_success() -> None:
    report = compute_health(
        NOW,
        scheduled(run("COMPLETED", 1)),
        [TenantInfo("acme"), TenantInfo("globex")],
        [state("acme", success_minutes_ago=1), state("globex", success_minutes_ago=2)],
    )
    assert report.status is Overall.ok and report.cdr_poller is PollerStatus.active
    acme = report.tenants[0]
    assert (acme.tenant, acme.status, acme.lag_seconds) == ("acme", TenantStatus.ok, 120)
    body = report.as_dict()
    assert body["cdr_poller"] == "active" and body["status"] == "ok"
    assert body["tenants"][1]["last_success_at"] == (NOW - timedelta(minutes=2)).isoformat()


def test_failing_tenant_makes_the_pipeline_degraded_and_shows_its_error() -> None:
    report = compute_health(
        NOW,
        scheduled(run("FAILED", 1)),
        [TenantInfo("acme"), TenantInfo("broken")],
        [
            state("acme", success_minutes_ago=1),
            state("broken", success_minutes_ago=None, failures=5, error="UcmAuthError: wrong password"),
        ],
    )
    assert report.status is Overall.degraded and report.cdr_poller is PollerStatus.failing
    broken = {t.tenant: t for t in report.tenants}["broken"]
    assert broken.status is TenantStatus.failing and broken.consecutive_failures == 5
    assert broken.lag_seconds is None and broken.last_error == "UcmAuthError: wrong password"


def test_disabled_import_only_and_new_tenants() -> None:
    report = compute_health(
        NOW,
        scheduled(run("COMPLETED", 1)),
        [TenantInfo("off", enabled=False), TenantInfo("files", has_pbx=False), TenantInfo("new")],
        [state("gone", success_minutes_ago=600)],
    )
    statuses = {t.tenant: t.status for t in report.tenants}
    assert statuses == {
        "off": TenantStatus.disabled,
        "files": TenantStatus.import_only,
        "new": TenantStatus.never_polled,
        "gone": TenantStatus.disabled,  # sync state of a removed tenant: shown, not polled
    }
    assert report.status is Overall.degraded  # "new" has not been polled yet


def test_stale_tenant_and_unreadable_dependencies() -> None:
    stale = compute_health(
        NOW, scheduled(run("COMPLETED", 1)), [TenantInfo("a")], [state("a", success_minutes_ago=11)]
    )
    assert stale.tenants[0].status is TenantStatus.stale and stale.status is Overall.degraded

    broken = compute_health(NOW, None, [], [], errors=["Prefect API: ConnectError"], prefect_ok=False)
    assert broken.status is Overall.error and broken.cdr_poller is PollerStatus.unknown
    assert broken.as_dict()["errors"] == ["Prefect API: ConnectError"]


def test_a_login_pause_a_silent_pbx_and_a_backlog_each_show_and_degrade() -> None:
    from dataclasses import replace

    from audiapro.warehouse import LoginBlock

    pause = LoginBlock("paused", NOW + timedelta(minutes=9), -37, "status -37 wrong password", NOW)
    expired = LoginBlock("healthy", NOW - timedelta(minutes=1), -37, "status -37 wrong password", NOW)
    states = [
        replace(state("paused", success_minutes_ago=30, failures=3), last_error="paused until ..."),
        replace(state("silent", success_minutes_ago=1), empty_ticks=3),
        replace(state("quiet", success_minutes_ago=1), empty_ticks=2),
        replace(state("behind", success_minutes_ago=1), cursor_at=NOW - timedelta(hours=5)),
        state("healthy", success_minutes_ago=1),
    ]
    tenants = [TenantInfo(name=s.tenant) for s in states]
    report = compute_health(
        NOW, scheduled(run("COMPLETED", 1)), tenants, states, login_blocks=[pause, expired]
    )
    by_name = {t.tenant: t for t in report.tenants}
    assert by_name["paused"].status is TenantStatus.login_paused
    assert by_name["paused"].paused_until == pause.blocked_until
    assert by_name["silent"].status is TenantStatus.silent and by_name["silent"].empty_ticks == 3
    assert by_name["quiet"].status is TenantStatus.ok  # two empty windows: below the default of three
    assert by_name["behind"].status is TenantStatus.behind
    assert by_name["healthy"].status is TenantStatus.ok and by_name["healthy"].paused_until is None
    assert report.status is Overall.degraded
    payload = report.as_dict()["tenants"]
    assert [t["paused_until"] for t in payload if t["tenant"] == "paused"] == [
        pause.blocked_until.isoformat()
    ]
