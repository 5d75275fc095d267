"""An empty poll window (an idle tenant) is loaded without pandas normalizing nothing (issue 13);
the quarantine of malformed entries is logged with the tenant's name."""

from __future__ import annotations

from typing import Any

import pytest

from audiapro import ingest
from audiapro.cdr.normalize import normalize_legs
from audiapro.tenants import TenantSettings
from audiapro.ucm.records import WindowLegs

TENANT = TenantSettings(name="quiet", timezone="America/Chicago", region="US")


def test_an_empty_window_gives_the_empty_batch_without_normalizing(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = normalize_legs([], ingest.api_context(TENANT))
    ingest.empty_batch()  # built once per process
    calls: list[Any] = []
    monkeypatch.setattr(ingest, "normalize_legs", lambda *args, **kwargs: calls.append(args))

    batch = ingest.normalize_window(TENANT, WindowLegs())

    assert calls == []
    assert list(batch.legs.columns) == list(expected.legs.columns)
    assert batch.legs.dtypes.equals(expected.legs.dtypes) and batch.legs.empty
    assert batch.rejects.dtypes.equals(expected.rejects.dtypes) and batch.rejects.empty


def test_each_empty_batch_is_the_callers_own() -> None:
    first = ingest.empty_batch()
    first.legs["extra"] = []
    assert "extra" not in ingest.empty_batch().legs.columns


def test_the_quarantine_log_line_names_the_tenant_and_no_number(caplog: pytest.LogCaptureFixture) -> None:
    from audiapro.ucm.records import MalformedItem

    entry = MalformedItem(position=0, path="", reason="not an object", value="+15551234567")
    window = WindowLegs(malformed=[entry])
    with caplog.at_level("WARNING", logger="audiapro.ingest"):
        ingest.normalize_window(TENANT, window)

    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert lines == ["tenant quiet: 1 malformed cdrapi entr(y/ies) quarantined"]
    assert "5551234567" not in caplog.text
