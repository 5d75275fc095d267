"""The alerting contract between the flows (which emit events) and the Prefect automations.

Prefect automations match event resource labels with glob patterns (``fnmatch``), not numbers, so
"at least N consecutive failures" is expressed as a small set of digit patterns built here.
"""

from __future__ import annotations

from typing import Any

#: Emitted by poll-cdrs for every tenant whose tick failed (after task retries).
TENANT_FAILED_EVENT = "audiapro.tenant.failed"
TENANT_RESOURCE_PREFIX = "audiapro.tenant."
#: Resource label carrying the tenant's ``sync_state.consecutive_failures`` as a decimal string.
CONSECUTIVE_FAILURES_LABEL = "audiapro.consecutive-failures"
#: A tenant is alerted on when this many ticks in a row failed.
TENANT_FAILURE_THRESHOLD = 5
#: poll-cdrs must complete at least once in this many seconds (5 ticks of 120 s).
POLLER_SILENT_SECONDS = 600
#: A failing tenant is alerted on at most once per this many seconds (the trigger's window).
TENANT_ALERT_REPEAT_SECONDS = 3600
#: Error texts are already redacted (no secrets); this only keeps events small.
MAX_EVENT_ERROR_CHARS = 300
#: Emitted by reconcile-cdrs for a tenant with a reconciled day still below 100 % after loading.
RECONCILE_INCOMPLETE_EVENT = "audiapro.reconcile.incomplete"
#: Resource label: the tenant's worst day of the run in whole percent, rounded down (``"97"``).
COMPLETENESS_LABEL = "audiapro.completeness-percent"
#: An incomplete tenant is alerted on at most once per this many seconds (a daily run alerts daily).
RECONCILE_ALERT_REPEAT_SECONDS = 3600
#: Incomplete days listed in one event (a run checks a few days; this only bounds the payload).
MAX_EVENT_DAYS = 31
#: Emitted by poll-cdrs for a tenant whose empty windows in a row reached its ``silent_ticks``:
#: earlier weeks had calls at these hours, so a PBX that stopped writing CDRs looks like this.
TENANT_SILENT_EVENT = "audiapro.tenant.silent"
#: Resource label: unexpectedly empty windows in a row, as a decimal string.
EMPTY_TICKS_LABEL = "audiapro.empty-ticks"


def at_least_patterns(minimum: int) -> list[str]:
    """Glob patterns that match the decimal string of every integer >= ``minimum`` (and no other).

    Example: ``at_least_patterns(5) == ["5", "[6-9]", "[1-9][0-9]*"]``.

    Args:
        minimum: The smallest integer to match (>= 1).
    """
    if minimum < 1:
        raise ValueError("minimum must be >= 1")
    digits = str(minimum)
    patterns = [digits]
    # Same length: keep a prefix of `minimum`, then one larger digit, then anything.
    for i, digit in enumerate(digits):
        if digit != "9":
            low = int(digit) + 1
            choice = str(low) if low == 9 else f"[{low}-9]"
            patterns.append(digits[:i] + choice + "[0-9]" * (len(digits) - i - 1))
    # More digits: any number without a leading zero.
    patterns.append("[1-9]" + "[0-9]" * len(digits) + "*")
    return patterns


def tenant_failed_event(tenant: str, consecutive_failures: int, error: str) -> dict[str, Any]:
    """Keyword arguments of ``prefect.events.emit_event`` for a tenant's failed tick.

    Args:
        tenant: Tenant name.
        consecutive_failures: The tenant's failures in a row, from its sync state.
        error: The redacted one-line error stored in ``sync_state.last_error``.
    """
    return {
        "event": TENANT_FAILED_EVENT,
        "resource": {
            "prefect.resource.id": f"{TENANT_RESOURCE_PREFIX}{tenant}",
            "prefect.resource.name": tenant,
            CONSECUTIVE_FAILURES_LABEL: str(consecutive_failures),
        },
        "payload": {"consecutive_failures": consecutive_failures, "error": error[:MAX_EVENT_ERROR_CHARS]},
    }


