"""The login guard every process shares: PBX logins of a tenant serialized, and paused after a refusal.

:class:`audiapro.ucm.guard.LoginGuard` is the client's hook around each challenge+login exchange.
This implementation keeps its state in the warehouse, which every path (poll ticks, backfill windows,
reconcile, recording downloads of the analysis, the CLI) already reaches:

* a login lock per tenant (Postgres advisory lock, or a file lock next to the SQLite file) so that
  no two handshakes of one tenant interleave, on one machine or many;
* a ``login_blocks`` row after a refused login (wrong password, unknown user, no permission, ban),
  so that nobody tries again before ``max(remain_time, 15 min)`` has passed. A rotated password,
  ``audiapro tenant test`` or a successful login clears it.

Over any number of ticks, backfills and analysis runs with a wrong password the PBX therefore sees
at most one failed login per block period, well inside its ban threshold of five.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from audiapro.ucm.errors import UcmAuthError, UcmTransportError
from audiapro.ucm.guard import (
    DEFAULT_BLOCK,
    UcmLoginBlocked,
    advice_for,
    describe_failure,
    pause_until,
)
from audiapro.warehouse import (
    LoginBlock,
    clear_login_block,
    login_lock_session,
    read_login_block,
    set_login_block,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

#: How long a handshake waits for another process's handshake of the same tenant (two requests).
LOGIN_LOCK_WAIT_S = 120.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WarehouseLoginGuard:
    """A :class:`~audiapro.ucm.guard.LoginGuard` whose lock and block live in the warehouse.

    Args:
        engine: The warehouse engine.
        tenant: Tenant name.
        now: Clock (tests pin it).
        minimum: Shortest pause after a refused login.
    """

    def __init__(
        self,
        engine: sa.Engine,
        tenant: str,
        *,
        now: Callable[[], datetime] = _utc_now,
        minimum: timedelta = DEFAULT_BLOCK,
    ) -> None:
        self._engine = engine
        self._tenant = tenant
        self._now = now
        self._minimum = minimum
        # The handshake in progress in this thread: where its lock lives, and whether a block row
        # was there when it began (threads of one process may share a guard).
        self._turn = threading.local()

    @contextlib.contextmanager
    def handshake(self) -> Iterator[None]:
        """Hold the tenant's login lock; raise :class:`UcmLoginBlocked` while a block is in force.

        The block is read in the lock's own session (one connection for the handshake's bookkeeping).
        """
        with login_lock_session(self._engine, self._tenant, timeout_s=LOGIN_LOCK_WAIT_S) as (acquired, bind):
            if not acquired:
                raise UcmTransportError(
                    f"tenant {self._tenant}: another login to this PBX took over {LOGIN_LOCK_WAIT_S:.0f} s"
                )
            block = read_login_block(bind, self._tenant)
            blocked = as_error(block, self._tenant, self._now())
            if blocked is not None:
                raise blocked
            self._turn.bind, self._turn.had_block = bind, block is not None
            try:
                yield
            finally:
                self._turn.bind = None

    def failed(self, exc: UcmAuthError) -> None:
        """Store a block after a refused login (other auth errors change nothing)."""
        now = self._now()
        until = pause_until(exc, now, self._minimum)
        if until is not None:
            reason, _advice = describe_failure(exc)
            set_login_block(self._bind(), LoginBlock(self._tenant, until, exc.code, reason, now))

    def succeeded(self) -> None:
        """Lift any block: the PBX just accepted us.

        Inside a handshake that found no block row there is nothing to lift: a block is only ever
        written by a refused login, under the login lock this handshake holds, so none can have
        appeared since (an idle tick's login then costs no delete).
        """
        if getattr(self._turn, "bind", None) is not None and not self._turn.had_block:
            return
        clear_login_block(self._bind(), self._tenant)

    def _bind(self) -> sa.Engine | sa.Connection:
        """The current handshake's lock session, or the engine outside one."""
        bind: sa.Engine | sa.Connection | None = getattr(self._turn, "bind", None)
        return bind if bind is not None else self._engine


def active_block(engine: sa.Engine, tenant: str, now: datetime) -> UcmLoginBlocked | None:
    """The tenant's block as the error a login would raise, or ``None`` when logins are allowed."""
    return as_error(read_login_block(engine, tenant), tenant, now)


def as_error(block: LoginBlock | None, tenant: str, now: datetime) -> UcmLoginBlocked | None:
    """``block`` as the error a login raises while it is in force, or ``None`` when logins are allowed."""
    if block is None or block.blocked_until <= now:
        return None
    code = block.status or 0
    advice = advice_for(code)
    return UcmLoginBlocked(block.blocked_until, block.reason, code=code, advice=advice, tenant=tenant)
