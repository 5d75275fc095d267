"""Configuration of the OpenAI analyzer: models, prompt version, keywords, retries, limits and prices.

Model names are configuration (several current models shut down in 2026-2027); the defaults live in
`pricing.py` next to their prices, and a model without a price is refused when settings are built.
"""

from __future__ import annotations

from typing import Final

from openai.types.shared.reasoning_effort import ReasoningEffort
from pydantic import BaseModel, ConfigDict, Field, model_validator

from audiapro.analysis.audio import AudioLimits
from audiapro.analysis.keywords import clean_keywords
from audiapro.analysis.models import PROMPT_VERSION, SpeakerRole
from audiapro.analysis.pricing import DEFAULT_TEXT_MODEL, DEFAULT_TRANSCRIPTION_MODEL, PriceTable

#: Models that accept `keywords[]` transcription hints.
DEFAULT_KEYWORD_HINT_MODELS: Final = frozenset({"gpt-transcribe"})


class AnalyzerSettings(BaseModel):
    """Configuration of `OpenAIAnalyzer`.

    Attributes:
        transcription_model: Transcription model.
        text_model: Text model for structured insights.
        prompt_version: Stored with every record and part of every analysis key.
        keywords_by_tenant: Keywords to spot, by tenant.
        default_keywords: Keywords for tenants without their own list.
        max_parse_retries: Extra attempts after a malformed answer.
        max_api_retries: SDK retries for connection errors, 408/409/429/5xx.
        request_timeout_s: Per-request timeout.
        max_output_tokens: Output budget of the analysis request.
        reasoning_effort: Reasoning effort for reasoning models; None leaves it out (other models).
        store: Let OpenAI store responses (off: transcripts are personal data).
        language: ISO 639-1 hint for transcription, or None to auto-detect.
        transcription_prompt: Optional context prompt for transcription.
        keyword_hint_models: Transcription models that get the tenant keywords as hints.
        max_transcript_chars: Transcripts are cut here before analysis.
        prices: Price table (must price both models).
        audio_limits: Recording preparation limits.
        outbound_stereo_roles: Channel roles for outbound calls, if they differ from
            `audio_limits.stereo_roles` (unverified whether the PBX puts the calling extension left).
    """

    model_config = ConfigDict(frozen=True)

    transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL
    text_model: str = DEFAULT_TEXT_MODEL
    prompt_version: str = PROMPT_VERSION
    keywords_by_tenant: dict[str, list[str]] = Field(default_factory=dict)
    default_keywords: list[str] = Field(default_factory=list)
    max_parse_retries: int = Field(default=2, ge=0)
    max_api_retries: int = Field(default=3, ge=0)
    request_timeout_s: float = Field(default=120.0, gt=0)
    max_output_tokens: int = Field(default=2000, ge=16)
    reasoning_effort: ReasoningEffort = "none"
    store: bool = False
    language: str | None = None
    transcription_prompt: str | None = None
    keyword_hint_models: frozenset[str] = DEFAULT_KEYWORD_HINT_MODELS
    max_transcript_chars: int = Field(default=60_000, gt=0)
    prices: PriceTable = Field(default_factory=PriceTable)
    audio_limits: AudioLimits = Field(default_factory=AudioLimits)
    outbound_stereo_roles: tuple[SpeakerRole, SpeakerRole] | None = None

    @model_validator(mode="after")
    def _models_are_priced(self) -> AnalyzerSettings:
        # Fail at configuration time, not with a cost of 0 in every record.
        self.prices.audio_price(self.transcription_model)
        self.prices.text_price(self.text_model)
        return self

    def limits_for(self, direction: str | None) -> AudioLimits:
        """Audio limits for a call of `direction` (outbound calls may swap the channel roles)."""
        if self.outbound_stereo_roles and (direction or "").lower() == "outbound":
            return self.audio_limits.model_copy(update={"stereo_roles": self.outbound_stereo_roles})
        return self.audio_limits

    def keywords_for(self, tenant: str) -> list[str]:
        """Cleaned keywords of `tenant`."""
        return clean_keywords(self.keywords_by_tenant.get(tenant, self.default_keywords))
