"""Request-body readers shared by the Responses and Chat Completions endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.schema_check import check_format

# Content-part types that carry text; images, files and audio parts are ignored.
TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
# The Responses API rejects `max_output_tokens` below 16.
MIN_MAX_OUTPUT_TOKENS = 16


@dataclass(frozen=True)
class Prompt:
    """Text of a request.

    Attributes:
        user_text: What users said (the transcript); steers the heuristics.
        all_text: Everything the model reads (instructions included); drives input tokens.
    """

    user_text: str
    all_text: str


@dataclass(frozen=True)
class OutputFormat:
    """Requested output format.

    Attributes:
        kind: `text`, `json_object` or `json_schema`.
        name: Schema name for `json_schema`.
        schema: The JSON Schema for `json_schema`.
        strict: Strict mode flag.
        echo: The format object as sent, echoed back by the Responses API.
    """

    kind: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool = False
    echo: Mapping[str, Any] | None = None


TEXT_FORMAT = OutputFormat("text", echo={"type": "text"})


def _content_text(content: Any, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise errors.invalid_type(param, "a string or an array of content parts")
    texts = []
    for part in content:
        if (
            isinstance(part, Mapping)
            and part.get("type") in TEXT_PART_TYPES
            and isinstance(part.get("text"), str)
        ):
            texts.append(part["text"])
    return "\n".join(texts)


def read_messages(items: Any, *, param: str, extra_instructions: str = "") -> Prompt:
    """Collect text from chat `messages` or Responses `input` items.

    Args:
        items: The list of message-like objects.
        param: Request parameter name for errors.
        extra_instructions: Responses `instructions`, counted as system text.

    Returns:
        The prompt text.

    Raises:
        SimError: 400 for a malformed list.
    """
    if not isinstance(items, list):
        raise errors.invalid_type(param, "an array")
    user: list[str] = []
    everything: list[str] = [extra_instructions] if extra_instructions else []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise errors.invalid_type(f"{param}[{index}]", "an object")
        if "role" not in item:
            # Non-message items (tool outputs, reasoning) carry no text the simulator uses.
            continue
        text = _content_text(item.get("content"), f"{param}[{index}].content")
        everything.append(text)
        if item["role"] == "user":
            user.append(text)
    all_text = "\n".join(t for t in everything if t)
    return Prompt(user_text="\n".join(user) or all_text, all_text=all_text)


def require_model(body: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    """The `model` field, checked against the allow-list.

    Raises:
        SimError: 400 if missing, 404 `model_not_found` if not allowed.
    """
    model = body.get("model")
    if model is None:
        raise errors.missing_param("model")
    if not isinstance(model, str):
        raise errors.invalid_type("model", "a string")
    if model not in allowed:
        raise errors.model_not_found(model)
    return model


def reject_unsupported(body: Mapping[str, Any], fields: tuple[str, ...]) -> None:
    """400 for request features the simulator does not implement (streaming, tools ...)."""
    for name in fields:
        value = body.get(name)
        if value not in (None, False, [], {}):
            raise errors.unsupported_by_simulator(name, f"'{name}'")


def read_output_format(fmt: Any, *, param: str) -> OutputFormat:
    """Parse a Responses `text.format` object (flat json_schema fields)."""
    if fmt is None:
        return TEXT_FORMAT
    if not isinstance(fmt, Mapping):
        raise errors.invalid_type(param, "an object")
    kind = fmt.get("type")
    if kind == "text":
        return TEXT_FORMAT
    if kind == "json_object":
        return OutputFormat("json_object", echo=dict(fmt))
    if kind == "json_schema":
        strict = bool(fmt.get("strict"))
        check_format(fmt.get("name"), fmt.get("schema"), strict, param=param)
        return OutputFormat("json_schema", str(fmt["name"]), fmt["schema"], strict, echo=dict(fmt))
    raise errors.unsupported_value(f"{param}.type", kind, ["text", "json_object", "json_schema"])


def read_chat_response_format(fmt: Any) -> OutputFormat:
    """Parse a chat `response_format` (json_schema fields nested under `json_schema`)."""
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        inner = fmt.get("json_schema")
        if not isinstance(inner, Mapping):
            raise errors.missing_param("response_format.json_schema")
        return read_output_format({"type": "json_schema", **inner}, param="response_format.json_schema")
    return read_output_format(fmt, param="response_format")


def read_max_tokens(body: Mapping[str, Any], names: tuple[str, ...], minimum: int = 1) -> int | None:
    """The first output-token limit present among `names`, validated against `minimum`."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.invalid_type(name, "an integer")
        if value < minimum:
            raise errors.SimError(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, "
                f"but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        return value
    return None
