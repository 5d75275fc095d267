"""Per-tenant mutual exclusion across processes: one poll, backfill or import per tenant at a time.

Postgres: a session-level advisory lock held on a dedicated autocommit connection (no transaction
stays open while the lock is held). SQLite: ``flock`` on a lock file next to the database file;
``flock`` (unlike ``lockf``) locks per open file, so two threads of one process also exclude each
other.

How backfills and file imports share a tenant with the live poll (one rule per kind of work, all on
the same :func:`tenant_lock`):

* The live poll takes the lock *without waiting* for its whole tick (fetch and load); a tick that
  finds it taken reports ``busy`` and the next tick reads the same window from its cursor.
* A backfill window, an import chunk or a reconciled day is read *outside* the lock (PBX paging and
  file parsing are the slow parts and write nothing), then takes the lock *waiting, with a timeout*
  (:func:`tenant_write_lock`) only around its load transaction, which lasts about a second. Polls
  therefore keep running during a long backfill, and parallel backfill windows fetch concurrently but
  load one at a time.

Writes of one tenant never overlap, so two transactions never merge overlapping legs (or rebuild the
same calls) concurrently, which could deadlock on Postgres; the upsert keeps every overlap free of
duplicates.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import sqlalchemy as sa

from audiapro.warehouse.engine import sqlite_database_path

LOCK_NAMESPACE: Final = "audiapro"
#: How often a waiter with a timeout retries a non-blocking acquire.
POLL_INTERVAL_S: Final = 0.05
#: Lock files live in this directory next to the SQLite file: ``<db>.locks/<tenant>-<hash>.lock``.
LOCK_DIR_SUFFIX: Final = ".locks"
#: How long a backfill window or import chunk waits for the tenant lock before giving up. A poll
#: tick holds it for seconds; a first poll of a busy tenant for a few minutes at most.
DEFAULT_LOCK_TIMEOUT_S: Final = 600.0
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_NAME_CHARS: Final = 40

# In-memory SQLite lives in one process, so a process-local lock is the whole truth there.
_memory_locks: dict[str, threading.Lock] = {}
_memory_locks_guard = threading.Lock()


class TenantBusyError(RuntimeError):
    """The tenant lock stayed taken for the whole timeout; retrying later is safe."""

    #: Read by ``audiapro.errors.is_transient``: another load held the lock, nothing is wrong.
    transient: Final = True


def advisory_key(*parts: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from ``("audiapro", *parts)``.

    Python's ``hash()`` is salted per process, so a cryptographic digest is used instead: every
    process and every host derives the same key for the same tenant.
    """
    text = "\x1f".join((LOCK_NAMESPACE, *parts))
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def tenant_lock(
    engine: sa.Engine, tenant: str, *, wait: bool = True, timeout_s: float | None = None
) -> Iterator[bool]:
    """Hold the tenant's write lock for the ``with`` block (see :func:`named_lock`)."""
    with named_lock(engine, "tenant", tenant, wait=wait, timeout_s=timeout_s) as acquired:
        yield acquired


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


@contextmanager
def login_lock(engine: sa.Engine, tenant: str, *, timeout_s: float | None = None) -> Iterator[bool]:
    """Serialize one tenant's PBX logins across processes (a UCM may keep one pending challenge per
    user, so two concurrent handshakes can fail each other and count towards its login ban)."""
    with login_lock_session(engine, tenant, timeout_s=timeout_s) as (acquired, _bind):
        yield acquired


@contextmanager
def login_lock_session(
    engine: sa.Engine, tenant: str, *, timeout_s: float | None = None
) -> Iterator[tuple[bool, sa.Connection | sa.Engine]]:
    """:func:`login_lock`, also yielding where to read and write the tenant's login block meanwhile.

    On Postgres that is the lock's own autocommit connection: the handshake's block read (and a
    block's clearing or setting) run in the session that holds the lock, one connection checkout
    per handshake instead of three. On SQLite it is the engine (each statement its own transaction).

    Yields:
        ``(acquired, bind)``.
    """
    if engine.dialect.name == "postgresql":
        with _pg_lock_conn(engine, advisory_key("login", tenant), wait=True, timeout_s=timeout_s) as held:
            yield held
    else:
        with named_lock(engine, "login", tenant, wait=True, timeout_s=timeout_s) as acquired:
            yield acquired, engine


