"""`audiapro simulate --live-rate` (the live PBX `make up` starts): new calls within minutes of its start,
whatever the time of day, not only from the next local midnight on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from audiapro.cli import DEMO_TIMEZONE, simulator_config
from audiapro.ops.stack import SIM_CALLS_PER_DAY, SIM_DAYS, SIM_LIVE_RATE, SIM_SEED
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator

#: How soon after the start the first calls must have ended (the poll reads only finished legs).
FIRST_MINUTES = timedelta(minutes=15)


@pytest.mark.parametrize("local_hour", [3, 12, 22])
def test_the_live_pbx_has_finished_calls_within_minutes_of_its_start(local_hour: int) -> None:
    started = datetime(2026, 3, 4, local_hour, 7, tzinfo=ZoneInfo(DEMO_TIMEZONE)).astimezone(UTC)
    base = SimulatorConfig(seed=SIM_SEED, calls_per_day=SIM_CALLS_PER_DAY, days=SIM_DAYS, tz=DEMO_TIMEZONE,
                           api_user="cdrapi", password="pw", live_rate=SIM_LIVE_RATE)  # fmt: skip
    config = simulator_config(base, now=started)
    assert config.clock == "real"
    pbx = UcmSimulator(replace(config, clock="manual", now=started + FIRST_MINUTES))
    new = pbx.ground_truth(start=started)
    assert len({leg["uniqueid"] for leg in new}) >= 3, f"{len(new)} legs in the first minutes"
