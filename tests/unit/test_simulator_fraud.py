"""The simulator's fraud scenarios add calls on their own day only."""

from __future__ import annotations

from datetime import UTC, date, datetime

from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
from audiapro.ucm.simulator.config import FraudScenario

NOW = datetime(2026, 3, 5, 12, tzinfo=UTC)
BURST_DAY = date(2026, 3, 3)


def _legs(*fraud: FraudScenario) -> list[dict[str, str]]:
    sim = UcmSimulator(
        SimulatorConfig(seed=2, start=date(2026, 3, 2), days=3, calls_per_day=40, now=NOW, fraud=fraud)
    )
    return sim.ground_truth()


def test_scenarios_add_their_calls_and_leave_other_days_alone() -> None:
    plain = _legs()
    night = _legs(FraudScenario("premium_night", BURST_DAY, hour=1, calls=12))
    pumping = _legs(FraudScenario("pumping_burst", BURST_DAY, hour=14, calls=9, spacing_s=30))

    def day_of(legs: list[dict[str, str]], day: date) -> list[tuple[str, str, str]]:
        return [(leg["start"], leg["src"], leg["dst"]) for leg in legs if leg["start"].startswith(str(day))]

    for other in (date(2026, 3, 2), date(2026, 3, 4)):
        assert day_of(night, other) == day_of(plain, other)
    added = sorted(set(day_of(night, BURST_DAY)) - set(day_of(plain, BURST_DAY)))
    assert len(added) == 12 and all(dst.startswith("01144909879") for _, _, dst in added)
    assert all(start[11:13] == "01" for start, _, _ in added)  # at night, local time
    short = [leg for leg in pumping if leg["dst"].startswith("1712555")]
    assert len(short) == 9 and all(
        leg["disposition"] == "ANSWERED" and int(leg["billsec"]) < 10 for leg in short
    )
