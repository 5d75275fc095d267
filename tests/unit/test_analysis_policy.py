"""Eligibility policy and budget cap of `select_calls`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from audiapro.analysis.models import SkipReason
from audiapro.analysis.policy import Budget, CostEstimate, EligibilityPolicy, select_calls
from audiapro.analysis.pricing import PriceTable, TokenPrice, UnknownModelPriceError

T0 = pd.Timestamp("2026-03-02 09:00", tz="UTC")
# $1 per audio minute and free text make estimated costs exact: cost = talk minutes.
SIMPLE_PRICES = PriceTable(
    audio_per_minute={"stt": 1.0}, text_per_million={"llm": TokenPrice(input=0.0, output=0.0)}
)
SIMPLE_ESTIMATE = CostEstimate(
    transcription_model="stt",
    text_model="llm",
    billed_audio_per_talk_second=1.0,
    prompt_tokens=0,
    transcript_tokens_per_talk_second=0.0,
    output_tokens=0,
)


def call(session: str, minute: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant": "acme",
        "session": session,
        "started_at": T0 + pd.Timedelta(minutes=minute),
        "ended_at": T0 + pd.Timedelta(minutes=minute + 5),
        "direction": "inbound",
        "answered": True,
        "answered_by": "1001",
        "leg_count": 1,
        "talk_s": 120,
        "duration_s": 130,
        "recording_count": 1,
        "src_e164": "+15550000001",
        "src_raw": "5550000001",
        "dst_raw": "1001",
    }
    row.update(overrides)
    return row


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, index=pd.Index([f"row{i}" for i in range(len(rows))]))


def test_each_rule_gives_its_reason_and_rules_apply_in_order() -> None:
    calls = frame(
        [
            call("ok", 0),
            call("unanswered", 1, answered=False, talk_s=0),  # also too short: first rule wins
            call("short", 2, talk_s=19),
            call("norec", 3, recording_count=0),
            call("internal", 4, direction="internal"),
            call("nodir", 5, direction=None),
            call("external", 6, direction="external"),
            call("outbound", 7, direction="OUTBOUND"),
            call("na", 8, answered=None, talk_s=np.nan, recording_count=np.nan),
        ]
    )
    to_analyze, skipped = select_calls(calls, EligibilityPolicy(), Budget(), 0.0, PriceTable())
    assert list(to_analyze["session"]) == ["ok", "external", "outbound"]
    reasons = dict(zip(skipped["session"], skipped["skip_reason"], strict=True))
    assert reasons == {
        "unanswered": SkipReason.not_answered,
        "short": SkipReason.too_short,
        "norec": SkipReason.no_recording,
        "internal": SkipReason.internal_call,
        "nodir": SkipReason.direction_excluded,
        "na": SkipReason.not_answered,
    }
    # Original columns and index labels are kept, and nothing is lost or duplicated.
    assert set(calls.columns) < set(skipped.columns)
    assert sorted([*to_analyze.index, *skipped.index]) == sorted(calls.index)


def test_rules_are_configurable() -> None:
    calls = frame(
        [
            call("unanswered", 0, answered=False, talk_s=0, recording_count=0),
            call("internal", 1, direction="internal"),
            call("outbound", 2, direction="outbound"),
        ]
    )
    policy = EligibilityPolicy(
        answered_only=False,
        min_talk_s=0,
        require_recording=False,
        exclude_internal=False,
        directions=frozenset({"inbound", "internal"}),
    )
    to_analyze, skipped = select_calls(calls, policy, Budget(), 0.0, PriceTable())
    assert list(to_analyze["session"]) == ["unanswered", "internal"]
    assert list(skipped["skip_reason"]) == [SkipReason.direction_excluded]


def test_budget_charges_oldest_first_and_skips_the_rest_once_exceeded() -> None:
    # Costs in minutes of talk = USD: 2, 2, 1, 4, 0.5 (oldest first); the frame is shuffled.
    rows = [
        call("c3", 30, talk_s=60),
        call("c1", 10, talk_s=120),
        call("c5", 50, talk_s=30),
        call("c2", 20, talk_s=120),
        call("c4", 40, talk_s=240),
    ]
    budget = Budget(daily_usd=5.0, estimate=SIMPLE_ESTIMATE)
    to_analyze, skipped = select_calls(frame(rows), EligibilityPolicy(), budget, 0.0, SIMPLE_PRICES)
    # 2 + 2 + 1 = 5 is exactly the cap (allowed); c4 would pass it, and c5 comes after c4.
    assert list(to_analyze["session"]) == ["c1", "c2", "c3"]
    assert list(to_analyze["estimated_cost_usd"]) == [2.0, 2.0, 1.0]
    assert list(skipped["session"]) == ["c4", "c5"]
    assert set(skipped["skip_reason"]) == {SkipReason.budget_exceeded}

    # Money already spent today counts against the cap.
    to_analyze, skipped = select_calls(frame(rows), EligibilityPolicy(), budget, 0.5, SIMPLE_PRICES)
    assert list(to_analyze["session"]) == ["c1", "c2"]
    assert list(skipped["session"]) == ["c3", "c4", "c5"]


def test_ineligible_calls_cost_nothing_and_keep_their_policy_reason() -> None:
    rows = [
        call("big-short", 0, talk_s=10),  # too short: not charged even though it is first
        call("a", 1, talk_s=180),
        call("b", 2, talk_s=180),
        call("c-unanswered", 3, answered=False, talk_s=0),
    ]
    budget = Budget(daily_usd=4.0, estimate=SIMPLE_ESTIMATE)
    to_analyze, skipped = select_calls(frame(rows), EligibilityPolicy(), budget, 0.0, SIMPLE_PRICES)
    assert list(to_analyze["session"]) == ["a"]
    reasons = dict(zip(skipped["session"], skipped["skip_reason"], strict=True))
    assert reasons == {
        "big-short": SkipReason.too_short,
        "b": SkipReason.budget_exceeded,
        "c-unanswered": SkipReason.not_answered,
    }


def test_budgets_are_per_tenant_with_overrides_and_spend_maps() -> None:
    rows = [
        call("a1", 0, tenant="a", talk_s=180),
        call("b1", 1, tenant="b", talk_s=180),
        call("a2", 2, tenant="a", talk_s=180),
        call("b2", 3, tenant="b", talk_s=180),
    ]
    budget = Budget(daily_usd=6.0, tenant_daily_usd={"b": 3.0}, estimate=SIMPLE_ESTIMATE)
    to_analyze, skipped = select_calls(frame(rows), EligibilityPolicy(), budget, {"a": 1.0}, SIMPLE_PRICES)
    # a: 1 spent + 3 + 3 = 7 > 6 → a2 skipped; b: cap 3 → b1 fits exactly, b2 skipped.
    assert list(to_analyze["session"]) == ["a1", "b1"]
    assert list(skipped["session"]) == ["a2", "b2"]


def test_daily_audio_minutes_cap() -> None:
    rows = [call(f"c{i}", i, talk_s=120) for i in range(4)]
    budget = Budget(daily_usd=1000.0, daily_audio_minutes=5.0, estimate=SIMPLE_ESTIMATE)
    to_analyze, skipped = select_calls(
        frame(rows), EligibilityPolicy(), budget, 0.0, SIMPLE_PRICES, spent_today_audio_minutes=1.0
    )
    assert list(to_analyze["session"]) == ["c0", "c1"]
    assert set(skipped["skip_reason"]) == {SkipReason.budget_exceeded}


def test_default_estimate_uses_transcription_and_token_prices() -> None:
    to_analyze, _ = select_calls(
        frame([call("c", 0, talk_s=240)]), EligibilityPolicy(), Budget(), 0.0, PriceTable()
    )
    # 240 s × 2 billed channels at $0.0045/min + (1500 + 240×3.5) input and 500 output tokens on gpt-6-luna.
    expected = 8 * 0.0045 + (1500 + 840) * 0.10 / 1e6 + 500 * 0.50 / 1e6
    assert to_analyze["estimated_cost_usd"].iloc[0] == pytest.approx(expected)


def test_large_frame_is_split_exactly() -> None:
    count = 20_000
    rng = np.random.default_rng(3)
    calls = pd.DataFrame(
        {
            "tenant": rng.choice(["a", "b"], count),
            "session": [f"s{i:05d}" for i in range(count)],
            "started_at": T0 + pd.to_timedelta(rng.permutation(count), unit="s"),
            "direction": rng.choice(["inbound", "outbound", "internal"], count),
            "answered": rng.random(count) < 0.8,
            "talk_s": rng.integers(0, 600, count),
            "recording_count": rng.integers(0, 2, count),
        }
    )
    budget = Budget(daily_usd=50.0, estimate=SIMPLE_ESTIMATE)
    to_analyze, skipped = select_calls(calls, EligibilityPolicy(), budget, 0.0, SIMPLE_PRICES)
    assert len(to_analyze) + len(skipped) == count
    for _tenant, group in to_analyze.groupby("tenant"):
        assert group["estimated_cost_usd"].sum() <= 50.0
        assert group["started_at"].is_monotonic_increasing
    exceeded = skipped[skipped["skip_reason"] == SkipReason.budget_exceeded]
    # Every budget skip is later than every analysed call of its tenant.
    for tenant, group in exceeded.groupby("tenant"):
        assert group["started_at"].min() > to_analyze.loc[to_analyze["tenant"] == tenant, "started_at"].max()


def test_missing_columns_and_unpriced_models_are_errors() -> None:
    with pytest.raises(ValueError, match="talk_s"):
        select_calls(
            frame([call("c", 0)]).drop(columns="talk_s"), EligibilityPolicy(), Budget(), 0.0, PriceTable()
        )
    budget = Budget(estimate=CostEstimate(text_model="no-such-model"))
    with pytest.raises(UnknownModelPriceError):
        select_calls(frame([call("c", 0)]), EligibilityPolicy(), budget, 0.0, PriceTable())


def test_empty_frame() -> None:
    empty = frame([call("c", 0)]).iloc[0:0]
    to_analyze, skipped = select_calls(empty, EligibilityPolicy(), Budget(), 0.0, PriceTable())
    assert to_analyze.empty and skipped.empty
    assert "skip_reason" in skipped.columns
