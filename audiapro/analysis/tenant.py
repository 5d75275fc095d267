"""Per-tenant analysis settings as plain values (the `AnalysisSettings` Prefect block builds them).

Kept apart from `AnalyzerSettings` (models, prompt, retries, prices: one per OpenAI account) because
these differ by customer: which calls are worth paying for, how much a day, which words to spot and
when the business is open.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audiapro.analysis.offline import OfflineSettings
from audiapro.analysis.policy import Budget, CostEstimate, EligibilityPolicy
from audiapro.analysis.redact import TranscriptPrivacy

#: Calls analysed at once per tenant (each worker holds one PBX session for recording downloads).
DEFAULT_MAX_WORKERS: Final = 4
MAX_WORKERS_LIMIT: Final = 16


class TenantAnalysisConfig(BaseModel):
    """How one tenant's calls are analysed.

    Attributes:
        tenant: Tenant name.
        timezone: The tenant's IANA zone: its budget day starts at local midnight.
        enabled: Analyse this tenant's calls at all.
        policy: Which calls are worth analysing.
        budget: Daily caps (the estimate's models are set from the analyzer at run time).
        keywords: Words and phrases to spot in transcripts.
        offline: Business hours, repeat and callback windows of the offline rules.
        max_workers: Calls analysed at once.
        max_calls: At most this many calls sent to the model per run (None: no limit).
        privacy: What is redacted from transcripts before storage and the text model (default:
            redact, US region), and whether an encrypted original is kept.
    """

    model_config = ConfigDict(frozen=True)

    tenant: str
    timezone: str = "UTC"
    enabled: bool = True
    policy: EligibilityPolicy = Field(default_factory=EligibilityPolicy)
    budget: Budget = Field(default_factory=Budget)
    keywords: list[str] = Field(default_factory=list)
    offline: OfflineSettings = Field(default_factory=OfflineSettings)
    max_workers: int = Field(default=DEFAULT_MAX_WORKERS, ge=1, le=MAX_WORKERS_LIMIT)
    max_calls: int | None = Field(default=None, ge=1)
    privacy: TranscriptPrivacy = Field(default_factory=TranscriptPrivacy)

    @model_validator(mode="after")
    def _hours_in_tenant_zone(self) -> TenantAnalysisConfig:
        # Business hours whose zone was not given are the tenant's local hours, not UTC ones.
        hours = self.offline.default_hours
        if "timezone" not in hours.model_fields_set and hours.timezone != self.timezone:
            local = hours.model_copy(update={"timezone": self.timezone})
            object.__setattr__(self, "offline", self.offline.model_copy(update={"default_hours": local}))
        return self

    def budget_for(self, *, transcription_model: str, text_model: str, batch: bool) -> Budget:
        """The budget with its cost estimate priced for the analyzer's models and path."""
        estimate: CostEstimate = self.budget.estimate.model_copy(
            update={"transcription_model": transcription_model, "text_model": text_model, "batch": batch}
        )
        return self.budget.model_copy(update={"estimate": estimate})

    @property
    def history_days(self) -> float:
        """How far before the analysed window the offline rules look (repeat callers)."""
        return self.offline.repeat_window_days
