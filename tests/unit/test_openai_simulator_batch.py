"""OpenAI simulator: files and the Batch API through the real `openai` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.lib._parsing._responses import type_to_text_format_param

from audiapro.analysis.openai_simulator import FaultKind, OpenAIFaults, OpenAISimulator
from tests.unit.openai_simulator_support import (
    APPOINTMENT_TRANSCRIPT,
    REFUND_TRANSCRIPT,
    TEXT_MODEL,
    CallAnalysis,
    running,
)

pytestmark = pytest.mark.timeout(60)

POLLS = 2
TRANSCRIPTS = {
    "call-1:v1": REFUND_TRANSCRIPT,
    "call-2:v1": APPOINTMENT_TRANSCRIPT,
    "call-3:v1": "Caller: I want to cancel my subscription, this is my third complaint.",
}


@pytest.fixture
def served() -> Iterator[tuple[OpenAISimulator, openai.OpenAI]]:
    with running(seed=5, batch_complete_after_polls=POLLS) as pair:
        yield pair


def _body(transcript: str) -> dict[str, Any]:
    return {
        "model": TEXT_MODEL,
        "instructions": "Analyse the call.",
        "input": transcript,
        "text": {"format": type_to_text_format_param(CallAnalysis)},
    }


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _requests(url: str = "/v1/responses") -> list[dict[str, Any]]:
    return [
        {"custom_id": cid, "method": "POST", "url": url, "body": _body(text)}
        for cid, text in TRANSCRIPTS.items()
    ]


def _submit(client: openai.OpenAI, lines: list[dict[str, Any]], endpoint: Any = "/v1/responses") -> str:
    uploaded = client.files.create(file=("analysis.jsonl", _jsonl(lines)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.status == "processed"
    assert client.files.retrieve(uploaded.id).bytes == len(_jsonl(lines))
    batch = client.batches.create(input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h")
    assert batch.status == "validating"
    return batch.id


def test_batch_round_trip_matches_sync_outputs_at_half_price(
    served: tuple[OpenAISimulator, openai.OpenAI],
) -> None:
    sim, client = served
    batch_id = _submit(client, _requests())

    statuses = []
    for _ in range(POLLS):
        batch = client.batches.retrieve(batch_id)
        statuses.append(batch.status)
    assert statuses == ["in_progress", "completed"]
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        3,
        3,
        0,
    )
    assert batch.output_file_id and batch.error_file_id is None

    lines = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    by_id = {line["custom_id"]: line for line in lines}
    assert set(by_id) == set(TRANSCRIPTS)
    for custom_id, transcript in TRANSCRIPTS.items():
        line = by_id[custom_id]
        assert line["error"] is None and line["response"]["status_code"] == 200
        assert line["response"]["request_id"].startswith("req_")
        batch_output = line["response"]["body"]["output"][0]["content"][0]["text"]
        sync = client.responses.create(**_body(transcript))
        assert json.loads(batch_output) == json.loads(sync.output_text)
        CallAnalysis.model_validate_json(batch_output)

    stats = sim.stats
    batch_bills = [b for b in stats.billed if b.batch]
    sync_bills = [b for b in stats.billed if not b.batch]
    assert len(batch_bills) == 3 and len(sync_bills) == 3
    # Same request through batch and sync shares a fingerprint: a repeat is detectable.
    assert sorted(stats.duplicate_fingerprints()) == sorted(b.fingerprint for b in batch_bills)
    for batch_bill in batch_bills:
        twin = next(b for b in sync_bills if b.fingerprint == batch_bill.fingerprint)
        assert batch_bill.cost_usd == pytest.approx(twin.cost_usd / 2)
    assert stats.usage_by_model[TEXT_MODEL].batch_requests == 3

    # Polling a finished batch does not bill again.
    client.batches.retrieve(batch_id)
    assert len(sim.stats.billed) == 6


def test_audio_transcriptions_cannot_be_batched(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    _, client = served
    uploaded = client.files.create(file=("a.jsonl", _jsonl(_requests())), purpose="batch")
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/audio/transcriptions",  # type: ignore[arg-type]
            completion_window="24h",
        )
    assert caught.value.param == "endpoint"


def test_invalid_input_file_fails_the_batch(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    _, client = served
    lines = _requests()
    lines[1]["url"] = "/v1/chat/completions"
    lines[2]["custom_id"] = lines[0]["custom_id"]
    batch = client.batches.retrieve(_submit(client, lines))
    assert batch.status == "failed" and batch.output_file_id is None
    assert batch.errors is not None and batch.errors.data
    assert [(e.code, e.line) for e in batch.errors.data] == [
        ("mismatched_endpoint", 2),
        ("duplicate_custom_id", 3),
    ]


def test_cancel_and_failed_lines(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    sim, client = served
    batch_id = _submit(client, _requests())
    assert client.batches.cancel(batch_id).status == "cancelling"
    assert client.batches.retrieve(batch_id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch_id)

    sim.faults = OpenAIFaults(batch_line_error_rate=1.0)
    failing = _submit(client, _requests())
    batch = [client.batches.retrieve(failing) for _ in range(POLLS)][-1]
    assert batch.status == "completed" and batch.output_file_id is None and batch.error_file_id
    errors = [json.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()]
    assert {e["response"]["status_code"] for e in errors} == {500}
    assert sim.stats.faults[FaultKind.BATCH_LINE_ERROR] == 3 and sim.stats.billed == []


def test_batch_files_must_be_jsonl(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    _, client = served
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("analysis.csv", b"a,b\n"), purpose="batch")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-doesnotexist")
