"""Pipeline health from plain inputs: the poll deployment's state, the tenants, their sync state and
their measured completeness (``reconcile_days``).

Pure functions, no I/O: the API and ``audiapro status`` gather the inputs (``audiapro.api.service``)
and this module decides what they mean.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from audiapro.settings import DEFAULT_SILENT_TICKS

if TYPE_CHECKING:  # importing the warehouse package pulls in pandas: keep `audiapro status` quick
    from audiapro.warehouse import DayReconciliation, LoginBlock, SyncState

#: The poller (and a tenant) counts as active only with a success at most this old (5 ticks).
STALE_AFTER = timedelta(minutes=10)
#: A tenant whose cursor is further behind than this is catching up (after an outage or a pause).
BEHIND_AFTER = timedelta(hours=1)
#: Prefect state types that end a run; Cancelled is left out on purpose: CANCEL_NEW cancels a tick
#: that collided with a running one, which says nothing about the poller's health.
FINISHED_OK = "COMPLETED"
FINISHED_BAD = ("FAILED", "CRASHED")
#: The worst day is looked for among the latest reconciled day and the days before it within this span.
COMPLETENESS_WINDOW = timedelta(days=7)
#: A day is complete at 100 % (``DayReconciliation.percent`` is rounded down, so 99.99 is not).
COMPLETE_PERCENT = 100.0


class PollerStatus(enum.StrEnum):
    """What ``cdr_poller`` reports."""

    active = "active"  # scheduled, and the last finished run succeeded within STALE_AFTER
    paused = "paused"  # deployment paused or no active schedule
    failing = "failing"  # the last finished run failed or crashed
    stale = "stale"  # no successful run within STALE_AFTER (or none finished yet)
    not_deployed = "not_deployed"  # no poll-cdrs deployment on the Prefect server
    unknown = "unknown"  # the Prefect API could not be asked


class TenantStatus(enum.StrEnum):
    """Per-tenant health."""

    ok = "ok"
    failing = "failing"  # the latest tick failed (consecutive_failures > 0)
    stale = "stale"  # last success older than STALE_AFTER
    never_polled = "never_polled"
    disabled = "disabled"  # not polled on purpose (enabled flag off)
    import_only = "import_only"  # no PBX host: files only, never polled
    login_paused = "login_paused"  # the PBX refused a login: no path logs in before paused_until
    silent = "silent"  # empty windows in a row where earlier weeks had calls at the same hours
    behind = "behind"  # polls succeed, but the cursor is over BEHIND_AFTER behind (catching up)


class Overall(enum.StrEnum):
    """Top-level ``status``."""

    ok = "ok"
    degraded = "degraded"  # the pipeline runs, but the poller or a tenant needs attention
    error = "error"  # a dependency (Prefect API, warehouse) could not be read


@dataclass(frozen=True)
class FinishedRun:
    """The poll deployment's latest finished run.

    Attributes:
        name: Flow run name.
        state_type: ``COMPLETED``, ``FAILED`` or ``CRASHED``.
        finished_at: When it ended (UTC).
    """

    name: str
    state_type: str
    finished_at: datetime


@dataclass(frozen=True)
class PollDeployment:
    """What the Prefect server knows about the poll deployment.

    Attributes:
        paused: Deployment paused.
        schedule_active: At least one active schedule.
        last_finished: Latest run that completed, failed or crashed.
        next_run_at: Expected start of the next scheduled run.
    """

    paused: bool
    schedule_active: bool
    last_finished: FinishedRun | None = None
    next_run_at: datetime | None = None


@dataclass(frozen=True)
class TenantInfo:
    """A tenant as configured (its CloudUCM block), without secrets.

    Attributes:
        name: Tenant name.
        enabled: Polled by poll-cdrs.
        has_pbx: Has a PBX host (import-only tenants have none).
        silent_ticks: Unexpectedly empty windows in a row that make the tenant ``silent``.
    """

    name: str
    enabled: bool = True
    has_pbx: bool = True
    silent_ticks: int = DEFAULT_SILENT_TICKS

    @classmethod
    def from_block(cls, name: str, data: dict[str, Any]) -> TenantInfo:
        """The health view of one CloudUCM block document's name and field values."""
        return cls(
            name=name,
            enabled=bool(data.get("enabled", True)),
            has_pbx=bool(data.get("host")),
            silent_ticks=int(data.get("silent_ticks") or DEFAULT_SILENT_TICKS),
        )


