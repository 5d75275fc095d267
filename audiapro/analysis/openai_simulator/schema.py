"""Strict `json_schema` formats: the real API's request-side rules, and values that validate.

Only what pydantic emits for the analysis models is implemented: objects, arrays (`minItems`,
`maxItems`), `enum`, strings, integers and numbers (`minimum`, `maximum`), booleans, null, `anyOf`
and local `$ref` into `$defs`. Any other schema keyword is a 400 `unsupported_by_simulator`, so a
model that the simulator answers is one it really understood.

Generated values are steered by cue words in the input (a refund call picks refund-like enum values,
negative sentiment, "refund" topics), so downstream code sees plausible, reproducible answers.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from audiapro.analysis.openai_simulator import errors

Schema = Mapping[str, Any]

NAME_PATTERN: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: Keywords understood by the generator; `title`, `description` and `default` are documentation.
KNOWN_KEYWORDS: Final = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "enum"}
    | {"minimum", "maximum", "anyOf", "$ref", "$defs", "title", "description", "default"}
)
MAX_ITEMS: Final = 3  # arrays get at most this many items beyond `minItems`
DEFAULT_INT_RANGE: Final = (0, 100)
NUMBER_DECIMALS: Final = 3
NULL_PROBABILITY: Final = 0.2
RANDOM_BOOLEAN_TRUE: Final = 0.3
STEM_LENGTH: Final = 5  # "cancel" matches "cancellation", "booked" matches "book"
MIN_TOKEN_LENGTH: Final = 3
LONG_TEXT_NAMES: Final = frozenset({"summary", "description", "reason", "reasons", "notes", "explanation"})
TOPIC_NAMES: Final = frozenset({"topic", "topics", "tag", "tags", "label", "labels"})
# Name words that carry no topic (e.g. "refund_requested" is about "refund").
BOOLEAN_STOPWORDS: Final = frozenset(
    {"is", "has", "was", "requested", "needed", "call", "caller", "customer", "agent"}
)
EMPTY_TEXT: Final = "No speech detected."
_TOKEN_RE: Final = re.compile(r"[a-z0-9]+")

# Topic → (substrings that reveal it, words its enum values and tags tend to contain).
CUES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "refund": (("refund", "money back", "charged twice"), ("refund", "billing", "negative", "follow")),
    "cancel": (("cancel",), ("cancel", "cancellation", "churn", "negative")),
    "appointment": (("appointment", "book an"), ("appointment", "booked", "booking", "schedule", "positive")),
    "complaint": (("complaint", "manager"), ("complaint", "escalation", "negative", "manager")),
    "billing": (("invoice", "bill ", "payment"), ("billing", "invoice", "payment", "neutral")),
    "sales": (("upgrad", "quote", "price"), ("sales", "sale", "upgrade", "quote", "positive")),
    "support": (("dropping", "log in", "portal"), ("support", "technical", "issue", "neutral")),
}


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text.lower())


def _stems(text: str) -> set[str]:
    return {t[:STEM_LENGTH] for t in _tokens(text) if len(t) >= MIN_TOKEN_LENGTH}


def _walk(node: Any, path: str) -> Iterator[tuple[str, Schema]]:
    if not isinstance(node, Mapping):
        return
    yield path, node
    for key in ("properties", "$defs"):
        for name, child in (node.get(key) or {}).items():
            yield from _walk(child, f"{path}/{key}/{name}")
    yield from _walk(node.get("items"), f"{path}/items")
    for index, child in enumerate(node.get("anyOf") or []):
        yield from _walk(child, f"{path}/anyOf/{index}")


def check_format(fmt: Any) -> Schema:
    """The schema of a Responses `text.format`, checked as the real API checks strict formats.

    Raises:
        SimError: 400 for a missing, non-strict or unimplemented format, worded like the real API.
    """
    param = "text.format"
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema" or fmt.get("strict") is not True:
        raise errors.unsupported(param, "An answer format other than a strict json_schema")
    name, schema = fmt.get("name"), fmt.get("schema")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise errors.invalid(
            f"{param}.name", f"Invalid '{param}.name': expected a string matching '^[a-zA-Z0-9_-]+$'."
        )
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise errors.invalid(
            f"{param}.schema", "schema must be a JSON Schema of 'type: \"object\"'.", "invalid_json_schema"
        )
    prefix = f"Invalid schema for response_format '{name}'"
    for path, node in _walk(schema, "#"):
        unknown = sorted(set(node) - KNOWN_KEYWORDS)
        if unknown and not path.endswith(("/properties", "/$defs")):
            raise errors.unsupported(f"{param}.schema", f"Schema keyword '{unknown[0]}' (at {path})")
        if node.get("type") != "object":
            continue
        if node.get("additionalProperties") is not False:
            raise errors.invalid(
                f"{param}.schema",
                f"{prefix}: In context={path}, 'additionalProperties' is required to be supplied "
                "and to be false.",
                "invalid_json_schema",
            )
        missing = [p for p in node.get("properties", {}) if p not in node.get("required", [])]
        if missing:
            raise errors.invalid(
                f"{param}.schema",
                f"{prefix}: In context={path}, 'required' is required to be supplied and to be an array "
                f"including every key in properties. Missing '{missing[0]}'.",
                "invalid_json_schema",
            )
    return schema


@dataclass(frozen=True)
class _Context:
    """What the generator knows about the input: its words, stems (plus cue hints) and cues."""

    words: list[str]
    stems: frozenset[str]
    cues: tuple[str, ...]


def _context(text: str) -> _Context:
    lowered = text.lower()
    cues = tuple(name for name, (triggers, _) in CUES.items() if any(t in lowered for t in triggers))
    stems = _stems(text).union(*(_stems(" ".join(CUES[name][1])) for name in cues))
    return _Context(text.split(), frozenset(stems), cues)


class SchemaGenerator:
    """Generates one value for a checked root schema.

    Args:
        root: The root JSON Schema (holds `$defs` for `$ref`).
        text: The input the answer is about; steers enum values, booleans and tags.
        rng: Seeded RNG; the same RNG state gives the same value.
    """

    def __init__(self, root: Schema, text: str, rng: random.Random) -> None:
        self._root = root
        self._ctx = _context(text)
        self._rng = rng

    def generate(self) -> Any:
        """A value valid against the root schema."""
        return self._value(self._root, "")

    def _resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            ref = str(schema["$ref"])
            target = self._root.get("$defs", {}).get(ref.removeprefix("#/$defs/"))
            if not ref.startswith("#/$defs/") or not isinstance(target, Mapping):
                raise errors.unsupported("text.format.schema", f"The $ref {ref!r}")
            schema = target
        return schema

    def _value(self, schema: Schema, name: str) -> Any:
        schema = self._resolve(schema)
        if "enum" in schema:
            return self._ranked(list(schema["enum"]))[0]
        if "anyOf" in schema:
            branches = [b for b in schema["anyOf"] if self._resolve(b).get("type") != "null"]
            if len(branches) < len(schema["anyOf"]) and (
                not branches or self._rng.random() < NULL_PROBABILITY
            ):
                return None
            return self._value(self._rng.choice(branches), name)
        kind = schema.get("type", "string")
        if kind == "object":
            return {prop: self._value(sub, prop) for prop, sub in schema.get("properties", {}).items()}
        if kind == "array":
            return self._array(schema, name)
        if kind in ("integer", "number"):
            return self._number(schema, integer=kind == "integer")
        if kind == "boolean":
            topic = [t for t in _tokens(name) if t not in BOOLEAN_STOPWORDS]
            return (
                any(t[:STEM_LENGTH] in self._ctx.stems for t in topic)
                or self._rng.random() < RANDOM_BOOLEAN_TRUE
            )
        return None if kind == "null" else self._string(name)

    def _ranked(self, values: list[Any]) -> list[Any]:
        """Values ordered best match with the input first; ties in a seeded random order."""
        self._rng.shuffle(values)
        return sorted(values, key=lambda v: -len(_stems(str(v)) & self._ctx.stems))

    def _array(self, schema: Schema, name: str) -> list[Any]:
        low = int(schema.get("minItems", 0))
        count = self._rng.randint(
            low, max(low, min(int(schema.get("maxItems", low + MAX_ITEMS)), low + MAX_ITEMS))
        )
        items = self._resolve(schema.get("items", {}))
        if "enum" in items:  # enum lists (topics, tags): best matches first, no repeats
            ranked = self._ranked(list(items["enum"]))
            return [ranked[i % len(ranked)] for i in range(count)]
        return [self._value(items, name) for _ in range(count)]

    def _number(self, schema: Schema, *, integer: bool) -> float:
        low, high = schema.get("minimum", DEFAULT_INT_RANGE[0]), schema.get("maximum", DEFAULT_INT_RANGE[1])
        if integer:
            return self._rng.randint(int(low), int(high))
        return round(self._rng.uniform(float(low), float(high)), NUMBER_DECIMALS)

    def _string(self, name: str) -> str:
        name_words = set(_tokens(name))
        if name_words & TOPIC_NAMES and self._ctx.cues:
            return str(self._rng.choice(self._ctx.cues))
        words = self._ctx.words
        if not words:
            return EMPTY_TEXT if name_words & LONG_TEXT_NAMES else "none"
        count = min(
            len(words), self._rng.randint(8, 20) if name_words & LONG_TEXT_NAMES else self._rng.randint(1, 4)
        )
        start = self._rng.randrange(len(words) - count + 1)
        return " ".join(words[start : start + count])


def violate(value: Any, root: Schema, rng: random.Random) -> Any:
    """Break a valid object by dropping one required top-level field (the schema-violation fault)."""
    required = [k for k in root.get("required", []) if k in value]
    if not required:
        return [value]  # a list is invalid wherever an object is expected
    dropped = rng.choice(required)
    return {k: v for k, v in value.items() if k != dropped}