@contextmanager
def named_lock(
    engine: sa.Engine, kind: str, tenant: str, *, wait: bool = True, timeout_s: float | None = None
) -> Iterator[bool]:
    """Hold one of the tenant's locks for the ``with`` block.

    Args:
        engine: The warehouse engine (decides the mechanism).
        kind: Which lock: ``tenant`` (writes of the tenant) or ``login`` (its PBX handshakes).
        tenant: Tenant name.
        wait: Block until the lock is free; ``False`` tries once.
        timeout_s: With ``wait``, give up after this many seconds (``None``: wait forever).

    Yields:
        Whether the lock was acquired. When ``False`` the block runs without it; callers skip work.
    """
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, advisory_key(kind, tenant), wait=wait, timeout_s=timeout_s) as acquired:
            yield acquired
    elif engine.dialect.name == "sqlite":
        path = sqlite_database_path(engine)
        if path is None:
            with _memory_lock(f"{kind}:{tenant}", wait=wait, timeout_s=timeout_s) as acquired:
                yield acquired
        else:
            with _file_lock(lock_file(path, tenant, kind), wait=wait, timeout_s=timeout_s) as acquired:
                yield acquired
    else:
        raise NotImplementedError(f"named_lock does not support {engine.dialect.name}")


def lock_file(database: Path, tenant: str, kind: str = "tenant") -> Path:
    """The lock file of ``tenant``'s ``kind`` lock for the SQLite database at ``database``."""
    readable = _UNSAFE_FILENAME.sub("_", tenant)[:_MAX_NAME_CHARS]
    # The hash keeps names distinct when sanitizing maps two tenants to the same text.
    suffix = f"{advisory_key(kind, tenant) & 0xFFFFFFFF:08x}"
    prefix = "" if kind == "tenant" else f"{kind}-"
    return database.with_name(database.name + LOCK_DIR_SUFFIX) / f"{prefix}{readable}-{suffix}.lock"


def _acquire(
    try_once: Callable[[], bool], block: Callable[[], None], *, wait: bool, timeout_s: float | None
) -> bool:
    if try_once():
        return True
    if not wait:
        return False
    if timeout_s is None:
        block()
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(min(POLL_INTERVAL_S, max(deadline - time.monotonic(), 0)))
        if try_once():
            return True
    return False


@contextmanager
def _pg_lock(engine: sa.Engine, key: int, *, wait: bool, timeout_s: float | None) -> Iterator[bool]:
    with _pg_lock_conn(engine, key, wait=wait, timeout_s=timeout_s) as (acquired, _conn):
        yield acquired


@contextmanager
def _pg_lock_conn(
    engine: sa.Engine, key: int, *, wait: bool, timeout_s: float | None
) -> Iterator[tuple[bool, sa.Connection]]:
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def try_once() -> bool:
        return bool(conn.scalar(sa.select(sa.func.pg_try_advisory_lock(key))))

    def block() -> None:
        conn.execute(sa.select(sa.func.pg_advisory_lock(key)))

    acquired = False
    try:
        acquired = _acquire(try_once, block, wait=wait, timeout_s=timeout_s)
        yield acquired, conn
        if acquired:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            acquired = False
    finally:
        if acquired:
            # Unlock failed or the body raised: closing the server session is what surely releases
            # a session-level lock, so never hand this connection back to the pool.
            try:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            except sa.exc.DBAPIError:
                conn.invalidate()
        conn.close()


@contextmanager
def _file_lock(path: Path, *, wait: bool, timeout_s: float | None) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fd = handle.fileno()

        def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        acquired = _acquire(try_once, lambda: fcntl.flock(fd, fcntl.LOCK_EX), wait=wait, timeout_s=timeout_s)
        try:
            yield acquired
        finally:
            if acquired:
                fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def _memory_lock(tenant: str, *, wait: bool, timeout_s: float | None) -> Iterator[bool]:
    with _memory_locks_guard:
        lock = _memory_locks.setdefault(tenant, threading.Lock())
    acquired = lock.acquire(blocking=wait, timeout=-1 if timeout_s is None or not wait else timeout_s)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()
