"""The poll flow's failure event carries the streak from sync_state; alerting never breaks polling."""

from __future__ import annotations

from typing import Any

import pytest

import tasks.events as events
from audiapro.ops.alerts import CONSECUTIVE_FAILURES_LABEL, TENANT_FAILED_EVENT
from audiapro.warehouse import RunInfo, get_engine, record_failure, upgrade


def test_the_event_reports_the_consecutive_failures_of_the_sync_state(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine(sqlite_url)
    upgrade(engine)
    for _ in range(5):
        record_failure(engine, tenant="acme", run=RunInfo(kind="poll"), error="UcmAuthError: wrong password")
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(events, "warehouse_engine", lambda: engine)
    monkeypatch.setattr(events, "emit_event", lambda **kwargs: sent.append(kwargs))

    events.emit_tenant_failed("acme", "UcmAuthError: wrong password")

    (event,) = sent
    assert event["event"] == TENANT_FAILED_EVENT
    assert event["resource"][CONSECUTIVE_FAILURES_LABEL] == "5"
    assert event["payload"] == {"consecutive_failures": 5, "error": "UcmAuthError: wrong password"}


def test_an_unreachable_warehouse_or_api_only_logs_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def down() -> None:
        raise ConnectionError("warehouse down")

    monkeypatch.setattr(events, "warehouse_engine", down)
    events.emit_tenant_failed("acme", "boom")  # must not raise
    assert "could not emit the failure event of tenant acme" in caplog.text