@dataclass(frozen=True)
class Completeness:
    """A tenant's measured completeness: its PBX legs found in the warehouse (reconcile-cdrs).

    Attributes:
        day: The most recent reconciled PBX-local day.
        percent: Its completeness, in percent (rounded down to 0.01).
        missing: Its legs not in the warehouse (quarantined or unreadable ones).
        checked_at: When it was measured.
        worst_day: The worst day of the last 7 reconciled ones, when below 100 % (else None).
        worst_percent: That day's completeness.
    """

    day: date
    percent: float
    missing: int
    checked_at: datetime
    worst_day: date | None = None
    worst_percent: float | None = None

    @property
    def complete(self) -> bool:
        """The latest reconciled day has every PBX leg stored."""
        return self.percent >= COMPLETE_PERCENT

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO dates)."""
        return {
            "day": self.day.isoformat(),
            "percent": self.percent,
            "missing": self.missing,
            "checked_at": _iso(self.checked_at),
            "worst_day": self.worst_day.isoformat() if self.worst_day else None,
            "worst_percent": self.worst_percent,
        }


@dataclass(frozen=True)
class TenantHealth:
    """One tenant's health line.

    Attributes:
        tenant: Tenant name.
        status: See ``TenantStatus``.
        last_success_at: Last committed poll.
        lag_seconds: How far the warehouse is behind now (now - cursor), whole seconds.
        consecutive_failures: Failed ticks since the last success.
        last_error: Redacted error of the latest failure (no secrets).
        completeness: Latest measured completeness; None before the first reconciliation.
        paused_until: Logins to the PBX are paused until then after a refused login (else None).
        empty_ticks: Unexpectedly empty poll windows in a row.
    """

    tenant: str
    status: TenantStatus
    last_success_at: datetime | None
    lag_seconds: int | None
    consecutive_failures: int
    last_error: str | None
    completeness: Completeness | None = None
    paused_until: datetime | None = None
    empty_ticks: int = 0


@dataclass(frozen=True)
class HealthReport:
    """The health answer (``GET /api/health``, ``audiapro status``)."""

    status: Overall
    cdr_poller: PollerStatus
    poller_detail: str
    checked_at: datetime
    last_run: FinishedRun | None = None
    next_run_at: datetime | None = None
    tenants: list[TenantHealth] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO timestamps)."""
        return {
            "status": self.status.value,
            "cdr_poller": self.cdr_poller.value,
            "poller_detail": self.poller_detail,
            "checked_at": _iso(self.checked_at),
            "last_run": None
            if self.last_run is None
            else {
                "name": self.last_run.name,
                "state": self.last_run.state_type,
                "finished_at": _iso(self.last_run.finished_at),
            },
            "next_run_at": _iso(self.next_run_at),
            "tenants": [
                {
                    "tenant": t.tenant,
                    "status": t.status.value,
                    "last_success_at": _iso(t.last_success_at),
                    "lag_seconds": t.lag_seconds,
                    "consecutive_failures": t.consecutive_failures,
                    "last_error": t.last_error,
                    "completeness": t.completeness.as_dict() if t.completeness else None,
                    "paused_until": _iso(t.paused_until),
                    "empty_ticks": t.empty_ticks,
                }
                for t in self.tenants
            ],
            "errors": list(self.errors),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def poller_status(deployment: PollDeployment | None, now: datetime) -> tuple[PollerStatus, str]:
    """Classify the poll deployment; return the status and a one-line explanation."""
    if deployment is None:
        return PollerStatus.not_deployed, "poll-cdrs is not deployed (run deployments/deploy.sh)"
    if deployment.paused or not deployment.schedule_active:
        return PollerStatus.paused, "poll-cdrs is paused or has no active schedule"
    run = deployment.last_finished
    if run is None:
        return PollerStatus.stale, "poll-cdrs has not finished a run yet"
    age = int((now - run.finished_at).total_seconds())
    if run.state_type in FINISHED_BAD:
        return PollerStatus.failing, f"last run {run.name} ended {run.state_type.lower()} {age}s ago"
    if now - run.finished_at > STALE_AFTER:
        return PollerStatus.stale, f"last successful run {run.name} finished {age}s ago"
    return PollerStatus.active, f"last run {run.name} completed {age}s ago"


def tenant_completeness(days: Sequence[DayReconciliation]) -> Completeness | None:
    """A tenant's latest reconciled day, and its worst of the last 7 when below 100 %.

    Args:
        days: The tenant's reconciled days (any order; older ones are ignored).

    Returns:
        None when the tenant was never reconciled.
    """
    if not days:
        return None
    latest = max(days, key=lambda d: d.day)
    recent = [d for d in days if latest.day - d.day < COMPLETENESS_WINDOW]
    worst = min(recent, key=lambda d: (d.percent, -d.day.toordinal()))  # ties: the most recent
    below = worst.percent < COMPLETE_PERCENT
    return Completeness(
        day=latest.day,
        percent=latest.percent,
        missing=latest.pbx_legs + latest.malformed_legs - latest.matched_legs,
        checked_at=latest.checked_at,
        worst_day=worst.day if below else None,
        worst_percent=worst.percent if below else None,
    )


def tenant_health(
    info: TenantInfo,
    state: SyncState | None,
    now: datetime,
    completeness: Completeness | None = None,
    paused: LoginBlock | None = None,
) -> TenantHealth:
    """Classify one tenant from its configuration, sync state, login pause and completeness."""
    lag = int((now - state.cursor_at).total_seconds()) if state and state.cursor_at else None
    paused_until = paused.blocked_until if paused is not None and paused.blocked_until > now else None
    empty = state.empty_ticks if state else 0
    if not info.has_pbx:
        status = TenantStatus.import_only
    elif not info.enabled:
        status = TenantStatus.disabled
    elif paused_until is not None:
        status = TenantStatus.login_paused
    elif state is not None and state.consecutive_failures > 0:
        status = TenantStatus.failing
    elif state is None or state.last_success_at is None:
        status = TenantStatus.never_polled
    elif now - state.last_success_at > STALE_AFTER:
        status = TenantStatus.stale
    elif empty >= info.silent_ticks:
        status = TenantStatus.silent
    elif lag is not None and lag > BEHIND_AFTER.total_seconds():
        status = TenantStatus.behind
    else:
        status = TenantStatus.ok
    return TenantHealth(
        tenant=info.name,
        status=status,
        last_success_at=state.last_success_at if state else None,
        lag_seconds=lag,
        consecutive_failures=state.consecutive_failures if state else 0,
        last_error=state.last_error if state else None,
        completeness=completeness,
        paused_until=paused_until,
        empty_ticks=empty,
    )


#: Tenant states that do not make the pipeline degraded.
_QUIET = (TenantStatus.ok, TenantStatus.disabled, TenantStatus.import_only)
#: Tenants not worked on purpose: their old completeness is shown but does not degrade the pipeline.
_NOT_WORKED = (TenantStatus.disabled, TenantStatus.import_only)


def _needs_attention(line: TenantHealth) -> bool:
    """The tenant's poll state is not quiet, or its latest reconciled day is below 100 %."""
    if line.status not in _QUIET:
        return True
    incomplete = line.completeness is not None and not line.completeness.complete
    return incomplete and line.status not in _NOT_WORKED


def compute_health(
    now: datetime,
    deployment: PollDeployment | None,
    tenants: Sequence[TenantInfo],
    states: Sequence[SyncState],
    *,
    errors: Sequence[str] = (),
    prefect_ok: bool = True,
    reconciled: Sequence[DayReconciliation] = (),
    login_blocks: Sequence[LoginBlock] = (),
) -> HealthReport:
    """Combine the inputs into a report.

    Args:
        now: The current time (UTC).
        deployment: The poll deployment, None when it is not deployed.
        tenants: Configured tenants; tenants that only have a sync state (or reconciled days) are
            listed too.
        states: Sync state rows from the warehouse.
        errors: Problems met while gathering the inputs (they make the status ``error``).
        prefect_ok: False when the Prefect API could not be read (poller status ``unknown``).
        reconciled: Recent ``reconcile_days`` rows (``recent_reconcile_days``); a tenant whose latest
            reconciled day is below 100 % makes the pipeline ``degraded``.
        login_blocks: Tenants whose PBX logins are paused (``list_login_blocks``).
    """
    poller, detail = (
        poller_status(deployment, now) if prefect_ok else (PollerStatus.unknown, "Prefect API unreachable")
    )
    by_name = {s.tenant: s for s in states}
    days_of: dict[str, list[DayReconciliation]] = {}
    for day in reconciled:
        days_of.setdefault(day.tenant, []).append(day)
    infos = {t.name: t for t in tenants}
    for orphan in (by_name.keys() | days_of.keys()) - infos.keys():  # removed tenant with history: shown
        infos[orphan] = TenantInfo(name=orphan, enabled=False)
    pauses = {block.tenant: block for block in login_blocks}
    lines = [
        tenant_health(
            infos[name], by_name.get(name), now, tenant_completeness(days_of.get(name, [])), pauses.get(name)
        )
        for name in sorted(infos)
    ]
    if errors:
        overall = Overall.error
    elif poller is PollerStatus.active and not any(_needs_attention(t) for t in lines):
        overall = Overall.ok
    else:
        overall = Overall.degraded
    return HealthReport(
        status=overall,
        cdr_poller=poller,
        poller_detail=detail,
        checked_at=now,
        last_run=deployment.last_finished if deployment else None,
        next_run_at=deployment.next_run_at if deployment else None,
        tenants=lines,
        errors=list(errors),
    )
