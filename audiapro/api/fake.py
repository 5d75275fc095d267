"""An in-memory orchestrator with the ``Orchestrator`` behaviour, for tests and local UI work."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from audiapro.api.health import PollDeployment, TenantInfo
from audiapro.api.orchestrator import FLOW_RUN_UI_PATH, IMPORT_DEPLOYMENT, DeploymentMissing, StartedRun
from audiapro.push.config import PushTenant

#: Runs an import in-process: ``(tenant, path)``; what it returns is ignored.
ImportRunner = Callable[[str, str], object]


@dataclass
class InMemoryOrchestrator:
    """Holds the deployment, tenants and token in fields; records every run it is asked to start.

    Attributes:
        deployment: The poll deployment (None = not deployed).
        tenant_list: Configured tenants.
        token: The admin token (None = not configured).
        started: Tenants of the runs started so far (None = all tenants), in order.
        fail_with: When set, every query raises it (an unreachable Prefect API).
        running: A tick already running: ``start_poll`` returns it and starts nothing (as the
            Prefect orchestrator does rather than let ``CANCEL_NEW`` cancel a new run).
        push_tenants: Push settings by tenant name.
        run_import: Runs an import-cdr-file run in-process, synchronously (None: not deployed).
        imports: ``(tenant, path)`` of every import started, in order.
        ui_url: The Prefect UI address flow run links point to.
        analyses: Tenants whose analysis was started, in order.
        run_states: State type of every import run started, by run id (FAILED when it raised).
    """

    deployment: PollDeployment | None = None
    tenant_list: list[TenantInfo] = field(default_factory=list)
    token: str | None = None
    started: list[str | None] = field(default_factory=list)
    fail_with: Exception | None = None
    running: StartedRun | None = None
    push_tenants: dict[str, PushTenant] = field(default_factory=dict)
    run_import: ImportRunner | None = None
    imports: list[tuple[str, str]] = field(default_factory=list)
    ui_url: str = "http://prefect.test"
    analyses: list[str] = field(default_factory=list)
    run_states: dict[str, str] = field(default_factory=dict)

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def poll_deployment(self) -> PollDeployment | None:
        """Return the configured deployment."""
        self._check()
        return self.deployment

    def tenants(self) -> list[TenantInfo]:
        """Return the configured tenants."""
        self._check()
        return list(self.tenant_list)

    def admin_token(self) -> str | None:
        """Return the configured token."""
        self._check()
        return self.token

    def start_poll(self, tenant: str | None) -> StartedRun:
        """Record the request and return a new run id."""
        self._check()
        if self.deployment is None:
            raise DeploymentMissing("poll-cdrs/poll-cdrs")
        if self.running is not None:
            return self.running
        self.started.append(tenant)
        run_id, name = str(uuid.uuid4()), f"fake-run-{len(self.started)}"
        return StartedRun(id=run_id, name=name, state="SCHEDULED", tenant=tenant)

    def push_tenant(self, tenant: str) -> PushTenant | None:
        """Return the configured push settings."""
        self._check()
        return self.push_tenants.get(tenant)

    def start_import(self, tenant: str, path: str) -> StartedRun:
        """Run the import in-process now (the flow run's work), then return a run id."""
        self._check()
        if self.run_import is None:
            raise DeploymentMissing(IMPORT_DEPLOYMENT)
        self.imports.append((tenant, path))
        run_id = str(uuid.uuid4())
        try:
            self.run_import(tenant, path)
        except Exception:  # the run fails in Prefect: its state says so, the API call itself succeeded
            self.run_states[run_id] = "FAILED"
        else:
            self.run_states[run_id] = "COMPLETED"
        name = f"fake-import-{len(self.imports)}"
        return StartedRun(id=run_id, name=name, state=self.run_states[run_id], tenant=tenant)

    def flow_run_url(self, run_id: str) -> str | None:
        """A link under ``ui_url``."""
        return f"{self.ui_url}{FLOW_RUN_UI_PATH}{run_id}"

    def start_analysis(self, tenant: str) -> None:
        """Record the request."""
        self._check()
        self.analyses.append(tenant)

    def run_state(self, run_id: str) -> str | None:
        """The state recorded when the import ran."""
        self._check()
        return self.run_states.get(run_id)
