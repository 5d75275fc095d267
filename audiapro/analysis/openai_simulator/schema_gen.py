"""Schema-driven generator of JSON values that validate against a (strict) JSON Schema.

Supports what pydantic and the OpenAI structured-output subset emit: object / properties / required /
additionalProperties, string (enum, const, format, min/maxLength), integer and number (minimum,
maximum, exclusive bounds, multipleOf), boolean, null, array (items, min/maxItems, uniqueItems),
`anyOf` / `oneOf` / `allOf`, type lists such as `["string", "null"]`, and local `$ref` into `$defs`.
`pattern` is not honoured. Choices are deterministic for a given RNG and steered by `TextContext`.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from audiapro.analysis.openai_simulator.heuristics import TextContext, match_score, stem, tokens

Schema = Mapping[str, Any]

# Nested optional objects become null past this depth, so recursive models terminate.
MAX_DEPTH = 4
NULL_PROBABILITY = 0.2
OPTIONAL_PROPERTY_PROBABILITY = 0.5
DEFAULT_MAX_ITEMS = 3
DEFAULT_INT_RANGE = (0, 100)
DEFAULT_NUMBER_RANGE = (0.0, 1.0)
NUMBER_DECIMALS = 3
UNIQUE_ATTEMPTS = 8
LONG_TEXT_WORDS = (8, 20)
SHORT_TEXT_WORDS = (1, 4)
RANDOM_BOOLEAN_TRUE = 0.3
# Property-name words that mark free-text fields deserving a sentence.
LONG_TEXT_NAMES = frozenset(
    {"summary", "description", "reason", "notes", "note", "explanation", "rationale", "details", "comment"}
)
TOPIC_NAMES = frozenset({"topic", "topics", "keyword", "keywords", "tag", "tags", "label", "labels"})
POLARITY_NAMES = frozenset({"sentiment", "satisfaction", "csat", "mood", "happiness"})
# Name words that carry no topic (e.g. "refund_requested" is about "refund").
BOOLEAN_STOPWORDS = frozenset(
    {
        "is",
        "has",
        "was",
        "did",
        "requested",
        "request",
        "flag",
        "needed",
        "required",
        "call",
        "caller",
        "customer",
        "agent",
        "mentioned",
        "detected",
        "present",
    }
)
EMPTY_TEXT = "No speech detected."
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
DAYS_SPAN = 365


def _number_or_none(value: Any) -> float | None:
    """A JSON number as float; None for absent or non-numeric values (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class SchemaError(ValueError):
    """The schema uses a construct the generator cannot satisfy (e.g. a dangling `$ref`)."""


def _types(schema: Schema) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, list):
        return [str(t) for t in declared]
    if isinstance(declared, str):
        return [declared]
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


