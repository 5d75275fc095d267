"""Login guard: pause rules, the one-line block message, serialised handshakes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from audiapro.ucm.errors import (
    UcmAuthError,
    UcmLoginBannedError,
    UcmPermissionError,
    UcmSessionError,
    UcmUnknownUserError,
    UcmWrongPasswordError,
)
from audiapro.ucm.guard import MemoryLoginGuard, UcmLoginBlocked, block_until, blocks_logins

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Clock:
    """An injectable ``now`` that only moves when told."""

    def __init__(self) -> None:
        self.value = NOW

    def __call__(self) -> datetime:
        return self.value


def test_block_until_takes_the_longer_of_remain_time_and_minimum() -> None:
    assert block_until(UcmWrongPasswordError(-37, remain_time="0"), NOW) == NOW + timedelta(minutes=15)
    assert block_until(UcmLoginBannedError(-68, remain_time="3600"), NOW) == NOW + timedelta(hours=1)
    assert block_until(UcmLoginBannedError(-70, remain_time="n/a"), NOW) == NOW + timedelta(minutes=15)
    assert block_until(UcmLoginBannedError(-70), NOW, timedelta(minutes=1)) == NOW + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("exc", "blocks"),
    [
        (UcmWrongPasswordError(-37), True),
        (UcmLoginBannedError(-68), True),
        (UcmLoginBannedError(-70), True),
        (UcmUnknownUserError(-71), True),
        (UcmPermissionError(-47), True),
        (UcmSessionError(-6), False),
        (UcmLoginBlocked(NOW, "status -37 wrong password"), False),
    ],
)
def test_which_failures_block(exc: UcmAuthError, blocks: bool) -> None:
    assert blocks_logins(exc) is blocks
    guard = MemoryLoginGuard(now=Clock())
    guard.failed(exc)
    assert (guard.blocked is not None) is blocks


def test_block_message_is_one_line_and_names_the_fix() -> None:
    clock = Clock()
    guard = MemoryLoginGuard(now=clock, tenant="acme")
    guard.failed(UcmWrongPasswordError(-37, "Wrong account or password!", remain_num="4", remain_time="0"))
    with pytest.raises(UcmLoginBlocked) as info, guard.handshake():
        pass
    assert str(info.value) == (
        "logins to this PBX are paused until 2026-03-02 10:15 UTC after a failed login (status -37 wrong "
        "password); fix the password or run `audiapro tenant test acme`"
    )
    assert info.value.until == NOW + timedelta(minutes=15) and info.value.until.tzinfo is UTC
    assert info.value.reason == "status -37 wrong password" and info.value.code == -37
    assert isinstance(info.value, UcmAuthError)


def test_block_ends_with_time_and_with_success() -> None:
    clock = Clock()
    guard = MemoryLoginGuard(now=clock)
    guard.failed(UcmLoginBannedError(-68, remain_time="1200"))
    clock.value += timedelta(minutes=19, seconds=59)
    blocked = guard.blocked
    assert blocked is not None and blocked.until == NOW + timedelta(minutes=20)
    clock.value += timedelta(seconds=1)
    assert guard.blocked is None
    with guard.handshake():
        pass
    guard.failed(UcmUnknownUserError(-71))
    guard.succeeded()
    assert guard.blocked is None


def test_until_is_reported_in_utc() -> None:
    local = datetime(2026, 3, 2, 5, 0, tzinfo=timezone(timedelta(hours=-5)))
    blocked = UcmLoginBlocked(local, "status -47 no permission")
    assert blocked.until == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert "10:00 UTC" in str(blocked) and "`audiapro tenant test <tenant>`" in str(blocked)


def test_handshakes_are_serialised() -> None:
    guard = MemoryLoginGuard(now=Clock())
    inside = threading.Event()
    release = threading.Event()
    entered: list[str] = []

    def hold() -> None:
        with guard.handshake():
            entered.append("first")
            inside.set()
            release.wait(10)

    def second() -> None:
        with guard.handshake():
            entered.append("second")

    first_thread = threading.Thread(target=hold)
    first_thread.start()
    assert inside.wait(10)
    second_thread = threading.Thread(target=second)
    second_thread.start()
    second_thread.join(0.2)
    assert entered == ["first"]  # the second handshake waits for the first
    release.set()
    first_thread.join(10)
    second_thread.join(10)
    assert entered == ["first", "second"]
