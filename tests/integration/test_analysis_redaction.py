"""Redaction on Postgres: stored transcripts, text-model requests, logs and run summaries hold no PII.

The OpenAI simulator reads card numbers (spoken and written), phone numbers, e-mail addresses and an
SSN out in about a third of its channels (`PII_SCRIPTS`); the real `openai` client talks to it and
its billing log keeps the input of every text-model request.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from pydantic import SecretStr

from audiapro.analysis.models import SpeakerRole, Transcript, TranscriptSegment, analysis_key
from audiapro.analysis.openai_simulator.transcriptions import PII_SCRIPTS
from audiapro.analysis.redact import (
    PrivacyPolicy,
    Redactor,
    TranscriptPrivacy,
    new_key,
)
from audiapro.analysis.run import analyze_tenant
from audiapro.warehouse import PendingAnalysis, store_pending
from blocks.openai import AnalysisSettings
from tests.integration.analysis_support import (
    SINCE,
    TENANT,
    TZ,
    AnalysisEnv,
    all_sessions,
    analysis_env,
    analysis_rows,
    eligible_sessions,
)
from tests.unit.analysis_support import ORDER_NUMBER, card_numbers

pytestmark = pytest.mark.timeout(180)

#: Fragments of the simulator's personal data, written and spoken.
PII_FRAGMENTS = (
    "4111",
    "5555 5555",
    "415 555 2671",
    "jane.doe@example.com",
    "j.smith@example.org",
    "536-22-1987",
    "four one one one",
    "double five",
    "four one five, five five five",
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def leaks(text: str) -> list[str]:
    """Personal data in `text`: simulator fragments, Luhn-valid card-length runs, e-mail addresses."""
    found = [f for f in PII_FRAGMENTS if f in text]
    return found + card_numbers(text) + _EMAIL.findall(text)


def run(env: AnalysisEnv, privacy: TranscriptPrivacy, **options: Any) -> Any:
    return analyze_tenant(
        env.engine,
        env.config(privacy=privacy),
        analyzer=env.analyzer,
        fetcher=env.fetcher,
        since=SINCE,
        **options,
    )


def transcripts(rows: list[dict[str, Any]]) -> list[str]:
    return [r["transcript"] for r in rows if r["transcript"]]


def total_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        for category, count in json.loads(row["redactions"] or "{}").items():
            totals[category] = totals.get(category, 0) + count
    return totals


def test_redaction_keeps_pii_out_of_storage_model_requests_logs_and_summaries(
    pg_engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with analysis_env(pg_engine) as env:
        summary = run(env, TranscriptPrivacy())
        inputs = env.openai_sim.stats.text_inputs
    rows = analysis_rows(pg_engine)
    stored = transcripts(rows)
    assert stored and inputs
    assert [leaks(t) for t in stored if leaks(t)] == []
    assert [leaks(t) for t in inputs if leaks(t)] == []
    # Logs and summaries name calls by session time and hash, digit runs that are no cards: only the
    # simulator's own data and e-mail addresses are looked for there.
    for text in (caplog.text, json.dumps(summary.as_row(), default=str)):
        assert [f for f in PII_FRAGMENTS if f in text] == [] and _EMAIL.findall(text) == []
    # Placeholders stand where the data was, in storage and in what the model read.
    # The call that reads out a spoken card number, a phone number and an e-mail address.
    assert any(all(p in t for p in ("[CARD]", "[PHONE]", "[EMAIL]")) for t in stored)
    assert any(all(p in t for p in ("[CARD]", "[PHONE]", "[EMAIL]")) for t in inputs)
    totals = total_counts(rows)
    # Which script a channel reads depends on its audio; the SSN script may not be among this run's
    # (test_analysis_redact covers every script and the national ids).
    assert totals["card"] > 0 and totals["phone"] > 0 and totals["email"] > 0
    analysed = [r for r in rows if r["status"] in ("succeeded", "failed")]
    assert analysed and all(r["redactions"] is not None for r in analysed)
    assert all(r["transcript_encrypted"] is None for r in rows)
    # A Luhn-invalid order number is no card: it is kept for the model and the record.
    assert any(ORDER_NUMBER in t for t in stored) and any(ORDER_NUMBER in t for t in inputs)


def test_policy_off_stores_and_sends_the_original(pg_engine: sa.Engine) -> None:
    with analysis_env(pg_engine) as env:
        run(env, TranscriptPrivacy(policy=PrivacyPolicy.off))
        inputs = env.openai_sim.stats.text_inputs
    rows = analysis_rows(pg_engine)
    assert any("jane.doe@example.com" in t for t in transcripts(rows))
    assert any("four one one one" in t for t in inputs)
    assert all(r["redactions"] is None and r["transcript_encrypted"] is None for r in rows)


def test_kept_originals_decrypt_with_the_blocks_key_through_the_batch_api(pg_engine: sa.Engine) -> None:
    key = new_key()
    block = AnalysisSettings(
        privacy_policy=PrivacyPolicy.redact_keep_encrypted, transcript_key=SecretStr(key)
    )
    privacy = block.tenant_config(TENANT, TZ).privacy
    with analysis_env(pg_engine, batch_complete_after_polls=0) as env:
        run(env, privacy, use_batch=True)
        run(env, privacy)  # collects the batch
        stats = env.openai_sim.stats
    assert any(b.batch for b in stats.billed)
    assert stats.text_inputs and [leaks(t) for t in stats.text_inputs if leaks(t)] == []
    rows = [r for r in analysis_rows(pg_engine) if r["transcript"]]
    assert rows and all(r["status"] == "succeeded" and r["batch_id"] for r in rows)
    fernet = Fernet(key.encode())
    originals = [
        Transcript.model_validate_json(fernet.decrypt(r["transcript_encrypted"].encode())) for r in rows
    ]
    assert any(leaks(o.text) for o in originals)
    for row, original in zip(rows, originals, strict=True):
        assert not leaks(row["transcript"]) and not leaks(row["transcript_encrypted"])
        # The stored transcript is the original redacted, segment by segment.
        assert Redactor("US").redact_transcript(original)[0] == Transcript.model_validate_json(
            row["transcript"]
        )


@pytest.mark.parametrize("use_batch", [False, True], ids=["resumed", "batch"])
def test_a_transcript_stored_before_redaction_is_redacted_when_resumed(
    pg_engine: sa.Engine, use_batch: bool
) -> None:
    original = Transcript.from_segments(
        [TranscriptSegment(speaker=SpeakerRole.caller, text=PII_SCRIPTS[0], start_s=0.0, end_s=30.0)],
        mode="stereo",
        language="en",
    )
    with analysis_env(pg_engine, batch_complete_after_polls=0) as env:
        settings = env.analyzer.settings
        session = sorted(all_sessions(pg_engine) - eligible_sessions(pg_engine))[0]
        sha = "ab" * 32
        key = analysis_key(TENANT, session, sha, settings.text_model, settings.prompt_version)
        # A paid transcript left by a run of a version without redaction (no counts stored).
        store_pending(
            pg_engine,
            PendingAnalysis(
                analysis_key=key,
                tenant=TENANT,
                session=session,
                recording_sha256=sha,
                model=settings.text_model,
                transcription_model=settings.transcription_model,
                prompt_version=settings.prompt_version,
                transcript=original.model_dump_json(),
                audio_seconds=30.0,
                cost_usd=0.0,
            ),
        )
        run(env, TranscriptPrivacy(), use_batch=use_batch)
        if use_batch:
            run(env, TranscriptPrivacy())  # collects the batch
        inputs = env.openai_sim.stats.text_inputs
    row = next(r for r in analysis_rows(pg_engine) if r["analysis_key"] == key)
    assert row["status"] == "succeeded" and bool(row["batch_id"]) is use_batch
    assert not leaks(row["transcript"]) and "[CARD]" in row["transcript"]
    assert json.loads(row["redactions"])["card"] == 1
    assert inputs and [leaks(t) for t in inputs if leaks(t)] == []
