"""How backfills and file imports share a tenant with the live poll: the per-tenant write lock.

Discipline (one rule per kind of work, all on the same ``tenant_lock``):

* The live poll takes the lock *without waiting* for its whole tick (fetch and load); a tick that
  finds it taken reports ``busy`` and the next tick reads the same window from its cursor.
* A backfill window or an import chunk is read *outside* the lock (PBX paging and file parsing are
  the slow parts and write nothing), then takes the lock *waiting, with a timeout* only around its
  load transaction, which lasts about a second. Polls therefore keep running during a long backfill,
  and parallel backfill windows fetch concurrently but load one at a time.

Writes of one tenant never overlap, so two transactions never merge overlapping legs (or rebuild the
same calls) concurrently, which could deadlock on Postgres; the upsert keeps every overlap free of
duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import sqlalchemy as sa

from audiapro.warehouse import tenant_lock

#: How long a backfill window or import chunk waits for the tenant lock before giving up. A poll
#: tick holds it for seconds; a first poll of a busy tenant for a few minutes at most.
DEFAULT_LOCK_TIMEOUT_S: Final = 600.0


class TenantBusyError(RuntimeError):
    """The tenant lock stayed taken for the whole timeout; retrying later is safe."""


@contextmanager
def tenant_write_lock(
    engine: sa.Engine, tenant: str, *, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold ``tenant``'s lock for one load transaction, waiting up to ``timeout_s`` for it.

    Raises:
        TenantBusyError: The lock was not free within ``timeout_s``.
    """
    with tenant_lock(engine, tenant, wait=True, timeout_s=timeout_s) as acquired:
        if not acquired:
            raise TenantBusyError(
                f"tenant {tenant}: the tenant lock stayed taken for {timeout_s:.0f} s (a poll, backfill "
                "or import is loading); retry later"
            )
        yield
