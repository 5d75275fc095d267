"""The deterministic natural key of a leg: the same leg arriving by any path is one row.

The UI's CSV export has no ``AcctId``, so the key is built from fields that the API, the export and
the real-time push all carry (``audiapro.cdr.schema.LEG_KEY_FIELDS``): ``uniqueid``, ``channel``,
``dstchannel``, ``start`` (re-rendered canonically) and ``lastapp``. Values are hashed so that the key
carries no phone number (outbound channels embed the dialled number). Legs that agree on every key
field within one batch (a PBX writing the same bookkeeping row twice) are told apart by their order
of appearance (``#2``, ``#3``...), which every path preserves.
"""

from __future__ import annotations

import hashlib

import pandas as pd

#: Separator that cannot occur in PBX field values.
FIELD_SEPARATOR = "\x1f"
KEY_VERSION = "k1"


def leg_keys(fields: pd.DataFrame, order: pd.Series | None = None) -> pd.Series:
    """Compute leg keys.

    Args:
        fields: One column per key field, already canonical strings (stripped; start re-rendered).
        order: Sort key deciding the occurrence number among identical legs (e.g. numeric AcctId);
            defaults to row order.

    Returns:
        A Series of 32-hex-digit keys (with ``#n`` suffixes for repeats), aligned with ``fields``.
    """
    digests = pd.Series(
        [hashlib.blake2b(text.encode(), digest_size=16).hexdigest() for text in _key_texts(fields)],
        index=fields.index,
        dtype=object,
    )
    repeated = digests.duplicated(keep=False)
    if not repeated.any():  # the usual case: no two legs agree on every key field
        return digests
    ranking = pd.DataFrame({"digest": digests, "order": order if order is not None else range(len(fields))})
    occurrence = (
        ranking[repeated]
        .sort_values("order", kind="stable")
        .groupby("digest")
        .cumcount()
        .reindex(fields.index, fill_value=0)
    )
    suffix = ("#" + (occurrence + 1).astype(str)).where(occurrence > 0, "")
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
