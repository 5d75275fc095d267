"""Prefect task of the retention cleanup: one tenant's expired recordings, transcripts, raw CDR JSON.

Logic is in ``audiapro.retention``; this wrapper adds the block lookup and retries on I/O only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from audiapro.retention import cleanup_tenant
from blocks.clouducm import load_tenant
from tasks.support import retrying_task
from tasks.warehouse import warehouse_engine

CLEANUP_RETRIES: Final = 2
CLEANUP_RETRY_DELAYS: Final[list[float]] = [30.0, 120.0]


def now_utc() -> datetime:
    """The cleanup's clock: one reading per flow run (tests pin it here)."""
    return datetime.now(UTC)


@retrying_task(
    "cleanup-tenant", "cleanup-{tenant}", retries=CLEANUP_RETRIES, delays=CLEANUP_RETRY_DELAYS, cache=False
)
def cleanup_tenant_task(tenant: str, now: datetime) -> dict[str, Any]:
    """Enforce one tenant's retention periods (its CloudUCM block's settings).

    Args:
        tenant: Tenant (CloudUCM block) name.
        now: The run's clock.

    Returns:
        The tenant's counts (``RetentionCounts.as_row()``) with ``status`` ``ok``.
    """
    settings = load_tenant(tenant).tenant_settings(tenant)
    counts = cleanup_tenant(warehouse_engine(), settings, now)
    return {"status": "ok", **counts.as_row()}
