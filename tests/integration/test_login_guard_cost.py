"""A login's bookkeeping in the warehouse is one connection and no write when nothing is blocked
(issue 13: every idle tick logs in to every PBX), with the same guarantees as before: a refused login
blocks every process, a success lifts an old block, handshakes of one tenant never overlap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from audiapro.logins import WarehouseLoginGuard
from audiapro.ucm.errors import UcmWrongPasswordError
from audiapro.ucm.guard import UcmLoginBlocked
from audiapro.warehouse import LoginBlock, read_login_block, set_login_block

TENANT = "guarded"
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


class _Traffic:
    """Connection checkouts and the statements sent, counted on an engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.checkouts = 0
        self.statements: list[str] = []
        sa.event.listen(engine.pool, "checkout", self._checkout)
        sa.event.listen(engine, "before_cursor_execute", self._execute)

    def _checkout(self, *_args: Any) -> None:
        self.checkouts += 1

    def _execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement.split(None, 1)[0].upper())

    def reset(self) -> None:
        self.checkouts, self.statements = 0, []


@pytest.fixture
def traffic(pg_engine: sa.Engine) -> Iterator[_Traffic]:
    yield _Traffic(pg_engine)


def _login(guard: WarehouseLoginGuard, refused: bool = False) -> None:
    with guard.handshake():
        if refused:
            guard.failed(UcmWrongPasswordError(-37, action="login"))
        else:
            guard.succeeded()


def test_a_login_with_no_block_is_one_checkout_and_writes_nothing(
    pg_engine: sa.Engine, traffic: _Traffic
) -> None:
    guard = WarehouseLoginGuard(pg_engine, TENANT, now=lambda: NOW)
    _login(guard)  # warms the pool
    traffic.reset()

    _login(guard)

    assert traffic.checkouts == 1  # before: the lock, the block read and the clearing each took one
    assert not {"DELETE", "INSERT", "UPDATE", "BEGIN"} & set(traffic.statements), traffic.statements


def test_a_refusal_blocks_other_guards_and_a_later_success_lifts_an_expired_block(
    pg_engine: sa.Engine,
) -> None:
    first = WarehouseLoginGuard(pg_engine, TENANT, now=lambda: NOW)
    _login(first, refused=True)
    block = read_login_block(pg_engine, TENANT)
    assert block is not None and block.status == -37 and block.blocked_until >= NOW + timedelta(minutes=15)

    other = WarehouseLoginGuard(pg_engine, TENANT, now=lambda: NOW + timedelta(minutes=1))
    with pytest.raises(UcmLoginBlocked), other.handshake():
        pass

    later = WarehouseLoginGuard(pg_engine, TENANT, now=lambda: NOW + timedelta(hours=1))
    _login(later)  # the block has expired: the PBX accepted us, the row goes
    assert read_login_block(pg_engine, TENANT) is None


def test_a_success_outside_a_handshake_still_clears(pg_engine: sa.Engine) -> None:
    set_login_block(
        pg_engine, LoginBlock(TENANT, NOW + timedelta(hours=1), -37, "status -37 wrong password", NOW)
    )
    WarehouseLoginGuard(pg_engine, TENANT, now=lambda: NOW).succeeded()
    assert read_login_block(pg_engine, TENANT) is None


def test_handshakes_of_one_tenant_never_overlap(pg_engine: sa.Engine) -> None:
    inside, overlaps = [0], [0]
    lock = threading.Lock()

    def login(_: int) -> None:
        guard = WarehouseLoginGuard(pg_engine, TENANT, now=lambda: NOW)
        with guard.handshake():
            with lock:
                inside[0] += 1
                overlaps[0] = max(overlaps[0], inside[0])
            threading.Event().wait(0.01)
            with lock:
                inside[0] -= 1
            guard.succeeded()

    threads = [threading.Thread(target=login, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps[0] == 1
