"""A tenant's poll is retried in its thread after the policy's delays, on transient faults only."""

from __future__ import annotations

from typing import Any

import pytest

from tasks import poll as poll_tasks


class _Hiccup(ConnectionError):
    transient = True


def _failing(exc: BaseException, calls: list[str]) -> Any:
    def poll_once(tenant: str, block: Any = None, *, flow_run_id: str | None = None) -> dict[str, Any]:
        calls.append(tenant)
        raise exc

    return poll_once


def test_transient_faults_are_retried_after_each_delay_then_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    slept: list[float] = []
    monkeypatch.setattr(poll_tasks, "poll_tenant_once", _failing(_Hiccup("PBX restarting"), calls))
    with pytest.raises(_Hiccup):
        poll_tasks.poll_tenant_retrying("acme", sleep=slept.append)
    assert calls == ["acme"] * (poll_tasks.POLL_RETRIES + 1)
    assert slept == poll_tasks.POLL_RETRY_DELAYS == [15.0, 45.0]


def test_a_permanent_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    slept: list[float] = []
    monkeypatch.setattr(poll_tasks, "poll_tenant_once", _failing(PermissionError("wrong password"), calls))
    with pytest.raises(PermissionError):
        poll_tasks.poll_tenant_retrying("acme", sleep=slept.append)
    assert calls == ["acme"] and slept == []


def test_a_retry_that_succeeds_returns_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[Any] = [_Hiccup("blip"), {"tenant": "acme", "status": "ok"}]
    slept: list[float] = []

    def poll_once(tenant: str, block: Any = None, *, flow_run_id: str | None = None) -> dict[str, Any]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return dict(outcome)

    monkeypatch.setattr(poll_tasks, "poll_tenant_once", poll_once)
    assert poll_tasks.poll_tenant_retrying("acme", sleep=slept.append) == {"tenant": "acme", "status": "ok"}
    assert slept == [15.0]
