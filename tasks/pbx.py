"""API sessions on a tenant's PBX, counted against Prefect global concurrency limits per tenant.

A poll tick, every window of a backfill, a reconcile run and the recording downloads of the
analysis each hold API sessions. The limit ``ucm:<tenant>`` (slots = the CloudUCM block's
``api_sessions``) lives on the Prefect server, so it holds across flows, runs and worker machines:
however much runs beside the poll schedule, the PBX never sees more sessions from us than its block
allows. Bulk work (backfill, reconcile, recordings) also takes a slot of ``ucm-bulk:<tenant>``, which
has one slot fewer, so one session is always left for the live poll. Operators see the slots in use on
the UI's Concurrency page; the block is the one place to change the number (each session brings the
limits in line with it).

Every client handed out here shares the tenant's login guard (``audiapro.logins``): handshakes are
serialized across processes and a refused login pauses every path's logins.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Final
from uuid import UUID

import httpx
from prefect.exceptions import ObjectAlreadyExists

from audiapro.logins import WarehouseLoginGuard
from audiapro.prefect_names import PBX_BULK_LIMIT_PREFIX, PBX_LIMIT_PREFIX
from audiapro.ucm.client import UcmClient
from audiapro.ucm.pool import ClientPool
from blocks.clouducm import CloudUCM
from tasks.support import prefect_api
from tasks.warehouse import warehouse_engine

log = logging.getLogger("audiapro.pbx")

#: A held slot's lease. It is renewed while the session lasts; a worker that dies frees its slot
#: when the lease runs out.
LEASE_S: Final = 120.0
RENEW_EVERY_S: Final = 30.0
#: Longest pause between two attempts on a full limit (the server's Retry-After is often longer).
RETRY_CAP_S: Final = 2.0
_LOCKED: Final = 423


class PbxSessionsBusy(TimeoutError):
    """Every session slot of the tenant's PBX stayed taken for the whole wait."""

    #: Read by ``audiapro.errors.is_transient``: the sessions free up when the other work ends.
    transient: Final = True


def pbx_limit_name(tenant: str) -> str:
    """Name of the tenant's global concurrency limit (every session)."""
    return f"{PBX_LIMIT_PREFIX}{tenant}"


def bulk_limit_name(tenant: str) -> str:
    """Name of the tenant's limit for sessions other than the live poll's."""
    return f"{PBX_BULK_LIMIT_PREFIX}{tenant}"


def bulk_sessions(sessions: int) -> int:
    """Slots of the bulk limit: one fewer than the PBX allows, so the poll always finds one.

    A PBX that allows a single session cannot reserve one: bulk work then shares it with the poll.
    """
    return max(1, sessions - 1)


def ensure_pbx_limit(tenant: str, sessions: int) -> None:
    """Create the tenant's limits, or set their slots when they differ (idempotent)."""
    # ObjectAlreadyExists: a concurrent session created it between the upsert's read and its create.
    with prefect_api() as client:
        for name, slots in (
            (pbx_limit_name(tenant), sessions),
            (bulk_limit_name(tenant), bulk_sessions(sessions)),
        ):
            with suppress(ObjectAlreadyExists):
                client.upsert_global_concurrency_limit_by_name(name, slots)


def login_guard(tenant: str) -> WarehouseLoginGuard:
    """The tenant's login guard, shared by every process through the warehouse."""
    return WarehouseLoginGuard(warehouse_engine(), tenant)


@contextmanager
def pbx_session(block: CloudUCM, tenant: str, *, wait_s: float, bulk: bool = False) -> Iterator[UcmClient]:
    """Hold one of the tenant's PBX session slots and an API client for the duration.

    Args:
        block: The tenant's CloudUCM block.
        tenant: Tenant name.
        wait_s: Longest wait for a free slot.
        bulk: Backfill or reconcile work: also takes a bulk slot, leaving one session to the poll.

    Yields:
        A client (logged in on first use, logged out on exit) that shares the tenant's login guard.

    Raises:
        PbxSessionsBusy: No slot freed in time.
    """
    with (
        _held_slot(tenant, block.api_sessions, wait_s=wait_s, bulk=bulk),
        block.client(login_guard(tenant)) as client,
    ):
        yield client


@contextmanager
def pbx_client_pool(
    block: CloudUCM, tenant: str, *, size: int, wait_s: float
) -> Iterator[ClientPool[UcmClient]]:
    """A pool of at most ``size`` bulk sessions for threads that each need a client now and then.

    Used by the analysis to download recordings: however many threads it runs, it holds at most
    ``min(size, bulk slots)`` PBX sessions, each counted against the tenant's limits.
    """
    guard = login_guard(tenant)
    pool = ClientPool(
        lambda: block.client(guard),
        min(size, bulk_sessions(block.api_sessions)),
        slot=lambda: _held_slot(tenant, block.api_sessions, wait_s=wait_s, bulk=True),
    )
    with pool:
        yield pool


