"""Gather the health inputs (orchestrator + warehouse) and compute the report; never raises."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from audiapro.api.health import HealthReport, PollDeployment, TenantInfo, compute_health
from audiapro.api.orchestrator import Orchestrator

if TYPE_CHECKING:
    from audiapro.warehouse import DayReconciliation, LoginBlock, SyncState

#: Reads the warehouse's sync_state rows (``list_sync_states`` bound to an engine, or a fake).
SyncStateReader = Callable[[], "list[SyncState]"]
#: Reads the recent reconcile_days rows (``recent_reconcile_days`` bound to an engine, or a fake).
CompletenessReader = Callable[[], "list[DayReconciliation]"]
#: Reads the login pauses in force (``list_login_blocks`` bound to an engine and now, or a fake).
LoginBlockReader = Callable[[], "list[LoginBlock]"]


def describe(source: str, exc: BaseException) -> str:
    """One redacted line naming what failed (exception texts can embed URLs with passwords)."""
    from audiapro.warehouse.runs import redact_error

    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return redact_error(f"{source}: {type(exc).__name__}: {first_line}")


def gather_health(
    orchestrator: Orchestrator,
    read_states: SyncStateReader,
    now: datetime | None = None,
    read_completeness: CompletenessReader | None = None,
    read_login_blocks: LoginBlockReader | None = None,
) -> HealthReport:
    """Ask the orchestrator and the warehouse, then classify (see ``audiapro.api.health``).

    A dependency that cannot be read turns the report's status into ``error`` with a redacted
    explanation; the parts that could be read are still reported.

    Args:
        orchestrator: Prefect (or a fake).
        read_states: Returns the sync_state rows.
        now: The current time (UTC); the wall clock when omitted.
        read_completeness: Returns the recent reconcile_days rows; completeness is not reported
            without it.
        read_login_blocks: Returns the tenants whose PBX logins are paused.
    """
    now = now or datetime.now(UTC)
    errors: list[str] = []
    deployment: PollDeployment | None = None
    tenants: list[TenantInfo] | None = None
    prefect_ok = True
    try:
        deployment = orchestrator.poll_deployment()
        tenants = orchestrator.tenants()
    except Exception as exc:
        prefect_ok = False
        errors.append(describe("Prefect API", exc))
    try:
        states = read_states()
        reconciled = read_completeness() if read_completeness else []
        pauses = read_login_blocks() if read_login_blocks else []
    except Exception as exc:
        states, reconciled, pauses = [], [], []
        errors.append(describe("warehouse", exc))
    if tenants is None:  # without the tenant list, assume every tenant with a sync state is live
        tenants = [TenantInfo(name=s.tenant) for s in states]
    return compute_health(
        now,
        deployment,
        tenants,
        states,
        errors=errors,
        prefect_ok=prefect_ok,
        reconciled=reconciled,
        login_blocks=pauses,
    )
