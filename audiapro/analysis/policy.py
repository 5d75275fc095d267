"""Which calls get AI analysis: eligibility rules and a per-tenant daily budget, applied to a frame.

Transcription is ~97% of the AI spend, so the main cost control is deciding which recordings are
transcribed at all. `select_calls` is pure and vectorized: it takes rows of the `calls` table and
returns the calls to analyse plus the skipped ones with a reason from a fixed set (as Contact Lens
records `QUOTA_EXCEEDED`), so skips stay visible instead of silently disappearing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from audiapro.analysis.models import SkipReason
from audiapro.analysis.pricing import (
    DEFAULT_TEXT_MODEL,
    DEFAULT_TRANSCRIPTION_MODEL,
    SECONDS_PER_MINUTE,
    TOKENS_PER_PRICE_UNIT,
    PriceTable,
)

#: Columns of the `calls` frame that `select_calls` reads.
REQUIRED_COLUMNS: Final = (
    "tenant",
    "session",
    "started_at",
    "direction",
    "answered",
    "talk_s",
    "recording_count",
)
#: Added to both result frames: the estimated cost of analysing the call.
ESTIMATE_COLUMN: Final = "estimated_cost_usd"
#: Added to the skipped frame.
REASON_COLUMN: Final = "skip_reason"
#: Slack for float comparisons of summed costs, far below a cent.
_COST_EPSILON: Final = 1e-12


class EligibilityPolicy(BaseModel):
    """Rules a call must pass to be analysed. Reasons are checked in the order of the fields below.

    Attributes:
        answered_only: Skip unanswered calls (`not_answered`).
        min_talk_s: Skip calls with less talk time (`too_short`); short calls are too short to classify.
        require_recording: Skip calls without a recording (`no_recording`).
        exclude_internal: Skip extension-to-extension calls (`internal_call`).
        directions: Directions analysed; others are `direction_excluded` (so is a missing direction).
    """

    model_config = ConfigDict(frozen=True)

    answered_only: bool = True
    min_talk_s: int = Field(default=20, ge=0)
    require_recording: bool = True
    exclude_internal: bool = True
    directions: frozenset[str] = frozenset({"inbound", "outbound", "external"})


class CostEstimate(BaseModel):
    """How the cost of analysing a call is estimated before any request is made.

    Attributes:
        transcription_model: Model whose per-minute price applies.
        text_model: Model whose token prices apply.
        billed_audio_per_talk_second: Audio seconds billed per talk second. Stereo recordings are
            transcribed per channel, so a talk second can be billed twice; 2 errs on the safe side.
        prompt_tokens: Input tokens besides the transcript (instructions, schema, call metadata).
        transcript_tokens_per_talk_second: ~150 words per minute ≈ 3.3 tokens per second of talk.
        output_tokens: Tokens of the structured answer.
        batch: Price the text step at the Batch API discount.
    """

    model_config = ConfigDict(frozen=True)

    transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL
    text_model: str = DEFAULT_TEXT_MODEL
    billed_audio_per_talk_second: float = Field(default=2.0, ge=0)
    prompt_tokens: int = Field(default=1500, ge=0)
    transcript_tokens_per_talk_second: float = Field(default=3.5, ge=0)
    output_tokens: int = Field(default=500, ge=0)
    batch: bool = False

    def audio_minutes(self, talk_s: pd.Series) -> pd.Series:
        """Estimated billed audio minutes per call."""
        return talk_s * self.billed_audio_per_talk_second / SECONDS_PER_MINUTE

    def cost_usd(self, talk_s: pd.Series, prices: PriceTable) -> pd.Series:
        """Estimated USD per call (vectorized over talk seconds).

        Raises:
            UnknownModelPriceError: A model is missing from `prices`.
        """
        audio = self.audio_minutes(talk_s) * prices.audio_price(self.transcription_model)
        token_price = prices.text_price(self.text_model)
        input_tokens = self.prompt_tokens + talk_s * self.transcript_tokens_per_talk_second
        text = (input_tokens * token_price.input + self.output_tokens * token_price.output) / (
            TOKENS_PER_PRICE_UNIT
        )
        if self.batch:
            text = text * prices.batch_price_factor
        return audio + text


class Budget(BaseModel):
    """Per-tenant daily spending caps.

    Attributes:
        daily_usd: USD per tenant per day.
        daily_audio_minutes: Estimated billed audio minutes per tenant per day (None = no cap).
        tenant_daily_usd: Overrides of `daily_usd` by tenant.
        estimate: How a call's cost is estimated.
    """

    model_config = ConfigDict(frozen=True)

    daily_usd: float = Field(default=5.0, ge=0)
    daily_audio_minutes: float | None = Field(default=None, ge=0)
    tenant_daily_usd: dict[str, float] = Field(default_factory=dict)
    estimate: CostEstimate = Field(default_factory=CostEstimate)

    def cap_usd(self, tenant: str) -> float:
        """The USD cap of `tenant`."""
        return self.tenant_daily_usd.get(tenant, self.daily_usd)


def _per_tenant(tenants: pd.Series, value: float | Mapping[str, float]) -> pd.Series:
    """A per-row number from a scalar or a per-tenant mapping (missing tenants get 0)."""
    if isinstance(value, Mapping):
        return tenants.map(lambda t: float(value.get(t, 0.0))).astype(float)
    return pd.Series(float(value), index=tenants.index)


def _policy_reasons(calls: pd.DataFrame, policy: EligibilityPolicy) -> np.ndarray:
    """The first failing rule per row ("" when the call is eligible)."""
    talk = pd.to_numeric(calls["talk_s"], errors="coerce").fillna(0)
    answered = calls["answered"].astype("boolean").fillna(False).astype(bool)
    recordings = pd.to_numeric(calls["recording_count"], errors="coerce").fillna(0)
    direction = calls["direction"].astype("string").str.lower()
    allowed = direction.isin(policy.directions).fillna(False).astype(bool)
    internal = direction.eq("internal").fillna(False).astype(bool)
    rules = [
        (policy.answered_only & ~answered, SkipReason.not_answered),
        (talk < policy.min_talk_s, SkipReason.too_short),
        (policy.require_recording & (recordings <= 0), SkipReason.no_recording),
        (policy.exclude_internal & internal, SkipReason.internal_call),
        (~allowed, SkipReason.direction_excluded),
    ]
    return np.select(
        [mask.to_numpy(dtype=bool) for mask, _ in rules], [reason.value for _, reason in rules], default=""
    )


def select_calls(
    calls: pd.DataFrame,
    policy: EligibilityPolicy,
    budget: Budget,
    spent_today_usd: float | Mapping[str, float],
    price_table: PriceTable,
    *,
    spent_today_audio_minutes: float | Mapping[str, float] = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split calls into those to analyse and those skipped, with a reason.

    Policy rules are checked first (in `EligibilityPolicy` field order; the first failing rule is
    the reason). Eligible calls are then charged against their tenant's budget oldest first (ties by
    session): each gets an estimated cost, running totals are kept per tenant, and from the first
    call that would take the day's spend past the cap, that call and every later one of the tenant
    are `budget_exceeded`. The order is deterministic, so re-running a selection gives the same split.

    Args:
        calls: Rows of the `calls` table (at least `REQUIRED_COLUMNS`); other columns are kept.
        policy: Eligibility rules.
        budget: Daily caps and the cost estimate.
        spent_today_usd: USD already spent today, for all tenants or by tenant.
        price_table: Prices for the estimate.
        spent_today_audio_minutes: Billed audio minutes already used today (for the minutes cap).

    Returns:
        `(to_analyze, skipped)`, both ordered oldest first with the original index and an
        `estimated_cost_usd` column; `skipped` also has `skip_reason` (a `SkipReason` value).

    Raises:
        ValueError: Required columns are missing.
        UnknownModelPriceError: A model of the estimate has no price.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in calls.columns]
    if missing:
        raise ValueError(f"calls frame lacks columns: {missing}")
    # Deterministic order: tenant, then oldest first, ties by session; stable for equal keys.
    ordered = calls.sort_values(
        ["tenant", "started_at", "session"], kind="mergesort", na_position="last"
    ).copy()
    talk = pd.to_numeric(ordered["talk_s"], errors="coerce").fillna(0).clip(lower=0).astype(float)
    ordered[ESTIMATE_COLUMN] = budget.estimate.cost_usd(talk, price_table)
    reasons = pd.Series(_policy_reasons(ordered, policy), index=ordered.index, dtype=object)

    eligible = reasons.eq("")
    tenants = ordered["tenant"]
    running_usd = ordered[ESTIMATE_COLUMN].where(eligible, 0.0).groupby(tenants, sort=False).cumsum()
    caps = tenants.map(budget.cap_usd).astype(float)
    over = _per_tenant(tenants, spent_today_usd) + running_usd > caps + _COST_EPSILON
    if budget.daily_audio_minutes is not None:
        minutes = budget.estimate.audio_minutes(talk).where(eligible, 0.0)
        running_minutes = minutes.groupby(tenants, sort=False).cumsum()
        used = _per_tenant(tenants, spent_today_audio_minutes)
        over |= used + running_minutes > budget.daily_audio_minutes + _COST_EPSILON
    # Running totals never decrease, so once a call is over the cap every later one is too.
    reasons = reasons.mask(eligible & over, SkipReason.budget_exceeded.value)

    selected = reasons.eq("")
    to_analyze = ordered[selected]
    skipped = ordered[~selected].copy()
    skipped[REASON_COLUMN] = reasons[~selected]
    return to_analyze, skipped
