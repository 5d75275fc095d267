"""Request-side checks of `json_schema` formats, mirroring the strict-mode rules of the real API.

In strict mode every object must set `additionalProperties: false` and list every property in
`required`; the root must be an object. Catching this here means an analysis model that works
against the simulator will not be rejected by the real API for its schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from audiapro.analysis.openai_simulator.errors import SimError

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SUBSCHEMA_LIST_KEYS = ("anyOf", "oneOf", "allOf")
_SUBSCHEMA_MAP_KEYS = ("properties", "$defs", "definitions")


def _walk(schema: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    if not isinstance(schema, Mapping):
        return
    yield path, schema
    for key in _SUBSCHEMA_MAP_KEYS:
        children = schema.get(key)
        if isinstance(children, Mapping):
            for child_name, child in children.items():
                yield from _walk(child, (*path, key, str(child_name)))
    if isinstance(schema.get("items"), Mapping):
        yield from _walk(schema["items"], (*path, "items"))
    for key in _SUBSCHEMA_LIST_KEYS:
        children = schema.get(key)
        if isinstance(children, list):
            for index, child in enumerate(children):
                yield from _walk(child, (*path, key, str(index)))


def _is_object(schema: Mapping[str, Any]) -> bool:
    declared = schema.get("type")
    return declared == "object" or (isinstance(declared, list) and "object" in declared)


def check_format(name: Any, schema: Any, strict: bool, *, param: str) -> None:
    """Validate a json_schema response format.

    Args:
        name: The format name.
        schema: The JSON Schema.
        strict: Whether strict mode was requested.
        param: Request path of the format, used in error `param` (e.g. `text.format`).

    Raises:
        SimError: 400 describing the first problem, worded like the real API.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise SimError(
            400,
            f"Invalid '{param}.name': string does not match pattern. Expected a string that matches the "
            "pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters.",
            param=f"{param}.name",
            code="invalid_value",
        )
    if not isinstance(schema, Mapping):
        raise SimError(
            400,
            f"Missing required parameter: '{param}.schema'.",
            param=f"{param}.schema",
            code="missing_required_parameter",
        )
    prefix = f"Invalid schema for response_format '{name}'"
    if not strict:
        return
    if schema.get("type") != "object":
        raise SimError(
            400,
            f"{prefix}: schema must be a JSON Schema of 'type: \"object\"', "
            f"got 'type: \"{schema.get('type')}\"'.",
            param=f"{param}.schema",
            code="invalid_json_schema",
        )
    for path, node in _walk(schema, ()):
        if not _is_object(node):
            continue
        where = f"In context={path!r}"
        if node.get("additionalProperties") is not False:
            raise SimError(
                400,
                f"{prefix}: {where}, 'additionalProperties' is required to be supplied and to be false.",
                param=f"{param}.schema",
                code="invalid_json_schema",
            )
        properties = node.get("properties", {})
        missing = [p for p in properties if p not in node.get("required", [])]
        if missing:
            raise SimError(
                400,
                f"{prefix}: {where}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'.",
                param=f"{param}.schema",
                code="invalid_json_schema",
            )
