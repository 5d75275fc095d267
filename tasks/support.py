"""Small helpers every task shares: the one retry policy, run lineage, artifact keys."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.context import get_run_context
from prefect.settings import get_current_settings

from audiapro.errors import is_transient

_NOT_KEY_CHARS = re.compile(r"[^a-z0-9-]+")
P = ParamSpec("P")
R = TypeVar("R")
#: One started client per Prefect API (URL, key) this process talks to; see :func:`prefect_api`.
_CLIENTS: dict[tuple[str, str], SyncPrefectClient] = {}
_CLIENTS_LOCK = threading.Lock()


@contextmanager
def prefect_api() -> Iterator[SyncPrefectClient]:
    """A synchronous Prefect API client shared by every thread of the process.

    ``get_client()`` builds a new HTTP client each time: an SSL context (the CA bundle parsed, ~20 ms
    of CPU even for a plain-http API) and a new connection. The PBX session slots ask the API two or
    three times per tenant and tick, so a shard of 50 tenants paid that 150 times; one client (httpx
    clients are thread-safe, and Prefect's retries a dropped keep-alive connection) pays it once.
    Without a configured API URL (an ephemeral API) a client of its own is used and closed.
    """
    api = get_current_settings().api
    if not api.url:
        with get_client(sync_client=True) as client:
            yield client
        return
    key = (str(api.url), api.key.get_secret_value() if api.key else "")
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            fresh = get_client(sync_client=True)
            fresh.__enter__()  # stays open for the process: closed with it
            _CLIENTS[key] = fresh
        client = _CLIENTS[key]
    yield client


def current_flow_run_id() -> str | None:
    """Id of the flow run this code runs in (inside a task or a flow), for lineage in the warehouse."""
    try:
        ctx = get_run_context()
    except Exception:  # called outside any run
        return None
    flow_run = getattr(ctx, "flow_run", None) or getattr(getattr(ctx, "task_run", None), "flow_run_id", None)
    return str(getattr(flow_run, "id", flow_run)) if flow_run else None


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """The retry condition of every task: retry what :func:`audiapro.errors.is_transient` calls
    transient (network and PBX hiccups, a busy tenant lock, every PBX session taken, an AI service
    outage), nothing else.

    Authentication, configuration and data-format errors are permanent until a human acts.
    """
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


def retrying_task(
    name: str, run_name: str, *, retries: int, delays: list[float], cache: bool = True
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """The task decorator of the pipeline: named, retried ``retries`` times after ``delays`` seconds
    when :func:`retry_if_transient` says so, never on a permanent error.

    Args:
        name: Task name.
        run_name: Task run name template (``"poll-{tenant}"``).
        retries: Retries after the first attempt.
        delays: Seconds before each retry.
        cache: ``False`` turns Prefect's result cache off (tasks whose inputs must not be hashed or
            whose results are never reused).
    """
    options: dict[str, Any] = {} if cache else {"cache_policy": NO_CACHE}
    return task(
        name=name,
        task_run_name=run_name,
        retries=retries,
        retry_delay_seconds=delays,
        retry_condition_fn=retry_if_transient,
        **options,
    )


def artifact_key(*parts: str) -> str:
    """An artifact key (lowercase letters, digits, dashes) from free text such as a tenant name."""
    text = "-".join(_NOT_KEY_CHARS.sub("-", part.lower()).strip("-") for part in parts)
    return text or "audiapro"
