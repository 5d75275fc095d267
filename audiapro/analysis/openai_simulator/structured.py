"""`POST /v1/responses` with a strict `json_schema` format: deterministic, schema-valid answers.

The same function answers synchronous requests and Batch API lines, so a batch line and the
identical synchronous request produce the same output text and the same billing fingerprint.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import Any, Final

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.config import OpenAISimConfig
from audiapro.analysis.openai_simulator.faults import FaultKind
from audiapro.analysis.openai_simulator.schema import SchemaGenerator, check_format, violate
from audiapro.analysis.openai_simulator.stats import BilledRequest, IdFactory, StatsRecorder, fingerprint

RESPONSES_PATH: Final = "/v1/responses"
#: Body fields the project's client sends; anything else is refused, not silently ignored.
KNOWN_FIELDS: Final = frozenset(
    {"model", "instructions", "input", "text", "max_output_tokens", "store", "reasoning", "metadata"}
)
#: The Responses API rejects `max_output_tokens` below 16.
MIN_MAX_OUTPUT_TOKENS: Final = 16


def _break_json(text: str) -> str:
    """Cut valid JSON until it no longer parses (the invalid-JSON fault)."""
    broken = text[: max(1, len(text) // 2)]
    while broken:
        try:
            json.loads(broken)
        except ValueError:
            return broken
        broken = broken[:-1]
    return "{"


def _check(body: Mapping[str, Any], config: OpenAISimConfig) -> tuple[str, str, int | None]:
    """The model, the full prompt text and the output limit of a valid request."""
    model = body.get("model")
    if not isinstance(model, str):
        raise errors.missing_param("model")
    if model not in config.text_price_per_million:
        raise errors.model_not_found(model)
    errors.only_known_fields(body, KNOWN_FIELDS)
    if not isinstance(body.get("input"), str):
        raise errors.unsupported("input", "An input other than one string")
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or limit < MIN_MAX_OUTPUT_TOKENS):
        raise errors.invalid(
            "max_output_tokens",
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_MAX_OUTPUT_TOKENS}, but got {limit} instead.",
            "integer_below_min_value",
        )
    return model, f"{body.get('instructions') or ''}\n{body['input']}", limit


def respond(
    body: Mapping[str, Any],
    config: OpenAISimConfig,
    recorder: StatsRecorder,
    ids: IdFactory,
    *,
    fault: FaultKind | None,
    batch: bool,
) -> dict[str, Any]:
    """Answer (and bill) one `/v1/responses` body; `fault` is a content fault to apply.

    Raises:
        SimError: For a request the real API rejects, or one the simulator does not implement.
    """
    model, prompt, limit = _check(body, config)
    schema = check_format((body.get("text") or {}).get("format"))
    canonical = json.dumps(schema, sort_keys=True)
    rng = random.Random(fingerprint("output", config.seed, prompt, canonical))
    value = SchemaGenerator(schema, body["input"], rng).generate()
    if fault is FaultKind.SCHEMA_VIOLATION:
        value = violate(value, schema, rng)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if fault is FaultKind.INVALID_JSON:
        text = _break_json(text)
    if fault is not None:
        recorder.fault(fault.value)
    output_tokens = -(-len(text) // config.chars_per_token)
    truncated = False
    if limit is not None and output_tokens > limit:
        text, output_tokens, truncated = text[: limit * config.chars_per_token], limit, True
    # The schema is part of what the model reads, so it counts as input like the prompt.
    input_tokens = -(-len(prompt + canonical) // config.chars_per_token)
    cost = config.text_cost(model, input_tokens, output_tokens, batch=batch)
    billed = (
        fingerprint(RESPONSES_PATH, body),
        RESPONSES_PATH,
        model,
        batch,
        0.0,
        input_tokens,
        output_tokens,
        cost,
        body["input"],
    )
    recorder.bill(BilledRequest(*billed))
    status = "incomplete" if truncated else "completed"
    return {
        "id": ids.new("resp_", 48),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": limit,
        "model": model,
        "output": [
            {
                "id": ids.new("msg_", 48),
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": False,
        "store": bool(body.get("store", True)),
        "text": body["text"],
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "metadata": body.get("metadata") or {},
    }
