"""API sessions on a tenant's PBX, counted against one Prefect global concurrency limit per tenant.

A poll tick and every window of a backfill each open their own API session. The limit
``ucm:<tenant>`` (slots = the CloudUCM block's ``api_sessions``) lives on the Prefect server, so it
holds across flows, runs and worker machines: however many backfills run beside the poll schedule,
the PBX never sees more sessions from us than its block allows. Operators see the slots in use on
the UI's Concurrency page; the block is the one place to change the number (each session brings the
limit in line with it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Final
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectAlreadyExists

from audiapro.ucm.client import UcmClient
from blocks.clouducm import CloudUCM

log = logging.getLogger("audiapro.pbx")

#: Prefix of the per-tenant limit names.
LIMIT_PREFIX: Final = "ucm:"
#: A held slot's lease. It is renewed while the session lasts; a worker that dies frees its slot
#: when the lease runs out.
LEASE_S: Final = 120.0
RENEW_EVERY_S: Final = 30.0
#: Longest pause between two attempts on a full limit (the server's Retry-After is often longer).
RETRY_CAP_S: Final = 2.0
_LOCKED: Final = 423


class PbxSessionsBusy(TimeoutError):
    """Every session slot of the tenant's PBX stayed taken for the whole wait."""


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
        PbxSessionsBusy: No slot freed in time.
    """
    ensure_pbx_limit(tenant, block.api_sessions)
    with pbx_slot(tenant, wait_s=wait_s), block.client() as client:
        yield client


@contextmanager
def pbx_slot(tenant: str, *, wait_s: float) -> Iterator[None]:
    """Occupy one slot of ``ucm:<tenant>`` (which must exist) under a lease renewed until exit.

    Plain calls of the synchronous Prefect client rather than ``prefect.concurrency``: no
    process-wide background services and no context variables, so any thread may hold a slot, and a
    limit that is missing or inactive fails the session instead of silently not limiting it.
    """
    lease = _acquire(pbx_limit_name(tenant), wait_s)
    stop = threading.Event()
    renewer = threading.Thread(target=_keep_renewing, args=(lease, stop), name="pbx-slot-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with get_client(sync_client=True) as client:
            client.release_concurrency_slots_with_lease(lease)


def _acquire(name: str, wait_s: float) -> UUID:
    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        while True:
            try:
                response = client.increment_concurrency_slots_with_lease(
                    names=[name], slots=1, mode="concurrency", lease_duration=LEASE_S
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != _LOCKED:
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PbxSessionsBusy(f"every slot of {name} stayed taken for {wait_s:g} s") from None
                retry_after = float(exc.response.headers.get("Retry-After", RETRY_CAP_S))
                time.sleep(min(retry_after, RETRY_CAP_S, remaining))
                continue
            body = response.json()
            lease = UUID(body["lease_id"]) if body.get("lease_id") else None
            if not body.get("limits"):  # deleted or deactivated in the UI: never run unlimited
                if lease is not None:  # an empty lease: give it back rather than leave it to expire
                    client.release_concurrency_slots_with_lease(lease)
                raise RuntimeError(f"concurrency limit {name} does not exist or is inactive")
            if lease is None:
                raise RuntimeError(f"the Prefect API granted {name} without a lease")
            return lease


def _keep_renewing(lease: UUID, stop: threading.Event) -> None:
    with get_client(sync_client=True) as client:
        while not stop.wait(RENEW_EVERY_S):
            try:
                client.renew_concurrency_lease(lease, LEASE_S)
            except Exception as exc:  # the session goes on; at worst the slot frees early
                log.warning("could not renew PBX session lease %s: %s", lease, type(exc).__name__)
