"""Per-tenant locks: a second holder is excluded (other engine, other thread) until the first lets go."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from audiapro.warehouse import get_engine, tenant_lock
from audiapro.warehouse.lock import advisory_key, lock_file
from tests.integration.warehouse_support import TENANT


@pytest.fixture
def engines(any_db_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """Two engines on one database, standing in for two worker processes."""
    first, second = get_engine(any_db_url), get_engine(any_db_url)
    yield first, second
    first.dispose()
    second.dispose()


def test_second_holder_excluded_until_release(engines: tuple[sa.Engine, sa.Engine]) -> None:
    first, second = engines
    with tenant_lock(first, TENANT) as held:
        assert held is True
        with tenant_lock(second, TENANT, wait=False) as other:
            assert other is False
        started = time.monotonic()
        with tenant_lock(second, TENANT, timeout_s=0.3) as other:
            assert other is False
        assert time.monotonic() - started >= 0.25
        with tenant_lock(second, "globex", wait=False) as unrelated:
            assert unrelated is True  # other tenants are not blocked
    with tenant_lock(second, TENANT, wait=False) as after:
        assert after is True


def test_waiter_gets_the_lock_when_holder_exits(engines: tuple[sa.Engine, sa.Engine]) -> None:
    first, second = engines
    events: list[str] = []
    holding = threading.Event()

    def holder() -> None:
        with tenant_lock(first, TENANT) as held:
            assert held
            holding.set()
            time.sleep(0.3)
            events.append("holder done")

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(10)
    with tenant_lock(second, TENANT, wait=True) as acquired:
        events.append("waiter in")
        assert acquired is True
    thread.join(10)
    assert events == ["holder done", "waiter in"]


def test_lock_released_when_body_raises(engines: tuple[sa.Engine, sa.Engine]) -> None:
    first, second = engines
    with pytest.raises(RuntimeError), tenant_lock(first, TENANT):
        raise RuntimeError("flow failed")
    with tenant_lock(second, TENANT, wait=False) as acquired:
        assert acquired is True


@pytest.mark.postgres
def test_pg_lock_connection_holds_no_transaction(pg_url: str) -> None:
    engine = get_engine(pg_url)
    try:
        with tenant_lock(engine, TENANT) as held, engine.connect() as conn:
            assert held
            states = conn.execute(
                sa.text(
                    "SELECT state FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                    "WHERE l.locktype = 'advisory'"
                )
            ).scalars()
            assert list(states) == ["idle"]  # not "idle in transaction"
    finally:
        engine.dispose()


def test_sqlite_lock_file_sits_next_to_database(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    try:
        database = Path(sa.make_url(sqlite_url).database or "")
        with tenant_lock(engine, "acme/east 1") as held:
            assert held
            path = lock_file(database.resolve(), "acme/east 1")
            assert path.exists() and path.parent.parent == database.resolve().parent
            assert path.name.startswith("acme_east_1-")
    finally:
        engine.dispose()


def test_in_memory_sqlite_uses_a_process_lock() -> None:
    engine = get_engine("sqlite://")
    try:
        with tenant_lock(engine, TENANT) as held, tenant_lock(engine, TENANT, wait=False) as other:
            assert (held, other) == (True, False)
    finally:
        engine.dispose()


def test_advisory_key_is_stable_and_signed_64_bit() -> None:
    key = advisory_key("tenant", TENANT)
    assert key == advisory_key("tenant", TENANT)
    assert key != advisory_key("tenant", "globex")
    assert -(2**63) <= key < 2**63
