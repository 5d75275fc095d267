"""The admin HTTP API on an in-memory orchestrator: health JSON, and sync-cdrs behind a bearer token.

The full health report is for the admin token only (anonymous callers get ``{"status": ...}``, see
test_admin_api_gate.py); the tests of the report present the token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from audiapro.api.app import create_app
from audiapro.api.fake import InMemoryOrchestrator
from audiapro.api.health import FinishedRun, PollDeployment, TenantInfo
from audiapro.warehouse import SyncState

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOKEN = "s3cret-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SYNC = "/api/admin/sync-cdrs"


def deployed(minutes_ago: float = 1, state: str = "COMPLETED") -> PollDeployment:
    last = FinishedRun(name="brave-otter", state_type=state, finished_at=NOW - timedelta(minutes=minutes_ago))
    return PollDeployment(paused=False, schedule_active=True, last_finished=last, next_run_at=NOW)


def synced(tenant: str, error: str | None = None, failures: int = 0) -> SyncState:
    return SyncState(
        tenant=tenant,
        cursor_at=NOW - timedelta(seconds=200),
        last_success_at=NOW - timedelta(seconds=140),
        last_attempt_at=NOW,
        last_error=error,
        consecutive_failures=failures,
        last_run_id=7,
    )


@pytest.fixture
def orchestrator() -> InMemoryOrchestrator:
    return InMemoryOrchestrator(
        deployment=deployed(),
        tenant_list=[TenantInfo("acme"), TenantInfo("off", enabled=False)],
        token=TOKEN,
    )


@pytest.fixture
def client(orchestrator: InMemoryOrchestrator) -> TestClient:
    return TestClient(create_app(orchestrator, lambda: [synced("acme")], clock=lambda: NOW))


def test_health_reports_poller_and_tenants(client: TestClient) -> None:
    response = client.get("/api/health", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["cdr_poller"] == "active"
    assert body["last_run"] == {
        "name": "brave-otter",
        "state": "COMPLETED",
        "finished_at": "2026-11-27T11:59:00+00:00",
    }
    acme, off = body["tenants"]
    assert acme == {
        "tenant": "acme",
        "status": "ok",
        "last_success_at": "2026-11-27T11:57:40+00:00",
        "lag_seconds": 200,
        "consecutive_failures": 0,
        "last_error": None,
        "completeness": None,  # never reconciled
        "paused_until": None,
        "empty_ticks": 0,
    }
    assert off["status"] == "disabled"


@pytest.mark.parametrize(
    ("deployment", "poller"),
    [(None, "not_deployed"), (deployed(30), "stale"), (deployed(1, "FAILED"), "failing")],
)
def test_health_when_the_poller_is_not_active(
    orchestrator: InMemoryOrchestrator, client: TestClient, deployment: PollDeployment | None, poller: str
) -> None:
    orchestrator.deployment = deployment
    body = client.get("/api/health", headers=AUTH).json()
    assert (body["status"], body["cdr_poller"]) == ("degraded", poller)


class DeploymentReadsFail(InMemoryOrchestrator):
    """Its deployment and tenant queries fail (``fail_with``) while the token can still be read."""

    def admin_token(self) -> str | None:
        """The token, whatever ``fail_with`` says."""
        return self.token


def test_health_is_503_when_prefect_is_unreachable_and_hides_credentials() -> None:
    orchestrator = DeploymentReadsFail(deployment=deployed(), token=TOKEN)
    orchestrator.fail_with = ConnectionError("cannot reach postgresql://svc:hunter2@db.internal/prefect")
    app = create_app(orchestrator, lambda: [synced("acme")], clock=lambda: NOW)
    response = TestClient(app).get("/api/health", headers=AUTH)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["cdr_poller"] == "unknown"
    assert "hunter2" not in response.text and "ConnectionError" in body["errors"][0]
    assert body["tenants"][0]["tenant"] == "acme"  # the warehouse part is still reported


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token-wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
    ids=["none", "wrong", "not-bearer", "empty", "longer"],
)
def test_sync_without_the_right_token_is_401_and_starts_nothing(
    orchestrator: InMemoryOrchestrator, client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post(SYNC, headers=headers, json={"tenant": "acme"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert orchestrator.started == []


def test_sync_with_the_right_token_starts_a_run(
    orchestrator: InMemoryOrchestrator, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    everyone = client.post(SYNC, headers=auth)
    assert everyone.status_code == 202, everyone.text
    assert everyone.json()["tenant"] is None and everyone.json()["flow_run_id"]
    one = client.post(SYNC, headers={"Authorization": f"bearer {TOKEN}"}, json={"tenant": "acme"})
    assert one.status_code == 202
    body = one.json()
    assert body["deployment"] == "poll-cdrs/poll-cdrs" and body["state"] == "SCHEDULED"
    assert orchestrator.started == [None, "acme"]
    client.post(SYNC, headers={"Authorization": "Bearer wrong-token-wrong-token-wrong"})
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(("tenant", "code"), [("nobody", 404), ("off", 409)])
def test_sync_refuses_unknown_and_disabled_tenants(
    orchestrator: InMemoryOrchestrator, client: TestClient, tenant: str, code: int
) -> None:
    response = client.post(SYNC, headers={"Authorization": f"Bearer {TOKEN}"}, json={"tenant": tenant})
    assert response.status_code == code
    assert orchestrator.started == []


def test_sync_when_not_configured_or_not_deployed(
    orchestrator: InMemoryOrchestrator, client: TestClient
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    orchestrator.token = None
    unconfigured = client.post(SYNC, headers=auth)
    assert unconfigured.status_code == 503 and "admin-token" in unconfigured.json()["detail"]
    assert client.post(SYNC).status_code == 401  # no token presented: still 401
    orchestrator.token, orchestrator.deployment = TOKEN, None
    assert client.post(SYNC, headers=auth).status_code == 409
    assert orchestrator.started == []


def test_wrong_token_is_refused_before_the_body_is_looked_at(client: TestClient) -> None:
    response = client.post(SYNC, headers={"Authorization": "Bearer nope"}, json={"tenant": 12345})
    assert response.status_code == 401


def test_sync_accepts_the_tenant_spellings_the_cli_accepts(
    orchestrator: InMemoryOrchestrator, client: TestClient
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post(SYNC, headers=auth, json={"tenant": "ACME"}).status_code == 202
    assert client.post(SYNC, headers=auth, json={"tenant": "___"}).status_code == 422
    assert orchestrator.started == ["acme"]


@pytest.mark.parametrize(
    ("running_for", "asked_for", "after"),
    [
        (None, "acme", "it covers this request"),
        ("other", "acme", "ask again once it ended to poll tenant acme"),
    ],
)
def test_sync_while_a_tick_runs_says_so_and_returns_the_running_tick(
    orchestrator: InMemoryOrchestrator,
    client: TestClient,
    running_for: str | None,
    asked_for: str,
    after: str,
) -> None:
    from audiapro.api.orchestrator import StartedRun

    orchestrator.running = StartedRun(id="run-42", name="busy-otter", state="RUNNING", already_running=True,
                                      tenant=running_for)  # fmt: skip
    answer = client.post(SYNC, headers=AUTH, json={"tenant": asked_for})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["already_running"] is True and body["flow_run_id"] == "run-42" and body["state"] == "RUNNING"
    assert body["message"].startswith("nothing started: poll-cdrs/poll-cdrs run busy-otter is polling")
    assert body["message"].endswith(after) and orchestrator.started == []
