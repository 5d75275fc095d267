"""OpenAI analyzer with the real client against the bundled simulator on loopback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import openai
import pandas as pd
import pytest

from audiapro.analysis.audio import prepare
from audiapro.analysis.errors import AnalysisServiceError, MalformedAnswerError
from audiapro.analysis.models import (
    AnalysisRecord,
    CallContext,
    CallInsights,
    SkipReason,
    SpeakerRole,
    Transcript,
    TranscriptSegment,
)
from audiapro.analysis.openai_analyzer import AnalyzerSettings, OpenAIAnalyzer
from audiapro.analysis.openai_simulator import FaultKind, OpenAIFaults
from audiapro.analysis.pricing import PriceTable, UnknownModelPriceError
from tests.unit.analysis_support import (
    API_KEY,
    duplicated_mono_call,
    served,
    silent_call,
    stereo_call,
)

pytestmark = pytest.mark.timeout(60)

TRANSCRIBE = "POST /v1/audio/transcriptions"
RESPONSES = "POST /v1/responses"
CALL = {
    "tenant": "acme",
    "session": "1700000000.42",
    "started_at": datetime(2026, 3, 2, 14, 0, tzinfo=UTC),
    "direction": "inbound",
    "talk_s": 20,
    "answered_by": "1001",
    "src_e164": "+15550000001",
}
ONLY_RESPONSES = frozenset({"responses"})
TINY_RETRY_AFTER_S = 0.01


def test_stereo_call_gives_two_speaker_roles_valid_insights_and_exact_cost() -> None:
    with served() as (sim, analyzer):
        record = analyzer.analyze_call(stereo_call(20.0), CALL)
        stats = sim.stats
    assert record.status == "succeeded" and record.error is None
    assert record.analyzer == "openai" and record.model == "gpt-6-luna"
    assert record.transcription_model == "gpt-transcribe" and record.attempts == 1
    assert record.transcript is not None and record.transcript.mode == "stereo"
    assert {s.speaker for s in record.transcript.segments} == {SpeakerRole.caller, SpeakerRole.agent}
    assert record.transcript.text.startswith("Caller: ")
    assert "\nAgent: " in record.transcript.text
    assert record.insights is not None
    assert CallInsights.model_validate(record.insights.model_dump()) == record.insights
    # One transcription per channel; usage and cost match what the simulator billed.
    assert stats.requests[TRANSCRIBE] == 2 and stats.requests[RESPONSES] == 1
    # Each channel is trimmed to its speaker's 10 s (plus hangover and padding), not sent whole.
    assert record.audio_seconds == pytest.approx(stats.audio_seconds)
    assert 20.0 <= record.audio_seconds <= 21.0
    text_usage = stats.usage_by_model["gpt-6-luna"]
    assert (record.input_tokens, record.output_tokens) == (text_usage.input_tokens, text_usage.output_tokens)
    text_usd = (record.input_tokens * 0.10 + record.output_tokens * 0.50) / 1e6
    expected = record.audio_seconds / 60 * 0.0045 + text_usd
    assert record.cost_usd == pytest.approx(expected)
    assert record.cost_usd == pytest.approx(sum(u.cost_usd for u in stats.usage_by_model.values()))


def test_duplicated_mono_is_transcribed_once_with_unknown_speakers() -> None:
    with served() as (sim, analyzer):
        record = analyzer.analyze_call(duplicated_mono_call(20.0), CALL)
        assert sim.stats.requests[TRANSCRIBE] == 1
    assert record.status == "succeeded"
    assert record.transcript is not None and record.transcript.mode == "mono"
    assert {s.speaker for s in record.transcript.segments} == {SpeakerRole.unknown}
    assert record.audio_seconds == pytest.approx(20.0)


def test_no_recording_and_silence_are_skipped_without_requests() -> None:
    with served() as (sim, analyzer):
        missing = analyzer.analyze_call(None, CALL)
        silent = analyzer.analyze_call(silent_call(5.0), CALL)
        assert sum(sim.stats.requests.values()) == 0
    assert (missing.status, missing.skip_reason, missing.recording_sha256) == (
        "skipped",
        SkipReason.no_recording,
        None,
    )
    assert (silent.status, silent.skip_reason) == ("skipped", SkipReason.no_speech)
    assert silent.recording_sha256 is not None and silent.cost_usd == 0


def test_malformed_answers_are_retried_then_give_a_failed_record() -> None:
    script = (FaultKind.INVALID_JSON, FaultKind.SCHEMA_VIOLATION, FaultKind.INVALID_JSON)
    faults = OpenAIFaults(script=script, endpoints=ONLY_RESPONSES)
    settings = AnalyzerSettings(max_parse_retries=2, request_timeout_s=10.0)
    with served(faults=faults, settings=settings) as (sim, analyzer):
        record = analyzer.analyze_call(stereo_call(10.0), CALL)  # must not raise
        stats = sim.stats
    assert record.status == "failed" and record.insights is None
    assert record.error is not None and record.error.startswith("malformed answer")
    assert record.attempts == 3 and stats.requests[RESPONSES] == 3
    assert stats.faults[FaultKind.INVALID_JSON] == 2 and stats.faults[FaultKind.SCHEMA_VIOLATION] == 1
    # The transcript is kept and every billed attempt is paid for.
    assert record.transcript is not None
    billed = sum(u.cost_usd for u in stats.usage_by_model.values())
    assert record.input_tokens == stats.usage_by_model["gpt-6-luna"].input_tokens
    assert record.cost_usd == pytest.approx(billed)


def test_a_malformed_answer_followed_by_a_good_one_succeeds() -> None:
    faults = OpenAIFaults(script=(FaultKind.SCHEMA_VIOLATION,), endpoints=ONLY_RESPONSES)
    with served(faults=faults) as (sim, analyzer):
        record = analyzer.analyze_call(stereo_call(10.0), CALL)
        assert sim.stats.requests[RESPONSES] == 2
    assert record.status == "succeeded" and record.attempts == 2


def test_analyze_raises_malformed_answer_error_directly() -> None:
    faults = OpenAIFaults(invalid_json_rate=1.0, endpoints=ONLY_RESPONSES)
    settings = AnalyzerSettings(max_parse_retries=0, request_timeout_s=10.0)
    transcript = Transcript.from_segments(
        [TranscriptSegment(speaker=SpeakerRole.caller, text="I want a refund.", start_s=0, end_s=5)],
        mode="stereo",
        language="en",
    )
    with served(faults=faults, settings=settings) as (_, analyzer), pytest.raises(MalformedAnswerError):
        analyzer.analyze(transcript, CallContext(tenant="acme", session="s"))


def test_rate_limit_with_retry_after_and_server_errors_are_retried_by_the_client() -> None:
    faults = OpenAIFaults(
        # Transcription: 429, 500, then OK; then the same for the analysis request.
        script=(FaultKind.RATE_LIMIT, FaultKind.SERVER_ERROR, None) * 2,
        retry_after_s=TINY_RETRY_AFTER_S,
    )
    with served(faults=faults) as (sim, analyzer):
        record = analyzer.analyze_call(duplicated_mono_call(10.0), CALL)
        stats = sim.stats
    assert record.status == "succeeded"
    assert stats.statuses[TRANSCRIBE] == {429: 1, 500: 1, 200: 1}
    assert stats.statuses[RESPONSES] == {429: 1, 500: 1, 200: 1}
    assert len(stats.billed) == 2  # failed attempts are not billed, nor counted in the record
    assert record.cost_usd == pytest.approx(sum(u.cost_usd for u in stats.usage_by_model.values()))


def test_service_problems_raise_a_scrubbed_service_error() -> None:
    # The SDK retries any 429, quota ones included; no retries keeps the test fast.
    no_retries = AnalyzerSettings(max_api_retries=0, request_timeout_s=10.0)
    quota = OpenAIFaults(insufficient_quota_rate=1.0)
    with (
        served(faults=quota, settings=no_retries) as (_, analyzer),
        pytest.raises(AnalysisServiceError) as caught,
    ):
        analyzer.analyze_call(stereo_call(5.0), CALL)
    assert caught.value.status_code == 429 and caught.value.code == "insufficient_quota"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__

    with served() as (sim, _):
        wrong = "sk-wrong-key-must-not-leak-0123456789"
        client = openai.OpenAI(base_url=sim.base_url, api_key=wrong)
        with pytest.raises(AnalysisServiceError) as caught:
            OpenAIAnalyzer(client, no_retries).analyze_call(stereo_call(5.0), CALL)
        client.close()
    assert caught.value.status_code == 401
    assert wrong not in str(caught.value) and API_KEY not in str(caught.value)


def test_a_request_rejected_for_this_call_gives_a_failed_record() -> None:
    # The simulator accepts smaller uploads than the analyzer prepares: a 413 for this recording.
    with served(max_audio_bytes=100_000) as (_, analyzer):
        record = analyzer.analyze_call(duplicated_mono_call(10.0), CALL)
    assert record.status == "failed"
    assert record.error is not None and "HTTP 413" in record.error


def test_unreadable_recordings_fail_without_requests() -> None:
    with served() as (sim, analyzer):
        record = analyzer.analyze_call(b"not a wav file", CALL)
        assert sum(sim.stats.requests.values()) == 0
    assert record.status == "failed" and record.error is not None and "unreadable" in record.error


def test_tenant_keywords_are_counted_per_speaker() -> None:
    settings = AnalyzerSettings(
        keywords_by_tenant={"acme": ["refund", "not-said-anywhere"]}, request_timeout_s=10.0
    )
    with served(settings=settings) as (_, analyzer):
        record = analyzer.analyze_call(stereo_call(20.0), CALL)
    assert record.transcript is not None and record.insights is not None
    for hit in record.insights.keyword_hits:
        assert hit.keyword in {"refund", "not-said-anywhere"}
        if hit.keyword == "refund":
            spoken = " ".join(s.text for s in record.transcript.segments if s.speaker is hit.speaker)
            assert hit.count == spoken.lower().count("refund")


def test_api_key_never_reaches_logs_or_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # First call: a 429 (retried), then a malformed answer (failed record); then a good call.
    faults = OpenAIFaults(
        script=(FaultKind.RATE_LIMIT, FaultKind.INVALID_JSON),
        retry_after_s=TINY_RETRY_AFTER_S,
        endpoints=ONLY_RESPONSES,
    )
    records: list[AnalysisRecord] = []
    with served(faults=faults, settings=AnalyzerSettings(max_parse_retries=0, request_timeout_s=10.0)) as (
        sim,
        analyzer,
    ):
        records.append(analyzer.analyze_call(stereo_call(10.0), CALL))
        records.append(analyzer.analyze_call(duplicated_mono_call(10.0), CALL))
        records.append(analyzer.analyze_call(None, CALL))
        sim.faults = OpenAIFaults(insufficient_quota_rate=1.0)
        client = openai.OpenAI(base_url=sim.base_url, api_key=API_KEY)
        with pytest.raises(AnalysisServiceError) as caught:
            OpenAIAnalyzer(client, AnalyzerSettings(max_api_retries=0)).analyze_call(stereo_call(5.0), CALL)
        client.close()
    assert {r.status for r in records} == {"failed", "succeeded", "skipped"}
    assert caplog.text  # the client and the analyzer did log
    dumped = caplog.text + "".join(r.model_dump_json() for r in records) + str(caught.value)
    assert API_KEY not in dumped
    assert API_KEY[:12] not in dumped


def test_settings_refuse_unpriced_models() -> None:
    with pytest.raises(UnknownModelPriceError):
        AnalyzerSettings(text_model="gpt-unknown")
    prices = PriceTable(audio_per_minute={"whisper-1": 0.006})
    with pytest.raises(UnknownModelPriceError):
        AnalyzerSettings(prices=prices)


def test_calls_rows_from_pandas_and_outbound_channel_roles() -> None:
    rows = pd.DataFrame(
        [
            {**CALL, "direction": "outbound", "answered_by": None},
            {**CALL, "started_at": None, "talk_s": None},
        ]
    )
    rows["started_at"] = pd.to_datetime(rows["started_at"], utc=True)
    first, second = (CallContext.from_row(row) for _, row in rows.iterrows())
    assert (first.direction, first.answered_by, first.talk_s) == ("outbound", None, 20)
    assert first.started_at == CALL["started_at"]
    assert (second.started_at, second.talk_s) == (None, 0)

    swapped = AnalyzerSettings(outbound_stereo_roles=(SpeakerRole.agent, SpeakerRole.caller))
    outbound = prepare(stereo_call(4.0), swapped.limits_for("outbound"))
    inbound = prepare(stereo_call(4.0), swapped.limits_for("inbound"))
    assert [p.role for p in outbound] == [SpeakerRole.agent, SpeakerRole.caller]
    assert [p.role for p in inbound] == [SpeakerRole.caller, SpeakerRole.agent]
