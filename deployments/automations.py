"""The AudiaPro alert automations, created or updated by name: ``python -m deployments.automations``.

* **poll-cdrs silent** (proactive): no ``Completed`` poll-cdrs run for 10 minutes. Fires when data
  stops flowing for any reason: no worker, a leaked concurrency slot, every tick failing, a paused
  schedule.
* **tenant failing** (reactive): the poll flow emits ``audiapro.tenant.failed`` with the tenant's
  ``consecutive_failures``; the trigger matches counts >= 5, at most once an hour per tenant.
* **calls missing** (reactive): reconcile-cdrs emits ``audiapro.reconcile.incomplete`` for a tenant
  whose reconciled day stays below 100 % after loading what it could; alerts at most once an hour
  per tenant (so once per daily run).
* **suspected toll fraud** (reactive, per alert): the poll flow and cdr-insights emit
  ``audiapro.fraud.suspected`` once for each new ``fraud_alerts`` row; each one notifies.
* **unresponsive runs** (proactive, per run): a flow run whose heartbeats stopped (its worker
  machine died) is marked Crashed, Prefect's recipe for self-hosted servers; otherwise it would show
  as Running forever. Its deployment concurrency slot is freed by lease expiry either way.

Each firing is recorded as a ``prefect.automation.triggered`` event (Events page, automation page).
If a notification block named ``audiapro-alerts`` exists (Slack, Teams, SMTP e-mail, custom webhook;
all work on a self-hosted server), the alert is also sent there. Cloud-only actions
(``declare-incident``, ``send-email-notification``) are not used.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.automations import (
    AutomationCore,
    ChangeFlowRunState,
    DoNothing,
    EventTrigger,
    Posture,
    SendNotification,
)
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound

from audiapro.ops import alerts
from audiapro.prefect_names import ALERT_BLOCK, POLL_DEPLOYMENT, WORK_POOL

POLLER_SILENT = "audiapro: poll-cdrs silent for 10 minutes"
TENANT_FAILING = "audiapro: tenant failing 5 polls in a row"
CALLS_MISSING = "audiapro: a reconciled day is below 100 %"
TENANT_SILENT = "audiapro: tenant silent where calls are expected"
UNRESPONSIVE_RUNS = "audiapro: mark unresponsive flow runs crashed"
FRAUD_SUSPECTED = "audiapro: suspected toll fraud"
#: One notification per alert (each alert is its own resource); repeats of it within this are dropped.
FRAUD_ALERT_REPEAT_SECONDS = 60
#: Flow runs send a heartbeat every 180 s (PREFECT_FLOWS_HEARTBEAT_FREQUENCY); three missed = dead.
HEARTBEAT_SECONDS = 180
MISSED_HEARTBEATS = 3
RUN_END_EVENTS = {f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")}
AUTOMATION_TAGS = [WORK_POOL]

POLLER_SILENT_BODY = (
    "poll-cdrs has not completed successfully in the last {minutes} minutes, so no new CDRs are "
    "reaching the warehouse. Check `audiapro status`, the workers of the 'audiapro' pool, and the "
    "latest poll-cdrs runs (a run stuck in Pending can hold the deployment's concurrency slot)."
)
TENANT_FAILING_BODY = (
    "Tenant {{ event.resource['prefect.resource.name'] }} failed "
    "{{ event.payload.consecutive_failures }} polls in a row: {{ event.payload.error }}"
)

CALLS_MISSING_BODY = (
    "Tenant {{ event.resource['prefect.resource.name'] }}: {{ event.payload.worst_day }} is only "
    "{{ event.payload.worst_percent }} % complete after reconciling it against the PBX (legs "
    "quarantined or unreadable). See the reconcile-cdrs artifacts and `audiapro reconcile --tenant "
    "{{ event.resource['prefect.resource.name'] }} --day {{ event.payload.worst_day }}`."
)


def poller_silent(deployment_id: UUID, actions: list[Any] | None = None) -> AutomationCore:
    """Proactive automation: fewer than one Completed poll-cdrs run within 10 minutes."""
    minutes = alerts.POLLER_SILENT_SECONDS // 60
    return AutomationCore(
        name=POLLER_SILENT,
        description=POLLER_SILENT_BODY.format(minutes=minutes),
        tags=AUTOMATION_TAGS,
        trigger=EventTrigger(
            posture=Posture.Proactive,
            expect={"prefect.flow-run.Completed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": f"prefect.deployment.{deployment_id}"},
            threshold=1,
            within=timedelta(seconds=alerts.POLLER_SILENT_SECONDS),
        ),
        actions=actions or [DoNothing()],
    )


def tenant_failing(actions: list[Any] | None = None) -> AutomationCore:
    """Reactive automation: a tenant's ``audiapro.tenant.failed`` event with >= 5 failures in a row."""
    return AutomationCore(
        name=TENANT_FAILING,
        description=(
            f"A tenant failed {alerts.TENANT_FAILURE_THRESHOLD} or more poll ticks in a row "
            "(wrong password, PBX unreachable, TLS): see its last_error in `audiapro status`."
        ),
        tags=AUTOMATION_TAGS,
        trigger=EventTrigger(
            posture=Posture.Reactive,
            expect={alerts.TENANT_FAILED_EVENT},
            match={
                "prefect.resource.id": f"{alerts.TENANT_RESOURCE_PREFIX}*",
                alerts.CONSECUTIVE_FAILURES_LABEL: alerts.at_least_patterns(alerts.TENANT_FAILURE_THRESHOLD),
            },
            for_each={"prefect.resource.id"},
            threshold=1,
            # A reactive trigger fires once, then ignores matching events for the rest of its window.
            within=timedelta(seconds=alerts.TENANT_ALERT_REPEAT_SECONDS),
        ),
        actions=actions or [DoNothing()],
    )


