"""Models of AI call analysis: call input, transcript, model insights, offline flags, stored record.

`CallInsights` is also the structured-output schema sent to the text model, so it stays strict-schema
friendly: enums for closed sets, `X | None` for optional values, bounded numbers, no free-form dicts.
Offline (no-model) facts live in a separate `OfflineFlags` model so the text model is never asked to
invent them (after-hours or repeat-caller status cannot be heard in a recording).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

#: Version of the instructions sent to the text model; part of every analysis key.
PROMPT_VERSION: Final = "call-insights-v1"
#: Version of the shapes below; bump when a stored field changes meaning.
SCHEMA_VERSION: Final = 1
#: `prompt_version` of records made by the offline rules (no prompt involved).
OFFLINE_RULES_VERSION: Final = "offline-rules-v1"

MAX_TOPICS: Final = 5
MAX_ACTION_ITEMS: Final = 5
MAX_QUALITY_REASONS: Final = 5
MAX_KEYWORD_HITS: Final = 50
_KEY_PREFIX: Final = "ca_"
_KEY_HEX_CHARS: Final = 40
_LABEL_HEX_CHARS: Final = 6
_LABEL_HEAD_CHARS: Final = 20


#: Status of an `AnalysisRecord`.
RecordStatus = Literal["succeeded", "failed", "skipped"]


class Outcome(StrEnum):
    """What the call achieved (one label per call).

    Taxonomy, first matching label wins:
        resolved: The caller's request was handled during the call.
        follow_up_needed: Someone must act after the call (callback, quote, escalation, visit).
        sale: Something was bought, ordered or upgraded.
        booking: An appointment or reservation was made or changed.
        complaint: The caller complained and it was not resolved on the call.
        voicemail: The call reached voicemail or an answering machine.
        wrong_number: The caller or callee was not who was meant to be reached.
        spam: Robocall, telemarketing or fraud attempt.
        missed: Nobody talked (unanswered, or answered and hung up at once).
        other: None of the above.
    """

    resolved = "resolved"
    follow_up_needed = "follow_up_needed"
    sale = "sale"
    booking = "booking"
    complaint = "complaint"
    voicemail = "voicemail"
    wrong_number = "wrong_number"
    spam = "spam"
    missed = "missed"
    other = "other"


class SentimentLabel(StrEnum):
    """Coarse sentiment."""

    positive = "positive"
    neutral = "neutral"
    negative = "negative"
    mixed = "mixed"


class SpeakerRole(StrEnum):
    """Who spoke: the external party (caller), the business side (agent), or not known (mono)."""

    caller = "caller"
    agent = "agent"
    unknown = "unknown"


class ActionOwner(StrEnum):
    """Who must do an action item."""

    caller = "caller"
    agent = "agent"
    business = "business"


class SkipReason(StrEnum):
    """Why a call was not analysed. The first six come from the eligibility policy."""

    not_answered = "not_answered"
    too_short = "too_short"
    no_recording = "no_recording"
    internal_call = "internal_call"
    direction_excluded = "direction_excluded"
    budget_exceeded = "budget_exceeded"
    no_speech = "no_speech"  # the recording holds only silence; nothing worth paying for


class Sentiment(BaseModel):
    """A sentiment label with a score.

    Attributes:
        label: Coarse label.
        score: -1 (very negative) .. 1 (very positive).
    """

    label: SentimentLabel
    score: float = Field(ge=-1.0, le=1.0)


class ActionItem(BaseModel):
    """A next step agreed or implied in the call."""

    owner: ActionOwner
    description: str


class KeywordHit(BaseModel):
    """A tenant keyword (compliance phrase, product, competitor...) found in the call.

    Attributes:
        keyword: The keyword exactly as configured.
        speaker: Who said it (`unknown` for mono recordings).
        count: How many times.
    """

    keyword: str
    speaker: SpeakerRole
    count: int = Field(ge=1)


class CallInsights(BaseModel):
    """What the text model extracts from one transcript (also its structured-output schema).

    Attributes:
        summary: Two or three sentences on why the caller called and how it ended.
        language: ISO 639-1 code of the conversation.
        intent: The caller's main reason for calling, a few words.
        outcome: One label from the `Outcome` taxonomy.
        sentiment: Overall sentiment of the call.
        caller_sentiment: The caller's sentiment (None when the caller cannot be told apart).
        agent_sentiment: The agent's sentiment (None when the agent cannot be told apart).
        topics: Short topic tags.
        action_items: Follow-ups, with their owner.
        quality_score: 0-100 agent handling quality.
        quality_reasons: Why the score is what it is.
        keyword_hits: Tenant keywords heard in the call (exact counts are recomputed locally).
    """

    summary: str
    language: str
    intent: str
    outcome: Outcome
    sentiment: Sentiment
    caller_sentiment: Sentiment | None
    agent_sentiment: Sentiment | None
    topics: list[str] = Field(max_length=MAX_TOPICS)
    action_items: list[ActionItem] = Field(max_length=MAX_ACTION_ITEMS)
    quality_score: int = Field(ge=0, le=100)
    quality_reasons: list[str] = Field(max_length=MAX_QUALITY_REASONS)
    keyword_hits: list[KeywordHit] = Field(max_length=MAX_KEYWORD_HITS)


class TranscriptSegment(BaseModel):
    """A stretch of speech by one speaker.

    `start_s`/`end_s` are the bounds of the audio part it came from (the transcription model gives no
    timestamps), so segments sort into coarse turn order.
    """

    speaker: SpeakerRole
    text: str
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)


class Transcript(BaseModel):
    """Transcript of one recording.

    Attributes:
        mode: `stereo` when speakers come from separate channels (roles certain), else `mono`.
        segments: Segments in time order (caller before agent for the same span).
        text: Full text; stereo segments are prefixed with `Caller:`/`Agent:`.
        language: Language detected by the transcription model, if any.
    """

    mode: Literal["stereo", "mono"]
    segments: list[TranscriptSegment]
    text: str
    language: str | None = None

    @classmethod
    def from_segments(
        cls, segments: list[TranscriptSegment], *, mode: Literal["stereo", "mono"], language: str | None
    ) -> Transcript:
        """Build a transcript, ordering segments and rendering the full text.

        Args:
            segments: Segments in any order; empty texts are dropped.
            mode: Channel mode of the recording.
            language: Detected language.

        Returns:
            The transcript.
        """
        role_order = {SpeakerRole.caller: 0, SpeakerRole.agent: 1, SpeakerRole.unknown: 2}
        kept = sorted(
            (s for s in segments if s.text.strip()), key=lambda s: (s.start_s, role_order[s.speaker])
        )
        if mode == "stereo":
            text = "\n".join(f"{s.speaker.value.capitalize()}: {s.text.strip()}" for s in kept)
        else:
            text = " ".join(s.text.strip() for s in kept)
        return cls(mode=mode, segments=kept, text=text, language=language)


class OfflineFlags(BaseModel):
    """Facts derived from the call row and call history alone (no recording, no model, no cost).

    Attributes:
        outcome: `missed` or `voicemail` when the CDR decides it, else None (needs a model).
        missed: Nobody talked: not answered, or answered with zero talk time.
        voicemail: The call ended in voicemail (when the frame carries a voicemail indicator).
        abandoned: Inbound, unanswered and shorter than the abandon threshold (caller hung up early).
        callback_needed: Missed/voicemail inbound call with no later answered call from that number.
        repeat_caller: The number called in before within the repeat window.
        prior_calls_from_number: Inbound calls from the same number within the repeat window before it.
        after_hours: Started outside the tenant's business hours (local time).
    """

    outcome: Outcome | None
    missed: bool
    voicemail: bool
    abandoned: bool
    callback_needed: bool
    repeat_caller: bool
    prior_calls_from_number: int = Field(ge=0)
    after_hours: bool


class AnalysisRecord(BaseModel):
    """Everything stored per analysed (or skipped) call.

    Attributes:
        tenant: Tenant of the call.
        session: Call session id (with `tenant` the call key).
        recording_sha256: SHA-256 of the original recording bytes, None without a recording.
        analyzer: `openai` or `offline`.
        model: Text model (None for offline).
        transcription_model: Transcription model (None for offline).
        prompt_version: `PROMPT_VERSION`, or `OFFLINE_RULES_VERSION` for offline records.
        schema_version: `SCHEMA_VERSION`.
        status: `succeeded`, `failed` or `skipped`.
        skip_reason: Why the call was skipped (status `skipped` only).
        error: Why the analysis failed (status `failed` only); never holds credentials.
        transcript: The transcript, when transcription ran.
        insights: Model insights (openai analyzer, status `succeeded`).
        flags: Offline flags (offline analyzer).
        audio_seconds: Audio seconds billed for transcription (stereo counts both channels).
        input_tokens: Text-model input tokens billed (all attempts).
        output_tokens: Text-model output tokens billed (all attempts).
        cost_usd: Transcription plus text cost from the price table.
        attempts: Text-model requests made (malformed answers are retried).
        batch: The text analysis went through the Batch API (billed at the batch discount).
        redactions: Personal data replaced in the transcript, by category (None: not redacted).
        transcript_encrypted: The original transcript, encrypted with the tenant's key (privacy
            policy `redact_keep_encrypted` only).
        created_at: When the record was made (UTC).
    """

    model_config = ConfigDict(frozen=True)

    tenant: str
    session: str
    recording_sha256: str | None
    analyzer: Literal["openai", "offline"]
    model: str | None
    transcription_model: str | None
    prompt_version: str
    schema_version: int = SCHEMA_VERSION
    status: RecordStatus
    skip_reason: SkipReason | None = None
    error: str | None = None
    transcript: Transcript | None = None
    insights: CallInsights | None = None
    flags: OfflineFlags | None = None
    audio_seconds: float = Field(default=0.0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    attempts: int = Field(default=0, ge=0)
    batch: bool = False
    redactions: dict[str, int] | None = None
    transcript_encrypted: str | None = Field(default=None, repr=False)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def key(self) -> str:
        """The analysis key of this record (see `analysis_key`); equals the batch `custom_id`."""
        return analysis_key(self.tenant, self.session, self.recording_sha256, self.model, self.prompt_version)


class CallContext(BaseModel):
    """The call-row facts an analyzer uses (phone numbers are left out: the model does not need them).

    Attributes:
        tenant: Tenant.
        session: Call session id.
        direction: inbound / outbound / internal / external, if known.
        started_at: Call start (UTC).
        talk_s: Talk time in seconds.
        answered_by: Extension that answered, if any.
    """

    model_config = ConfigDict(frozen=True)

    tenant: str
    session: str
    direction: str | None = None
    started_at: datetime | None = None
    talk_s: int = Field(default=0, ge=0)
    answered_by: str | None = None

    @property
    def label(self) -> str:
        """The call's name in logs (see `call_label`)."""
        return call_label(self.session)

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | pd.Series) -> CallContext:
        """Build from a `calls` row (a dict or a pandas Series); NaN/NaT/None count as missing."""

        def value(name: str) -> Any:
            item = row.get(name)
            # None, NaN, pandas NA and NaT all mean "not known".
            return None if item is None or (pd.api.types.is_scalar(item) and pd.isna(item)) else item

        talk = value("talk_s")
        started = value("started_at")
        return cls(
            tenant=str(row["tenant"]),
            session=str(row["session"]),
            direction=None if value("direction") is None else str(value("direction")),
            started_at=started.to_pydatetime() if hasattr(started, "to_pydatetime") else started,
            talk_s=max(0, int(talk)) if talk is not None else 0,
            answered_by=None if value("answered_by") is None else str(value("answered_by")),
        )


