"""`call_analyses` writes: final rows stay, skips are refreshed and superseded, spend counts by day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from audiapro.analysis.models import AnalysisRecord, OfflineFlags, SkipReason
from audiapro.warehouse import (
    PendingAnalysis,
    confirm_existing,
    pending_analyses,
    spent_today,
    store_pending,
    store_records,
)
from tests.integration.analysis_support import analysis_rows

TENANT = "acme"
SESSION = "1741079737924521-07700900123"
MODEL, PROMPT = "gpt-6-luna", "call-insights-v1"
NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # 12:00 in New York


def record(**fields: object) -> AnalysisRecord:
    base: dict[str, object] = {
        "tenant": TENANT,
        "session": SESSION,
        "recording_sha256": "ab" * 32,
        "analyzer": "openai",
        "model": MODEL,
        "transcription_model": "gpt-transcribe",
        "prompt_version": PROMPT,
        "status": "succeeded",
        "cost_usd": 0.02,
        "created_at": NOW,
    }
    return AnalysisRecord.model_validate({**base, **fields})


def flags(*, callback: bool) -> OfflineFlags:
    return OfflineFlags(
        outcome=None,
        missed=False,
        voicemail=False,
        abandoned=False,
        callback_needed=callback,
        repeat_caller=False,
        prior_calls_from_number=0,
        after_hours=False,
    )


def test_final_rows_stay_and_skips_are_refreshed_then_superseded(engine: sa.Engine) -> None:
    skip = record(recording_sha256=None, status="skipped", skip_reason=SkipReason.budget_exceeded, cost_usd=0)
    store_records(engine, [skip], now=NOW)
    store_records(engine, [skip.model_copy(update={"skip_reason": SkipReason.too_short})], now=NOW)
    (row,) = analysis_rows(engine)
    assert row["skip_reason"] == "too_short"  # re-evaluated

    done = record()
    store_records(engine, [done], now=NOW)
    (row,) = analysis_rows(engine)  # the skip row is gone
    assert row["status"] == "succeeded" and row["analysis_key"] == done.key
    store_records(engine, [done.model_copy(update={"status": "failed", "error": "x", "cost_usd": 9.0})])
    (row,) = analysis_rows(engine)
    assert (row["status"], row["cost_usd"]) == ("succeeded", 0.02)  # never overwritten
    assert confirm_existing(engine, done.key, model=MODEL, prompt_version=PROMPT)
    assert not confirm_existing(engine, "ca_unknown", model=MODEL, prompt_version=PROMPT)


def test_offline_rows_follow_their_flags(engine: sa.Engine) -> None:
    offline = record(
        analyzer="offline", model=None, transcription_model=None, recording_sha256=None, cost_usd=0
    )
    store_records(engine, [offline.model_copy(update={"flags": flags(callback=True)})])
    store_records(engine, [offline.model_copy(update={"flags": flags(callback=False)})])
    (row,) = analysis_rows(engine)
    assert '"callback_needed":false' in row["flags"]


def test_a_paid_transcript_is_kept_once_and_spend_counts_the_tenants_day(engine: sa.Engine) -> None:
    pending = PendingAnalysis(
        analysis_key="ca_" + "1" * 40,
        tenant=TENANT,
        session=SESSION,
        recording_sha256="cd" * 32,
        model=MODEL,
        transcription_model="gpt-transcribe",
        prompt_version=PROMPT,
        transcript='{"mode":"mono","segments":[],"text":"","language":null}',
        audio_seconds=60.0,
        cost_usd=0.0045,
    )
    assert store_pending(engine, pending, now=NOW)
    assert not store_pending(engine, pending, now=NOW)
    (waiting,) = pending_analyses(engine, TENANT, model=MODEL, prompt_version=PROMPT)
    assert waiting.analysis_key == pending.analysis_key and waiting.audio_seconds == 60.0
    yesterday = record(
        session="s-old", created_at=NOW - timedelta(hours=13), cost_usd=1.0
    )  # 23:00 the day before in New York
    store_records(engine, [yesterday])
    spend = spent_today(engine, TENANT, timezone="America/New_York", now=NOW)
    assert spend.usd == pytest.approx(0.0045) and spend.audio_minutes == pytest.approx(1.0)
    assert spend.day_start == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    # 04:00 UTC is the same day in UTC: a UTC tenant counts it.
    assert spent_today(engine, TENANT, timezone="UTC", now=NOW).usd == pytest.approx(1.0045)
