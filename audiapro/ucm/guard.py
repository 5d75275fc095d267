"""Login guard: one place that decides whether a tenant may attempt a PBX login right now.

A real UCM bans the client IP for 5 minutes after 5 failed logins (its web login security, which the
API shares), and may keep only one pending challenge per user. Every worker, CLI run and flow of one
tenant therefore has to (a) stop logging in after a login failed with a wrong password, unknown user,
missing permission or ban, and (b) not interleave challenge/login exchanges. :class:`LoginGuard` is
the hook :class:`audiapro.ucm.client.UcmClient` calls around every handshake; :class:`MemoryLoginGuard`
implements it inside one process (the default, and for tests). A persistent implementation shared by
processes lives outside this package.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

from audiapro.ucm.errors import (
    UcmAuthError,
    UcmLoginBannedError,
    UcmPermissionError,
    UcmUnknownUserError,
    UcmWrongPasswordError,
)

#: Shortest pause after a blocking login failure: several ban windows of the PBX (5 min by default),
#: so a scheduler retrying every few minutes cannot walk the tenant into a ban.
DEFAULT_BLOCK = timedelta(minutes=15)
#: Login failures that block further logins until a human acts (or the block ends).
BLOCKING_ERRORS: tuple[type[UcmAuthError], ...] = (
    UcmWrongPasswordError,
    UcmLoginBannedError,
    UcmUnknownUserError,
    UcmPermissionError,
)
#: What each blocking status means, and what fixes it, for the one-line message.
_REASONS = {
    -37: ("wrong password", "fix the password"),
    -68: ("login restricted by the PBX's login security", "wait for the PBX ban to end"),
    -70: ("login forbidden by the PBX's login security", "wait for the PBX ban to end"),
    -71: ("unknown API user", "fix the API user name"),
    -47: ("no permission", "allow this client's IP in the PBX's API settings"),
}
_DEFAULT_REASON = ("authentication failed", "fix the API credentials")


class UcmLoginBlocked(UcmAuthError):
    """Logins to this tenant are paused after a failed login; raised without contacting the PBX.

    Attributes:
        until: When the pause ends (aware, UTC).
        reason: What failed, e.g. ``"status -37 wrong password"``.
    """

    def __init__(
        self, until: datetime, reason: str, *, code: int = 0, advice: str = "", tenant: str = ""
    ) -> None:
        """Build the error.

        Args:
            until: End of the pause (aware).
            reason: What failed, e.g. ``"status -37 wrong password"``.
            code: The PBX status of the failure that caused the pause.
            advice: What fixes it, e.g. ``"fix the password"``.
            tenant: Tenant name for the ``audiapro tenant test`` hint (``<tenant>`` when unknown).
        """
        super().__init__(code, action="login")
        self.until = until.astimezone(UTC)
        self.reason = reason
        fix = f"{advice} or run" if advice else "run"
        self.args = (
            f"logins to this PBX are paused until {self.until:%Y-%m-%d %H:%M} UTC after a failed login "
            f"({reason}); {fix} `audiapro tenant test {tenant or '<tenant>'}`",
        )


class LoginGuard(Protocol):
    """Serialises and, after a failed login, pauses the PBX logins of one tenant."""

    def handshake(self) -> contextlib.AbstractContextManager[None]:
        """Held around one challenge+login exchange: serialises handshakes of one tenant (a real UCM
        may keep one pending challenge per user) and raises UcmLoginBlocked while the tenant is
        auth-blocked."""
        ...

    def failed(self, exc: UcmAuthError) -> None:
        """A login failed with an auth error: block further logins until max(remain_time, 15 min)."""
        ...

    def succeeded(self) -> None:
        """A login succeeded: clear any block."""
        ...


def blocks_logins(exc: BaseException) -> bool:
    """Whether a login failure pauses further logins: wrong password, unknown user, no permission, ban."""
    return isinstance(exc, BLOCKING_ERRORS) and not isinstance(exc, UcmLoginBlocked)


def _remain_seconds(exc: UcmAuthError) -> float:
    try:
        return max(0.0, float(exc.remain_time)) if exc.remain_time is not None else 0.0
    except ValueError:
        return 0.0


def block_until(exc: UcmAuthError, now: datetime, minimum: timedelta = DEFAULT_BLOCK) -> datetime:
    """When a pause caused by ``exc`` ends: ``now`` plus the PBX's ``remain_time`` or ``minimum``, the larger.

    Args:
        exc: The login failure.
        now: The current time (aware).
        minimum: Shortest pause.
    """
    return now + max(minimum, timedelta(seconds=_remain_seconds(exc)))


def pause_until(exc: UcmAuthError, now: datetime, minimum: timedelta = DEFAULT_BLOCK) -> datetime | None:
    """When logins may resume after ``exc`` (see :func:`block_until`), or None if it pauses nothing."""
    return block_until(exc, now, minimum) if blocks_logins(exc) else None


def describe_failure(exc: UcmAuthError) -> tuple[str, str]:
    """``(reason, advice)`` of a blocking failure: ``("status -37 wrong password", "fix the password")``."""
    label, advice = _REASONS.get(exc.code, _DEFAULT_REASON)
    return f"status {exc.code} {label}", advice


def advice_for(code: int) -> str:
    """What fixes a login refused with UCM status ``code``, e.g. ``"fix the password"`` for -37."""
    return _REASONS.get(code, _DEFAULT_REASON)[1]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryLoginGuard:
    """:class:`LoginGuard` inside one process: a lock serialises handshakes, a field holds the block.

    Share one instance between the clients of one tenant (threads included); each
    :class:`~audiapro.ucm.client.UcmClient` without a guard gets its own.
    """

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = _utc_now,
        minimum: timedelta = DEFAULT_BLOCK,
        tenant: str = "",
    ) -> None:
        """Create an unblocked guard.

        Args:
            now: Clock returning an aware datetime (tests inject a fixed one).
            minimum: Shortest pause after a blocking failure.
            tenant: Tenant name used in :class:`UcmLoginBlocked` messages.
        """
        self._now = now
        self._minimum = minimum
        self._tenant = tenant
        self._handshake_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._block: tuple[datetime, UcmAuthError] | None = None

    @property
    def blocked(self) -> UcmLoginBlocked | None:
        """A fresh :class:`UcmLoginBlocked` describing the active block, or None."""
        with self._state_lock:
            if self._block is not None and self._now() >= self._block[0]:
                self._block = None
            if self._block is None:
                return None
            until, cause = self._block
        reason, advice = describe_failure(cause)
        return UcmLoginBlocked(until, reason, code=cause.code, advice=advice, tenant=self._tenant)

    @contextlib.contextmanager
    def handshake(self) -> Iterator[None]:
        """Hold the tenant's handshake lock; raise :class:`UcmLoginBlocked` while blocked."""
        with self._handshake_lock:
            blocked = self.blocked
            if blocked is not None:
                raise blocked
            yield

    def failed(self, exc: UcmAuthError) -> None:
        """Block logins after a blocking failure (other auth errors are ignored)."""
        until = pause_until(exc, self._now(), self._minimum)
        if until is not None:
            with self._state_lock:
                self._block = (until, exc)

    def succeeded(self) -> None:
        """Clear any block."""
        with self._state_lock:
            self._block = None