@contextmanager
def pbx_slot(tenant: str, *, wait_s: float, bulk: bool = False) -> Iterator[None]:
    """Occupy one slot of ``ucm:<tenant>`` (and of ``ucm-bulk:<tenant>`` for bulk work; the limits
    must exist) under a lease renewed until exit.

    Plain calls of the synchronous Prefect client rather than ``prefect.concurrency``: no
    process-wide background services and no context variables, so any thread may hold a slot, and a
    limit that is missing or inactive fails the session instead of silently not limiting it.
    """
    with _leased(_acquire(_limit_names(tenant, bulk), wait_s)):
        yield


@contextmanager
def _held_slot(tenant: str, sessions: int, *, wait_s: float, bulk: bool) -> Iterator[None]:
    """:func:`pbx_slot`, creating or resizing the limits to ``sessions`` where the grant shows the
    need (missing, sized differently, or every slot taken).

    Asking first and fixing the limits only when needed keeps a session at two Prefect API calls
    (acquire, release) instead of six: a poll tick of 1,000 tenants pays this per tenant.
    """
    names = _limit_names(tenant, bulk)
    wanted = {pbx_limit_name(tenant): sessions, bulk_limit_name(tenant): bulk_sessions(sessions)}

    def fix_limits() -> None:
        ensure_pbx_limit(tenant, sessions)

    grant = _acquire(names, wait_s, on_first_wait=fix_limits, allow_missing=True)
    if grant.missing or grant.slots != {name: wanted[name] for name in names}:
        fix_limits()
        if grant.missing:  # nothing was granted: ask again, now that the limits exist
            grant = _acquire(names, wait_s)
    with _leased(grant):
        yield


def _limit_names(tenant: str, bulk: bool) -> list[str]:
    return [pbx_limit_name(tenant), *([bulk_limit_name(tenant)] if bulk else [])]


@dataclass(frozen=True)
class _Grant:
    """What the server granted: the lease (None when a limit was missing) and each limit's slots."""

    lease: UUID | None
    slots: dict[str, int]
    missing: bool


@contextmanager
def _leased(grant: _Grant) -> Iterator[None]:
    """Keep renewing ``grant``'s lease until exit, then release it."""
    lease = grant.lease
    if lease is None:
        raise RuntimeError("no lease to hold")
    stop = threading.Event()
    renewer = threading.Thread(target=_keep_renewing, args=(lease, stop), name="pbx-slot-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with prefect_api() as client:
            client.release_concurrency_slots_with_lease(lease)


def _acquire(
    names: Sequence[str],
    wait_s: float,
    *,
    on_first_wait: Callable[[], None] | None = None,
    allow_missing: bool = False,
) -> _Grant:
    """One slot of every limit in ``names`` at once (the server grants all or none).

    Args:
        names: The limits.
        wait_s: Longest wait for free slots.
        on_first_wait: Called once when every slot is taken, before waiting (e.g. to grow the limit).
        allow_missing: Return a grant marked ``missing`` instead of raising when a limit does not
            exist or is inactive.
    """
    label = " + ".join(names)
    deadline = time.monotonic() + wait_s
    with prefect_api() as client:
        while True:
            try:
                response = client.increment_concurrency_slots_with_lease(
                    names=list(names), slots=1, mode="concurrency", lease_duration=LEASE_S
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != _LOCKED:
                    raise
                if on_first_wait is not None:
                    on_first_wait()
                    on_first_wait = None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PbxSessionsBusy(f"every slot of {label} stayed taken for {wait_s:g} s") from None
                retry_after = float(exc.response.headers.get("Retry-After", RETRY_CAP_S))
                time.sleep(min(retry_after, RETRY_CAP_S, remaining))
                continue
            body = response.json()
            lease = UUID(body["lease_id"]) if body.get("lease_id") else None
            limits = body.get("limits") or []
            if len(limits) < len(names):  # deleted or deactivated: never run unlimited
                if lease is not None:  # a partial lease: give it back rather than leave it to expire
                    client.release_concurrency_slots_with_lease(lease)
                if allow_missing:
                    return _Grant(None, {}, missing=True)
                raise RuntimeError(f"concurrency limit {label} does not exist or is inactive")
            if lease is None:
                raise RuntimeError(f"the Prefect API granted {label} without a lease")
            return _Grant(lease, {limit["name"]: int(limit["limit"]) for limit in limits}, missing=False)


def _keep_renewing(lease: UUID, stop: threading.Event) -> None:
    # The client is asked for only when a renewal is due: most sessions (an idle tenant's tick) end
    # well before the first one.
    while not stop.wait(RENEW_EVERY_S):
        try:
            with prefect_api() as client:
                client.renew_concurrency_lease(lease, LEASE_S)
        except Exception as exc:  # the session goes on; at worst the slot frees early
            log.warning("could not renew PBX session lease %s: %s", lease, type(exc).__name__)
