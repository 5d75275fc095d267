"""The alert automations' definitions (installed on a real server by the e2e tests)."""

from __future__ import annotations

from datetime import timedelta
from fnmatch import fnmatchcase
from uuid import uuid4

from prefect.automations import ChangeFlowRunState, DoNothing, Posture

from audiapro.ops import alerts
from deployments.automations import poller_silent, tenant_failing, unresponsive_runs


def test_poller_silent_is_proactive_on_completed_runs_of_the_poll_deployment() -> None:
    deployment_id = uuid4()
    automation = poller_silent(deployment_id)
    trigger = automation.trigger
    assert trigger.posture == Posture.Proactive
    assert trigger.expect == {"prefect.flow-run.Completed"}
    assert trigger.within == timedelta(minutes=10)
    assert trigger.threshold == 1
    assert trigger.match_related.model_dump() == {
        "prefect.resource.id": f"prefect.deployment.{deployment_id}"
    }
    # Only actions a self-hosted server runs (no declare-incident / send-email-notification).
    assert [type(a) for a in automation.actions] == [DoNothing]


def test_tenant_failing_matches_five_or_more_consecutive_failures_per_tenant() -> None:
    trigger = tenant_failing().trigger
    assert trigger.posture == Posture.Reactive
    assert trigger.expect == {alerts.TENANT_FAILED_EVENT}
    assert trigger.for_each == {"prefect.resource.id"}
    patterns = trigger.match.model_dump()[alerts.CONSECUTIVE_FAILURES_LABEL]
    assert [n for n in range(12) if any(fnmatchcase(str(n), p) for p in patterns)] == list(range(5, 12))
    assert trigger.within == timedelta(hours=1)


def test_unresponsive_runs_are_marked_crashed_after_three_missed_heartbeats() -> None:
    automation = unresponsive_runs()
    trigger = automation.trigger
    assert trigger.posture == Posture.Proactive
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed"} <= trigger.expect
    assert trigger.for_each == {"prefect.resource.id"} and trigger.within == timedelta(minutes=9)
    (action,) = automation.actions
    assert isinstance(action, ChangeFlowRunState) and action.state.value == "CRASHED"


def test_calls_missing_alerts_once_an_hour_per_tenant_on_the_reconcile_event() -> None:
    from deployments.automations import calls_missing

    trigger = calls_missing().trigger
    assert trigger.posture == Posture.Reactive
    assert trigger.expect == {alerts.RECONCILE_INCOMPLETE_EVENT}
    assert trigger.for_each == {"prefect.resource.id"} and trigger.within == timedelta(hours=1)
    event = alerts.reconcile_incomplete_event(
        "acme", [{"day": "2026-03-02", "percent": 99.5, "pbx_legs": 200, "matched_legs": 199, "rejected": 1,
                  "malformed_legs": 0}]
    )  # fmt: skip
    pattern = trigger.match.model_dump()["prefect.resource.id"]
    assert fnmatchcase(event["resource"]["prefect.resource.id"], pattern)


def test_tenant_silent_alerts_once_an_hour_per_tenant_on_the_silence_event() -> None:
    from audiapro.ops import alerts
    from deployments.automations import tenant_silent

    trigger = tenant_silent().trigger
    assert trigger.expect == {alerts.TENANT_SILENT_EVENT}
    assert trigger.for_each == {"prefect.resource.id"}
    event = alerts.tenant_silent_event("acme", 3, "2026-03-31T15:00:00+00:00", "2026-03-31T17:00:00+00:00")
    assert event["resource"]["prefect.resource.id"] == "audiapro.tenant.acme"
    assert event["resource"][alerts.EMPTY_TICKS_LABEL] == "3"


def test_fraud_suspected_notifies_once_per_alert() -> None:
    from deployments.automations import fraud_suspected

    trigger = fraud_suspected().trigger
    assert trigger.posture == Posture.Reactive
    assert trigger.expect == {alerts.FRAUD_SUSPECTED_EVENT}
    assert trigger.for_each == {"prefect.resource.id"}
    assert trigger.threshold == 1
    # The event of an alert matches; each alert is its own resource, so each one notifies.
    event = alerts.fraud_suspected_event(
        {
            "id": 7,
            "tenant": "acme",
            "rule": "intl_velocity",
            "severity": "critical",
            "subject": "ext:1001",
            "calls": 21,
            "window_start": "2026-03-17 05:00",
            "window_end": "2026-03-17 06:00",
            "evidence": {"countries": ["GB"], "destinations": {f"+44909879{n:04d}": 1 for n in range(9)}},
            "estimated_cost": None,
        }
    )
    pattern = trigger.match.model_dump()["prefect.resource.id"]
    assert fnmatchcase(event["resource"]["prefect.resource.id"], pattern)
    assert event["resource"][alerts.FRAUD_SEVERITY_LABEL] == "critical"
    assert len(event["payload"]["destinations"]) == alerts.MAX_EVENT_DESTINATIONS
    assert event["related"] == [
        {"prefect.resource.id": "audiapro.tenant.acme", "prefect.resource.role": "tenant"}
    ]
