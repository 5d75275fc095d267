"""Pieces every CDR file reader shares: the chunk type, the error type, text decoding, chunk building."""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Mapping, Sequence
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

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


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


def check_utf8(path: Path) -> None:
    """Make sure the whole file decodes as UTF-8 before any row is produced.

    Checking up front (one fast sequential read) means a wrongly encoded file fails as a whole with a
    clear message instead of after some chunks have already been loaded.

    Raises:
        ImportFormatError: The file is UTF-16 or contains bytes that are not UTF-8.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0
    with open(path, "rb") as fh:
        head = fh.read(2)
        if head in _UTF16_BOMS:
            raise ImportFormatError(
                f"{path.name} is UTF-16 text; re-export it from the UCM or save it as 'CSV UTF-8'."
            )
        block = head + fh.read(READ_BLOCK_BYTES)
        while block:
            try:
                decoder.decode(block, final=False)
            except UnicodeDecodeError as exc:
                line = lines_before + block.count(b"\n", 0, exc.start) + 1
                raise ImportFormatError(
                    f"{path.name} is not UTF-8 text: byte 0x{block[exc.start]:02X} on line {line} cannot be "
                    "decoded. The UCM exports UTF-8; if the file was re-saved (e.g. in Excel), save it as "
                    "'CSV UTF-8' or export it again."
                ) from None
            lines_before += block.count(b"\n")
            block = fh.read(READ_BLOCK_BYTES)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportFormatError(f"{path.name} ends in the middle of a UTF-8 character.") from None


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def dump_json(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is; anything JSON cannot hold is rendered with ``str``."""
    return _ENCODER.encode(value)


def reject_record(reason: str, raw: Any) -> tuple[dict[str, str], str]:
    """A row for the chunk that carries only its reject reason, and its raw JSON text."""
    return {REJECT_MARKER: reason}, dump_json(raw)


def frame_from_records(records: Sequence[Mapping[str, str]]) -> pd.DataFrame:
    """Frame of string columns from records with possibly different keys (absent keys become ``""``).

    Columns appear in first-seen order, ``__reject__`` last and always present so every chunk has it.
    """
    frame = pd.DataFrame(records, dtype="str").fillna("")
    reasons = frame.pop(REJECT_MARKER) if REJECT_MARKER in frame.columns else ""
    frame[REJECT_MARKER] = reasons
    return frame
