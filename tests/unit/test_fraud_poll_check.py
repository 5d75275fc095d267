"""The fraud check after a poll tick never fails the tick, and announces each new alert once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import tasks.insights as insights_tasks
from audiapro.tenants import TenantSettings
from audiapro.warehouse import get_engine

TENANT = TenantSettings(name="acme", timezone="America/New_York")
NOW = datetime(2026, 3, 17, 18, tzinfo=UTC)


def test_a_failing_check_is_logged_and_reported_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no tables: every query fails
    assert insights_tasks.check_fraud(engine, TENANT, now=NOW) == insights_tasks.CHECK_FAILED
    assert "fraud check after the poll failed" in caplog.text


def test_new_alerts_are_emitted(monkeypatch: pytest.MonkeyPatch) -> None:
    new = [{"id": 1, "rule": "trunk_to_trunk"}, {"id": 2, "rule": "intl_velocity"}]
    emitted: list[list[dict[str, Any]]] = []
    monkeypatch.setattr(insights_tasks.service, "check_after_poll", lambda *_a, **_k: new)
    monkeypatch.setattr(insights_tasks, "emit_fraud_alerts", emitted.append)
    assert insights_tasks.check_fraud(object(), TENANT, now=NOW) == 2  # type: ignore[arg-type]
    assert emitted == [new]
