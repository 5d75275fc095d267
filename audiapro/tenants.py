"""Tenants: what the pipeline knows about one PBX customer, without secrets.

The CloudUCM block (``blocks/clouducm.py``) is where an operator edits these; the pipeline's plain
functions take a :class:`TenantSettings` so they never need Prefect.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from audiapro import settings


@dataclass(frozen=True)
class TenantSettings:
    """What the pipeline needs to know about a tenant (no secrets).

    Attributes:
        name: Tenant name (the CloudUCM block's name).
        timezone: IANA zone of the PBX's wall clock.
        region: Default phone region.
        lookback_seconds: How far behind the cursor each poll re-reads (covers long calls).
        safety_seconds: How far behind now a poll window ends.
        enabled: Whether the live poll includes this tenant.
        sweep_span_seconds: The long-call sweep re-reads legs that ENDED this far back (0: no sweep).
        sweep_every_seconds: How often the sweep runs (at most once per poll tick).
        silent_ticks: Unexpectedly empty poll windows in a row before the tenant counts as silent.
        recording_retention_days: Days a downloaded recording stays on disk (0: deleted after analysis).
        transcript_retention_days: Days stored transcripts are kept (0: forever).
        raw_cdr_retention_days: Days the raw CDR JSON of legs and quarantined rows is kept (0: forever).
    """

    name: str
    timezone: str
    region: str = settings.DEFAULT_PHONE_REGION
    lookback_seconds: int = settings.DEFAULT_LOOKBACK_SECONDS
    safety_seconds: int = settings.DEFAULT_SAFETY_SECONDS
    enabled: bool = True
    sweep_span_seconds: int = settings.DEFAULT_SWEEP_SPAN_SECONDS
    sweep_every_seconds: int = settings.DEFAULT_SWEEP_EVERY_SECONDS
    silent_ticks: int = settings.DEFAULT_SILENT_TICKS
    recording_retention_days: int = settings.DEFAULT_RECORDING_RETENTION_DAYS
    transcript_retention_days: int = settings.DEFAULT_TRANSCRIPT_RETENTION_DAYS
    raw_cdr_retention_days: int = settings.DEFAULT_RAW_CDR_RETENTION_DAYS


#: Longest tenant key: it also names the tenant's Prefect block, locks, concurrency limit and runs.
MAX_TENANT_KEY_CHARS: Final = 63
#: What a stored tenant name (a Prefect block name) may contain.
_VALID_KEY: Final = re.compile(r"^[a-z0-9-]+$")
#: Separators operators use in names; each run of them becomes one dash.
_SEPARATORS: Final = re.compile(r"[\s_.\-]+")
TENANT_NAME_RULE: Final = (
    "use letters, digits, '-', '_', '.' or spaces (stored as lowercase letters, digits and dashes, "
    f"at most {MAX_TENANT_KEY_CHARS} characters)"
)


def tenant_key(name: str) -> str:
    """The stored name (Prefect block name) of the tenant an operator calls ``name``.

    A name that already is a valid block name (lowercase letters, digits, dashes) is kept as it is,
    so existing tenants never change name. Any other name is folded to ASCII, lowercased, and each
    run of spaces, underscores, dots and dashes becomes one dash (none at either end):
    ``Acme_Corp`` and ``acme corp`` are both ``acme-corp``.

    Args:
        name: The tenant name as typed.

    Returns:
        The tenant's key: non-empty, only ``[a-z0-9-]``, at most ``MAX_TENANT_KEY_CHARS`` long.

    Raises:
        ValueError: The name has nothing to keep, other characters, or is too long (one-line
            message saying what is allowed).
    """
    if _VALID_KEY.match(name) and len(name) <= MAX_TENANT_KEY_CHARS:
        return name
    # NFKD splits "é" into "e" + an accent mark, which the ASCII encoding then drops.
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    key = _SEPARATORS.sub("-", folded.strip().lower()).strip("-")
    if not key:
        raise ValueError(f"tenant name {name!r} has no letter or digit: {TENANT_NAME_RULE}")
    if not _VALID_KEY.match(key):
        raise ValueError(f"tenant name {name!r} has characters that are not allowed: {TENANT_NAME_RULE}")
    if len(key) > MAX_TENANT_KEY_CHARS:
        raise ValueError(f"tenant name {name!r} is too long ({len(key)} characters): {TENANT_NAME_RULE}")
    return key
