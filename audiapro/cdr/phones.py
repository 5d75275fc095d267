"""Phone numbers to E.164 with ``phonenumbers``, computed once per distinct value, not per row."""

from __future__ import annotations

import functools

import pandas as pd
import phonenumbers

from audiapro.cdr.text import clean_text, map_distinct

#: Extensions, feature codes and ring-group numbers are short; real numbers have more digits.
MIN_NATIONAL_DIGITS = 7


#: Distinct (value, region) pairs remembered across batches: chunks of one file and successive polls
#: repeat the same customers, and ``phonenumbers`` costs tens of microseconds per value.
E164_CACHE_SIZE = 1 << 16


@functools.lru_cache(maxsize=E164_CACHE_SIZE)
def _to_e164(value: str, region: str) -> str | None:
    digits = sum(ch.isdigit() for ch in value)
    if digits < MIN_NATIONAL_DIGITS:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def to_e164(values: pd.Series, region: str) -> pd.Series:
    """Map raw caller/callee values to E.164 (None for extensions, withheld or unparseable values).

    Args:
        values: Raw numbers as the PBX wrote them (``"07700900123"``, ``"+1 555 ..."``, ``"203"``).
        region: ISO 3166 region used for numbers written in national format (the tenant's region).

    Returns:
        A Series of E.164 strings or None, aligned with ``values``.
    """
    text = clean_text(values)
    return pd.Series(
        map_distinct(text, lambda value: _to_e164(value, region)), index=values.index, dtype=object
    )
