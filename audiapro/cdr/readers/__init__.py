"""Readers for CDR files: web-UI CSV exports and saved cdrapi JSON replies -> chunks of raw legs.

Every chunk feeds :func:`audiapro.cdr.normalize.normalize_frame` directly::

    for chunk in iter_cdr_file(path, chunk_rows=50_000):
        batch = normalize_frame(chunk.frame, ctx, positions=chunk.positions, raw_json=chunk.raw_json)

Memory is bounded by ``chunk_rows``, not by the file size: CSV is parsed record by record and a JSON
document is walked item by item (:mod:`audiapro.cdr.readers.jsonstream`). A row that cannot be read
(wrong number of fields, an item that is not an object, a JSON Lines line that is not JSON) is never
dropped and never stops the file: it comes out with its reason in the ``__reject__`` column, its
position and its raw text, and normalization quarantines it. So does a row holding bytes that are
not UTF-8 (reason ``invalid UTF-8 byte 0xE9 in column 'Caller Name'``, raw text with the bytes
written as ``\\xe9``): CSV quarantines the record, JSON the leg whose values hold them (a bad byte
outside a JSON string is a syntax error: in JSON Lines that line is rejected, a JSON document is
refused where it happens, as below). Whole-file problems (no key columns, not UTF-8 at all: UTF-16,
NUL bytes, or more than half of the first 256 KiB's lines undecodable, see
:func:`.common.check_text_encoding`; not JSON) raise :class:`ImportFormatError` before the first
chunk; only a JSON document that breaks off part-way raises it later, where the break is (load a
file's chunks in one transaction if all-or-nothing matters).

Positions: CSV rows carry the physical line their record starts on (the header is line 1, so the
first data row of a plain export is line 2; line breaks inside quoted fields, blank lines and an Excel
``sep=`` line all count; ``\r\n``, ``\n`` and a lone ``\r`` each end one line). JSON rows carry
their 1-based index among the file's rows (legs and rejects) in file order.
"""

from __future__ import annotations

import codecs
from collections.abc import Generator
from pathlib import Path
from typing import Literal

from audiapro.cdr.readers.common import (
    DEFAULT_CHUNK_ROWS,
    READ_BLOCK_BYTES,
    ImportFormatError,
    RawChunk,
    check_text_encoding,
    file_sha256,
)
from audiapro.cdr.readers.csvfile import iter_csv
from audiapro.cdr.readers.jsonfile import iter_json

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "ImportFormatError",
    "RawChunk",
    "detect_format",
    "file_sha256",
    "iter_cdr_file",
]

FileFormat = Literal["csv", "json"]

_JSON_OPENERS = (b"{", b"[")
_WHITESPACE = b" \t\r\n"


def detect_format(path: str | Path) -> FileFormat:
    """Tell a JSON file from a CSV file by its first non-blank character (the name is not trusted).

    A CSV header never starts with ``{`` or ``[``; every accepted JSON layout does.

    Raises:
        ImportFormatError: The file is empty or blank.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        block = fh.read(READ_BLOCK_BYTES).removeprefix(codecs.BOM_UTF8)
        while block:
            text = block.lstrip(_WHITESPACE)
            if text:
                return "json" if text[:1] in _JSON_OPENERS else "csv"
            block = fh.read(READ_BLOCK_BYTES)
    raise ImportFormatError(f"{path.name} is empty.")


def iter_cdr_file(
    path: str | Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Generator[RawChunk, None, None]:
    """Read a CDR file as chunks of raw legs.

    Args:
        path: A web-UI CSV export or a saved cdrapi JSON reply (format detected from the content).
        chunk_rows: Largest number of rows per chunk (rejected rows included).

    Yields:
        :class:`RawChunk` objects in file order.

    Raises:
        ImportFormatError: (from the first ``next()``) the file as a whole is unusable; the message
            says why and what to do.
        ValueError: ``chunk_rows`` is below 1.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    path = Path(path)
    # Parsed on demand: a caller that wants reading to overlap its own work runs the reader in
    # ``prefetch.read_ahead`` (the file import does, with normalization in the same thread).
    return _iter(path, chunk_rows)


def _iter(path: Path, chunk_rows: int) -> Generator[RawChunk, None, None]:
    file_format = detect_format(path)
    check_text_encoding(path)
    if file_format == "csv":
        yield from iter_csv(path, chunk_rows)
    else:
        yield from iter_json(path, chunk_rows)
