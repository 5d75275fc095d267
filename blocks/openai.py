"""AI-analysis blocks: OpenAI credentials (one per account) and analysis settings (one per tenant).

Design:
    * `OpenAICredentials` (slug `audiapro-openai`, document `default`): API key as `SecretStr`, an
      optional base URL for OpenAI-compatible servers, organization/project, models, timeouts,
      retries and price overrides. No document, or an empty key, means the offline analyzer: no
      OpenAI client is built at all, so nothing touches the network.
    * `AnalysisSettings` (slug `audiapro-analysis-settings`): typed fields for the eligibility
      policy, the daily budget, keywords and business hours, so the UI shows a form. Looked up by
      tenant name, then the document `default`, then built-in defaults; `credentials_block` names
      the OpenAI document a tenant uses. Its privacy fields choose what happens to transcripts
      (`off` / `redact` / `redact_keep_encrypted`) and hold the Fernet key of the encrypted
      originals as a `SecretStr`.
"""

from __future__ import annotations

from datetime import date, time
from typing import ClassVar, Final, cast

import openai
from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from audiapro.analysis.audio import AudioLimits
from audiapro.analysis.config import AnalyzerSettings
from audiapro.analysis.offline import BusinessHours, OfflineSettings
from audiapro.analysis.policy import Budget, EligibilityPolicy
from audiapro.analysis.pricing import (
    DEFAULT_AUDIO_PRICE_PER_MINUTE,
    DEFAULT_TEXT_MODEL,
    DEFAULT_TEXT_PRICE_PER_MILLION,
    DEFAULT_TRANSCRIPTION_MODEL,
    PriceTable,
    TokenPrice,
)
from audiapro.analysis.redact import PrivacyPolicy, TranscriptPrivacy
from audiapro.analysis.tenant import DEFAULT_MAX_WORKERS, MAX_WORKERS_LIMIT, TenantAnalysisConfig
from audiapro.prefect_names import ANALYSIS_SETTINGS_BLOCK_TYPE, DEFAULT_BLOCK, OPENAI_BLOCK_TYPE
from audiapro.settings import DEFAULT_PHONE_REGION

_DEFAULT_POLICY: Final = EligibilityPolicy()
_DEFAULT_BUDGET: Final = Budget()
_DEFAULT_OFFLINE: Final = OfflineSettings()
_DEFAULT_HOURS: Final = BusinessHours()


