"""The alert contract: "at least N" as glob patterns (Prefect's server matches with fnmatch)."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from audiapro.ops.alerts import (
    CONSECUTIVE_FAILURES_LABEL,
    TENANT_FAILED_EVENT,
    at_least_patterns,
    tenant_failed_event,
)


@pytest.mark.parametrize("minimum", [1, 5, 8, 9, 10, 19, 20, 99, 100, 123])
def test_at_least_patterns_match_exactly_the_integers_from_minimum(minimum: int) -> None:
    patterns = at_least_patterns(minimum)
    for value in range(0, 2000):
        matched = any(fnmatchcase(str(value), p) for p in patterns)
        assert matched == (value >= minimum), (value, patterns)


def test_at_least_patterns_rejects_zero() -> None:
    with pytest.raises(ValueError):
        at_least_patterns(0)


def test_tenant_failed_event_carries_the_count_as_a_label_and_a_short_error() -> None:
    event = tenant_failed_event("acme", 5, "UcmAuthError: " + "x" * 1000)
    assert event["event"] == TENANT_FAILED_EVENT
    assert event["resource"] == {
        "prefect.resource.id": "audiapro.tenant.acme",
        "prefect.resource.name": "acme",
        CONSECUTIVE_FAILURES_LABEL: "5",
    }
    assert event["payload"]["consecutive_failures"] == 5 and len(event["payload"]["error"]) == 300


def test_reconcile_incomplete_event_names_the_tenant_and_its_worst_day() -> None:
    from audiapro.ops.alerts import COMPLETENESS_LABEL, RECONCILE_INCOMPLETE_EVENT, reconcile_incomplete_event

    rows = [
        {"day": "2026-03-02", "percent": 99.5, "pbx_legs": 200, "matched_legs": 199, "rejected": 1,
         "malformed_legs": 0, "stored_legs": 150},
        {"day": "2026-03-03", "percent": 97.06, "pbx_legs": 34, "matched_legs": 33, "rejected": 0,
         "malformed_legs": 0, "stored_legs": 33},
    ]  # fmt: skip
    event = reconcile_incomplete_event("acme", rows)
    assert event["event"] == RECONCILE_INCOMPLETE_EVENT
    assert event["resource"] == {
        "prefect.resource.id": "audiapro.tenant.acme",
        "prefect.resource.name": "acme",
        COMPLETENESS_LABEL: "97",
    }
    assert (event["payload"]["worst_day"], event["payload"]["worst_percent"]) == ("2026-03-03", 97.06)
    assert [d["day"] for d in event["payload"]["days"]] == ["2026-03-02", "2026-03-03"]
    assert "stored_legs" not in event["payload"]["days"][0]  # only what the alert needs
