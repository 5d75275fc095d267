"""Pieces every CDR file reader shares: the chunk type, the error type, text decoding, chunk building.

Text decoding: a file that is not UTF-8 at all is refused up front (:func:`check_text_encoding`);
otherwise it is decoded with :data:`COUNTING_ERRORS`, so a stray undecodable byte (one row edited in
another encoding) costs only the row that holds it, which is quarantined with its position, the
byte, the column and its raw text (bytes written as ``\\xNN``).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from audiapro.cdr.normalize import REJECT_MARKER

#: Bytes read at a time when validating or sniffing a file (hashing uses hashlib.file_digest).
READ_BLOCK_BYTES: Final = 1 << 18
#: Default number of rows per chunk.
DEFAULT_CHUNK_ROWS: Final = 50_000
#: Encoding the files are decoded with: UTF-8, a leading byte-order mark is dropped.
TEXT_ENCODING: Final = "utf-8-sig"
#: Key holding the text of a record that could not be parsed at all, in its raw JSON.
UNPARSED_KEY: Final = "__unparsed__"
#: Bytes at the start of a file that decide whether it is UTF-8 text at all.
ENCODING_SAMPLE_BYTES: Final = 1 << 18
#: A file is refused as "not UTF-8" when more than this share of the sample's lines do not decode
#: (and at least ``MIN_UNDECODABLE_LINES`` of them); otherwise each such line is a quarantined row
#: and the rest of the file loads.
MAX_UNDECODABLE_LINE_SHARE: Final = 0.5
#: So a sample of one or two lines (a header and one row, a one-line JSON document) with one bad
#: byte costs that row, not the file.
MIN_UNDECODABLE_LINES: Final = 2
#: Error handler of the readers' text decoding: undecodable bytes become lone surrogates (Python's
#: ``surrogateescape``), so the row holding them can be found and quarantined, and their number is
#: counted per thread (:func:`bad_bytes_decoded`), so clean text is never searched.
COUNTING_ERRORS: Final = "audiapro-count-bad-bytes"
#: Error handler for text decoded a second time (not counted again).
ESCAPE_ERRORS: Final = "surrogateescape"

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
#: What ``surrogateescape`` turns an undecodable byte 0xNN into: the lone surrogate U+DCNN.
_SURROGATE_BASE = 0xDC00
_BAD_BYTE = re.compile("[\udc80-\udcff]")


class ImportFormatError(ValueError):
    """The file as a whole cannot be read as CDRs (wrong columns, not UTF-8, not JSON...).

    Everything that can be checked up front is checked before the first chunk. The one exception is a
    JSON document that breaks off or turns malformed part-way (e.g. a truncated download): streaming
    only finds that where it happens, after the chunks before it were produced.
    """


@dataclass
class RawChunk:
    """A slice of a CDR file as raw legs, ready for :func:`audiapro.cdr.normalize.normalize_frame`.

    Attributes:
        frame: One row per leg; columns are UCM cdrapi field names (unknown CSV columns under a stable
            snake_case name) plus ``__reject__``; every value is a string, ``""`` when empty. A
            non-empty ``__reject__`` is the reason the row could not be read; its other columns are
            then empty and the data is in ``raw_json``.
        positions: Per row, where it is in the file: the 1-based physical line the record starts on
            (CSV) or the 1-based record index (JSON).
        raw_json: Per row, the original record as JSON text.
    """

    frame: pd.DataFrame
    positions: list[int]
    raw_json: list[str]

    def __len__(self) -> int:
        return len(self.positions)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of the file's bytes as lowercase hex, read in blocks (memory does not grow with size)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_text_encoding(path: Path) -> None:
    """Refuse a file that is not UTF-8 text at all, before any row is produced.

    Only the start of the file is looked at: a UTF-16 byte-order mark, a NUL byte in the first
    :data:`ENCODING_SAMPLE_BYTES` (UTF-16 without a mark, or a binary file), or more than
    :data:`MAX_UNDECODABLE_LINE_SHARE` of the sample's lines that do not decode, at least
    :data:`MIN_UNDECODABLE_LINES` of them (a file saved in another encoding), refuse the whole file.
    Otherwise a line with bytes that are not UTF-8 is one bad row: the readers quarantine it (see
    :func:`bad_bytes_reason`) and load the rest.

    Raises:
        ImportFormatError: The file is UTF-16, binary, or mostly not UTF-8.
    """
    with open(path, "rb") as fh:
        sample = fh.read(ENCODING_SAMPLE_BYTES)
        cut = bool(fh.read(1))
    if sample[:2] in _UTF16_BOMS:
        raise ImportFormatError(
            f"{path.name} is UTF-16 text; re-export it from the UCM or save it as 'CSV UTF-8'."
        )
    if b"\x00" in sample:
        raise ImportFormatError(
            f"{path.name} is not UTF-8 text: it holds NUL bytes (UTF-16 without a byte-order mark, or "
            "not a text file). Re-export it from the UCM or save it as 'CSV UTF-8'."
        )
    lines = sample.removeprefix(codecs.BOM_UTF8).splitlines()
    bad = _undecodable(lines, last_cut=cut)
    if len(bad) >= MIN_UNDECODABLE_LINES and len(bad) > MAX_UNDECODABLE_LINE_SHARE * len(lines):
        number, exc = bad[0]
        raise ImportFormatError(
            f"{path.name} is not UTF-8 text: byte 0x{exc.object[exc.start]:02X} on line {number} cannot be "
            f"decoded, like {len(bad) - 1} more of its first {len(lines)} lines. The UCM exports UTF-8; if "
            "the file was re-saved (e.g. in Excel), save it as 'CSV UTF-8' or export it again."
        )


def _undecodable(lines: list[bytes], *, last_cut: bool) -> list[tuple[int, UnicodeDecodeError]]:
    """(1-based line number, error) of each line that is not UTF-8.

    ``last_cut``: the last line was cut by the sample's end, maybe within a character, which is
    not an error.
    """
    if _decode_error(b"\n".join(lines), final=not last_cut) is None:  # the usual case: one C pass
        return []
    last = len(lines)
    errors = ((n, _decode_error(line, final=not last_cut or n < last)) for n, line in enumerate(lines, 1))
    return [(number, exc) for number, exc in errors if exc is not None]


def _decode_error(data: bytes, *, final: bool) -> UnicodeDecodeError | None:
    """Why ``data`` is not UTF-8, or None; ``final=False`` accepts a character cut at the end."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=final)
    except UnicodeDecodeError as exc:
        return exc
    return None


