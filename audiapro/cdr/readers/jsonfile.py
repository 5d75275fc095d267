"""Saved cdrapi replies (JSON document or JSON Lines) -> chunks of raw legs.

Accepted layouts: ``{"cdr_root": [...]}``, ``{"response": {"cdr_root": [...]}}``, legacy
``{"cdr": [...]}``, a bare array of items, JSON Lines with one item (or one saved reply) per line,
and a file holding a single item. Items are flat legs or grouped calls; turning an item into legs is
:func:`audiapro.ucm.records.parse_cdr_items`, the same code the API client uses, so a saved reply
and a live poll can never disagree. A row's position is its 1-based index among the file's rows;
within one grouped call its legs come first, then its unreadable ``sub_cdr`` entries (the parser
reports the two separately).

Size limits: a document is streamed item by item (see :mod:`.jsonstream`), so its total size is not
limited; one item may be at most ``jsonstream.MAX_VALUE_CHARS`` (64 Mi characters). JSON Lines is
recognised by a first line of at most ``MAX_JSON_LINE_CHARS`` (256 Ki characters) that is complete
JSON on its own, followed by more lines; a JSON Lines file whose first line is broken is therefore
read as one document and refused with the position of the error.

Bytes that are not UTF-8: inside a JSON string they make that leg a reject (reason naming the byte
and the field, raw JSON with the bytes written as ``\\xNN``) while the other legs, of the same
grouped call too, load; outside a string they are a syntax error (a JSON Lines line is rejected, a
document is refused where it happens).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final

from audiapro.cdr.readers.common import (
    ESCAPE_ERRORS,
    TEXT_ENCODING,
    UNPARSED_KEY,
    ImportFormatError,
    RawChunk,
    bad_bytes_reason,
    dump_json,
    frame_from_records,
    has_bad_bytes,
    reject_record,
)
from audiapro.cdr.readers.jsonstream import LIST_KEYS, WRAPPER_KEY, JsonDocumentStream
from audiapro.cdr.schema import LEG_KEY_FIELDS
from audiapro.ucm.errors import UcmResponseError
from audiapro.ucm.records import extract_cdr_items, is_grouped, parse_cdr_items

#: A first line longer than this is not taken as the first record of a JSON Lines file, so telling the
#: layouts apart never loads a large one-line document (a JSON Lines record is one item: a few KB).
MAX_JSON_LINE_CHARS: Final = 1 << 18
#: Keys that make a lone top-level object a leg rather than a reply envelope.
_LEG_MARKERS: Final = (*LEG_KEY_FIELDS, "AcctId")

Row = tuple[dict[str, str], str]  # (record for the frame, raw JSON text)


def iter_json(path: Path, chunk_rows: int) -> Iterator[RawChunk]:
    """Stream a saved cdrapi reply as chunks of at most ``chunk_rows`` legs (see :func:`iter_cdr_file`).

    Raises:
        ImportFormatError: The document is not well-formed JSON, or holds no CDR list.
    """
    # Undecodable bytes are escaped; a leg whose values hold some is quarantined (see _leg_rows).
    with open(path, encoding=TEXT_ENCODING, errors=ESCAPE_ERRORS) as fh:
        json_lines = _is_json_lines(fh)
        fh.seek(0)
        rows = _json_lines_rows(fh) if json_lines else _document_rows(fh, path.name)
        records: list[dict[str, str]] = []
        raw_json: list[str] = []
        position = 1
        for record, raw in rows:
            records.append(record)
            raw_json.append(raw)
            if len(records) >= chunk_rows:
                yield _chunk(records, raw_json, position)
                position += len(records)
                records, raw_json = [], []
        if records:
            yield _chunk(records, raw_json, position)


def _chunk(records: list[dict[str, str]], raw_json: list[str], first_position: int) -> RawChunk:
    positions = list(range(first_position, first_position + len(records)))
    return RawChunk(frame=frame_from_records(records), positions=positions, raw_json=raw_json)


def _is_json_lines(fh: IO[str]) -> bool:
    """True when the first non-blank line is a complete JSON value and more text follows it.

    A single document spread over lines fails the first test (its first line is ``{`` or ``[``...);
    a compact document on one line fails the second. A one-line JSON Lines file reads the same
    either way.
    """
    line = fh.readline(MAX_JSON_LINE_CHARS)
    while line and not line.strip():
        line = fh.readline(MAX_JSON_LINE_CHARS)
    if not line.endswith("\n"):  # too long, or the only line: a document either way
        return False
    try:
        json.loads(line)
    except ValueError:
        return False
    return any(rest.strip() for rest in fh)


def _json_lines_rows(fh: IO[str]) -> Iterator[Row]:
    for number, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            reason = f"line {number} is not valid JSON: {getattr(exc, 'msg', exc)}"
            yield reject_record(reason, {UNPARSED_KEY: line.rstrip("\r\n")})
            continue
        yield from _value_rows(value)


def _document_rows(fh: IO[str], name: str) -> Iterator[Row]:
    stream = JsonDocumentStream(fh, name)
    items = stream.items()
    while True:
        try:
            item = next(items)
        except StopIteration as stop:
            unstreamed: dict[str, Any] = stop.value
            break
        yield from _value_rows(item)
    if not stream.streamed_list:
        for item in _lone_object_items(unstreamed, name):
            yield from _value_rows(item)


def _lone_object_items(document: dict[str, Any], name: str) -> list[Any]:
    """Items of a top-level object that had no CDR list to stream."""
    if is_grouped(document) or any(key in document for key in _LEG_MARKERS):
        return [document]  # the file holds one item
    try:
        items = extract_cdr_items(document)
    except UcmResponseError as exc:
        raise ImportFormatError(f"{name}: {exc}") from None
    if items is not None:
        return items
    # The messages quote nothing of the file but a numeric status: a run's error is shown to anyone who
    # can open the run, and the file may not be a CDR file at all.
    if "status" in document:
        code = document["status"]
        status = f" (status {code})" if isinstance(code, int) and not isinstance(code, bool) else ""
        raise ImportFormatError(f"{name} holds a UCM error reply{status}, not CDRs.")
    count = len(document)
    raise ImportFormatError(
        f'{name} holds no CDR list: expected {{"cdr_root": [...]}}, a list of CDR items or JSON Lines; '
        f"its top-level object has {count} key{'s' * (count != 1)}, none of them {', '.join(LIST_KEYS)}."
    )


def _value_rows(value: Any) -> Iterator[Row]:
    """Rows of one item, in order; a whole saved reply met where an item was expected is opened up."""
    items: list[Any] = [value]
    if isinstance(value, Mapping) and _is_envelope(value):
        try:
            items = extract_cdr_items(value) or []
        except UcmResponseError as exc:
            yield reject_record(str(exc), value)
            return
    for item in items:
        # One item at a time keeps legs and rejects of different items in file order.
        page = parse_cdr_items([item])
        for leg in page.legs:
            yield _leg_row(leg)
        for bad in page.malformed:
            where = f" ({bad.path})" if bad.path else ""
            yield reject_record(f"{bad.reason}{where}", bad.value)


def _leg_row(leg: dict[str, str]) -> Row:
    """A leg's row; a leg holding undecodable bytes (in a value or a key) becomes a reject instead."""
    raw = dump_json(leg)
    if has_bad_bytes(raw):  # constant time for the usual all-ASCII leg
        return reject_record(bad_bytes_reason(leg.items()), leg)
    return leg, raw


def _is_envelope(value: Mapping[str, Any]) -> bool:
    if any(isinstance(value.get(key), list) for key in LIST_KEYS) or "cdr_root" in value:
        return True
    return isinstance(value.get(WRAPPER_KEY), Mapping)
