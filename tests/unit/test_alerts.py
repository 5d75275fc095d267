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
