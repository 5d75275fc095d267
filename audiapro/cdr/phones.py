"""Phone numbers to E.164 with ``phonenumbers``, computed once per distinct value, not per row."""

from __future__ import annotations

import pandas as pd
import phonenumbers

#: Extensions, feature codes and ring-group numbers are short; real numbers have more digits.
MIN_NATIONAL_DIGITS = 7


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
    text = values.fillna("").astype(str).str.strip()
    mapping = {value: _to_e164(value, region) for value in text.unique()}
    mapped = text.map(mapping).astype(object)
    return mapped.where(mapped.notna(), None)
