"""Fast string cleaning for columns of Python strings (the hot loop of normalization).

pandas' ``.str`` methods on columns of Python strings run a Python-level function per value behind
several layers of validation and NA handling; for the columns normalization touches that overhead
dominated the whole import. These helpers give exactly the same results with one C-level ``map``
per column (or one call per *distinct* value) and fall back to the pandas spelling for anything that
is not plain text (missing values, numbers), so the fast path can never change a result.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

_NUL = "\x00"


def clean_text(values: pd.Series, *, drop_nul: bool = False) -> pd.Series:
    """``values.fillna("").astype(str)`` [``.str.replace("\\x00", "")``] ``.str.strip()``, as objects.

    Args:
        values: Any Series; typically strings as a reader produced them.
        drop_nul: Remove NUL characters (before stripping, as the pandas spelling does).

    Returns:
        An object Series of Python strings with the index of ``values``.
    """
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        array = values.to_numpy()
        try:
            stripped = list(map(str.strip, array))
        except TypeError:  # a missing value or a number: the general path below
            pass
        else:
            # NUL is not whitespace, so it survives stripping: checking the result is enough.
            if drop_nul and _NUL in "".join(stripped):
                stripped = [value.replace(_NUL, "").strip() for value in array]
            return pd.Series(stripped, index=values.index, dtype=object)
    text = values.fillna("").astype(str)
    if drop_nul:
        text = text.str.replace(_NUL, "", regex=False)
    return text.str.strip().astype(object)


def raw_column(raw: pd.DataFrame, name: str, index: pd.Index) -> pd.Series:
    """Column ``name`` of a frame of raw legs as cleaned text (``""`` for every row when it is absent).

    NUL is removed: it cannot be stored in Postgres text, and a PBX bug that emits one must not
    wedge the poll.
    """
    if name not in raw.columns:
        return pd.Series("", index=index, dtype=object)
    return clean_text(raw[name], drop_nul=True)


def map_distinct(values: pd.Series, func: Callable[[str], Any]) -> np.ndarray:
    """``func`` applied to every value of a column of strings, called once per distinct value.

    Columns such as dispositions, call types or phone numbers repeat a few values many times. The
    distinct values come from a ``set`` and go back through a ``dict``: for a column of Python strings
    (whose hashes they cache) several times faster than ``pd.factorize``.

    Args:
        values: A Series of Python strings without missing values (e.g. from :func:`clean_text`).
        func: Returns a scalar (string, None, number or bool) for one value.

    Returns:
        An object array aligned with ``values``.
    """
    items = values.to_numpy(dtype=object).tolist()
    mapped = {value: func(value) for value in set(items)}
    out = np.empty(len(items), dtype=object)
    out[:] = list(map(mapped.__getitem__, items))
    return out


def contains(values: pd.Series, part: str) -> pd.Series:
    """``values.str.contains(part, regex=False)`` for a Series of Python strings (bool Series)."""
    array = values.to_numpy(dtype=object)
    found = np.fromiter(map(operator.contains, array, itertools.repeat(part)), dtype=bool, count=len(array))
    return pd.Series(found, index=values.index)
