"""An in-memory orchestrator with the ``Orchestrator`` behaviour, for tests and local UI work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from audiapro.api.health import PollDeployment, TenantInfo
from audiapro.api.orchestrator import DeploymentMissing, StartedRun


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
    """

    deployment: PollDeployment | None = None
    tenant_list: list[TenantInfo] = field(default_factory=list)
    token: str | None = None
    started: list[str | None] = field(default_factory=list)
    fail_with: Exception | None = None
    running: StartedRun | None = None

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
