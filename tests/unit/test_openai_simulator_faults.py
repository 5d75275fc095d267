"""OpenAI simulator: auth, injected faults and how the real client surfaces them."""

from __future__ import annotations

import json
import logging
import re
import time

import openai
import pydantic
import pytest

from audiapro.analysis.openai_simulator import FaultKind, OpenAIFaults
from tests.unit.openai_simulator_support import (
    API_KEY,
    REFUND_TRANSCRIPT,
    TEXT_MODEL,
    CallAnalysis,
    make_wav,
    running,
)

pytestmark = pytest.mark.timeout(60)

TINY_RETRY_AFTER_S = 0.01
#: Generous for a loaded machine (a retried request must be answered within it), yet far below a hang,
#: which the server cuts short when it stops.
CLIENT_TIMEOUT_S = 2.0
HANG_S = 60.0
#: The openai client's line before each retry, with the wait it chose.
RETRY_LOG = re.compile(r"Retrying request in ([0-9.]+) seconds")


def _analyse(client: openai.OpenAI, transcript: str = REFUND_TRANSCRIPT) -> CallAnalysis | None:
    return client.responses.parse(model=TEXT_MODEL, input=transcript, text_format=CallAnalysis).output_parsed


def test_wrong_key_is_401_and_the_key_is_never_echoed() -> None:
    wrong_key = "sk-wrong-key-that-must-not-leak-42"
    with running() as (sim, _):
        client = openai.OpenAI(base_url=sim.base_url, api_key=wrong_key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            client.batches.list()
        error = caught.value
        assert error.status_code == 401 and error.code == "invalid_api_key"
        dumped = str(error) + json.dumps(error.body) + error.response.text
        assert wrong_key not in dumped and API_KEY not in dumped
        assert "sk-" not in dumped
        assert sim.stats.statuses["GET /v1/batches"][401] == 1


def test_429_with_retry_after_is_retried_by_the_client_and_billed_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="openai")
    faults = OpenAIFaults(
        script=(FaultKind.RATE_LIMIT, FaultKind.RATE_LIMIT), retry_after_s=TINY_RETRY_AFTER_S
    )
    with running(faults=faults, max_retries=3) as (sim, client):
        assert _analyse(client) is not None
        stats = sim.stats
    # The client honoured retry-after-ms (10 ms), not its 0.5 s exponential backoff.
    waits = [float(m.group(1)) for m in RETRY_LOG.finditer(caplog.text)]
    assert waits == [TINY_RETRY_AFTER_S, TINY_RETRY_AFTER_S]
    assert stats.faults[FaultKind.RATE_LIMIT] == 2
    assert stats.statuses["POST /v1/responses"] == {429: 2, 200: 1}
    assert len(stats.billed) == 1


def test_429_surfaces_as_rate_limit_error_with_headers_when_retries_run_out() -> None:
    faults = OpenAIFaults(rate_limit_rate=1.0, retry_after_s=TINY_RETRY_AFTER_S)
    with running(faults=faults, max_retries=1) as (sim, client):
        with pytest.raises(openai.RateLimitError) as caught:
            _analyse(client)
        headers = caught.value.response.headers
        assert headers["retry-after-ms"] == "10" and headers["retry-after"] == "0.01"
        assert caught.value.code == "rate_limit_exceeded"
        assert sim.stats.faults[FaultKind.RATE_LIMIT] == 2 and sim.stats.billed == []


def test_random_rate_limits_still_bill_each_request_once() -> None:
    faults = OpenAIFaults(rate_limit_rate=0.3, retry_after_s=TINY_RETRY_AFTER_S)
    with running(faults=faults, max_retries=8, seed=11) as (sim, client):
        for index in range(10):
            assert _analyse(client, f"{REFUND_TRANSCRIPT} (call {index})") is not None
        stats = sim.stats
    assert stats.faults[FaultKind.RATE_LIMIT] > 0
    assert len(stats.billed) == 10 and stats.duplicate_fingerprints() == []


