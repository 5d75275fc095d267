"""Helpers the file-reader tests share."""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from audiapro.cdr.readers import iter_cdr_file


@dataclass(frozen=True)
class TracedRead:
    """What reading a file chunk by chunk cost in traced Python memory."""

    rows: int
    first_chunk_bytes: int  # traced memory while the first chunk was still held
    peak_bytes: int


def read_traced(path: Path, *, chunk_rows: int) -> TracedRead:
    """Read ``path`` with :func:`iter_cdr_file`, dropping each chunk, under ``tracemalloc``."""
    tracemalloc.start()
    try:
        rows = first = 0
        for chunk in iter_cdr_file(path, chunk_rows=chunk_rows):
            if not rows:
                first = tracemalloc.get_traced_memory()[0]
            rows += len(chunk)
            del chunk
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return TracedRead(rows=rows, first_chunk_bytes=first, peak_bytes=peak)
