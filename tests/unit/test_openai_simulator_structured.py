"""OpenAI simulator: structured outputs via `/v1/responses` and `/v1/chat/completions`."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any, Literal

import openai
import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

from audiapro.analysis.openai_simulator import OpenAISimulator
from audiapro.analysis.openai_simulator.heuristics import build_context
from audiapro.analysis.openai_simulator.schema_gen import SchemaGenerator
from tests.unit.openai_simulator_support import (
    APPOINTMENT_TRANSCRIPT,
    REFUND_TRANSCRIPT,
    TEXT_MODEL,
    CallAnalysis,
    Sentiment,
    running,
)

pytestmark = pytest.mark.timeout(60)

INSTRUCTIONS = "You analyse call-centre transcripts. Return the CallAnalysis JSON."


@pytest.fixture
def served() -> Iterator[tuple[OpenAISimulator, openai.OpenAI]]:
    with running(seed=3) as pair:
        yield pair


def _parse_responses(client: openai.OpenAI, transcript: str) -> CallAnalysis:
    response = client.responses.parse(
        model=TEXT_MODEL, instructions=INSTRUCTIONS, input=transcript, text_format=CallAnalysis
    )
    assert response.status == "completed"
    parsed = response.output_parsed
    assert isinstance(parsed, CallAnalysis)
    return parsed


def test_responses_parse_returns_a_valid_model(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    sim, client = served
    analysis = _parse_responses(client, REFUND_TRANSCRIPT)
    # Re-validating the dump proves every constraint holds (ranges, list lengths, enums).
    assert CallAnalysis.model_validate(analysis.model_dump()) == analysis
    # Keyword heuristics: a refund call picks the matching enum values.
    assert analysis.outcome == "refund_requested"
    assert analysis.refund_requested is True
    assert analysis.sentiment is Sentiment.negative
    assert "refund" in analysis.topics

    usage = sim.stats.usage_by_model[TEXT_MODEL]
    assert usage.requests == 1 and usage.input_tokens > 0 and usage.output_tokens > 0


def test_same_input_same_output_and_cues_steer_outcome(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    _, client = served
    first = _parse_responses(client, APPOINTMENT_TRANSCRIPT)
    second = _parse_responses(client, APPOINTMENT_TRANSCRIPT)
    assert first == second
    assert first.outcome == "appointment_booked"
    assert first.sentiment is Sentiment.positive


def test_chat_completions_parse_returns_a_valid_model(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    sim, client = served
    messages: list[Any] = [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": REFUND_TRANSCRIPT},
    ]
    completion = client.chat.completions.parse(
        model=TEXT_MODEL, messages=messages, response_format=CallAnalysis
    )
    again = client.chat.completions.parse(model=TEXT_MODEL, messages=messages, response_format=CallAnalysis)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.refusal is None
    parsed = choice.message.parsed
    assert isinstance(parsed, CallAnalysis) and parsed.outcome == "refund_requested"
    assert again.choices[0].message.parsed == parsed
    assert completion.usage is not None and completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert sim.stats.requests["POST /v1/chat/completions"] == 2


def test_non_strict_schema_is_rejected(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    _, client = served
    loose_schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    text_format: Any = {"type": "json_schema", "name": "Loose", "schema": loose_schema, "strict": True}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=TEXT_MODEL, input="hello", text={"format": text_format})
    assert caught.value.code == "invalid_json_schema"
    assert "additionalProperties" in caught.value.message


def test_unknown_model_is_not_found(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    _, client = served
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-2", input="hi")
    assert caught.value.code == "model_not_found"


def test_output_token_limit_truncates(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    sim, client = served
    text_format: Any = {
        "type": "json_schema",
        "name": "CallAnalysis",
        "strict": True,
        "schema": to_strict_json_schema(CallAnalysis),
    }
    response = client.responses.create(
        model=TEXT_MODEL, input=REFUND_TRANSCRIPT, max_output_tokens=16, text={"format": text_format}
    )
    assert response.status == "incomplete"
    assert (
        response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    )
    assert response.usage is not None and response.usage.output_tokens == 16
    # Chat Completions reports the same cut as finish_reason "length", which `.parse` raises on.
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(
            model=TEXT_MODEL,
            messages=[{"role": "user", "content": REFUND_TRANSCRIPT}],
            response_format=CallAnalysis,
            max_completion_tokens=16,
        )
    # Truncated answers are still paid for.
    assert len(sim.stats.billed) == 2


class Leaf(BaseModel):
    """Recursive node for the generator test."""

    label: Literal["a", "b"]
    weight: float = Field(gt=0, lt=1)
    children: list[Leaf] = Field(max_length=2)
    parent: Leaf | None


@pytest.mark.parametrize("model", [CallAnalysis, Leaf])
def test_generator_output_validates_for_many_seeds(model: type[BaseModel]) -> None:
    schema = to_strict_json_schema(model)
    for seed in range(40):
        value = SchemaGenerator(schema, build_context(REFUND_TRANSCRIPT), random.Random(seed)).generate()
        model.model_validate_json(json.dumps(value))


def test_generator_handles_plain_json_schema_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"type": ["string", "null"], "enum": ["x", "y", None]},
            "when": {"type": "string", "format": "date-time"},
            "count": {"type": "integer", "minimum": 10, "multipleOf": 5},
            "tags": {"type": "array", "items": {"enum": ["p", "q"]}, "minItems": 2, "uniqueItems": True},
            "code": {"type": "string", "minLength": 3, "maxLength": 5},
        },
        "required": ["kind", "when", "count", "tags", "code"],
        "additionalProperties": False,
    }
    for seed in range(20):
        value = SchemaGenerator(schema, build_context(""), random.Random(seed)).generate()
        assert value["kind"] in ("x", "y", None)
        assert value["count"] >= 10 and value["count"] % 5 == 0
        assert sorted(value["tags"]) == ["p", "q"]
        assert 3 <= len(value["code"]) <= 5
        assert value["when"][:2] == "20"
