"""Web-UI CSV exports (one row per call leg) -> chunks of raw legs.

Parsing uses the stdlib ``csv`` reader (C code) over the text file: it streams, handles quoted fields
with commas, quotes and line breaks, and its ``line_num`` counts physical lines, which gives every
record's exact starting line even when earlier fields span several lines. For string-only data it
parses as fast as pandas' C engine (measured), reports short rows instead of padding them with NaN
and leaves the rows in hand for building the raw JSON text, which from a DataFrame costs twice as
much. Clean stretches of the file take a batched fast path; see :func:`_iter_records`.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final, Protocol

from audiapro.cdr.headers import ALIAS_INDEX, KEY_FIELD_UI_NAMES, HeaderMapping, header_key, map_headers
from audiapro.cdr.readers.common import (
    COUNTING_ERRORS,
    ESCAPE_ERRORS,
    TEXT_ENCODING,
    UNPARSED_KEY,
    ImportFormatError,
    RawChunk,
    bad_bytes_decoded,
    bad_bytes_reason,
    count_bad_bytes,
    dump_json,
    escape_bad_bytes,
    first_bad_byte,
    has_bad_bytes,
    safe_json,
)
from audiapro.cdr.readers.csvchunk import ChunkBuilder

#: Delimiters tried on the header line. The UI writes commas; spreadsheets re-saved in locales with a
#: decimal comma write semicolons, "Unicode text" saves use tabs.
DELIMITERS: Final = (",", ";", "\t")
#: Excel's optional first line naming the delimiter, e.g. ``sep=;``.
_SEP_LINE = re.compile(r"^sep=(.)\r?\n?$")
#: Key under which surplus fields of a too-long row are kept in its raw JSON.
EXTRA_FIELDS_KEY: Final = "__extra_fields__"
#: Records pulled per C-level batch: small enough that re-reading an irregular batch is cheap.
BATCH_ROWS: Final = 512
#: Header names listed in an error message before it is cut short.
_MAX_HEADERS_IN_MESSAGE: Final = 40


class _CsvReader(Protocol):
    """What is used of ``csv.reader``: the rows and the count of physical lines consumed."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def iter_csv(path: Path, chunk_rows: int) -> Iterator[RawChunk]:
    """Stream a CSV export as chunks of at most ``chunk_rows`` rows (see :func:`iter_cdr_file`).

    Raises:
        ImportFormatError: No header row, or a leg-key column cannot be found.
    """
    with (
        open(path, newline="", encoding=TEXT_ENCODING, errors=COUNTING_ERRORS) as fh,
        _LineFetcher(path) as fetcher,
    ):
        delimiter, skip_sep_line = _sniff_delimiter(fh)
        reader = csv.reader(fh, delimiter=delimiter)
        decoded_before = bad_bytes_decoded()
        if skip_sep_line:
            next(reader)
        headers = _read_header(reader, path)
        if has_bad_bytes("".join(headers)):
            raise ImportFormatError(_bad_header_message(path, reader.line_num, headers))
        mapping = map_headers(headers)
        if mapping.missing_keys:
            raise ImportFormatError(_missing_columns_message(mapping, headers))
        # Undecodable bytes already decoded (read ahead with the header) belong to data rows.
        pending = bad_bytes_decoded() - decoded_before
        yield from _iter_records(reader, mapping, chunk_rows, fetcher, delimiter, pending)


def _sniff_delimiter(fh: IO[str]) -> tuple[str, bool]:
    """Delimiter of the file from its first line, and whether that line is an Excel ``sep=`` hint."""
    first = fh.readline()
    fh.seek(0)
    hint = _SEP_LINE.match(first)
    if hint:
        return hint.group(1), True
    counts = {delimiter: first.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])  # ties keep the comma (first)
    return (best if counts[best] else DELIMITERS[0]), False