class OpenAICredentials(Block):
    """Access to the OpenAI API (or an OpenAI-compatible server) for call analysis.

    The key is a `SecretStr`: Prefect stores it encrypted and the UI shows it obfuscated; it is
    passed to the client only and never logged or stored with results.
    """

    _block_type_name: ClassVar[str] = "AudiaPro OpenAI"
    _block_type_slug: ClassVar[str] = OPENAI_BLOCK_TYPE
    _description: ClassVar[str] = (
        "OpenAI API key and models for AudiaPro call analysis (empty key: offline analyzer)."
    )

    api_key: SecretStr = Field(default=SecretStr(""), description="API key; empty means offline analysis")
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible server, e.g. http://host:8000/v1"
    )
    organization: str | None = Field(default=None, description="OpenAI organization id (optional)")
    project: str | None = Field(default=None, description="OpenAI project id (optional)")
    transcription_model: str = Field(default=DEFAULT_TRANSCRIPTION_MODEL, description="Transcription model")
    text_model: str = Field(default=DEFAULT_TEXT_MODEL, description="Model for structured insights")
    request_timeout_s: float = Field(default=120.0, gt=0, description="Per-request timeout (seconds)")
    max_api_retries: int = Field(default=3, ge=0, description="Retries of 429/5xx (honouring Retry-After)")
    max_parse_retries: int = Field(default=2, ge=0, description="Retries of a malformed model answer")
    audio_price_per_minute: dict[str, float] = Field(
        default_factory=dict, description="USD per audio minute by model (overrides the built-in table)"
    )
    text_price_per_million: dict[str, TokenPrice] = Field(
        default_factory=dict, description="USD per 1M tokens by model (overrides the built-in table)"
    )
    trim_silence: bool = Field(
        default=True,
        description="Send only each channel's speech for transcription (about half the audio bill)",
    )

    @property
    def configured(self) -> bool:
        """True when a key is set (otherwise the offline analyzer runs)."""
        return bool(self.api_key.get_secret_value().strip())

    def prices(self) -> PriceTable:
        """The built-in price table with this block's overrides."""
        return PriceTable(
            audio_per_minute={**DEFAULT_AUDIO_PRICE_PER_MINUTE, **self.audio_price_per_minute},
            text_per_million={**DEFAULT_TEXT_PRICE_PER_MILLION, **self.text_price_per_million},
        )

    def analyzer_settings(self, keywords_by_tenant: dict[str, list[str]] | None = None) -> AnalyzerSettings:
        """Analyzer settings from this block (models, retries, timeout, prices)."""
        return AnalyzerSettings(
            transcription_model=self.transcription_model,
            text_model=self.text_model,
            max_api_retries=self.max_api_retries,
            max_parse_retries=self.max_parse_retries,
            request_timeout_s=self.request_timeout_s,
            prices=self.prices(),
            keywords_by_tenant=keywords_by_tenant or {},
            audio_limits=AudioLimits(vad=AudioLimits().vad.model_copy(update={"enabled": self.trim_silence})),
        )

    def client(self) -> openai.OpenAI:
        """A ready OpenAI client (use it as a context manager).

        The key and base URL are always passed explicitly, so `OPENAI_API_KEY` in the environment is
        never picked up behind the block's back.

        Raises:
            ValueError: No key is configured.
        """
        if not self.configured:
            raise ValueError("no OpenAI API key configured (the offline analyzer needs no client)")
        return openai.OpenAI(
            api_key=self.api_key.get_secret_value(),
            base_url=self.base_url or None,
            organization=self.organization or None,
            project=self.project or None,
            max_retries=self.max_api_retries,
            timeout=self.request_timeout_s,
        )


