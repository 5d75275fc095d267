"""The deterministic natural key of a leg: the same leg arriving by any path is one row.

The UI's CSV export has no ``AcctId``, so the key is built from fields that the API, the export and
the real-time push all carry (``audiapro.cdr.schema.LEG_KEY_FIELDS``): ``uniqueid``, ``channel``,
``dstchannel``, ``start`` (re-rendered canonically) and ``lastapp``. Values are hashed so that the key
carries no phone number (outbound channels embed the dialled number). Legs that agree on every key
field within one batch (a PBX writing the same bookkeeping row twice) are told apart by their order
of appearance (``#2``, ``#3``...), which every path preserves.

:func:`raw_leg_keys` gives the keys of raw legs without normalizing them (what the reconciliation
compares with the warehouse); it runs the very code :func:`audiapro.cdr.normalize.normalize_legs`
builds its keys with (:func:`key_inputs`, :func:`render_start`), so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audiapro.cdr.localtime import parse_wall_clock
from audiapro.cdr.schema import LEG_KEY_FIELDS
from audiapro.cdr.text import raw_column

#: Separator that cannot occur in PBX field values.
FIELD_SEPARATOR = "\x1f"
KEY_VERSION = "k1"
#: Marks the occurrence number of a leg identical in every key field to an earlier one (``<hex>#2``).
OCCURRENCE_MARK = "#"
#: The canonical rendering of a leg's local start (``start_local``, and the ``start`` key field).
CANONICAL_START_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Raw fields a key is computed from: the key fields, and AcctId, which numbers identical legs.
KEY_SOURCE_FIELDS = (*LEG_KEY_FIELDS, "AcctId")


@dataclass(frozen=True)
class RawLegKeys:
    """Keys of a batch of raw legs, aligned with the legs.

    Attributes:
        keys: The ``leg_key`` :func:`audiapro.cdr.normalize.normalize_legs` gives each leg of the
            same batch (in the same order).
        starts: Each leg's canonical local start ``YYYY-MM-DD HH:MM:SS`` (``""`` when unparseable).
    """

    keys: list[str]
    starts: list[str]


def render_start(start_naive: pd.Series) -> pd.Series:
    """Parsed local starts as ``YYYY-MM-DD HH:MM:SS`` strings, ``""`` where the start did not parse."""
    return start_naive.dt.strftime(CANONICAL_START_FORMAT).fillna("")


def key_inputs(fields: Mapping[str, pd.Series], canonical_start: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """The arguments of :func:`leg_keys` from cleaned raw columns.

    Args:
        fields: Cleaned text per raw field name (at least :data:`KEY_SOURCE_FIELDS`), one index.
        canonical_start: :func:`render_start` of the parsed ``start`` column.

    Returns:
        ``(key_fields, order)``: one column per key field, and the numeric AcctId (legs without one
        last) that numbers identical legs.
    """
    key_fields = pd.DataFrame({name: fields[name] for name in LEG_KEY_FIELDS})
    key_fields["start"] = canonical_start
    acct_ids = fields["AcctId"]
    if not any(acct_ids.to_numpy(dtype=object).tolist()):  # UI exports have none: skip the parse
        return key_fields, pd.Series(np.inf, index=acct_ids.index)
    order = pd.to_numeric(acct_ids, errors="coerce").fillna(np.inf)
    return key_fields, order


def raw_leg_keys(raw_legs: Sequence[Mapping[str, str]]) -> RawLegKeys:
    """The leg keys of raw legs, as normalizing this batch would compute them, without normalizing it.

    Identical legs are numbered within the batch, so pass every leg that may be identical to
    another (e.g. a whole PBX day) to get the numbers a load of those legs stores.

    Args:
        raw_legs: Raw legs (``dict[str, str]`` with the UCM's field names).

    Returns:
        Keys and canonical starts, aligned with ``raw_legs``.
    """
    frame = pd.DataFrame.from_records(list(raw_legs)) if raw_legs else pd.DataFrame()
    index = pd.RangeIndex(len(frame))
    frame = frame.reset_index(drop=True)
    fields = {name: raw_column(frame, name, index) for name in KEY_SOURCE_FIELDS}
    starts = render_start(parse_wall_clock(fields["start"]))
    keys = leg_keys(*key_inputs(fields, starts)) if len(frame) else pd.Series([], dtype=object)
    return RawLegKeys(keys=keys.tolist(), starts=starts.tolist())


def base_key(key: str) -> str:
    """A leg key without its occurrence number: the digest all identical legs share."""
    return key.partition(OCCURRENCE_MARK)[0]


def leg_keys(fields: pd.DataFrame, order: pd.Series | None = None) -> pd.Series:
    """Compute leg keys.

    Args:
        fields: One column per key field, already canonical strings (stripped; start re-rendered).
        order: Sort key deciding the occurrence number among identical legs (e.g. numeric AcctId);
            defaults to row order.

    Returns:
        A Series of 32-hex-digit keys (with ``#n`` suffixes for repeats), aligned with ``fields``.
    """
    hexdigests = [hashlib.blake2b(text.encode(), digest_size=16).hexdigest() for text in _key_texts(fields)]
    digests = pd.Series(hexdigests, index=fields.index, dtype=object)
    if len(set(hexdigests)) == len(hexdigests):  # the usual case: no two legs agree on every key field
        return digests
    repeated = digests.duplicated(keep=False)
    ranking = pd.DataFrame({"digest": digests, "order": order if order is not None else range(len(fields))})
    occurrence = (
        ranking[repeated]
        .sort_values("order", kind="stable")
        .groupby("digest")
        .cumcount()
        .reindex(fields.index, fill_value=0)
    )
    suffix = (OCCURRENCE_MARK + (occurrence + 1).astype(str)).where(occurrence > 0, "")
    return (digests + suffix).astype(object)


def _key_texts(fields: pd.DataFrame) -> list[str]:
    """``k1<US>uniqueid<US>channel<US>...`` per row, the text that is hashed."""
    prefix = f"{KEY_VERSION}{FIELD_SEPARATOR}"
    arrays = [fields[c].to_numpy(dtype=object) for c in fields.columns]
    try:
        return [prefix + text for text in map(FIELD_SEPARATOR.join, zip(*arrays, strict=True))]
    except TypeError:  # not all strings (missing values): pandas renders them as it always did
        columns = [fields[c].astype(str) for c in fields.columns]
        return [f"{prefix}{s}" for s in columns[0].str.cat(columns[1:], sep=FIELD_SEPARATOR)]