def call_label(session: str) -> str:
    """How logs name a call: a session id ends with the originator's number, which never goes to logs.

    Args:
        session: Call session id (`<epoch><µs>-<number>`).

    Returns:
        The session's time part and a short hash of the whole id, e.g. `1741079737924521~3f9a1c`.
    """
    digest = hashlib.sha256(session.encode()).hexdigest()[:_LABEL_HEX_CHARS]
    return f"{session.split('-', 1)[0][:_LABEL_HEAD_CHARS]}~{digest}"


def analysis_key(
    tenant: str, session: str, recording_sha256: str | None, model: str | None, prompt_version: str
) -> str:
    """A stable id for one analysis: same call, same audio, same model and prompt = same key.

    Used as the Batch API `custom_id` and suitable as an idempotency key, so re-runs and backfills
    never pay twice for the same work. `SCHEMA_VERSION` is part of it.

    Args:
        tenant: Tenant.
        session: Call session id.
        recording_sha256: Recording content hash (None without a recording).
        model: Text model.
        prompt_version: Prompt version.

    Returns:
        `ca_` followed by 40 hex characters.
    """
    parts = (tenant, session, recording_sha256 or "", model or "", prompt_version, str(SCHEMA_VERSION))
    # The unit-separator control character (absent from ids and hashes) keeps ("a", "bc") and
    # ("ab", "c") apart.
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return _KEY_PREFIX + digest[:_KEY_HEX_CHARS]
