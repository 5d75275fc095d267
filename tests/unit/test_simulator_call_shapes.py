"""Simulator call shapes behind knobs: parallel trunk legs, Local-channel twins, long calls, ForkCDR."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

import pytest

from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
from audiapro.ucm.simulator.config import MAX_CALL_SECONDS_LIMIT
from audiapro.ucm.simulator.generator import ACCT_BLOCK

LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
LOOKBACK_S = 2 * 3600  # the poll's default lookback


def simulator(**overrides: Any) -> UcmSimulator:
    settings: dict[str, Any] = {"seed": 9, "calls_per_day": 200, "start": date(2026, 3, 2), "days": 1}
    return UcmSimulator(SimulatorConfig(**{**settings, **overrides}))


def outbound_calls(sim: UcmSimulator) -> dict[str, list[dict[str, str]]]:
    """Legs of outbound calls by session, ForkCDR copies left out."""
    calls: dict[str, list[dict[str, str]]] = defaultdict(list)
    for leg in sim.ground_truth():
        if leg["userfield"] == "Outbound" and leg["lastapp"] != "ForkCDR":
            calls[leg["session"]].append(leg)
    return calls


def seconds(text: str) -> float:
    return datetime.strptime(text, LOCAL_FORMAT).timestamp()


def test_parallel_trunk_legs_ring_both_trunks_and_one_answers() -> None:
    sim = simulator(parallel_trunk_share=1.0)
    calls = outbound_calls(sim)
    assert len(calls) > 20
    answered = 0
    for legs in calls.values():
        assert len(legs) == 2
        first, second = legs
        for shared in ("uniqueid", "channel", "start", "lastdata", "src", "dst"):
            assert first[shared] == second[shared], shared
        assert "&" in first["lastdata"]
        assert {first["dst_trunk_name"], second["dst_trunk_name"]} == {"Carrier-A", "Carrier-B"}
        assert first["dstchannel"] != second["dstchannel"]
        winners = [leg for leg in legs if leg["disposition"] == "ANSWERED"]
        assert len(winners) <= 1
        if winners:
            answered += 1
            (loser,) = [leg for leg in legs if leg is not winners[0]]
            assert loser["disposition"] == "NO ANSWER" and loser["recordfiles"] == ""
            assert loser["end"] == winners[0]["answer"]  # it rang until the other trunk answered
    assert answered > 10
    # Deterministic by seed; another seed draws other calls.
    assert simulator(parallel_trunk_share=1.0).ground_truth() == sim.ground_truth()


def test_twin_legs_over_a_local_channel_double_naive_talk() -> None:
    sim = simulator(twin_leg_share=1.0)
    calls = outbound_calls(sim)
    truth = sim.call_truth()
    doubled = 0
    for session, legs in calls.items():
        assert len(legs) == 2
        caller, twin = sorted(legs, key=lambda leg: len(leg["channel"].split(";")))
        assert twin["channel"].endswith(";2") and twin["uniqueid"] != caller["uniqueid"]
        if caller["disposition"] != "FAILED":
            assert caller["dstchannel"] == twin["channel"][:-1] + "1"
        assert twin["dst_trunk_name"] and not caller["dst_trunk_name"]
        assert caller["disposition"] == twin["disposition"]
        if caller["disposition"] == "ANSWERED":
            assert seconds(caller["answer"]) - 1 <= seconds(twin["answer"]) <= seconds(caller["answer"])
            assert caller["end"] == twin["end"]
            call = truth[session]
            assert call.talk_s == int(twin["billsec"])  # the twin's interval holds the caller's
            assert call.naive_talk_s >= 2 * call.talk_s - 1
            doubled += 1
    assert doubled > 10


def test_shapes_mix_by_share_and_leave_other_calls_alone() -> None:
    mixed = outbound_calls(simulator(parallel_trunk_share=0.3, twin_leg_share=0.3))
    kinds = {
        "parallel": sum(any("&" in leg["lastdata"] for leg in legs) for legs in mixed.values()),
        "twin": sum(any(leg["channel"].startswith("Local/") for leg in legs) for legs in mixed.values()),
        "plain": sum(len(legs) == 1 for legs in mixed.values()),
    }
    assert all(count >= 5 for count in kinds.values()), kinds
    assert sum(kinds.values()) == len(mixed)


def test_long_calls_outlast_the_lookback_and_end_on_a_later_day() -> None:
    sim = simulator(long_call_share=0.2, long_call_seconds=3 * 3600, max_call_seconds=4 * 3600)
    legs = sim.ground_truth()
    long_legs = [leg for leg in legs if int(leg["billsec"]) == 3 * 3600]
    assert len(long_legs) > 5
    assert all(int(leg["duration"]) > LOOKBACK_S for leg in long_legs)
    # Evening calls run past midnight: numbered with the day they end on, and still served.
    assert any(int(leg["AcctId"]) // ACCT_BLOCK == 1 for leg in long_legs)
    assert max(int(leg["duration"]) for leg in legs) <= 4 * 3600


def test_long_calls_are_cut_at_the_call_deadline() -> None:
    sim = simulator(long_call_share=1.0, long_call_seconds=3600, max_call_seconds=3600)
    legs = sim.ground_truth()
    assert max(int(leg["duration"]) for leg in legs) <= 3600
    assert any(int(leg["billsec"]) > 3500 for leg in legs)


def test_forkcdr_copies_can_share_the_recording() -> None:
    sim = simulator(fork_share=1.0, fork_recordings=True)
    legs = sim.ground_truth()
    forks = [leg for leg in legs if leg["lastapp"] == "ForkCDR"]
    originals = {
        (leg["uniqueid"], leg["channel"], leg["dstchannel"]): leg for leg in legs if leg["lastapp"] == "Dial"
    }
    assert len(forks) > 50
    for fork in forks:
        original = originals[(fork["uniqueid"], fork["channel"], fork["dstchannel"])]
        assert (fork["end"], fork["recordfiles"]) == (original["end"], original["recordfiles"])
    # The call's files are its real legs' files: a copy adds none.
    files: dict[str, set[str]] = defaultdict(set)
    listed: dict[str, int] = defaultdict(int)
    for leg in legs:
        names = [name for name in leg["recordfiles"].split("@") if name]
        listed[leg["session"]] += len(names)
        if leg["lastapp"] != "ForkCDR":
            files[leg["session"]].update(names)
    truth = sim.call_truth()
    shared = [session for session, call in truth.items() if call.bookkeeping and call.recording_count]
    assert len(shared) > 20
    for session in shared:
        assert truth[session].recording_count == len(files[session]) < listed[session]


def test_call_truth_without_shapes_is_the_sum_of_the_real_legs() -> None:
    sim = simulator()
    by_session: dict[str, list[dict[str, str]]] = defaultdict(list)
    for leg in sim.ground_truth():
        by_session[leg["session"]].append(leg)
    truth = sim.call_truth()
    assert set(truth) == set(by_session)
    for session, legs in by_session.items():
        real = [leg for leg in legs if leg["lastapp"] != "ForkCDR"]
        assert truth[session].talk_s == sum(int(leg["billsec"]) for leg in real)
        assert truth[session].leg_count == len(real)
        assert truth[session].naive_talk_s == sum(int(leg["billsec"]) for leg in legs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"long_call_share": 0.1, "long_call_seconds": 3 * 3600}, "exceeds max_call_seconds"),
        ({"long_call_share": 1.5}, "long_call_share must be within 0..1"),
        ({"long_call_seconds": 0}, "long_call_seconds must be >= 1"),
        ({"parallel_trunk_share": 0.6, "twin_leg_share": 0.6}, "at most 1"),
        ({"twin_leg_share": -0.1}, "twin_leg_share"),
        ({"fork_share": 2.0}, "fork_share"),
        ({"max_call_seconds": MAX_CALL_SECONDS_LIMIT + 1}, "max_call_seconds must be within"),
    ],
)
def test_call_shape_settings_are_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorConfig(**overrides)