def tenant_silent_event(tenant: str, empty_ticks: int, window_start: str, window_end: str) -> dict[str, Any]:
    """Keyword arguments of ``prefect.events.emit_event`` for a tenant that went silent.

    Args:
        tenant: Tenant name.
        empty_ticks: Unexpectedly empty windows in a row.
        window_start: The last empty window's start (UTC, ISO).
        window_end: Its end.
    """
    return {
        "event": TENANT_SILENT_EVENT,
        "resource": {
            "prefect.resource.id": f"{TENANT_RESOURCE_PREFIX}{tenant}",
            "prefect.resource.name": tenant,
            EMPTY_TICKS_LABEL: str(empty_ticks),
        },
        "payload": {"empty_ticks": empty_ticks, "window_start": window_start, "window_end": window_end},
    }


def reconcile_incomplete_event(tenant: str, days: list[dict[str, Any]]) -> dict[str, Any]:
    """Keyword arguments of ``prefect.events.emit_event`` for a tenant's days below 100 %.

    Args:
        tenant: Tenant name.
        days: The incomplete days' result rows (``DayReconciliation.as_row()``: ``day``, ``percent``,
            ``pbx_legs``, ``matched_legs``, ``rejected``, ``malformed_legs``); not empty.
    """
    worst = min(days, key=lambda row: (row["percent"], row["day"]))
    fields = ("day", "percent", "pbx_legs", "matched_legs", "rejected", "malformed_legs")
    return {
        "event": RECONCILE_INCOMPLETE_EVENT,
        "resource": {
            "prefect.resource.id": f"{TENANT_RESOURCE_PREFIX}{tenant}",
            "prefect.resource.name": tenant,
            COMPLETENESS_LABEL: str(int(worst["percent"])),
        },
        "payload": {
            "worst_day": worst["day"],
            "worst_percent": worst["percent"],
            "days": [{name: row[name] for name in fields} for row in days[:MAX_EVENT_DAYS]],
        },
    }


# --- toll-fraud alerts (audiapro.insights) ------------------------------------------------------

#: Emitted once per new ``fraud_alerts`` row (after a poll tick or by the daily cdr-insights run).
FRAUD_SUSPECTED_EVENT = "audiapro.fraud.suspected"
#: Each alert is its own resource, so the automation notifies once per alert.
FRAUD_ALERT_RESOURCE_PREFIX = "audiapro.fraud-alert."
FRAUD_RULE_LABEL = "audiapro.fraud-rule"
FRAUD_SEVERITY_LABEL = "audiapro.fraud-severity"
#: Destinations named in an event (the full evidence stays in the warehouse).
MAX_EVENT_DESTINATIONS = 5


def fraud_suspected_event(alert: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``prefect.events.emit_event`` for a new toll-fraud alert.

    Args:
        alert: A row returned by ``audiapro.warehouse.insights.upsert_alerts`` (with ``id``).
    """
    tenant = str(alert["tenant"])
    evidence = alert.get("evidence") or {}
    destinations = list(evidence.get("destinations", {}))[:MAX_EVENT_DESTINATIONS]
    return {
        "event": FRAUD_SUSPECTED_EVENT,
        "resource": {
            "prefect.resource.id": f"{FRAUD_ALERT_RESOURCE_PREFIX}{alert['id']}",
            "prefect.resource.name": tenant,
            FRAUD_RULE_LABEL: str(alert["rule"]),
            FRAUD_SEVERITY_LABEL: str(alert["severity"]),
        },
        "related": [
            {"prefect.resource.id": f"{TENANT_RESOURCE_PREFIX}{tenant}", "prefect.resource.role": "tenant"}
        ],
        "payload": {
            "alert_id": alert["id"],
            "tenant": tenant,
            "rule": alert["rule"],
            "severity": alert["severity"],
            "subject": alert["subject"],
            "calls": alert["calls"],
            "window_start": str(alert["window_start"]),
            "window_end": str(alert["window_end"]),
            "countries": evidence.get("countries", []),
            "destinations": destinations,
            "estimated_cost": alert.get("estimated_cost"),
        },
    }
