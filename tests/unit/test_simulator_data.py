"""UCM simulator data: determinism, realism, local time vs UTC epochs across DST, AcctIds, live mode."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator

NY = ZoneInfo("America/New_York")
LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Fields that identify a leg without AcctId (audiapro.cdr.schema.LEG_KEY_FIELDS).
LEG_KEY = ("uniqueid", "channel", "dstchannel", "start", "lastapp")


def truth(**overrides: Any) -> list[dict[str, str]]:
    settings: dict[str, Any] = {"seed": 5, "calls_per_day": 300, "start": date(2026, 3, 2), "days": 2}
    settings.update(overrides)
    return UcmSimulator(SimulatorConfig(**settings)).ground_truth()


def local(epoch: int, tz: ZoneInfo = NY) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime(LOCAL_FORMAT)


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, second = truth(), truth()
    assert first == second
    assert truth(seed=6) != first
    # Other tenants' settings do not disturb a day's content: day 1 alone equals day 1 of two days.
    one_day = truth(days=1)
    assert one_day == [leg for leg in first if leg["AcctId"] in {x["AcctId"] for x in one_day}]


def test_every_leg_is_well_formed() -> None:
    legs = truth()
    assert len(legs) > 800
    ids = [int(leg["AcctId"]) for leg in legs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({tuple(leg[f] for f in LEG_KEY) for leg in legs}) == len(legs)
    for leg in legs:
        assert all(isinstance(v, str) for v in leg.values()) and len(leg) == 43
        assert re.fullmatch(r"\d{10}\.\d+", leg["uniqueid"])
        assert re.fullmatch(r"\d{16}-.+", leg["session"])
        start = datetime.strptime(leg["start"], LOCAL_FORMAT)
        end = datetime.strptime(leg["end"], LOCAL_FORMAT)
        assert int(leg["duration"]) >= 0 and int(leg["billsec"]) <= int(leg["duration"])
        if leg["answer"] == "":
            assert leg["billsec"] == "0" and leg["disposition"] != "ANSWERED"
        else:
            assert leg["disposition"] == "ANSWERED"
        assert abs((end - start).total_seconds() - int(leg["duration"])) <= 3600  # DST can shift an hour
        assert int(leg["duration"]) <= 90 * 60


def test_acctid_increases_with_end_time() -> None:
    legs = truth()

    def end_instant(leg: dict[str, str]) -> float:
        # start is resolved through the session/uniqueid epoch; end = start + duration.
        return _start_epoch(leg) + int(leg["duration"])

    ends = [end_instant(leg) for leg in legs]
    assert ends == sorted(ends)


def _start_epoch(leg: dict[str, str]) -> int:
    """The UTC instant of ``start``: the candidate that renders to the local string, nearest the ids."""
    naive = datetime.strptime(leg["start"], LOCAL_FORMAT)
    reference = int(leg["session"][:10])
    candidates = [naive.replace(tzinfo=NY, fold=f).timestamp() for f in (0, 1)]
    return int(min(candidates, key=lambda c: abs(c - reference)))


def test_scenario_mix_is_realistic() -> None:
    legs = truth(days=3, calls_per_day=500)
    apps = Counter(leg["lastapp"] for leg in legs)
    assert {"Dial", "Queue", "ParkedCall", "ForkCDR", "VoiceMail", "BackGround"} <= set(apps)
    assert set(Counter(leg["disposition"] for leg in legs)) == {
        "ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION",
    }  # fmt: skip
    assert {"Inbound", "Outbound", "Internal", "External"} == {leg["userfield"] for leg in legs}
    kinds = {re.sub(r"\[.*", "", leg["action_type"]) for leg in legs}
    assert {"DIAL", "RINGGROUP", "QUEUE", "TRANSFER", "PARKEDCALL", "VM", "IVR", "FOLLOWME"} <= kinds

    inbound = [
        leg for leg in legs if leg["userfield"] == "Inbound" and leg["channel"].startswith("PJSIP/trunk")
    ]
    assert all(re.fullmatch(r"PJSIP/trunk_\d-[0-9a-f]{8}", leg["channel"]) for leg in inbound)
    assert any(leg["dcontext"].startswith("ext-did-") for leg in inbound)
    outbound = [leg for leg in legs if leg["userfield"] == "Outbound"]
    assert any(re.fullmatch(r"PJSIP/trunk_\d/\d+", leg["dstchannel"]) for leg in outbound)
    assert all(leg["dcontext"].startswith("outbound-route-") and leg["dst_trunk_name"] for leg in outbound)
    sources = [leg["src"] for leg in inbound]
    assert any(re.fullmatch(r"\d{10}", s) for s in sources) and any(s.startswith("1") for s in sources)
    assert any(s.startswith("+44") for s in sources) and "anonymous" in sources

    # Parked pickups keep the original call's (older) uniqueid; transfers start a new leg later.
    for leg in (x for x in legs if x["lastapp"] == "ParkedCall"):
        assert int(leg["uniqueid"].split(".")[0]) < int(leg["session"][:10])
    forks = [x for x in legs if x["lastapp"] == "ForkCDR"]
    originals = {(x["uniqueid"], x["channel"], x["dstchannel"]) for x in legs if x["lastapp"] == "Dial"}
    assert forks and all((f["uniqueid"], f["channel"], f["dstchannel"]) in originals for f in forks)
    # A few long calls.
    assert max(int(leg["billsec"]) for leg in legs) > 20 * 60


def test_recording_names_follow_the_pbx_pattern() -> None:
    legs = truth()
    recorded = [leg for leg in legs if leg["recordfiles"]]
    assert recorded
    for leg in recorded:
        names = [n for n in leg["recordfiles"].split("@") if n]
        assert leg["recordfiles"].endswith("@") and leg["answer"]
        for name in names:
            found = re.fullmatch(r"(\d{4}-\d{2})/auto-(\d{10})(#\d+)?-(.+)-(.+)\.wav", name)
            assert found, name
            assert found.group(4) == leg["src"]
        first_epoch = int(re.search(r"auto-(\d{10})", names[0]).group(1))  # type: ignore[union-attr]
        assert local(first_epoch) == leg["start"]
        assert leg["recordfiles_desc"].count("@") == len(names)
        if leg["action_type"].startswith("RINGGROUP"):
            assert f"#{leg['dstanswer']}-" in names[0]


def test_local_times_match_utc_epochs_across_dst_fall_back() -> None:
    # 2026-11-01: New York falls back from 02:00 EDT to 01:00 EST.
    legs = truth(start=date(2026, 10, 31), days=3, calls_per_day=250)
    repeated = [leg for leg in legs if leg["start"].startswith("2026-11-01 01:")]
    epochs = {
        int(leg["uniqueid"].split(".")[0]) for leg in repeated if leg["uniqueid"][:10] == leg["session"][:10]
    }
    offsets = {
        datetime.fromtimestamp(e, NY).utcoffset() for e in epochs if local(e).startswith("2026-11-01 01:")
    }
    assert offsets == {timedelta(hours=-4), timedelta(hours=-5)}, "both occurrences of 01:xx must carry calls"
    # The wall clock renders the true UTC instant: calls that start with their channel match exactly.
    checked = 0
    for leg in legs:
        # (Legs after an IVR or a transfer start later than their channel, so they are skipped.)
        first_leg = leg["dcontext"] not in ("ivr-1", "from-internal-xfer")
        if (
            first_leg
            and leg["uniqueid"][:10] == leg["session"][:10]
            and leg["lastapp"] in ("Dial", "BackGround")
        ):
            assert leg["start"] == local(int(leg["uniqueid"][:10]))
            checked += 1
    assert checked > 200
    # Spring forward (2026-03-08): no local time in the skipped hour.
    spring = truth(start=date(2026, 3, 8), days=1, calls_per_day=400)
    assert not [leg for leg in spring if leg["start"].startswith("2026-03-08 02:")]


def test_other_time_zone_renders_in_that_zone() -> None:
    london = ZoneInfo("Europe/London")
    legs = truth(tz="Europe/London", days=1)
    leg = next(x for x in legs if x["uniqueid"][:10] == x["session"][:10] and x["lastapp"] == "Dial")
    assert leg["start"] == local(int(leg["uniqueid"][:10]), london)
    inbound = [x["src"] for x in legs if x["userfield"] == "Inbound"]
    assert any(s.startswith(("07700900", "02079460", "+44")) for s in inbound)


def test_true_start_oracle_and_session_epochs_place_every_leg() -> None:
    sim = UcmSimulator(SimulatorConfig(seed=8, calls_per_day=400, start=date(2026, 10, 31), days=3))
    legs = sim.ground_truth()
    oracle = sim.true_start_utc()
    assert set(oracle) == {leg["AcctId"] for leg in legs}
    for leg in legs:
        true_start = oracle[leg["AcctId"]]
        assert true_start.tzinfo is not None
        assert local(int(true_start.timestamp())) == leg["start"]
        # Every leg starts within a minute of its session epoch, so a consumer can resolve the
        # repeated DST hour from the leg alone.
        assert 0 <= true_start.timestamp() - int(leg["session"][:10]) <= 60, leg
    repeated = [leg for leg in legs if leg["start"].startswith("2026-11-01 01:")]
    assert len({oracle[leg["AcctId"]].utcoffset() for leg in repeated}) == 1  # all UTC
    assert len({oracle[leg["AcctId"]].astimezone(NY).utcoffset() for leg in repeated}) == 2


def test_ground_truth_window_filters_on_start() -> None:
    sim = UcmSimulator(SimulatorConfig(seed=5, calls_per_day=200, start=date(2026, 3, 2), days=3))
    everything = sim.ground_truth()
    low, high = datetime(2026, 3, 3, 5, tzinfo=UTC), datetime(2026, 3, 3, 20, tzinfo=UTC)
    window = sim.ground_truth(start=low, end=high)
    expected = [leg for leg in everything if low.timestamp() <= _start_epoch(leg) <= high.timestamp()]
    assert window == expected and 0 < len(window) < len(everything)


def test_visibility_follows_the_clock() -> None:
    sim = UcmSimulator(SimulatorConfig(seed=5, calls_per_day=300, start=date(2026, 3, 2), days=1))
    total = len(sim.ground_truth())
    sim.clock.set(datetime(2026, 3, 2, 12, 0, tzinfo=NY))
    noon = sim.ground_truth()
    assert 0 < len(noon) < total
    noon_utc = datetime(2026, 3, 2, 12, 0, tzinfo=NY)
    assert all(_start_epoch(leg) + int(leg["duration"]) <= noon_utc.timestamp() for leg in noon)
    sim.clock.advance(3600)
    assert len(sim.ground_truth()) > len(noon)


def test_live_mode_adds_legs_as_time_passes() -> None:
    config = SimulatorConfig(seed=9, calls_per_day=50, start=date(2026, 3, 2), days=1, live_rate=2.0)
    sim = UcmSimulator(config)
    live_start = datetime(2026, 3, 3, tzinfo=NY)
    sim.clock.set(live_start + timedelta(hours=1))
    base = sim.ground_truth()
    sim.clock.advance(600)
    later = sim.ground_truth()
    assert len(later) > len(base) + 10
    assert {leg["AcctId"] for leg in base} <= {leg["AcctId"] for leg in later}
    # Deterministic per minute: a second simulator jumping straight there sees identical legs.
    other = UcmSimulator(config)
    other.clock.set(live_start + timedelta(hours=1, minutes=10))
    assert other.ground_truth() == later
    # Some live calls are still running: they appear only after later windows started.
    sim.clock.advance(6 * 3600)
    final = sim.ground_truth()
    cutoff = (live_start + timedelta(hours=1, minutes=10)).timestamp()
    late = [
        leg
        for leg in final
        if _start_epoch(leg) < cutoff and leg["AcctId"] not in {x["AcctId"] for x in later}
    ]
    assert late


def test_real_clock_defaults_to_history_ending_today() -> None:
    # The one test of the wall-clock default: it brackets the wall clock, so midnight may pass.
    before = datetime.now(NY)
    sim = UcmSimulator(SimulatorConfig(clock="real", days=2, calls_per_day=100))
    after = datetime.now(NY)
    assert sim.history_start in {before.date() - timedelta(days=1), after.date() - timedelta(days=1)}
    assert before <= sim.clock.now() <= datetime.now(NY)


def test_real_clock_shows_what_has_ended_by_its_own_now() -> None:
    sim = UcmSimulator(SimulatorConfig(clock="real", start=date(2026, 3, 2), days=2, calls_per_day=100))
    # In real mode `set` pins an offset from the wall clock: the clock keeps running from there.
    noon = datetime(2026, 3, 3, 12, 0, tzinfo=NY)
    sim.clock.set(noon)
    legs = sim.ground_truth()
    seen_at = sim.clock.now()
    last_end = max(leg["end"] for leg in legs)
    assert noon <= seen_at
    assert seen_at.astimezone(NY).strftime(LOCAL_FORMAT) >= last_end >= "2026-03-03 11:00:00"  # busy morning
    before = sim.clock.now()
    sim.clock.advance(3600)
    assert (sim.clock.now() - before).total_seconds() >= 3600
    assert len(sim.ground_truth()) > len(legs)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="time zone"):
        SimulatorConfig(tz="Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        SimulatorConfig(now=datetime(2026, 3, 2))
    assert SimulatorConfig(now=datetime(2026, 3, 2, tzinfo=UTC)).now is not None