class SchemaGenerator:
    """Generates one value for a root schema.

    Args:
        root: The root JSON Schema (holds `$defs` for `$ref` resolution).
        context: Input-text context used to steer choices.
        rng: Seeded RNG; the same RNG state gives the same value.
    """

    def __init__(self, root: Schema, context: TextContext, rng: random.Random) -> None:
        self._root = root
        self._ctx = context
        self._rng = rng

    def generate(self) -> Any:
        """A value valid against the root schema."""
        return self._value(self._root, name="", depth=0)

    # -- resolution ---------------------------------------------------------------------------

    def resolve(self, schema: Schema) -> Schema:
        """Follow `$ref` (merging sibling keywords) and flatten `allOf`."""
        while "$ref" in schema:
            target = self._pointer(str(schema["$ref"]))
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings}
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                for key, value in part.items():
                    if key == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **value}
                    elif key == "required":
                        merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
                    else:
                        merged.setdefault(key, value)
            schema = merged
        return schema

    def _pointer(self, ref: str) -> Schema:
        if not ref.startswith("#"):
            raise SchemaError(f"only local $ref is supported, got {ref!r}")
        node: Any = self._root
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or key not in node:
                raise SchemaError(f"dangling $ref {ref!r}")
            node = node[key]
        if not isinstance(node, Mapping):
            raise SchemaError(f"$ref {ref!r} does not point to a schema")
        return node

    # -- dispatch -----------------------------------------------------------------------------

    def _value(self, schema: Schema, *, name: str, depth: int) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._enum(list(schema["enum"]))
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            return self._branch(list(branches), name=name, depth=depth)
        kinds = _types(schema)
        if len(kinds) > 1:
            return self._branch([{**schema, "type": k} for k in kinds], name=name, depth=depth)
        kind = kinds[0] if kinds else "string"
        if kind == "object":
            return self._object(schema, depth=depth)
        if kind == "array":
            return self._array(schema, name=name, depth=depth)
        if kind == "integer":
            return self._integer(schema, name=name)
        if kind == "number":
            return self._number(schema, name=name)
        if kind == "boolean":
            return self._boolean(name)
        if kind == "null":
            return None
        return self._string(schema, name=name)

    def _branch(self, branches: list[Schema], *, name: str, depth: int) -> Any:
        non_null = [b for b in branches if _types(self.resolve(b)) != ["null"]]
        nullable = len(non_null) < len(branches)
        if nullable and (not non_null or depth >= MAX_DEPTH or self._rng.random() < NULL_PROBABILITY):
            return None
        return self._value(self._rng.choice(non_null), name=name, depth=depth)

    # -- kinds --------------------------------------------------------------------------------

    def ranked_enum(self, values: list[Any]) -> list[Any]:
        """Enum values ordered best match first; ties in a seeded random order."""
        shuffled = list(values)
        self._rng.shuffle(shuffled)
        return sorted(shuffled, key=lambda v: -match_score(v, self._ctx))

    def _enum(self, values: list[Any]) -> Any:
        if not values:
            raise SchemaError("empty enum")
        return self.ranked_enum(values)[0]

    def _object(self, schema: Schema, *, depth: int) -> dict[str, Any]:
        properties: Mapping[str, Schema] = schema.get("properties", {})
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for prop, sub in properties.items():
            if prop in required or self._rng.random() < OPTIONAL_PROPERTY_PROBABILITY:
                out[prop] = self._value(sub, name=prop, depth=depth + 1)
        return out

    def _array(self, schema: Schema, *, name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, DEFAULT_MAX_ITEMS)))
        count = (
            low
            if depth >= MAX_DEPTH
            else self._rng.randint(low, max(low, min(high, low + DEFAULT_MAX_ITEMS)))
        )
        items: Schema = self.resolve(schema.get("items", {}))
        unique = bool(schema.get("uniqueItems"))
        if "enum" in items:
            # Enum lists (topics, tags): best matches first, no repeats unless the schema needs more.
            ranked = self.ranked_enum(list(items["enum"]))
            if unique or count <= len(ranked):
                return ranked[:count]
            return [ranked[i % len(ranked)] for i in range(count)]
        out: list[Any] = []
        for _ in range(count):
            value = self._value(items, name=name, depth=depth + 1)
            for _attempt in range(UNIQUE_ATTEMPTS):
                if not unique or value not in out:
                    break
                value = self._value(items, name=name, depth=depth + 1)
            out.append(value)
        return out

    def _bounds(self, schema: Schema, default: tuple[float, float]) -> tuple[float, float, bool, bool]:
        """(low, high, low_exclusive, high_exclusive), falling back to `default` for missing sides."""
        low, high = _number_or_none(schema.get("minimum")), _number_or_none(schema.get("maximum"))
        lo_excl = hi_excl = False
        exclusive_low = _number_or_none(schema.get("exclusiveMinimum"))
        exclusive_high = _number_or_none(schema.get("exclusiveMaximum"))
        if exclusive_low is not None:
            low, lo_excl = exclusive_low, True
        if exclusive_high is not None:
            high, hi_excl = exclusive_high, True
        span = default[1] - default[0]
        if low is None:
            low = default[0] if high is None or default[0] <= high else high - span
        if high is None:
            high = default[1] if default[1] >= low else low + span
        return low, high, lo_excl, hi_excl

    def _polar_fraction(self, name: str) -> float:
        """Position within the range: steered by sentiment cues for sentiment-like names."""
        draw = self._rng.random()
        if POLARITY_NAMES & set(tokens(name)) and self._ctx.polarity:
            # Upper half for positive calls, lower half for negative ones.
            return 0.5 + draw / 2 if self._ctx.polarity > 0 else draw / 2
        return draw

    def _integer(self, schema: Schema, *, name: str) -> int:
        low_f, high_f, lo_excl, hi_excl = self._bounds(schema, DEFAULT_INT_RANGE)
        low = math.floor(low_f) + 1 if lo_excl else math.ceil(low_f)
        high = math.ceil(high_f) - 1 if hi_excl else math.floor(high_f)
        if high < low:
            raise SchemaError(f"empty integer range for {name!r}")
        value = low + round(self._polar_fraction(name) * (high - low))
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            value = max(low, min(high, (value // step) * step))
            if value % step:
                value = math.ceil(low / step) * step
        return int(value)

    def _number(self, schema: Schema, *, name: str) -> float:
        low, high, lo_excl, hi_excl = self._bounds(schema, DEFAULT_NUMBER_RANGE)
        margin = (high - low) * 0.01
        low, high = low + (margin if lo_excl else 0.0), high - (margin if hi_excl else 0.0)
        value = round(low + self._polar_fraction(name) * (high - low), NUMBER_DECIMALS)
        return min(high, max(low, value))

    def _boolean(self, name: str) -> bool:
        topic = [t for t in tokens(name) if t not in BOOLEAN_STOPWORDS and len(t) >= 3]
        if topic and any(stem(t) in self._ctx.stems for t in topic):
            return True
        return self._rng.random() < RANDOM_BOOLEAN_TRUE

    def _string(self, schema: Schema, *, name: str) -> str:
        fmt = schema.get("format")
        if fmt in ("date-time", "date", "time"):
            moment = EPOCH + timedelta(seconds=self._rng.randrange(DAYS_SPAN * 86400))
            text = {"date-time": moment.isoformat(), "date": moment.date().isoformat()}.get(
                str(fmt), moment.time().isoformat()
            )
        elif fmt == "email":
            text = f"caller{self._rng.randrange(1000)}@example.com"
        elif fmt == "uuid":
            text = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        elif fmt in ("uri", "url"):
            text = f"https://example.com/calls/{self._rng.randrange(10**6)}"
        else:
            text = self._snippet(name)
        return self._fit_length(text, schema)

    def _snippet(self, name: str) -> str:
        name_words = set(tokens(name))
        if name_words & TOPIC_NAMES and self._ctx.cues:
            return str(self._rng.choice(self._ctx.cues))
        words = self._ctx.words
        if not words:
            return EMPTY_TEXT if name_words & LONG_TEXT_NAMES else "none"
        low, high = LONG_TEXT_WORDS if name_words & LONG_TEXT_NAMES else SHORT_TEXT_WORDS
        count = min(len(words), self._rng.randint(low, high))
        start = self._rng.randrange(len(words) - count + 1)
        return " ".join(words[start : start + count])

    def _fit_length(self, text: str, schema: Schema) -> str:
        min_len = int(schema.get("minLength", 0))
        max_len = schema.get("maxLength")
        while len(text) < min_len:
            text = f"{text} {text}" if text else "x" * min_len
        if isinstance(max_len, int):
            text = text[:max_len]
        return text


def violate_schema(value: Any, root: Schema, rng: random.Random) -> Any:
    """Break a valid value: drop one required top-level field, or return the wrong type.

    Args:
        value: A value valid against `root`.
        root: The schema (only its top level is consulted).
        rng: Chooses which field to drop.

    Returns:
        A value that no longer validates.
    """
    required = [k for k in root.get("required", []) if isinstance(value, dict) and k in value]
    if required:
        broken = dict(value)
        del broken[rng.choice(required)]
        return broken
    # No required field to drop: a list is invalid wherever an object or scalar is expected.
    return [value] if not isinstance(value, list) else {"unexpected": value}
