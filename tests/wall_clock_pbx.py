"""A simulated PBX for tests whose flow reads the wall clock itself (no tests here).

`poll-cdrs` takes no ``now``: its first window is the last 24 h + lookback by the clock of whatever
process runs it (this one, or a worker's flow-run process in the e2e tests). A test of that flow must
still not depend on the time of day or the weekday, so the PBX is built around the wall clock:

* its history covers the two local days before today and today, so the whole window is inside it;
* every weekday carries the same volume (``weekend_factor=1``); the hour profile stays realistic, as a
  window of 24 h or more holds one whole day of it wherever it starts;
* its manual clock stands ``BEHIND`` the wall clock and only moves when the test moves it, so every leg
  it has written started before the window end of a poll run started later (the window ends the
  safety margin before that run's ``now``), and nothing appears between two ticks on its own.

Counts then depend only on the seed and the calendar dates, and a whole day of calls is in the first
window whenever the test runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from audiapro import settings
from audiapro.ucm.simulator import SimulatorConfig

#: How far back a new tenant's first poll window reaches: initial history plus lookback.
FIRST_WINDOW = timedelta(seconds=settings.DEFAULT_INITIAL_HISTORY_SECONDS + settings.DEFAULT_LOOKBACK_SECONDS)
#: Local days of history before the wall clock's day: the first window fits in them and today.
DAYS_BEFORE = FIRST_WINDOW.days + 1
#: Manual clock behind the wall clock: a poll window's safety margin plus a few minutes that an e2e
#: test may move the PBX clock forward (CLOCK_STEP per tick).
BEHIND = timedelta(seconds=settings.DEFAULT_SAFETY_SECONDS) + timedelta(minutes=9)


def wall_clock_pbx(*, tz: str, **fields: Any) -> SimulatorConfig:
    """A manual-clock PBX whose history ends with today by the wall clock (see the module docstring).

    Args:
        tz: The PBX's IANA zone (its history is made of local days).
        **fields: Further `SimulatorConfig` fields (seed, calls_per_day, password, ...).
    """
    now = datetime.now(UTC).replace(microsecond=0) - BEHIND
    first_day = (now.astimezone(ZoneInfo(tz)) - timedelta(days=DAYS_BEFORE)).date()
    return SimulatorConfig(
        tz=tz,
        start=first_day,
        days=DAYS_BEFORE + 1,
        weekend_factor=1.0,
        clock="manual",
        now=now,
        **fields,
    )
