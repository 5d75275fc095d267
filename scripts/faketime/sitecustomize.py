"""Loaded by every Python process of ``scripts/clock-shift-test.sh`` (PYTHONPATH): a libfaketime workaround.

libfaketime 0.9.10 (Debian 12) mistranslates ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`` when
the monotonic clock is left alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``): the kernel gets a negative
deadline and the call fails with EINVAL (wolfcw/libfaketime#426). Python 3.11's ``time.sleep`` is
exactly that call, so under the shifted clock it raises ``OSError: [Errno 22]``. Leaving the monotonic
clock faked instead is worse: ``threading`` waits (``sem_clockwait``) then never time out.

This module only exists in the shifted test run. It replaces ``time.sleep`` with a wait on ``select``
(a relative timeout, which libfaketime passes through untouched) until the real monotonic deadline.
"""

from __future__ import annotations

import os
import select
import time
from typing import SupportsIndex

_DEADLINE_CLOCK = time.monotonic


def monotonic_sleep(seconds: float | SupportsIndex) -> None:
    """Sleep ``seconds`` on the real monotonic clock, like ``time.sleep``.

    Raises:
        ValueError: ``seconds`` is negative (as ``time.sleep`` does).
    """
    length = float(seconds)
    if length < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = _DEADLINE_CLOCK() + length
    while (remaining := deadline - _DEADLINE_CLOCK()) > 0:
        select.select([], [], [], remaining)


if os.environ.get("FAKETIME"):
    time.sleep = monotonic_sleep