def _read_header(reader: _CsvReader, path: Path) -> list[str]:
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                return row
    except csv.Error as exc:
        raise ImportFormatError(f"{path.name}: the header row cannot be read as CSV ({exc}).") from None
    raise ImportFormatError(f"{path.name} has no header row (the file is empty or blank).")


def _bad_header_message(path: Path, line: int, headers: list[str]) -> str:
    # The column by number: a header's text is the file's content (see _missing_columns_message).
    number, byte = next((n, b) for n, b in enumerate(map(first_bad_byte, headers), 1) if b is not None)
    return (
        f"{path.name}: the header row (line {line}) is not UTF-8 text: invalid UTF-8 byte 0x{byte:02X} "
        f"in column {number}. The UCM exports "
        "UTF-8; if the file was re-saved (e.g. in Excel), save it as 'CSV UTF-8' or export it again."
    )


def _missing_columns_message(mapping: HeaderMapping, headers: list[str]) -> str:
    """Which key columns are missing, and which CDR columns the file has.

    Only headers that are known CDR column names (ignoring case and punctuation) are quoted; the others
    are counted. The "header" of a file that is no CDR export at all is its first line, which must
    not show up in a run's error (the Prefect UI shows it to anyone who can open the run).
    """
    missing = ", ".join(f"{KEY_FIELD_UI_NAMES[field]} ({field})" for field in mapping.missing_keys)
    known = [header.strip() for header in headers if header_key(header) in ALIAS_INDEX]
    others = len(headers) - len(known)
    shown = ", ".join(repr(header) for header in known[:_MAX_HEADERS_IN_MESSAGE])
    if len(known) > _MAX_HEADERS_IN_MESSAGE:
        shown += f", ... ({len(known)} CDR columns)"
    if not known:
        shown = f"{len(headers)} column{'s' * (len(headers) != 1)}, none of them a UCM CDR column"
    elif others:
        shown += f" and {others} other column{'s' * (others != 1)}"
    ticks = ", ".join(KEY_FIELD_UI_NAMES.values())
    return (
        f"CDR file lacks columns needed to identify a leg: {missing}. Found: {shown}. In the UCM's CDR "
        f'filter, tick at least {ticks} under "Export File Data" and export again.'
    )


def _iter_records(
    reader: _CsvReader,
    mapping: HeaderMapping,
    chunk_rows: int,
    fetcher: _LineFetcher,
    delimiter: str,
    pending: int,
) -> Iterator[RawChunk]:
    """All records after the header, as chunks; exact start line per record, bad rows as rejects.

    Fast path: records are pulled in batches by C code (``islice``). When a batch consumed exactly one
    line per record and every record has the header's width, its start lines are consecutive and no
    per-record Python work is needed. Any other batch (blank lines, multi-line quoted fields, wrong
    field counts, a csv error, undecodable bytes) is read again from its lines by
    :func:`_exact_records`, record by record.

    ``pending`` counts undecodable bytes decoded but not yet found in a record. Decoding runs ahead
    of parsing, so bytes decoded during one batch may sit in a later one: batches are searched for
    them only while some are pending, so a clean file is never searched at all.
    """
    width = len(mapping.columns)
    builder = ChunkBuilder(mapping)
    while True:
        before = reader.line_num
        decoded_before = bad_bytes_decoded()
        try:
            batch = list(itertools.islice(reader, min(BATCH_ROWS, chunk_rows - len(builder))))
            failed = False
        except csv.Error:  # the rows of this batch read before the error are re-read below
            batch, failed = [], True
        after = reader.line_num
        # Measured around the read alone: the generator may resume in another thread.
        pending += bad_bytes_decoded() - decoded_before
        if not batch and not failed:
            break
        dirty = pending > 0 and has_bad_bytes("".join(itertools.chain.from_iterable(batch)))
        if not failed and not dirty and _regular(batch, width, lines_read=after - before):
            builder.add_rows(batch, first_line=before + 1)
        else:
            lines = fetcher.lines(before + 1, after)
            if pending:
                pending = max(0, pending - sum(map(count_bad_bytes, lines)))
            for position, row, reason, raw in _exact_records(lines, before, delimiter, mapping.raw_names):
                if reason:
                    builder.add_reject(position, reason, raw)
                else:
                    builder.add_rows([row], first_line=position)
                if len(builder) >= chunk_rows:
                    yield builder.take()
        if len(builder) >= chunk_rows:
            yield builder.take()
    if len(builder):
        yield builder.take()


