"""The few Prefect REST calls the local stack makes, with the standard library only.

No Prefect import, so `make down` works without the project's virtualenv.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any

from audiapro.prefect_names import TENANT_BLOCK_TYPE

HTTP_TIMEOUT = 10.0
API_ATTEMPTS = 5
API_RETRY_SECONDS = 1.0
#: Flow-run states whose process `make down` kills along with the workers.
ABANDONED_STATES = ("PENDING", "RUNNING", "CANCELLING")


class ApiError(RuntimeError):
    """A Prefect API call failed; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """Keep the message and the HTTP status."""
        super().__init__(message)
        self.status = status


def call(
    api_url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    attempts: int = API_ATTEMPTS,
    timeout: float = HTTP_TIMEOUT,
) -> Any:
    """Call the Prefect REST API; return the decoded JSON (None for an empty body).

    A busy server on SQLite answers 503 ("database is locked") now and then: such answers and
    connection errors are retried a few times before they count.
    """
    data = None if body is None else json.dumps(body).encode()
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            f"{api_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = response.read()
            return json.loads(payload) if payload else None
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == attempts:
                raise ApiError(f"{method} {path}: HTTP {exc.code}", exc.code) from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            if attempt == attempts:
                raise ApiError(f"{method} {path}: {exc}") from exc
        time.sleep(API_RETRY_SECONDS * attempt)
    raise AssertionError("unreachable")


def healthy(api_url: str, timeout: float = HTTP_TIMEOUT) -> bool:
    """Whether the API answers its health check (one attempt, waiting at most ``timeout`` seconds)."""
    try:
        return bool(call(api_url, "GET", "/health", attempts=1, timeout=timeout))
    except (ApiError, ValueError, OSError, http.client.HTTPException):  # also: reset, garbage answer
        return False


def tenant_documents(api_url: str) -> list[dict[str, Any]]:
    """The CloudUCM block documents (tenants), secrets excluded; none before the type is registered."""
    try:
        return list(call(api_url, "GET", f"/block_types/slug/{TENANT_BLOCK_TYPE}/block_documents") or [])
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise


def pool_ready(api_url: str, pool: str) -> bool:
    """Whether the work pool is READY (a worker's heartbeat arrived)."""
    try:
        return bool(call(api_url, "GET", f"/work_pools/{pool}", attempts=1).get("status") == "READY")
    except (ApiError, ValueError, AttributeError):
        return False


def create_run(api_url: str, deployment: str) -> str:
    """Create a flow run of ``flow/deployment`` now; return its name."""
    found = call(api_url, "GET", f"/deployments/name/{deployment}")
    run = call(api_url, "POST", f"/deployments/{found['id']}/create_flow_run", {})
    return str(run["name"])


def crash_abandoned_runs(api_url: str, pool: str, message: str) -> int:
    """Mark the pool's Pending/Running flow runs Crashed (their processes are gone). Returns how many."""
    query = {
        "flow_runs": {"state": {"type": {"any_": list(ABANDONED_STATES)}}},
        "work_pools": {"name": {"any_": [pool]}},
    }
    runs = call(api_url, "POST", "/flow_runs/filter", query, attempts=2) or []
    state = {"type": "CRASHED", "name": "Crashed", "message": message}
    for run in runs:
        call(
            api_url, "POST", f"/flow_runs/{run['id']}/set_state", {"state": state, "force": True}, attempts=2
        )
    return len(runs)