TENANT_SILENT_BODY = (
    "Tenant {{ event.resource['prefect.resource.name'] }} returned no CDRs for "
    "{{ event.payload.empty_ticks }} polls in a row, at hours of the week that had calls in earlier "
    "weeks (last window {{ event.payload.window_start }} .. {{ event.payload.window_end }} UTC). "
    "Check the PBX: CDR storage full, CDR disabled, the API user's permissions, or the PBX clock."
)


def _per_tenant_alert(
    name: str, description: str, event: str, repeat_seconds: int, actions: list[Any] | None
) -> AutomationCore:
    """Reactive automation on a tenant-scoped ``event``: fires at once, then at most once per
    ``repeat_seconds`` for each tenant (``for_each`` the tenant resource)."""
    return AutomationCore(
        name=name,
        description=description,
        tags=AUTOMATION_TAGS,
        trigger=EventTrigger(
            posture=Posture.Reactive,
            expect={event},
            match={"prefect.resource.id": f"{alerts.TENANT_RESOURCE_PREFIX}*"},
            for_each={"prefect.resource.id"},
            threshold=1,
            within=timedelta(seconds=repeat_seconds),
        ),
        actions=actions or [DoNothing()],
    )


def tenant_silent(actions: list[Any] | None = None) -> AutomationCore:
    """Reactive automation: a tenant's ``audiapro.tenant.silent`` event, once an hour per tenant."""
    return _per_tenant_alert(
        TENANT_SILENT,
        "A tenant's poll windows came back empty several times in a row at hours when earlier weeks "
        "had calls: data may be missing while every poll succeeds. See `audiapro status`.",
        alerts.TENANT_SILENT_EVENT,
        alerts.TENANT_ALERT_REPEAT_SECONDS,
        actions,
    )


def calls_missing(actions: list[Any] | None = None) -> AutomationCore:
    """Reactive automation: a tenant's ``audiapro.reconcile.incomplete`` event, once an hour per tenant."""
    return _per_tenant_alert(
        CALLS_MISSING,
        "A reconciled PBX-local day of a tenant is still below 100 % complete after reconcile-cdrs "
        "loaded what it could: see `audiapro status`, the reconcile-cdrs artifacts and rejected_rows.",
        alerts.RECONCILE_INCOMPLETE_EVENT,
        alerts.RECONCILE_ALERT_REPEAT_SECONDS,
        actions,
    )


FRAUD_SUSPECTED_BODY = (
    "Suspected toll fraud at tenant {{ event.payload.tenant }}: rule {{ event.payload.rule }} "
    "({{ event.payload.severity }}) on {{ event.payload.subject }}, {{ event.payload.calls }} calls from "
    "{{ event.payload.window_start }} UTC, countries {{ event.payload.countries }}, estimated cost "
    "{{ event.payload.estimated_cost }}. Alerts never block calls: check the PBX (disable the "
    "extension, change its SIP password, restrict its outbound routes) and acknowledge with "
    "`audiapro alerts ack {{ event.payload.alert_id }}`."
)


