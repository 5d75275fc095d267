"""A pushed body -> raw legs (``dict[str, str]`` keyed by cdrapi field names), whatever its shape.

Nobody has published the exact wire format of the UCM's "CDR Real-time Output" (docs/push.md), so
the parser is tolerant, the way receivers built against real appliances are:

* **JSON**: a flat leg object, an array of them, several documents back to back (NDJSON, a TCP
  stream), ``{"cdr_root": [...]}`` (also ``records``, ``cdrs``,
  ``cdr``, ``data``), and grouped calls (``main_cdr`` + ``sub_cdr_N``: the detail legs replace the
  synthetic summary, as in cdrapi replies);
* **form-encoded** ``key=value&...`` (one leg; a key repeated starts the next leg; a single field
  holding JSON or XML is parsed as such);
* **XML**: any element whose children are all leaf elements is a leg (``<cdr><src>..</src>...``),
  an empty element with attributes too; grouped ``main_cdr``/``sub_cdr_N`` as in JSON. A body with a
  DTD is refused (no entity expansion).

The ``Content-Type`` is a hint only: a body is tried as its declared format first, then as what its
first character suggests. A body that yields no leg with a CDR field raises :class:`PushParseError`
with a one-line reason; the receiver quarantines the body with it.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from audiapro.ucm.records import ITEM_MARKER_KEY, MAIN_CDR_KEY, SUB_CDR_PATTERN, coerce_leg, is_grouped

FORMATS: Final = ("json", "form", "xml")
#: Keys that wrap the leg list (or one leg) in a JSON body.
WRAPPER_KEYS: Final = ("cdr_root", "records", "cdrs", "cdr", "data")
#: A leg must carry at least one of these to be taken for one (else the body is quarantined).
LEG_FIELDS: Final = ("uniqueid", "AcctId", "start", "session")
#: Markers of a DTD: refused, so no entity can be expanded.
_DTD_MARKERS: Final = ("<!DOCTYPE", "<!ENTITY")
_XML_NAMESPACE = re.compile(r"^\{[^}]*\}")
#: Characters of a reason that quote the body.
_QUOTE_CHARS: Final = 60

RawLeg = dict[str, str]


class PushParseError(ValueError):
    """The body yields no CDR leg; the message is the one-line reason stored with it."""


@dataclass(frozen=True)
class ParsedBody:
    """What a body held.

    Attributes:
        format: ``json``, ``form`` or ``xml``.
        legs: Raw legs in body order.
    """

    format: str
    legs: list[RawLeg]


def parse_push_body(body: bytes, content_type: str | None = None) -> ParsedBody:
    """Parse a pushed body (module docstring).

    Args:
        body: The bytes as received.
        content_type: The request's ``Content-Type`` (a hint; may be wrong or absent).

    Raises:
        PushParseError: Nothing in the body is a CDR leg.
    """
    text = _decode(body).strip()
    if not text:
        raise PushParseError("empty body")
    reasons: list[str] = []
    for kind in _attempt_order(text, content_type):
        try:
            legs = _PARSERS[kind](text)
        except PushParseError as exc:
            reasons.append(f"{kind}: {exc}")
            continue
        return ParsedBody(format=kind, legs=legs)
    quoted = text[:_QUOTE_CHARS].replace("\n", " ")
    raise PushParseError(f"not a CDR body ({'; '.join(reasons)}); starts {quoted!r}")


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:  # an old firmware in a Latin-1 locale: keep every byte readable
        return body.decode("latin-1")


def _attempt_order(text: str, content_type: str | None) -> list[str]:
    """The declared format first (when recognisable), then the one the first character suggests."""
    declared = (content_type or "").lower()
    hinted = [
        kind
        for kind, marker in (("json", "json"), ("xml", "xml"), ("form", "x-www-form-urlencoded"))
        if marker in declared
    ]
    sniffed = "json" if text[0] in "{[" else "xml" if text[0] == "<" else "form"
    return list(dict.fromkeys([*hinted, sniffed]))


# --- JSON -----------------------------------------------------------------------------------------


def _parse_json(text: str) -> list[RawLeg]:
    documents = _json_documents(text)
    payload = documents[0] if len(documents) == 1 else documents
    return _checked(_json_legs(payload, depth=0))


#: What may stand between JSON documents sent back to back (NDJSON, a TCP stream, NUL-terminated).
_BETWEEN_DOCUMENTS: Final = " \t\r\n\x00,"


def _json_documents(text: str) -> list[Any]:
    """Every JSON document in ``text``: one, or several back to back (newline- or NUL-separated)."""
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    position = 0
    while True:
        while position < len(text) and text[position] in _BETWEEN_DOCUMENTS:
            position += 1
        if position >= len(text):
            return documents
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise PushParseError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        documents.append(document)


#: Wrapper levels followed at most (a leg list is never nested deeper in any known shape).
_MAX_DEPTH: Final = 4


def _json_legs(value: Any, *, depth: int) -> list[RawLeg]:
    if depth > _MAX_DEPTH:
        raise PushParseError("JSON nested too deeply for a CDR body")
    if isinstance(value, list):
        return [leg for item in value for leg in _json_legs(item, depth=depth + 1)]
    if not isinstance(value, Mapping):
        raise PushParseError(f"JSON {type(value).__name__} where a CDR object was expected")
    for key in WRAPPER_KEYS:
        inner = value.get(key)
        if isinstance(inner, list | Mapping):
            return _json_legs(inner, depth=depth + 1)
    if is_grouped(value):
        return _grouped(value)
    leg = coerce_leg(value)
    if leg.get(ITEM_MARKER_KEY) == "":  # cdrapi's empty item marker is not a field
        del leg[ITEM_MARKER_KEY]
    return [leg]


def _grouped(item: Mapping[str, Any]) -> list[RawLeg]:
    """The ``sub_cdr_N`` legs of a grouped call (``main_cdr`` is a summary, never a leg)."""
    subs = sorted(
        ((int(m.group(1)), value) for key, value in item.items() if (m := SUB_CDR_PATTERN.match(str(key)))),
        key=lambda entry: entry[0],
    )
    legs: list[RawLeg] = []
    for _, value in subs:
        members = value if isinstance(value, list) else [value]
        for member in members:
            if not isinstance(member, Mapping):
                raise PushParseError("a sub_cdr entry is not an object")
            legs.append(coerce_leg(member))
    if not legs:
        raise PushParseError(f"grouped call with {MAIN_CDR_KEY} only, no sub_cdr legs")
    return legs


# --- form-encoded ---------------------------------------------------------------------------------


def _parse_form(text: str) -> list[RawLeg]:
    if "=" not in text:
        raise PushParseError("no key=value pairs")
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise PushParseError(f"invalid form encoding: {exc}") from None
    if len(pairs) == 1 and pairs[0][1].strip()[:1] in ("{", "[", "<"):  # e.g. cdr=<JSON or XML>
        inner = pairs[0][1].strip()
        return _parse_json(inner) if inner[0] in "{[" else _parse_xml(inner)
    legs: list[RawLeg] = [{}]
    for key, value in pairs:
        if key in legs[-1]:  # a field again: the next record of a batch
            legs.append({})
        legs[-1][key] = value
    return _checked(legs)


# --- XML ------------------------------------------------------------------------------------------


def _parse_xml(text: str) -> list[RawLeg]:
    if any(marker in text for marker in _DTD_MARKERS):
        raise PushParseError("XML with a DTD is refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise PushParseError(f"invalid XML: {exc}") from None
    return _checked(_xml_legs(root))


def _tag(element: ET.Element) -> str:
    return _XML_NAMESPACE.sub("", str(element.tag))


def _xml_legs(element: ET.Element) -> list[RawLeg]:
    children = list(element)
    if not children:
        return [dict(element.attrib)] if element.attrib else []
    tags = [_tag(child) for child in children]
    if any(SUB_CDR_PATTERN.match(tag) or tag == MAIN_CDR_KEY for tag in tags):
        subs = [child for child, tag in zip(children, tags, strict=True) if SUB_CDR_PATTERN.match(tag)]
        legs = [leg for sub in subs for leg in _xml_legs(sub)]
        if not legs:
            raise PushParseError(f"grouped call with {MAIN_CDR_KEY} only, no sub_cdr legs")
        return legs
    if all(len(child) == 0 for child in children) and len(set(tags)) == len(tags):
        return [
            {
                **element.attrib,
                **{tag: (child.text or "").strip() for child, tag in zip(children, tags, strict=True)},
            }
        ]
    return [leg for child in children for leg in _xml_legs(child)]


def _checked(legs: list[RawLeg]) -> list[RawLeg]:
    """The legs, when there is at least one and each carries a CDR field."""
    if not legs:
        raise PushParseError("no CDR record in the body")
    for place, leg in enumerate(legs, start=1):
        if not any(leg.get(name, "").strip() for name in LEG_FIELDS):
            fields = ", ".join(sorted(leg)[:6]) or "none"
            raise PushParseError(
                f"record {place} has none of the fields {', '.join(LEG_FIELDS)} (fields: {fields})"
            )
    return legs


_PARSERS = {"json": _parse_json, "form": _parse_form, "xml": _parse_xml}
