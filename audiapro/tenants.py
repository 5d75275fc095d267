"""Tenants: what the pipeline knows about one PBX customer, without secrets.

The CloudUCM block (``blocks/clouducm.py``) is where an operator edits these; the pipeline's plain
functions take a :class:`TenantSettings` so they never need Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass

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