def test_insufficient_quota_is_a_429_with_its_own_code() -> None:
    with (
        running(faults=OpenAIFaults(insufficient_quota_rate=1.0), max_retries=0) as (_, client),
        pytest.raises(openai.RateLimitError) as caught,
    ):
        _analyse(client)
    assert caught.value.code == "insufficient_quota" and caught.value.type == "insufficient_quota"
    assert "retry-after" not in caught.value.response.headers


def test_500_is_retried_then_succeeds() -> None:
    faults = OpenAIFaults(script=(FaultKind.SERVER_ERROR,))
    with running(faults=faults, max_retries=2) as (sim, client):
        result = client.audio.transcriptions.create(
            file=("c.wav", make_wav(2.0), "audio/wav"), model="gpt-transcribe"
        )
        assert result.text
        stats = sim.stats
    assert stats.statuses["POST /v1/audio/transcriptions"] == {500: 1, 200: 1}
    assert len(stats.billed) == 1


def test_500_without_retries_is_internal_server_error() -> None:
    with (
        running(faults=OpenAIFaults(server_error_rate=1.0), max_retries=0) as (_, client),
        pytest.raises(openai.InternalServerError) as caught,
    ):
        _analyse(client)
    assert caught.value.status_code == 500 and caught.value.type == "server_error"


def test_hang_surfaces_as_timeout_and_is_not_billed() -> None:
    faults = OpenAIFaults(hang_rate=1.0, hang_s=HANG_S)
    with running(faults=faults, max_retries=0, timeout=CLIENT_TIMEOUT_S) as (sim, client):
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            _analyse(client)
        assert time.monotonic() - started < HANG_S / 2
        assert sim.stats.faults[FaultKind.HANG] == 1 and sim.stats.billed == []


def test_hang_then_retry_succeeds_and_bills_once() -> None:
    faults = OpenAIFaults(script=(FaultKind.HANG,), hang_s=HANG_S)
    with running(faults=faults, max_retries=1, timeout=CLIENT_TIMEOUT_S) as (sim, client):
        assert _analyse(client) is not None
        assert len(sim.stats.billed) == 1


def test_invalid_json_makes_parse_raise_pydantic_validation_error() -> None:
    with running(faults=OpenAIFaults(invalid_json_rate=1.0)) as (sim, client):
        with pytest.raises(pydantic.ValidationError) as responses_error:
            _analyse(client)
        with pytest.raises(pydantic.ValidationError):
            _analyse(client, "another call")
        stats = sim.stats
    assert responses_error.value.errors()[0]["type"] == "json_invalid"
    assert stats.faults[FaultKind.INVALID_JSON] == 2
    # The answer was a 200, so it was paid for.
    assert len(stats.billed) == 2


def test_schema_violation_makes_parse_raise_missing_field() -> None:
    with (
        running(faults=OpenAIFaults(schema_violation_rate=1.0)) as (sim, client),
        pytest.raises(pydantic.ValidationError) as caught,
    ):
        _analyse(client)
    assert [e["type"] for e in caught.value.errors()] == ["missing"]
    assert sim.stats.faults[FaultKind.SCHEMA_VIOLATION] == 1


def test_faults_can_be_swapped_at_runtime() -> None:
    with running(max_retries=0) as (sim, client):
        assert _analyse(client) is not None
        sim.faults = OpenAIFaults(server_error_rate=1.0)
        with pytest.raises(openai.InternalServerError):
            _analyse(client)
        sim.faults = OpenAIFaults()
        assert _analyse(client) is not None
        # Non-inference endpoints are outside the default fault scope.
        sim.faults = OpenAIFaults(server_error_rate=1.0)
        assert client.batches.list().data == []


def test_fault_knobs_are_validated() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        OpenAIFaults(rate_limit_rate=0.6, server_error_rate=0.6)
    with pytest.raises(ValueError, match="within"):
        OpenAIFaults(hang_rate=1.5)