def fraud_suspected(actions: list[Any] | None = None) -> AutomationCore:
    """Reactive automation: every ``audiapro.fraud.suspected`` event (one per new alert) notifies."""
    return AutomationCore(
        name=FRAUD_SUSPECTED,
        description="A toll-fraud rule fired on a tenant's calls: see `audiapro alerts`.",
        tags=AUTOMATION_TAGS,
        trigger=EventTrigger(
            posture=Posture.Reactive,
            expect={alerts.FRAUD_SUSPECTED_EVENT},
            match={"prefect.resource.id": f"{alerts.FRAUD_ALERT_RESOURCE_PREFIX}*"},
            for_each={"prefect.resource.id"},
            threshold=1,
            within=timedelta(seconds=FRAUD_ALERT_REPEAT_SECONDS),
        ),
        actions=actions or [DoNothing()],
    )


def unresponsive_runs() -> AutomationCore:
    """Proactive, per flow run: after a heartbeat, expect another heartbeat or an end within 9 minutes."""
    return AutomationCore(
        name=UNRESPONSIVE_RUNS,
        description="A flow run stopped sending heartbeats (worker or machine gone): mark it Crashed.",
        tags=AUTOMATION_TAGS,
        trigger=EventTrigger(
            posture=Posture.Proactive,
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *RUN_END_EVENTS},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            for_each={"prefect.resource.id"},
            threshold=1,
            within=timedelta(seconds=HEARTBEAT_SECONDS * MISSED_HEARTBEATS),
        ),
        actions=[
            ChangeFlowRunState(
                name="Crashed",
                state=StateType.CRASHED,
                force=False,
                message=f"no heartbeat for {HEARTBEAT_SECONDS * MISSED_HEARTBEATS} s: its process is gone",
            )
        ],
    )


def _notification(client: SyncPrefectClient, subject: str, body: str) -> list[Any] | None:
    # Any notification block type will do, so look the block up by name across all types.
    documents = [d for d in client.read_block_documents(include_secrets=False) if d.name == ALERT_BLOCK]
    if not documents:
        return None
    return [SendNotification(block_document_id=documents[0].id, subject=subject, body=body)]


def upsert(client: SyncPrefectClient, automation: AutomationCore) -> UUID:
    """Create the automation, or update the one with the same name (duplicates are removed)."""
    existing = client.read_automations_by_name(automation.name)
    if not existing:
        return client.create_automation(automation)
    keep, *extra = existing
    client.update_automation(keep.id, automation)
    for duplicate in extra:
        client.delete_automation(duplicate.id)
    return keep.id


def install(client: SyncPrefectClient) -> dict[str, UUID]:
    """Create or update the automations; the poll-cdrs deployment must exist."""
    deployment = client.read_deployment_by_name(POLL_DEPLOYMENT)
    minutes = alerts.POLLER_SILENT_SECONDS // 60
    silent_actions = _notification(client, POLLER_SILENT, POLLER_SILENT_BODY.format(minutes=minutes))
    failing_actions = _notification(client, TENANT_FAILING, TENANT_FAILING_BODY)
    missing_actions = _notification(client, CALLS_MISSING, CALLS_MISSING_BODY)
    quiet_actions = _notification(client, TENANT_SILENT, TENANT_SILENT_BODY)
    fraud_actions = _notification(client, FRAUD_SUSPECTED, FRAUD_SUSPECTED_BODY)
    return {
        POLLER_SILENT: upsert(client, poller_silent(deployment.id, silent_actions)),
        TENANT_FAILING: upsert(client, tenant_failing(failing_actions)),
        CALLS_MISSING: upsert(client, calls_missing(missing_actions)),
        TENANT_SILENT: upsert(client, tenant_silent(quiet_actions)),
        UNRESPONSIVE_RUNS: upsert(client, unresponsive_runs()),
        FRAUD_SUSPECTED: upsert(client, fraud_suspected(fraud_actions)),
    }


def main() -> int:
    """Install the automations against ``PREFECT_API_URL``; print their names."""
    with get_client(sync_client=True) as client:
        try:
            installed = install(client)
        except ObjectNotFound:
            print(
                f"deployment {POLL_DEPLOYMENT} not found: run `prefect deploy --all` first", file=sys.stderr
            )
            return 1
    for name, automation_id in installed.items():
        print(f"automation '{name}' ({automation_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
