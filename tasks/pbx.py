"""API sessions on a tenant's PBX, counted against one Prefect global concurrency limit per tenant.

A poll tick and every window of a backfill each open their own API session. The limit
``ucm:<tenant>`` (slots = the CloudUCM block's ``api_sessions``) lives on the Prefect server, so it
holds across flows, runs and worker machines: however many backfills run beside the poll schedule,
the PBX never sees more sessions from us than its block allows. Operators see the slots in use on
the UI's Concurrency page; the block is the one place to change the number (each session brings the
limit in line with it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Final

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists

from audiapro.ucm.client import UcmClient
from blocks.clouducm import CloudUCM

#: Prefix of the per-tenant limit names.
LIMIT_PREFIX: Final = "ucm:"


def pbx_limit_name(tenant: str) -> str:
    """Name of the tenant's global concurrency limit."""
    return f"{LIMIT_PREFIX}{tenant}"


def ensure_pbx_limit(tenant: str, sessions: int) -> None:
    """Create the tenant's limit, or set its slots to ``sessions`` when they differ (idempotent)."""
    # ObjectAlreadyExists: a concurrent session created it between the upsert's read and its create.
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(pbx_limit_name(tenant), sessions)


@contextmanager
def pbx_session(block: CloudUCM, tenant: str, *, wait_s: float) -> Iterator[UcmClient]:
    """Hold one of the tenant's PBX session slots and an API client for the duration.

    Args:
        block: The tenant's CloudUCM block.
        tenant: Tenant name.
        wait_s: Longest wait for a free slot.

    Yields:
        A client (logged in on first use, logged out on exit).

    Raises:
        AcquireConcurrencySlotTimeoutError: No slot freed in time (from ``prefect.concurrency.asyncio``).
    """
    ensure_pbx_limit(tenant, block.api_sessions)
    # strict: a limit deleted in the UI between the two calls must not silently mean "unlimited". A
    # failed lease renewal (server hiccup) only logs: aborting a half-read window would gain nothing.
    slot = concurrency(
        pbx_limit_name(tenant),
        occupy=1,
        timeout_seconds=wait_s,
        strict=True,
        raise_on_lease_renewal_failure=False,
    )
    with slot, block.client() as client:
        yield client
