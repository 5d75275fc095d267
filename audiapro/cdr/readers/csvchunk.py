"""Assembling CSV records into :class:`RawChunk` objects (frame, positions, raw JSON text)."""

from __future__ import annotations

import itertools
from json.encoder import encode_basestring
from typing import Final

import numpy as np
import pandas as pd

from audiapro.cdr.headers import HeaderMapping
from audiapro.cdr.normalize import REJECT_MARKER
from audiapro.cdr.readers.common import RawChunk

#: Column holding ``main_cdr``/``sub_cdr`` in exports that carry the call grouping, and the value that
#: marks a synthetic per-call summary row.
GROUP_MARKER_FIELD: Final = "cdr"
SUMMARY_MARKER: Final = "main_cdr"


def _raw_template(raw_names: tuple[str, ...]) -> str:
    """``%``-template of one record's JSON object; the values are filled in already JSON-encoded.

    Building the text with one C-level ``encode_basestring`` per value and one ``%`` per row is several
    times faster than ``json.dumps`` of a dict per row, which would dominate the reader's run time.
    """
    members = (encode_basestring(name).replace("%", "%%") + ":%s" for name in raw_names)
    return "{" + ",".join(members) + "}"


class ChunkBuilder:
    """Accumulates one chunk. Values go into one flat list rather than a list per row: millions of
    short-lived row lists kept alive would make the cyclic garbage collector rescan them repeatedly."""

    def __init__(self, mapping: HeaderMapping) -> None:
        self._columns = list(mapping.columns)
        self._template = _raw_template(mapping.raw_names)
        self._blank = [""] * len(self._columns)
        self._reset()

    def _reset(self) -> None:
        self._values: list[str] = []
        self._positions: list[int] = []
        self._raw_json: list[str] = []
        self._reasons: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._positions)

    def add_rows(self, rows: list[list[str]], first_line: int) -> None:
        """Add well-formed records that start on consecutive lines from ``first_line``."""
        template = self._template
        self._values.extend(itertools.chain.from_iterable(rows))
        self._raw_json.extend([template % tuple(map(encode_basestring, row)) for row in rows])
        self._positions.extend(range(first_line, first_line + len(rows)))

    def add_reject(self, position: int, reason: str, raw_json: str) -> None:
        """Add an unusable record: empty fields, the reason, its raw JSON."""
        self._reasons[len(self._positions)] = reason
        self._values.extend(self._blank)
        self._raw_json.append(raw_json)
        self._positions.append(position)

    def take(self) -> RawChunk:
        """The accumulated chunk; the builder starts over empty."""
        values = np.array(self._values, dtype=object).reshape(len(self._positions), len(self._columns))
        frame = pd.DataFrame(values, columns=self._columns, dtype="str")
        reasons = [""] * len(self._positions)
        for index, reason in self._reasons.items():
            reasons[index] = reason
        frame[REJECT_MARKER] = pd.array(reasons, dtype="str")
        chunk = _without_summaries(RawChunk(frame=frame, positions=self._positions, raw_json=self._raw_json))
        self._reset()
        return chunk


def _without_summaries(chunk: RawChunk) -> RawChunk:
    """Drop synthetic ``main_cdr`` summary rows, which exports may carry next to their ``sub_cdr`` legs.

    Like in cdrapi replies, a summary is not a leg. Only rows marked ``main_cdr`` that also lack every
    trace of a channel (no ``uniqueid``, no ``channel``) are dropped: whether the UI marks the single
    row of an ungrouped call ``main_cdr`` too is unknown, and such a row is a real leg.
    """
    frame = chunk.frame
    if GROUP_MARKER_FIELD not in frame.columns:
        return chunk
    summary = (
        (frame[GROUP_MARKER_FIELD].str.strip().str.lower() == SUMMARY_MARKER)
        & (frame["uniqueid"].str.strip() == "")
        & (frame["channel"].str.strip() == "")
        & (frame[REJECT_MARKER] == "")
    )
    if not summary.any():
        return chunk
    keep = ~summary.to_numpy()
    return RawChunk(
        frame=frame[keep].reset_index(drop=True),
        positions=list(itertools.compress(chunk.positions, keep)),
        raw_json=list(itertools.compress(chunk.raw_json, keep)),
    )
