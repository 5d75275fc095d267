"""AI call analysis through the OpenAI API: transcription per speaker, then structured insights.

Error policy:
    * 429 (rate limit) and 5xx are retried by the SDK itself (`max_retries`, honouring Retry-After).
    * A malformed model answer (invalid JSON, schema violation, truncated output, refusal) is
      retried `max_parse_retries` times, then returned as a failed `AnalysisRecord`; never raised.
    * Errors of one request's input (400/413/415/422, undecodable audio) give a failed record.
    * Anything that would fail every call alike (auth, quota, unknown model, outage after retries)
      raises `AnalysisServiceError` so the orchestrator stops and retries later instead of writing
      a failed record for every call.
Error texts never hold the API key or request headers (see `errors.py`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import openai
import pandas as pd
from openai.types.audio.transcription import UsageDuration

from audiapro.analysis.audio import AudioFormatError, AudioPart, content_sha256, prepare
from audiapro.analysis.batch import BatchItem, BatchResult, collect_batch, encode_lines, submit_batch
from audiapro.analysis.config import AnalyzerSettings
from audiapro.analysis.errors import (
    AnalysisServiceError,
    MalformedAnswerError,
    describe,
    is_per_call,
    service_error,
)
from audiapro.analysis.keywords import merge_keyword_hits, spot_keywords
from audiapro.analysis.models import (
    AnalysisRecord,
    CallContext,
    CallInsights,
    RecordStatus,
    SkipReason,
    SpeakerRole,
    Transcript,
    TranscriptSegment,
    analysis_key,
)
from audiapro.analysis.prompts import INSTRUCTIONS, render_input, response_body
from audiapro.analysis.redact import Redacted, TranscriptPrivacy

log = logging.getLogger("audiapro.analysis")

#: Truncated answers are retried with twice the output budget, up to this many tokens.
MAX_OUTPUT_TOKENS_CEILING: Final = 16_000

#: Privacy of calls analysed without explicit settings: redacted, US phone numbers and SSNs.
DEFAULT_PRIVACY: Final = TranscriptPrivacy()

#: A call as analyzers accept it: a `CallContext`, or a `calls` row (dict or pandas Series).
CallLike: TypeAlias = CallContext | Mapping[str, Any] | pd.Series


@dataclass
class _Usage:
    """What was billed for one call so far (kept when a later step fails)."""

    audio_seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    attempts: int = 0


class OpenAIAnalyzer:
    """Transcribes and analyses call recordings with the OpenAI API.

    Args:
        client: An `openai.OpenAI` client (its retries and timeout are set from `settings`).
        settings: Models, prompt version, keywords, retries and prices.
    """

    def __init__(self, client: openai.OpenAI, settings: AnalyzerSettings | None = None) -> None:
        self.settings = settings or AnalyzerSettings()
        self._client = client.with_options(
            max_retries=self.settings.max_api_retries, timeout=self.settings.request_timeout_s
        )
        self._secrets = (client.api_key,)

    @property
    def client(self) -> openai.OpenAI:
        """The client as configured for analysis (retries, timeout); usable for batch calls."""
        return self._client

    # -- transcription --------------------------------------------------------------------------

    def transcribe(self, parts: Sequence[AudioPart], *, tenant: str | None = None) -> Transcript:
        """Transcribe prepared parts (one request per non-silent part).

        Args:
            parts: Output of `audio.prepare`.
            tenant: Tenant whose keywords are sent as hints.

        Returns:
            The transcript: caller/agent segments for stereo parts, `unknown` ones for mono.

        Raises:
            AnalysisServiceError: The service cannot be used.
            openai.APIStatusError: The request was rejected for this audio (400/413/415/422).
        """
        return self._transcribe(parts, tenant, _Usage())

    def _transcribe(self, parts: Sequence[AudioPart], tenant: str | None, usage: _Usage) -> Transcript:
        settings = self.settings
        keywords = self.settings.keywords_for(tenant) if tenant is not None else []
        hints = (
            keywords if keywords and settings.transcription_model in settings.keyword_hint_models else None
        )
        segments: list[TranscriptSegment] = []
        languages: Counter[str] = Counter()
        for part in parts:
            if part.is_silent:
                continue  # nothing to hear, nothing to pay for
            try:
                result = self._client.audio.transcriptions.create(
                    model=settings.transcription_model,
                    file=(part.filename, part.wav, "audio/wav"),
                    response_format="json",
                    language=settings.language or openai.omit,
                    prompt=settings.transcription_prompt or openai.omit,
                    keywords=hints or openai.omit,
                )
            except openai.OpenAIError as exc:
                if is_per_call(exc):
                    raise
                raise service_error(exc, self._secrets) from None
            billed = result.usage.seconds if isinstance(result.usage, UsageDuration) else part.seconds
            usage.audio_seconds += billed
            for detected in result.languages or []:
                languages[detected.code] += 1
            # The model gives no timestamps, so a segment spans its part, mapped back to call time
            # through the part's span map (a trimmed part holds only its speaker's speech).
            segments.append(
                TranscriptSegment(
                    speaker=part.role,
                    text=result.text,
                    start_s=part.to_call_time(0.0),
                    end_s=part.to_call_time(part.seconds),
                )
            )
        stereo = any(p.role is not SpeakerRole.unknown for p in parts)
        language = languages.most_common(1)[0][0] if languages else settings.language
        return Transcript.from_segments(segments, mode="stereo" if stereo else "mono", language=language)

    # -- analysis -------------------------------------------------------------------------------

    def analyze(self, transcript: Transcript, call: CallLike) -> CallInsights:
        """Structured insights for a transcript.

        Args:
            transcript: The transcript.
            call: The call (a `CallContext` or a `calls` row).

        Returns:
            Validated insights (keyword hits recounted locally).

        Raises:
            MalformedAnswerError: Every attempt returned a malformed answer.
            AnalysisServiceError: The service cannot be used.
            openai.APIStatusError: The request was rejected (400/413/415/422).
        """
        context = _context(call)
        insights, error = self._analyze(transcript, context, _Usage())
        if insights is None:
            raise MalformedAnswerError(error or "no answer")
        return insights

    def _analyze(
        self, transcript: Transcript, context: CallContext, usage: _Usage
    ) -> tuple[CallInsights | None, str | None]:
        settings = self.settings
        keywords = settings.keywords_for(context.tenant)
        text = render_input(transcript, context, keywords, settings.max_transcript_chars)
        budget = settings.max_output_tokens
        error: str | None = None
        for _attempt in range(settings.max_parse_retries + 1):
            usage.attempts += 1
            try:
                raw = self._client.responses.with_raw_response.parse(
                    model=settings.text_model,
                    instructions=INSTRUCTIONS,
                    input=text,
                    text_format=CallInsights,
                    max_output_tokens=budget,
                    store=settings.store,
                    reasoning={"effort": settings.reasoning_effort}
                    if settings.reasoning_effort
                    else openai.omit,
                )
            except openai.OpenAIError as exc:
                if is_per_call(exc):
                    raise
                raise service_error(exc, self._secrets) from None
            truncated = _add_usage(usage, raw.http_response.json())
            try:
                parsed = raw.parse().output_parsed
                if parsed is None:
                    raise ValueError("no structured answer (refusal or empty output)")
            except (ValueError, openai.LengthFinishReasonError) as exc:
                # pydantic.ValidationError and json errors are ValueErrors too.
                error = "malformed answer: " + describe(exc, self._secrets)
                log.warning(
                    "malformed analysis answer for %s/%s (attempt %d): %s",
                    context.tenant,
                    context.label,
                    usage.attempts,
                    error,
                )
                if truncated:
                    budget = min(budget * 2, MAX_OUTPUT_TOKENS_CEILING)
                continue
            return self._finish(parsed, transcript, keywords), None
        return None, error

    def _finish(self, insights: CallInsights, transcript: Transcript, keywords: list[str]) -> CallInsights:
        hits = merge_keyword_hits(insights.keyword_hits, spot_keywords(transcript, keywords), keywords)
        return insights.model_copy(update={"keyword_hits": hits})

    # -- one call -------------------------------------------------------------------------------

    def analyze_call(
        self, wav_bytes: bytes | None, call: CallLike, *, privacy: TranscriptPrivacy = DEFAULT_PRIVACY
    ) -> AnalysisRecord:
        """Transcribe and analyse one call.

        Args:
            wav_bytes: The recording (None when the call has none).
            call: The call (a `CallContext` or a `calls` row).
            privacy: The tenant's privacy settings, applied to the transcript before the text model
                sees it and before it is returned for storage.

        Returns:
            A succeeded, failed or skipped record with usage and cost.

        Raises:
            AnalysisServiceError: The service cannot be used (auth, quota, model, outage).
        """
        context, sha, usage, redacted = self._transcribe_call(wav_bytes, call, privacy)
        if isinstance(redacted, AnalysisRecord):
            return redacted
        try:
            insights, error = self._analyze(redacted.transcript, context, usage)
        except openai.APIStatusError as exc:  # per-call rejections only; service errors propagate
            insights, error = None, describe(exc, self._secrets)
        common = _redaction_fields(redacted)
        if insights is None:
            return self._record(context, sha, usage, status="failed", error=error, **common)
        return self._record(context, sha, usage, status="succeeded", insights=insights, **common)

    def _transcribe_call(
        self, wav_bytes: bytes | None, call: CallLike, privacy: TranscriptPrivacy
    ) -> tuple[CallContext, str | None, _Usage, Redacted | AnalysisRecord]:
        """The call, its recording hash, its usage so far, and its redacted transcript or final record."""
        context = _context(call)
        sha = content_sha256(wav_bytes) if wav_bytes is not None else None
        usage = _Usage()
        transcript = self._transcript_or_record(wav_bytes, context, sha, usage)
        if isinstance(transcript, AnalysisRecord):
            return context, sha, usage, transcript
        # Nothing of the transcript leaves this method unredacted (the policy decides).
        return context, sha, usage, privacy.apply(transcript)

    def _transcript_or_record(
        self, wav_bytes: bytes | None, context: CallContext, sha: str | None, usage: _Usage
    ) -> Transcript | AnalysisRecord:
        """The transcript of a recording, or the final record when there is nothing to analyse."""
        if wav_bytes is None:
            return self._record(context, sha, usage, status="skipped", skip_reason=SkipReason.no_recording)
        try:
            parts = prepare(wav_bytes, self.settings.limits_for(context.direction))
        except AudioFormatError as exc:
            return self._record(context, sha, usage, status="failed", error=f"unreadable recording: {exc}")
        if all(p.is_silent for p in parts):
            return self._record(context, sha, usage, status="skipped", skip_reason=SkipReason.no_speech)
        try:
            transcript = self._transcribe(parts, context.tenant, usage)
        except openai.APIStatusError as exc:  # per-call rejections only; service errors propagate
            return self._record(context, sha, usage, status="failed", error=describe(exc, self._secrets))
        if not transcript.text.strip():
            return self._record(
                context, sha, usage, status="skipped", skip_reason=SkipReason.no_speech, transcript=transcript
            )
        return transcript

    def _record(
        self,
        context: CallContext,
        sha: str | None,
        usage: _Usage,
        *,
        status: RecordStatus,
        skip_reason: SkipReason | None = None,
        error: str | None = None,
        transcript: Transcript | None = None,
        insights: CallInsights | None = None,
        batch: bool = False,
        extra_cost: float = 0.0,
        redactions: dict[str, int] | None = None,
        transcript_encrypted: str | None = None,
    ) -> AnalysisRecord:
        settings = self.settings
        cost = settings.prices.audio_cost(settings.transcription_model, usage.audio_seconds)
        if usage.attempts and not batch:
            cost += settings.prices.text_cost(
                settings.text_model,
                usage.input_tokens,
                usage.output_tokens,
                cached_input_tokens=usage.cached_tokens,
            )
        record = AnalysisRecord.model_validate(
            {
                "tenant": context.tenant,
                "session": context.session,
                "recording_sha256": sha,
                "analyzer": "openai",
                "model": settings.text_model,
                "transcription_model": settings.transcription_model,
                "prompt_version": settings.prompt_version,
                "status": status,
                "skip_reason": skip_reason,
                "error": error,
                "transcript": transcript,
                "insights": insights,
                "audio_seconds": usage.audio_seconds,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": cost + extra_cost,
                "attempts": usage.attempts,
                "batch": batch,
                "redactions": redactions,
                "transcript_encrypted": transcript_encrypted,
            }
        )
        log.info(
            "analysis %s/%s %s%s (%.5f USD)",
            context.tenant,
            context.label,
            status,
            f" ({skip_reason.value})" if skip_reason else "",
            record.cost_usd,
        )
        return record

    # -- Batch API ------------------------------------------------------------------------------

    def batch_item(
        self,
        call: CallLike,
        recording_sha256: str | None,
        transcript: Transcript,
        *,
        audio_seconds: float = 0.0,
        redaction: Redacted | None = None,
    ) -> BatchItem:
        """A batch item for an existing transcript (its `custom_id` is the analysis key).

        `redaction`, when given, is what the privacy policy made of `transcript` (its counts and
        encrypted original are kept with the item).
        """
        context = _context(call)
        settings = self.settings
        return BatchItem(
            custom_id=analysis_key(
                context.tenant,
                context.session,
                recording_sha256,
                settings.text_model,
                settings.prompt_version,
            ),
            context=context,
            recording_sha256=recording_sha256,
            transcript=transcript,
            transcription_model=settings.transcription_model,
            audio_seconds=audio_seconds,
            transcription_cost_usd=settings.prices.audio_cost(settings.transcription_model, audio_seconds),
            redactions=redaction.counts if redaction else None,
            transcript_encrypted=redaction.encrypted_original if redaction else None,
        )

    def prepare_batch_item(
        self, wav_bytes: bytes | None, call: CallLike, *, privacy: TranscriptPrivacy = DEFAULT_PRIVACY
    ) -> BatchItem | AnalysisRecord:
        """Transcribe a call now for batch analysis later; the item's transcript is redacted per `privacy`.

        Returns:
            A `BatchItem`, or the final (skipped/failed) record when there is nothing to analyse.

        Raises:
            AnalysisServiceError: The service cannot be used.
        """
        context, sha, usage, redacted = self._transcribe_call(wav_bytes, call, privacy)
        if isinstance(redacted, AnalysisRecord):
            return redacted
        return self.batch_item(
            context, sha, redacted.transcript, audio_seconds=usage.audio_seconds, redaction=redacted
        )

    def analyze_prepared(self, item: BatchItem) -> AnalysisRecord:
        """Analyse an already transcribed call synchronously (e.g. a stored transcript after a crash).

        The transcription is not repeated: its billed seconds come from `item` and are part of the
        record's usage and cost, as in `analyze_call`.

        Args:
            item: A transcribed call (from `prepare_batch_item`, or rebuilt from a stored row).

        Returns:
            A succeeded or failed record.

        Raises:
            AnalysisServiceError: The service cannot be used (auth, quota, model, outage).
        """
        usage = _Usage(audio_seconds=item.audio_seconds)
        try:
            insights, error = self._analyze(item.transcript, item.context, usage)
        except openai.APIStatusError as exc:  # per-call rejections only; service errors propagate
            insights, error = None, describe(exc, self._secrets)
        common: dict[str, Any] = {"transcript": item.transcript, **_item_redaction(item)}
        if insights is None:
            return self._record(
                item.context, item.recording_sha256, usage, status="failed", error=error, **common
            )
        return self._record(
            item.context, item.recording_sha256, usage, status="succeeded", insights=insights, **common
        )

    def build_batch_lines(self, items: Sequence[BatchItem]) -> bytes:
        """JSONL Batch API input: one `/v1/responses` request per item, keyed by `custom_id`.

        Raises:
            ValueError: The file would exceed the Batch API limits.
        """
        settings = self.settings

        def body(item: BatchItem) -> dict[str, Any]:
            keywords = settings.keywords_for(item.context.tenant)
            return response_body(
                model=settings.text_model,
                input_text=render_input(
                    item.transcript, item.context, keywords, settings.max_transcript_chars
                ),
                max_output_tokens=settings.max_output_tokens,
                reasoning_effort=settings.reasoning_effort,
                store=settings.store,
            )

        return encode_lines((item.custom_id, body(item)) for item in items)

    def record_from_batch(self, item: BatchItem, result: BatchResult | None) -> AnalysisRecord:
        """The final record of a batch item (None result = the batch never returned it)."""
        usage = _Usage(audio_seconds=item.audio_seconds, attempts=1)
        if result is not None:
            usage.input_tokens, usage.output_tokens = result.input_tokens, result.output_tokens
        common: dict[str, Any] = {"transcript": item.transcript, "batch": True, **_item_redaction(item)}
        extra = result.cost_usd if result is not None else 0.0
        if result is None or result.insights is None:
            error = result.error if result is not None else "missing from batch results"
            return self._record(
                item.context,
                item.recording_sha256,
                usage,
                status="failed",
                error=error,
                extra_cost=extra,
                **common,
            )
        keywords = self.settings.keywords_for(item.context.tenant)
        insights = self._finish(result.insights, item.transcript, keywords)
        return self._record(
            item.context,
            item.recording_sha256,
            usage,
            status="succeeded",
            insights=insights,
            extra_cost=extra,
            **common,
        )


def _redaction_fields(redacted: Redacted) -> dict[str, Any]:
    """The record fields of a transcript after the privacy policy."""
    return {
        "transcript": redacted.transcript,
        "redactions": redacted.counts,
        "transcript_encrypted": redacted.encrypted_original,
    }


def _item_redaction(item: BatchItem) -> dict[str, Any]:
    """The record fields of a batch item's redaction."""
    return {"redactions": item.redactions, "transcript_encrypted": item.transcript_encrypted}


def _context(call: CallLike) -> CallContext:
    return call if isinstance(call, CallContext) else CallContext.from_row(call)


def _add_usage(usage: _Usage, body: Any) -> bool:
    """Add a Responses body's token usage; True when the answer was cut by the output limit."""
    data = body if isinstance(body, dict) else {}
    counted = data.get("usage") or {}
    usage.input_tokens += int(counted.get("input_tokens") or 0)
    usage.output_tokens += int(counted.get("output_tokens") or 0)
    usage.cached_tokens += int((counted.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    details = data.get("incomplete_details") or {}
    return data.get("status") == "incomplete" and details.get("reason") == "max_output_tokens"


# The whole OpenAI surface (batch functions and settings included) is importable from here.
__all__ = [
    "AnalysisServiceError",
    "AnalyzerSettings",
    "BatchItem",
    "BatchResult",
    "MalformedAnswerError",
    "OpenAIAnalyzer",
    "collect_batch",
    "submit_batch",
]