def _regular(batch: list[list[str]], width: int, lines_read: int) -> bool:
    """One line per record and the header's width everywhere (checked by C loops, not per row)."""
    return lines_read == len(batch) and min(map(len, batch)) == width == max(map(len, batch))


def _exact_records(
    lines: list[str], lines_before: int, delimiter: str, raw_names: tuple[str, ...]
) -> Iterator[tuple[int, list[str], str, str]]:
    """Parse ``lines`` record by record: (start line, fields, reject reason or "", raw JSON of a reject).

    Blank lines are skipped. ``line_num`` of a fresh reader over exactly these lines gives each record's
    span, so multi-line quoted fields keep the following line numbers exact. A record holding
    undecodable bytes is rejected whatever else it has, with its text (bytes as ``\\xNN``) as raw.
    """
    reader = csv.reader(lines, delimiter=delimiter)
    width = len(raw_names)
    last = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # only a field beyond csv.field_size_limit(): a runaway quote
            first, last = last + 1, reader.line_num
            text = "".join(lines[first - 1 : last])
            yield lines_before + first, [], f"unreadable CSV record: {exc}", safe_json({UNPARSED_KEY: text})
            continue
        first, last = last + 1, reader.line_num
        if has_bad_bytes("".join(row)):
            text = escape_bad_bytes("".join(lines[first - 1 : last]).rstrip("\r\n"))
            reason = bad_bytes_reason(zip(raw_names, row, strict=False))
            yield lines_before + first, [], reason, dump_json({UNPARSED_KEY: text})
        elif len(row) == width:
            yield lines_before + first, row, "", ""
        elif row and (len(row) > 1 or row[0].strip()):  # else a blank line (e.g. the trailing one)
            reason = f"row has {len(row)} fields, header has {width}"
            yield lines_before + first, [], reason, _raw_of_bad_row(raw_names, row)


def _raw_of_bad_row(raw_names: tuple[str, ...], row: list[str]) -> str:
    record: dict[str, object] = dict(zip(raw_names, row, strict=False))
    if len(row) > len(raw_names):
        record[EXTRA_FIELDS_KEY] = row[len(raw_names) :]
    return dump_json(record)


class _LineFetcher:
    """Reads given physical lines again, for batches that need record-by-record parsing.

    A second handle that only moves forward: batches are requested in file order, so the file is read
    at most once more, and only as far as the last irregular batch.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fh: IO[str] | None = None
        self._lines: Iterator[str] = iter(())
        self._next_line = 1

    def __enter__(self) -> _LineFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fh is not None:
            self._fh.close()

    def lines(self, first: int, last: int) -> list[str]:
        """Lines ``first``..``last`` (1-based, inclusive), line breaks kept."""
        if self._fh is None:
            # Same decoding and newline handling as the reader, so line numbers agree; undecodable
            # bytes escaped the same way, but not counted a second time.
            self._fh = open(self._path, newline="", encoding=TEXT_ENCODING, errors=ESCAPE_ERRORS)  # noqa: SIM115
            self._lines = iter(self._fh)
        skip = first - self._next_line
        if skip < 0:  # cannot happen: batches are requested in file order
            raise RuntimeError(f"line {first} requested after line {self._next_line - 1}")
        lines = list(itertools.islice(self._lines, skip, skip + last - first + 1))
        self._next_line = last + 1
        return lines
