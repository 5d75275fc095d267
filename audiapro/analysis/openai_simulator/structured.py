"""`/v1/responses` and `/v1/chat/completions`: deterministic, schema-valid model output.

The same engine serves synchronous requests and Batch API lines, so a batch line and the identical
synchronous request produce the same output text and the same billing fingerprint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.billing import Biller
from audiapro.analysis.openai_simulator.config import FaultKind, OpenAISimConfig
from audiapro.analysis.openai_simulator.faults import FaultInjector
from audiapro.analysis.openai_simulator.heuristics import build_context
from audiapro.analysis.openai_simulator.prompts import (
    MIN_MAX_OUTPUT_TOKENS,
    OutputFormat,
    Prompt,
    read_chat_response_format,
    read_max_tokens,
    read_messages,
    read_output_format,
    reject_unsupported,
    require_model,
)
from audiapro.analysis.openai_simulator.schema_gen import SchemaGenerator, violate_schema
from audiapro.analysis.openai_simulator.util import (
    IdFactory,
    canonical_json,
    estimate_tokens,
    seeded_rng,
    sha256_hex,
)

RESPONSES_PATH = "/v1/responses"
CHAT_PATH = "/v1/chat/completions"
# Request features the simulator refuses loudly instead of silently ignoring.
RESPONSES_UNSUPPORTED = ("stream", "background", "tools", "previous_response_id", "conversation", "prompt")
CHAT_UNSUPPORTED = ("stream", "tools", "functions", "audio")
MAX_CHOICES = 8

# Output of `json_object` requests, which carry no schema of their own.
GENERIC_JSON_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "topics": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    },
    "required": ["summary", "sentiment", "topics"],
    "additionalProperties": False,
}
PLAIN_TEXT_SUMMARY_WORDS = 40


@dataclass(frozen=True)
class Completion:
    """One generated answer.

    Attributes:
        text: Output text (JSON for structured formats).
        output_tokens: Billed output tokens.
        truncated: Cut by the output-token limit.
    """

    text: str
    output_tokens: int
    truncated: bool


def _break_json(text: str) -> str:
    """Truncate valid JSON until it no longer parses (the invalid-JSON fault)."""
    broken = text[: max(1, len(text) // 2)]
    while broken:
        try:
            json.loads(broken)
        except ValueError:
            return broken
        broken = broken[:-1]
    return "{"


class TextEngine:
    """Generates and bills text-model answers.

    Args:
        config: Simulator configuration.
        ids: Id generator.
        injector: Fault source (content faults are counted here when applied).
        biller: Billing sink.
    """

    def __init__(
        self, config: OpenAISimConfig, ids: IdFactory, injector: FaultInjector, biller: Biller
    ) -> None:
        self._config = config
        self._ids = ids
        self._injector = injector
        self._biller = biller

    # -- generation ---------------------------------------------------------------------------

    def _generate(
        self,
        prompt: Prompt,
        fmt: OutputFormat,
        *,
        choice: int,
        fault: FaultKind | None,
        max_tokens: int | None,
    ) -> Completion:
        rng = seeded_rng("output", self._config.seed, prompt.all_text, canonical_json(fmt.schema), choice)
        context = build_context(prompt.user_text)
        schema = fmt.schema if fmt.kind == "json_schema" and fmt.schema is not None else GENERIC_JSON_SCHEMA
        if fmt.kind == "text":
            words = context.words[:PLAIN_TEXT_SUMMARY_WORDS]
            text = "Summary: " + (" ".join(words) if words else "no speech in the recording.")
        else:
            value = SchemaGenerator(schema, context, rng).generate()
            if fault is FaultKind.SCHEMA_VIOLATION:
                value = violate_schema(value, schema, rng)
                self._injector.record(fault)
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            if fault is FaultKind.INVALID_JSON:
                text = _break_json(text)
                self._injector.record(fault)
        tokens = estimate_tokens(text, self._config.chars_per_token)
        if max_tokens is not None and tokens > max_tokens:
            return Completion(text[: max_tokens * self._config.chars_per_token], max_tokens, truncated=True)
        return Completion(text, tokens, truncated=False)

    def _input_tokens(self, prompt: Prompt, fmt: OutputFormat) -> int:
        # The schema is part of what the model reads, so it counts as input like the prompt.
        schema_text = canonical_json(fmt.schema) if fmt.schema is not None else ""
        return estimate_tokens(prompt.all_text + schema_text, self._config.chars_per_token)

    def _content_fault(self, fault: FaultKind | None, fmt: OutputFormat, batch: bool) -> FaultKind | None:
        if fmt.kind == "text":
            return None
        if batch:
            fault = self._injector.draw_content()
        if fault is FaultKind.SCHEMA_VIOLATION and fmt.kind != "json_schema":
            return None
        return fault

    # -- endpoints ----------------------------------------------------------------------------

    def responses(self, body: Mapping[str, Any], *, fault: FaultKind | None, batch: bool) -> dict[str, Any]:
        """Answer a `POST /v1/responses` body (raises `SimError` for invalid requests)."""
        model = require_model(body, self._config.text_models)
        reject_unsupported(body, RESPONSES_UNSUPPORTED)
        if "input" not in body:
            raise errors.missing_param("input")
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise errors.invalid_type("instructions", "a string")
        raw_input = body["input"]
        items = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else raw_input
        prompt = read_messages(items, param="input", extra_instructions=instructions or "")
        text_cfg = body.get("text") or {}
        if not isinstance(text_cfg, Mapping):
            raise errors.invalid_type("text", "an object")
        fmt = read_output_format(text_cfg.get("format"), param="text.format")
        max_tokens = read_max_tokens(body, ("max_output_tokens",), MIN_MAX_OUTPUT_TOKENS)
        content_fault = self._content_fault(fault, fmt, batch)
        out = self._generate(prompt, fmt, choice=0, fault=content_fault, max_tokens=max_tokens)
        input_tokens = self._input_tokens(prompt, fmt)
        self._biller.text(
            fingerprint=sha256_hex(RESPONSES_PATH, canonical_json(body)),
            endpoint=RESPONSES_PATH,
            model=model,
            input_tokens=input_tokens,
            output_tokens=out.output_tokens,
            batch=batch,
        )
        now = int(time.time())
        status = "incomplete" if out.truncated else "completed"
        return {
            "id": self._ids.hex("resp_", 48),
            "object": "response",
            "created_at": now,
            "status": status,
            "background": False,
            "completed_at": None if out.truncated else now,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if out.truncated else None,
            "instructions": instructions,
            "max_output_tokens": max_tokens,
            "max_tool_calls": None,
            "model": model,
            "output": [
                {
                    "id": self._ids.hex("msg_", 48),
                    "type": "message",
                    "status": status,
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": out.text, "annotations": [], "logprobs": []}],
                }
            ],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": bool(body.get("store", True)),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": fmt.echo, "verbosity": text_cfg.get("verbosity") or "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": out.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + out.output_tokens,
            },
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    def chat(self, body: Mapping[str, Any], *, fault: FaultKind | None, batch: bool) -> dict[str, Any]:
        """Answer a `POST /v1/chat/completions` body (raises `SimError` for invalid requests)."""
        model = require_model(body, self._config.text_models)
        reject_unsupported(body, CHAT_UNSUPPORTED)
        messages = body.get("messages")
        if messages is None:
            raise errors.missing_param("messages")
        if isinstance(messages, list) and not messages:
            raise errors.SimError(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                "empty array instead.",
                param="messages",
                code="empty_array",
            )
        prompt = read_messages(messages, param="messages")
        fmt = read_chat_response_format(body.get("response_format"))
        max_tokens = read_max_tokens(body, ("max_completion_tokens", "max_tokens"))
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= MAX_CHOICES:
            raise errors.invalid_value("n", f"Invalid 'n': expected an integer between 1 and {MAX_CHOICES}.")
        content_fault = self._content_fault(fault, fmt, batch)
        choices = []
        output_tokens = 0
        for index in range(n):
            out = self._generate(
                prompt, fmt, choice=index, fault=content_fault if index == 0 else None, max_tokens=max_tokens
            )
            output_tokens += out.output_tokens
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": out.text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "length" if out.truncated else "stop",
                }
            )
        input_tokens = self._input_tokens(prompt, fmt)
        self._biller.text(
            fingerprint=sha256_hex(CHAT_PATH, canonical_json(body)),
            endpoint=CHAT_PATH,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            batch=batch,
        )
        return {
            "id": self._ids.alnum("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_" + sha256_hex("fingerprint", str(self._config.seed))[:10],
        }
