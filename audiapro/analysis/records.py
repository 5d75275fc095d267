"""Conversions between analysis records, batch items and stored rows of in-progress analyses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from audiapro.analysis.batch import BatchItem
from audiapro.analysis.config import AnalyzerSettings
from audiapro.analysis.models import AnalysisRecord, CallContext, OfflineFlags, SkipReason, Transcript
from audiapro.analysis.redact import PrivacyPolicy, TranscriptPrivacy
from audiapro.warehouse import PendingAnalysis


def skip_record(
    call: Mapping[str, Any], reason: SkipReason, settings: AnalyzerSettings, flags: OfflineFlags | None
) -> AnalysisRecord:
    """The record of a call skipped before any download (policy, budget, missing recording).

    Its key has no recording hash, so the row is re-evaluated by every run and replaced once the
    call is analysed.
    """
    return AnalysisRecord(
        tenant=str(call["tenant"]),
        session=str(call["session"]),
        recording_sha256=None,
        analyzer="openai",
        model=settings.text_model,
        transcription_model=settings.transcription_model,
        prompt_version=settings.prompt_version,
        status="skipped",
        skip_reason=reason,
        flags=flags,
    )


def with_flags(record: AnalysisRecord, flags: OfflineFlags | None) -> AnalysisRecord:
    """The record carrying the call's offline flags (when it has none of its own)."""
    if flags is None or record.flags is not None:
        return record
    return record.model_copy(update={"flags": flags})


def parse_flags(value: str | None) -> OfflineFlags | None:
    """Offline flags from their stored JSON."""
    return OfflineFlags.model_validate_json(value) if value else None


def pending_from_item(
    item: BatchItem, settings: AnalyzerSettings, flags: OfflineFlags | None
) -> PendingAnalysis:
    """The row that keeps a paid transcript until its text step is done."""
    return PendingAnalysis(
        analysis_key=item.custom_id,
        tenant=item.context.tenant,
        session=item.context.session,
        recording_sha256=item.recording_sha256,
        model=settings.text_model,
        transcription_model=item.transcription_model,
        prompt_version=settings.prompt_version,
        transcript=item.transcript.model_dump_json(),
        audio_seconds=item.audio_seconds,
        cost_usd=item.transcription_cost_usd,
        flags=flags.model_dump_json() if flags else None,
        redactions=json.dumps(item.redactions, sort_keys=True) if item.redactions is not None else None,
        transcript_encrypted=item.transcript_encrypted,
    )


def item_from_pending(pending: PendingAnalysis) -> BatchItem:
    """Rebuild the batch item of a stored transcript (its `custom_id` is the row's key)."""
    context = CallContext.from_row({"tenant": pending.tenant, "session": pending.session, **pending.call})
    return BatchItem(
        custom_id=pending.analysis_key,
        context=context,
        recording_sha256=pending.recording_sha256,
        transcript=Transcript.model_validate_json(pending.transcript),
        transcription_model=pending.transcription_model,
        audio_seconds=pending.audio_seconds,
        transcription_cost_usd=pending.cost_usd,
        redactions=json.loads(pending.redactions) if pending.redactions else None,
        transcript_encrypted=pending.transcript_encrypted,
    )


def redact_item(item: BatchItem, privacy: TranscriptPrivacy) -> BatchItem:
    """The item with its transcript redacted, when it was stored before redaction existed.

    Items made by `OpenAIAnalyzer.prepare_batch_item` are redacted already (they carry counts).
    """
    if item.redactions is not None or privacy.policy is PrivacyPolicy.off:
        return item
    redacted = privacy.apply(item.transcript)
    return item.model_copy(
        update={
            "transcript": redacted.transcript,
            "redactions": redacted.counts,
            "transcript_encrypted": redacted.encrypted_original,
        }
    )


def settings_for(settings: AnalyzerSettings, pending: PendingAnalysis) -> AnalyzerSettings:
    """Analyzer settings matching a stored row's models and prompt (they may predate a change)."""
    wanted = (pending.model, pending.transcription_model, pending.prompt_version)
    if wanted == (settings.text_model, settings.transcription_model, settings.prompt_version):
        return settings
    return settings.model_copy(
        update={
            "text_model": pending.model,
            "transcription_model": pending.transcription_model,
            "prompt_version": pending.prompt_version,
        }
    )
