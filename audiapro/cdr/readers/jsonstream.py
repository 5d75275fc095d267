"""Incremental reading of one large JSON document: the items of its CDR list one at a time.

A saved cdrapi reply is a single JSON document (``{"cdr_root": [...]}``), possibly hundreds of MB.
Instead of loading it whole, this walks the outer object/array by hand and hands every list item
to the C-accelerated ``json`` decoder on its own, so memory holds one read block plus one item. Only
the container levels a CDR file uses are walked: a top-level array, or a top-level object whose
``cdr_root``/``cdr`` list (also under ``response``) is streamed. Other members are decoded whole and
returned, so the caller can still interpret a file that holds a single leg or an error reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from typing import IO, Any, Final

from audiapro.cdr.readers.common import ImportFormatError

#: Characters read from the file at a time.
READ_BLOCK_CHARS: Final = 1 << 18
#: Largest single value (one list item or one other member) accepted. A CDR item is a few KB; a
#: bigger one means a malformed file (e.g. an unterminated string swallowing the rest).
MAX_VALUE_CHARS: Final = 64 << 20
#: Object keys whose array value holds the CDR items (current firmware, 2013 firmware).
LIST_KEYS: Final = ("cdr_root", "cdr")
#: Object key of the defensive wrapped variant ``{"response": {"cdr_root": [...]}}``.
WRAPPER_KEY: Final = "response"

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_UNTERMINATED = "Unterminated string"
#: Longer than any JSON token that a buffer end can cut (an escaped surrogate pair is 12 characters).
_TOKEN_MARGIN = 16

#: Items in file order; the generator's return value holds the members that were not streamed.
ItemStream = Generator[Any, None, dict[str, Any]]


class JsonDocumentStream:
    """Walks one JSON document from a text handle (see the module docstring)."""

    def __init__(self, fh: IO[str], name: str) -> None:
        self._fh = fh
        self._name = name
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._lines_dropped = 0  # line breaks in text already discarded from the buffer
        self._decoder = json.JSONDecoder()
        #: True once a CDR list (or a top-level array) was found and streamed.
        self.streamed_list = False

    def items(self) -> ItemStream:
        """Yield the CDR list items in file order.

        Returns:
            (as the generator's return value) the members of the top-level object that were not
            streamed, decoded; ``{}`` for a top-level array.

        Raises:
            ImportFormatError: The text is not one well-formed JSON object or array.
        """
        first = self._peek()
        if first == "[":
            self.streamed_list = True
            self._pos += 1
            yield from self._array_items()
            rest: dict[str, Any] = {}
        elif first == "{":
            self._pos += 1
            rest = yield from self._object_members(top_level=True)
        else:
            raise self._error("expected a JSON object or array")
        if self._peek() != "":
            raise self._error("unexpected text after the end of the JSON document")
        return rest

    # --- containers --------------------------------------------------------------------------------
    def _array_items(self) -> Generator[Any, None, None]:
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            self._peek()
            yield self._value()
            separator = self._peek()
            self._pos += 1
            if separator == "]":
                return
            if separator != ",":
                raise self._error("expected ',' or ']' in the CDR list", back=1)

    def _object_members(self, *, top_level: bool) -> Generator[Any, None, dict[str, Any]]:
        members: dict[str, Any] = {}
        if self._peek() == "}":
            self._pos += 1
            return members
        while True:
            if self._peek() != '"':
                raise self._error("expected an object key")
            key = self._value()
            if self._peek() != ":":
                raise self._error("expected ':' after an object key")
            self._pos += 1
            opener = self._peek()
            if key in LIST_KEYS and opener == "[" and not self.streamed_list:
                self.streamed_list = True
                self._pos += 1
                yield from self._array_items()
            elif key == WRAPPER_KEY and opener == "{" and top_level and not self.streamed_list:
                self._pos += 1
                members[key] = yield from self._object_members(top_level=False)
            else:
                members[key] = self._value()
            separator = self._peek()
            self._pos += 1
            if separator == "}":
                return members
            if separator != ",":
                raise self._error("expected ',' or '}' in an object", back=1)

    # --- scalars and buffer ------------------------------------------------------------------------
    def _peek(self) -> str:
        """Skip whitespace; the next character, ``""`` at the end of the file."""
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            self._pos = match.end() if match else self._pos
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if self._eof:
                return ""
            self._fill()

    def _value(self) -> Any:
        """Decode the complete JSON value starting at the current position."""
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                # Input cut by the end of the buffer fails either inside an unterminated string or
                # within a token's length of the end; any other failure is a real syntax error.
                cut = exc.msg.startswith(_UNTERMINATED) or exc.pos >= len(self._buf) - _TOKEN_MARGIN
                if self._eof or not cut:
                    raise self._error(exc.msg, at=exc.pos) from None
                self._fill()
                continue
            # A value ending exactly at the buffer's end may continue (a number cut in two).
            if end < len(self._buf) or self._eof:
                self._pos = end
                return value
            self._fill()

    def _fill(self) -> None:
        if len(self._buf) - self._pos > MAX_VALUE_CHARS:
            raise self._error(f"a value is larger than {MAX_VALUE_CHARS >> 20} MiB (malformed JSON?)")
        block = self._fh.read(READ_BLOCK_CHARS)
        if not block:
            self._eof = True
            return
        self._lines_dropped += self._buf.count("\n", 0, self._pos)
        self._buf = self._buf[self._pos :] + block
        self._pos = 0

    def _error(self, message: str, *, at: int | None = None, back: int = 0) -> ImportFormatError:
        where = (self._pos - back) if at is None else at
        line = self._lines_dropped + self._buf.count("\n", 0, where) + 1
        return ImportFormatError(f"{self._name} is not a readable JSON document: {message} (line {line}).")
