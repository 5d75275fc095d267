"""Batch API analysis: lines, submit, poll, collect, records at the batch price."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from audiapro.analysis.batch import BatchItem, BatchResult, collect_batch, submit_batch
from audiapro.analysis.models import PROMPT_VERSION, AnalysisRecord, CallInsights, SkipReason, analysis_key
from audiapro.analysis.openai_analyzer import OpenAIAnalyzer
from audiapro.analysis.openai_simulator import OpenAIFaults
from tests.unit.analysis_support import (
    API_KEY,
    duplicated_mono_call,
    served,
    silent_call,
    stereo_call,
)

pytestmark = pytest.mark.timeout(60)


def call(session: str) -> dict[str, Any]:
    return {"tenant": "acme", "session": session, "direction": "inbound", "talk_s": 10}


def items_for(analyzer: OpenAIAnalyzer) -> list[BatchItem]:
    recordings = [stereo_call(10.0), duplicated_mono_call(10.0), stereo_call(12.0)]
    items = [analyzer.prepare_batch_item(wav, call(f"s{i}")) for i, wav in enumerate(recordings)]
    assert all(isinstance(i, BatchItem) for i in items)
    return [i for i in items if isinstance(i, BatchItem)]


def run_batch(analyzer: OpenAIAnalyzer, items: list[BatchItem]) -> dict[str, BatchResult] | None:
    """Submit the items as one batch and collect it (complete on its first poll)."""
    return collect_batch(analyzer.client, submit_batch(analyzer.client, analyzer.build_batch_lines(items)))


def test_lines_are_stable_responses_requests_keyed_by_analysis_key() -> None:
    with served() as (sim, analyzer):
        items = items_for(analyzer)
        lines = analyzer.build_batch_lines(items)
        assert sim.stats.requests["POST /v1/audio/transcriptions"] == 5  # done synchronously
    parsed = [json.loads(line) for line in lines.decode().splitlines()]
    assert len(parsed) == 3
    for item, line in zip(items, parsed, strict=True):
        key = analysis_key("acme", item.context.session, item.recording_sha256, "gpt-6-luna", PROMPT_VERSION)
        assert line["custom_id"] == item.custom_id == key
        assert (line["method"], line["url"]) == ("POST", "/v1/responses")
        assert line["body"]["model"] == "gpt-6-luna"
        assert line["body"]["text"]["format"]["type"] == "json_schema"
        assert line["body"]["text"]["format"]["strict"] is True
        assert item.transcript.text in line["body"]["input"]
    # Same items, same bytes; a repeated item is sent once.
    assert analyzer.build_batch_lines([*items, items[0]]) == lines


def test_submit_poll_and_collect_at_the_batch_price() -> None:
    with served(batch_complete_after_polls=2) as (sim, analyzer):
        items = items_for(analyzer)
        transcription_cost = sim.stats.usage_by_model["gpt-transcribe"].cost_usd
        batch_id = submit_batch(
            analyzer.client, analyzer.build_batch_lines(items), metadata={"tenant": "acme"}
        )
        assert collect_batch(analyzer.client, batch_id) is None  # first poll: still running
        results = collect_batch(analyzer.client, batch_id)
        stats = sim.stats
    assert results is not None and set(results) == {i.custom_id for i in items}
    text_usage = stats.usage_by_model["gpt-6-luna"]
    assert text_usage.batch_requests == 3
    for result in results.values():
        assert result.error is None and isinstance(result.insights, CallInsights)
    # Costs are at half price and add up to what the simulator billed.
    assert sum(r.cost_usd for r in results.values()) == pytest.approx(text_usage.cost_usd)
    full_price = sum((r.input_tokens * 0.10 + r.output_tokens * 0.50) / 1e6 for r in results.values())
    assert sum(r.cost_usd for r in results.values()) == pytest.approx(full_price / 2)

    records = [analyzer.record_from_batch(i, results[i.custom_id]) for i in items]
    assert all(r.status == "succeeded" and r.batch and r.insights is not None for r in records)
    assert [r.key for r in records] == [i.custom_id for i in items]
    assert sum(r.cost_usd for r in records) == pytest.approx(transcription_cost + text_usage.cost_usd)


def test_malformed_batch_answers_become_failed_records() -> None:
    with served(batch_complete_after_polls=0) as (sim, analyzer):
        items = items_for(analyzer)
        sim.faults = OpenAIFaults(schema_violation_rate=1.0)
        results = run_batch(analyzer, items)
    assert results is not None and len(results) == 3
    for item in items:
        result = results[item.custom_id]
        assert result.insights is None and result.error is not None and "malformed" in result.error
        assert result.cost_usd > 0  # a malformed answer is still billed
        record = analyzer.record_from_batch(item, result)
        assert record.status == "failed" and record.error == result.error and record.transcript is not None


def test_failed_lines_and_cancelled_batches_give_an_error_per_request() -> None:
    with served(batch_complete_after_polls=0) as (sim, analyzer):
        items = items_for(analyzer)
        sim.faults = OpenAIFaults(batch_line_error_rate=1.0)
        failed_lines = run_batch(analyzer, items)
        sim.faults = OpenAIFaults()
        cancelled_id = submit_batch(analyzer.client, analyzer.build_batch_lines(items))
        analyzer.client.batches.cancel(cancelled_id)
        cancelled = collect_batch(analyzer.client, cancelled_id)
    assert failed_lines is not None and cancelled is not None
    assert {r.error is not None and "HTTP 500" in r.error for r in failed_lines.values()} == {True}
    assert set(cancelled) == {i.custom_id for i in items}
    assert {r.error for r in cancelled.values()} == {"batch cancelled before the request ran"}
    record = analyzer.record_from_batch(items[0], None)
    assert record.status == "failed" and record.error == "missing from batch results"


def test_prepare_batch_item_returns_final_records_when_there_is_nothing_to_analyse() -> None:
    with served() as (_, analyzer):
        missing = analyzer.prepare_batch_item(None, call("none"))
        silent = analyzer.prepare_batch_item(silent_call(3.0), call("silent"))
    assert isinstance(missing, AnalysisRecord) and missing.skip_reason is SkipReason.no_recording
    assert isinstance(silent, AnalysisRecord) and silent.skip_reason is SkipReason.no_speech


def test_batch_key_never_leaks_into_results_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with served(batch_complete_after_polls=0) as (sim, analyzer):
        items = items_for(analyzer)
        sim.faults = OpenAIFaults(batch_line_error_rate=0.5, invalid_json_rate=0.5)
        results = run_batch(analyzer, items)
    assert results is not None
    dumped = caplog.text + "".join(r.model_dump_json() for r in results.values())
    assert API_KEY not in dumped


def test_empty_input_is_refused_before_any_request() -> None:
    client = openai.OpenAI(api_key=API_KEY, base_url="http://127.0.0.1:9/v1")  # never contacted
    analyzer = OpenAIAnalyzer(client)
    assert analyzer.build_batch_lines([]) == b""
    with pytest.raises(ValueError, match="no batch lines"):
        submit_batch(client, b"")
    client.close()