class _BadBytes(threading.local):
    """Bytes the counting error handler escaped, per thread (the thread that reads decodes)."""

    count = 0


_bad_bytes = _BadBytes()
_escape = codecs.lookup_error("surrogateescape")


def _count_and_escape(exc: UnicodeError) -> tuple[str | bytes, int]:
    replacement, end = _escape(exc)
    _bad_bytes.count += len(replacement)
    return replacement, end


codecs.register_error(COUNTING_ERRORS, _count_and_escape)


def bad_bytes_decoded() -> int:
    """How many undecodable bytes this thread's :data:`COUNTING_ERRORS` decoding has escaped so far.

    The difference around a read tells whether that read met bad bytes, without looking at the text.
    """
    return _bad_bytes.count


def has_bad_bytes(text: str) -> bool:
    """Whether ``text`` holds escaped undecodable bytes (constant time for ASCII text)."""
    return not text.isascii() and _BAD_BYTE.search(text) is not None


def count_bad_bytes(text: str) -> int:
    """How many escaped undecodable bytes ``text`` holds."""
    return 0 if text.isascii() else len(_BAD_BYTE.findall(text))


def escape_bad_bytes(text: str) -> str:
    """``text`` with each escaped undecodable byte written as ``\\xNN`` (valid text again)."""
    if not has_bad_bytes(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def bad_bytes_reason(fields: Iterable[tuple[str, str]]) -> str:
    """Reject reason naming the first undecodable byte and the column (field) holding it.

    Args:
        fields: (column name, value) pairs in file order; names may hold bad bytes too.
    """
    for name, value in fields:
        for text in (value, name):
            byte = first_bad_byte(text)
            if byte is not None:
                return f"invalid UTF-8 byte 0x{byte:02X} in column {escape_bad_bytes(name)!r}"
    return "invalid UTF-8 bytes"


def first_bad_byte(text: str) -> int | None:
    """The value of the first escaped undecodable byte in ``text``, None when it holds none."""
    found = _BAD_BYTE.search(text) if not text.isascii() else None
    return None if found is None else ord(found.group()) - _SURROGATE_BASE


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def dump_json(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is; anything JSON cannot hold is rendered with ``str``."""
    return _ENCODER.encode(value)


def safe_json(value: Any) -> str:
    """:func:`dump_json`, with undecodable bytes in any string written as ``\\xNN`` (valid text)."""
    text = dump_json(value)
    return dump_json(_escaped(value)) if has_bad_bytes(text) else text


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return escape_bad_bytes(value)
    if isinstance(value, Mapping):
        return {escape_bad_bytes(str(key)): _escaped(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(item) for item in value]
    return value


def reject_record(reason: str, raw: Any) -> tuple[dict[str, str], str]:
    """A row for the chunk that carries only its reject reason, and its raw JSON text."""
    return {REJECT_MARKER: reason}, safe_json(raw)


def frame_from_records(records: Sequence[Mapping[str, str]]) -> pd.DataFrame:
    """Frame of string columns from records with possibly different keys (absent keys become ``""``).

    Columns appear in first-seen order, ``__reject__`` last and always present so every chunk has it.
    """
    frame = pd.DataFrame(records, dtype="str").fillna("")
    reasons = frame.pop(REJECT_MARKER) if REJECT_MARKER in frame.columns else ""
    frame[REJECT_MARKER] = reasons
    return frame
