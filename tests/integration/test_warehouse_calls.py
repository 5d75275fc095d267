"""Call aggregates on both back ends: bookkeeping rows left out, overlapping talk counted once."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from audiapro.cdr.normalize import NormalizeContext, normalize_legs
from audiapro.warehouse import RunInfo, calls, cdr_legs, load_batch
from tests.integration.pipeline_support import simulator, table_count
from tests.integration.warehouse_support import T0, TENANT, leg, load, stored_calls, union_seconds

FILE = '["2026-03/auto-1772460000-1001-5550123.wav"]'


def at(seconds: int) -> Any:
    return T0 + timedelta(seconds=seconds)


def fork_of(original: dict[str, Any], key: str, **overrides: Any) -> dict[str, Any]:
    """A ForkCDR bookkeeping copy of ``original`` (same uniqueid, channels, answer and end)."""
    return {**original, "leg_key": key, "lastapp": "ForkCDR", **overrides}


def test_forkcdr_copies_change_nothing_in_the_call(engine: sa.Engine) -> None:
    answered = leg("a", ring_s=6, billsec=120, answered_by="1001", recording_files=FILE, recording_count=1)
    missed = leg("b", start=at(-10), ring_s=0, answered=False, answered_by=None, direction="inbound")
    load(engine, [answered, missed])
    before = stored_calls(engine)["s1"]
    assert (before["leg_count"], before["talk_s"], before["recording_count"]) == (2, 120, 1)

    # Copies of the answered leg: one from its start, one from its answer (and claiming a longer
    # talk and another answerer); both list the same recording file.
    same_start = fork_of(answered, "a-fork-1")
    from_answer = fork_of(
        answered, "a-fork-2", start_at=answered["answer_at"], billsec_s=500, answered_by="1999"
    )
    result = load(engine, [answered, missed, same_start, from_answer])
    assert (result.inserted, result.sessions_touched) == (2, 1)
    after = stored_calls(engine)["s1"]
    assert after == before  # not one column changed, not even last_ingest_run_id
    assert table_count(engine, cdr_legs) == 4  # every leg is kept


def test_a_session_of_bookkeeping_rows_only_is_described_by_them(engine: sa.Engine) -> None:
    original = leg("a", ring_s=5, billsec=40, recording_files=FILE, recording_count=1)
    load(engine, [fork_of(original, "fork-1"), fork_of(original, "fork-2")])
    call = stored_calls(engine)["s1"]
    assert (call["answered"], call["leg_count"], call["talk_s"], call["recording_count"]) == (True, 2, 40, 1)
    assert call["started_at"] == T0 and call["duration_s"] == 45

    load(engine, [original])  # the real leg arrives: the copies stop counting
    call = stored_calls(engine)["s1"]
    assert (call["leg_count"], call["talk_s"], call["recording_count"]) == (1, 40, 1)


def test_parallel_trunk_legs_count_their_overlapping_talk_once(engine: sa.Engine) -> None:
    # An outbound call over a Local channel: the caller's leg and its twin on the trunk both answered
    # for the same conversation (the twin a second later). Summing billsec would double the talk.
    caller = leg("a", ring_s=8, billsec=300, direction="outbound", dstchannel="Local/5550123@out-1;1")
    twin = leg("b", ring_s=9, billsec=299, direction="outbound", channel="Local/5550123@out-1;2")
    # Two trunks dialled at once: the loser rang until the winner answered.
    winner = leg("c", session="s2", ring_s=12, billsec=60, dstchannel="PJSIP/trunk_1-01")
    loser = leg("d", session="s2", ring_s=12, answered=False, dstchannel="PJSIP/trunk_2-02")
    load(engine, [caller, twin, winner, loser])
    stored = stored_calls(engine)
    assert (stored["s1"]["talk_s"], stored["s1"]["leg_count"]) == (300, 2)
    assert (stored["s2"]["talk_s"], stored["s2"]["leg_count"], stored["s2"]["answered"]) == (60, 2, True)


def test_disjoint_talk_adds_up_and_gaps_do_not_count(engine: sa.Engine) -> None:
    first = leg("a", ring_s=5, billsec=100)  # talks 5..105
    inside = leg("b", start=at(20), ring_s=10, billsec=30)  # 30..60: inside the first
    later = leg("c", start=at(200), ring_s=0, billsec=50)  # 200..250, after a gap
    bridging = leg("d", start=at(90), ring_s=10, billsec=130)  # 100..230: joins the two
    load(engine, [first, inside, later])
    assert stored_calls(engine)["s1"]["talk_s"] == 100 + 50
    load(engine, [bridging])
    assert stored_calls(engine)["s1"]["talk_s"] == 250 - 5


def test_one_answered_leg_keeps_the_pbx_billsec(engine: sa.Engine) -> None:
    # The PBX cuts answer and end to the second but computes billsec from exact times: 30.6 s of
    # talk may read answer 14:00:05, end 14:00:36, billsec 30. The call keeps the PBX's 30.
    one = leg("a", ring_s=5, billsec=30, end_at=at(36), duration_s=36)
    load(engine, [one])
    assert stored_calls(engine)["s1"]["talk_s"] == 30


def test_a_recording_file_listed_by_two_legs_counts_once(engine: sa.Engine) -> None:
    other = '["2026-03/auto-1772460100-1002-5550123.wav"]'
    both = FILE[:-1] + "," + other[1:]
    load(
        engine,
        [
            leg("a", recording_files=FILE, recording_count=1),
            leg("b", recording_files=both, recording_count=2),
            leg("c", recording_files="[]", recording_count=0),
            leg("d", session="s2", recording_files=both, recording_count=2),  # split by a pause
            leg("e", session="s3", recording_files=FILE[:-1] + "," + FILE[1:], recording_count=2),
            leg("f", session="s4", recording_files=FILE, recording_count=1, lastapp=None),
        ],
    )
    stored = stored_calls(engine)
    assert {session: call["recording_count"] for session, call in stored.items()} == {
        "s1": 2,
        "s2": 2,
        "s3": 1,
        "s4": 1,
    }
    assert stored["s4"]["leg_count"] == 1  # a leg without lastapp is a call leg


def test_talk_matches_a_reference_union_on_random_calls(engine: sa.Engine) -> None:
    rng = random.Random(5)
    rows, expected = [], {}
    for call in range(60):
        session = f"s{call}"
        talk_of: dict[bool, list[tuple[int, int]]] = {True: [], False: []}  # by "is bookkeeping"
        for n in range(rng.randint(1, 6)):
            start, ring, talk = rng.randint(0, 600), rng.randint(0, 30), rng.randint(0, 400)
            answered = rng.random() < 0.7
            bookkeeping = answered and rng.random() < 0.2
            rows.append(
                leg(
                    f"{session}-{n}",
                    session=session,
                    start=at(start),
                    ring_s=ring,
                    billsec=talk,
                    answered=answered,
                    lastapp="ForkCDR" if bookkeeping else "Dial",
                )
            )
            if answered:
                talk_of[bookkeeping].append((start + ring, start + ring + talk))
        only_copies = all(row["lastapp"] == "ForkCDR" for row in rows if row["session"] == session)
        expected[session] = union_seconds(talk_of[only_copies])
    load(engine, rows)
    assert {session: call["talk_s"] for session, call in stored_calls(engine).items()} == expected
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(calls)) == len(expected)


def test_calls_match_the_simulators_truth_over_a_day_with_copies_and_parallel_legs(
    engine: sa.Engine,
) -> None:
    sim = simulator(
        seed=31,
        calls_per_day=250,
        start=date(2026, 3, 2),
        days=1,
        fork_share=0.3,
        fork_recordings=True,
        parallel_trunk_share=0.3,
        twin_leg_share=0.3,
        long_call_share=0.02,
        max_call_seconds=4 * 3600,
    )
    legs = sim.ground_truth()
    truth = sim.call_truth()
    # The day holds every shape this is about: copies, doubled talk, parallel trunks, long calls.
    assert sum(call.bookkeeping > 0 for call in truth.values()) > 20
    assert sum(call.naive_talk_s > call.talk_s > 0 for call in truth.values()) > 30
    assert sum("&" in raw["lastdata"] for raw in legs) > 10
    assert any(int(raw["billsec"]) == 3 * 3600 for raw in legs)

    # Loaded in three pieces in AcctId (= end) order, as polls would: calls span batches.
    batch = normalize_legs(legs, NormalizeContext(tenant=TENANT, timezone=sim.config.tz))
    assert len(batch.rejects) == 0
    frame = batch.legs.sort_values("acct_id", key=lambda ids: ids.astype(int)).reset_index(drop=True)
    for piece in (frame.iloc[:300], frame.iloc[300:600], frame.iloc[600:]):
        load_batch(engine, tenant=TENANT, legs=piece, rejects=batch.rejects, run=RunInfo(kind="poll"))

    stored = stored_calls(engine)
    assert set(stored) == set(truth)
    columns = ("leg_count", "talk_s", "answered", "recording_count", "started_at", "ended_at")
    mismatched = {
        session: [(name, stored[session][name], getattr(call, name)) for name in columns]
        for session, call in truth.items()
        if any(stored[session][name] != getattr(call, name) for name in columns)
    }
    assert mismatched == {}
