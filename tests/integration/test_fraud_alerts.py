"""Toll-fraud alerts over simulated PBX data: the simulator's fraud scenarios raise their alerts,
once; an ordinary simulated month raises none; alerts can be acknowledged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audiapro.ingest import load_raw_legs
from audiapro.insights import service
from audiapro.tenants import TenantSettings
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
from audiapro.ucm.simulator.config import FraudScenario
from audiapro.warehouse import RunInfo, get_engine, upgrade
from audiapro.warehouse.insights import acknowledge_alert, list_alerts

TENANT = TenantSettings(name="sim", timezone="America/New_York")
FIRST = date(2026, 3, 2)  # a Monday
NIGHT = date(2026, 3, 17)  # Tuesday: premium-rate calls from 01:00
PUMPING = date(2026, 3, 18)  # Wednesday: a burst of short calls at 14:00


def _load(engine: sa.Engine, sim: UcmSimulator) -> None:
    load_raw_legs(engine, TENANT, sim.ground_truth(), run=RunInfo(kind="import"), source="api")


def _daily(engine: sa.Engine, days: list[date], now: datetime) -> list[dict[str, Any]]:
    new: list[dict[str, Any]] = []
    for result in service.compute_days(engine, TENANT, days, now=now):
        new += service.evaluate_day(engine, TENANT, result, now=now)
    return new


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> sa.Engine:
    engine = get_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    upgrade(engine)
    return engine


def test_fraud_scenarios_raise_their_alerts_once(engine: sa.Engine) -> None:
    fraud = (
        FraudScenario("premium_night", NIGHT, hour=1, calls=30),
        FraudScenario("pumping_burst", PUMPING, hour=14, calls=15, spacing_s=30),
    )
    now = datetime(2026, 3, 19, 12, tzinfo=UTC)
    sim = UcmSimulator(SimulatorConfig(seed=3, start=FIRST, days=17, calls_per_day=80, now=now, fraud=fraud))
    _load(engine, sim)
    days = _days(FIRST, PUMPING)
    new = _daily(engine, days, now)
    hits = {(a["rule"], a["severity"], a["subject"]) for a in new}
    assert hits == {
        ("risky_destination", "critical", "ext:1000"),  # premium rate, on the night
        ("intl_velocity", "critical", "ext:1000"),  # 30 international calls within the hour
        ("after_hours", "critical", "tenant"),  # 30+ at night where a few are usual
        ("concurrency", "warning", "tenant"),  # the overlapping premium calls beat the normal peak
        ("risky_destination", "warning", "ext:1000"),  # area code 712, the next day
        ("short_call_burst", "warning", "prefix:+171255"),
    }
    assert _daily(engine, days, now + timedelta(hours=1)) == []  # idempotent: nothing new
    assert len(list_alerts(engine, tenant=TENANT.name)) == len(new)


def test_the_poll_check_alerts_within_minutes_and_only_once(engine: sa.Engine) -> None:
    burst = FraudScenario("pumping_burst", PUMPING, hour=14, calls=12, spacing_s=30)
    after = datetime(2026, 3, 18, 18, 10, tzinfo=UTC)  # 14:10 in New York: the burst just ended
    sim = UcmSimulator(
        SimulatorConfig(seed=5, start=PUMPING, days=1, calls_per_day=80, now=after, fraud=(burst,))
    )
    _load(engine, sim)
    rules = {a["rule"] for a in service.check_after_poll(engine, TENANT, now=after)}
    assert rules == {"short_call_burst", "risky_destination"}
    assert service.check_after_poll(engine, TENANT, now=after + timedelta(minutes=2)) == []
    assert _daily(engine, [PUMPING], after + timedelta(hours=12)) == []  # the whole day: the same alerts

    (alert,) = [a for a in list_alerts(engine, tenant=TENANT.name) if a["rule"] == "short_call_burst"]
    assert acknowledge_alert(engine, alert["id"], by="ops", now=after)
    assert alert["id"] not in {a["id"] for a in list_alerts(engine, tenant=TENANT.name)}
    assert alert["id"] in {a["id"] for a in list_alerts(engine, include_acknowledged=True)}
    assert not acknowledge_alert(engine, 999_999, by="ops", now=after)


def test_an_ordinary_simulated_month_raises_no_alert(sqlite_engine: sa.Engine) -> None:
    # 35 days: a week of baseline, then four weeks judged by every rule; each evening's poll check too.
    now = datetime(2026, 4, 8, 12, tzinfo=UTC)
    sim = UcmSimulator(SimulatorConfig(seed=11, start=FIRST, days=35, calls_per_day=200, now=now))
    _load(sqlite_engine, sim)
    days = _days(FIRST, FIRST + timedelta(days=34))
    false_positives = _daily(sqlite_engine, days, now)
    for day in days[::3]:
        evening = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23)
        false_positives += service.check_after_poll(sqlite_engine, TENANT, now=evening)
    assert [(a["rule"], a["subject"]) for a in false_positives] == []
