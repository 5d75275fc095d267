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

from audiapro.analysis.models import CallInsights
from audiapro.analysis.openai_simulator import OpenAISimulator
from audiapro.analysis.openai_simulator.schema import SchemaGenerator
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


class Leaf(BaseModel):
    """A recursive node with exclusive bounds (`gt`/`lt`): keywords the analysis models never use."""

    label: Literal["a", "b"]
    weight: float = Field(gt=0, lt=1)
    children: list[Leaf] = Field(max_length=2)


def _strict_format(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "name": model.__name__,
        "strict": True,
        "schema": to_strict_json_schema(model),
    }


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
    # Truncated answers are still paid for.
    assert len(sim.stats.billed) == 1


@pytest.mark.parametrize("model", [CallAnalysis, CallInsights])
def test_generator_output_validates_for_many_seeds(model: type[BaseModel]) -> None:
    schema = to_strict_json_schema(model)
    for seed in range(40):
        value = SchemaGenerator(schema, REFUND_TRANSCRIPT, random.Random(seed)).generate()
        model.model_validate_json(json.dumps(value))


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"text": {"format": _strict_format(Leaf)}}, "text.format.schema"),  # exclusiveMinimum
        ({"text": {"format": {"type": "json_object"}}}, "text.format"),
        ({}, "text.format"),  # a plain-text answer
        ({"input": [{"role": "user", "content": "hi"}]}, "input"),
        ({"temperature": 0.2}, "temperature"),
        ({"stream": True}, "stream"),
    ],
)
def test_what_the_client_never_sends_is_a_clear_400(
    served: tuple[OpenAISimulator, openai.OpenAI], request_fields: dict[str, Any], param: str
) -> None:
    sim, client = served
    request: dict[str, Any] = {
        "model": TEXT_MODEL,
        "input": REFUND_TRANSCRIPT,
        "text": {"format": _strict_format(CallAnalysis)},
        **request_fields,
    }
    if not request_fields:
        del request["text"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(**request)
    assert (caught.value.param, caught.value.code) == (param, "unsupported_by_simulator")
    assert "not supported by the OpenAI simulator" in caught.value.message
    assert sim.stats.billed == []