class AnalysisSettings(Block):
    """Per-tenant analysis settings; the document name is the tenant name (or `default`)."""

    _block_type_name: ClassVar[str] = "AudiaPro Analysis Settings"
    _block_type_slug: ClassVar[str] = ANALYSIS_SETTINGS_BLOCK_TYPE
    _description: ClassVar[str] = (
        "Which calls of a tenant get AI analysis, the daily budget, keywords and business hours."
    )

    enabled: bool = Field(default=True, description="Analyse this tenant's calls")
    credentials_block: str = Field(default=DEFAULT_BLOCK, description="AudiaPro OpenAI block to use")
    answered_only: bool = Field(default=_DEFAULT_POLICY.answered_only, description="Skip unanswered calls")
    min_talk_s: int = Field(default=_DEFAULT_POLICY.min_talk_s, ge=0, description="Minimum talk time (s)")
    require_recording: bool = Field(default=_DEFAULT_POLICY.require_recording, description="Need a recording")
    exclude_internal: bool = Field(
        default=_DEFAULT_POLICY.exclude_internal, description="Skip internal calls"
    )
    directions: list[str] = Field(
        default_factory=lambda: sorted(_DEFAULT_POLICY.directions), description="Directions analysed"
    )
    daily_budget_usd: float = Field(default=_DEFAULT_BUDGET.daily_usd, ge=0, description="USD per local day")
    daily_audio_minutes: float | None = Field(default=None, ge=0, description="Audio minutes per day cap")
    keywords: list[str] = Field(default_factory=list, description="Words and phrases to spot")
    opens: time = Field(default=_DEFAULT_HOURS.opens, description="Business hours open (local)")
    closes: time = Field(default=_DEFAULT_HOURS.closes, description="Business hours close (local)")
    weekdays: list[int] = Field(
        default_factory=lambda: sorted(_DEFAULT_HOURS.weekdays), description="Open days, Monday = 0"
    )
    holidays: list[date] = Field(default_factory=list, description="Closed dates")
    timezone: str | None = Field(default=None, description="IANA zone (default: the tenant's PBX zone)")
    repeat_window_days: float = Field(default=_DEFAULT_OFFLINE.repeat_window_days, gt=0)
    callback_window_hours: float | None = Field(default=_DEFAULT_OFFLINE.callback_window_hours, gt=0)
    max_workers: int = Field(default=DEFAULT_MAX_WORKERS, ge=1, le=MAX_WORKERS_LIMIT)
    max_calls_per_run: int | None = Field(default=None, ge=1, description="Calls sent to the model per run")
    privacy_policy: PrivacyPolicy = Field(
        default=PrivacyPolicy.redact,
        description="Transcripts: off, redact (default), or redact_keep_encrypted (encrypted original kept)",
    )
    phone_region: str | None = Field(
        default=None, description="Region of phone numbers and national ids (default: the PBX's region)"
    )
    transcript_key: SecretStr = Field(
        default=SecretStr(""), description="Fernet key of encrypted original transcripts (keep_encrypted)"
    )

    @field_validator("directions")
    @classmethod
    def _lower_directions(cls, value: list[str]) -> list[str]:
        return [d.strip().lower() for d in value if d.strip()]

    def tenant_config(
        self, tenant: str, pbx_timezone: str, pbx_region: str = DEFAULT_PHONE_REGION
    ) -> TenantAnalysisConfig:
        """Plain settings for `audiapro.analysis.run`.

        Args:
            tenant: Tenant name.
            pbx_timezone: The tenant's PBX zone (used unless `timezone` is set).
            pbx_region: The tenant's PBX phone region (used unless `phone_region` is set).

        Raises:
            ValueError: `redact_keep_encrypted` without a valid key.
        """
        zone = self.timezone or pbx_timezone
        hours = BusinessHours(
            timezone=zone,
            opens=self.opens,
            closes=self.closes,
            weekdays=frozenset(self.weekdays),
            holidays=frozenset(self.holidays),
        )
        return TenantAnalysisConfig(
            tenant=tenant,
            timezone=zone,
            enabled=self.enabled,
            policy=EligibilityPolicy(
                answered_only=self.answered_only,
                min_talk_s=self.min_talk_s,
                require_recording=self.require_recording,
                exclude_internal=self.exclude_internal,
                directions=frozenset(self.directions),
            ),
            budget=Budget(daily_usd=self.daily_budget_usd, daily_audio_minutes=self.daily_audio_minutes),
            keywords=list(self.keywords),
            offline=OfflineSettings(
                default_hours=hours,
                repeat_window_days=self.repeat_window_days,
                callback_window_hours=self.callback_window_hours,
            ),
            max_workers=self.max_workers,
            max_calls=self.max_calls_per_run,
            privacy=TranscriptPrivacy(
                policy=self.privacy_policy,
                region=self.phone_region or pbx_region,
                key=self.transcript_key if self.transcript_key.get_secret_value() else None,
            ),
        )


def load_analysis_settings(tenant: str) -> AnalysisSettings:
    """The tenant's settings document, else `default`, else built-in defaults."""
    for name in (tenant, DEFAULT_BLOCK):
        try:
            return cast(AnalysisSettings, AnalysisSettings.load(name))
        except ValueError:  # no such document (or the block type is not registered yet)
            continue
    return AnalysisSettings()


def load_openai_credentials(name: str = DEFAULT_BLOCK) -> OpenAICredentials | None:
    """The named OpenAI block when it holds a key, else None (offline analysis)."""
    try:
        block = cast(OpenAICredentials, OpenAICredentials.load(name))
    except ValueError:
        return None
    return block if block.configured else None
