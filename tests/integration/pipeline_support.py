"""Shared helpers for the pipeline integration tests (no tests here).

One tenant, a simulated PBX for it and a UCM client that talks to the simulator with the production
logic but never really waits, plus a warehouse row count.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import SecretStr

from audiapro.tenants import TenantSettings
from audiapro.ucm.client import UcmClient, UcmConnection
from audiapro.ucm.retry import RetryPolicy
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator

TZ = "America/New_York"
TENANT = TenantSettings(name="acme", timezone=TZ, region="US")
DAY = date(2026, 3, 2)  # a Monday
SIM_PASSWORD = "s3cret-Pa55"


def simulator(**overrides: Any) -> UcmSimulator:
    """A simulated PBX: two days of calls from ``DAY`` unless ``overrides`` change its config."""
    defaults: dict[str, Any] = {"seed": 11, "calls_per_day": 120, "start": DAY, "days": 2, "tz": TZ}
    return UcmSimulator(SimulatorConfig(**{**defaults, "password": SIM_PASSWORD, **overrides}))


def make_client(
    sim: UcmSimulator,
    base_url: str,
    *,
    attempts: int = 5,
    transport: httpx.BaseTransport | None = None,
    timezone: str = TZ,
    **settings: Any,
) -> UcmClient:
    """A client with the production logic but no real waiting (backoff and throttle waits are zero).

    Args:
        sim: The simulator whose API account the client logs in with.
        base_url: Where the simulator serves.
        attempts: Tries per request before the client gives up.
        transport: An httpx transport to send through (fault injection) instead of the network.
        timezone: The tenant zone the client queries in.
        **settings: Further `UcmConnection` settings, e.g. ``page_size``.
    """
    conn = UcmConnection.from_url(
        base_url,
        api_user=sim.config.api_user,
        password=SecretStr(sim.config.password),
        timezone=timezone,
        throttle_wait_s=0,
        throttle_long_wait_s=0,
        retry=RetryPolicy(max_attempts=attempts, base_delay_s=0, max_delay_s=0),
        **settings,
    )
    return UcmClient(conn, transport=transport, sleep=lambda _s: None)


def table_count(engine: sa.Engine, table: sa.Table) -> int:
    """Rows in ``table``."""
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def save_simulated_tenant(name: str, base_url: str, *, password: str, timezone: str, **fields: Any) -> None:
    """Save a CloudUCM block named ``name`` for the simulator serving at ``base_url`` (plain HTTP)."""
    from blocks.clouducm import CloudUCM

    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    CloudUCM(
        host="127.0.0.1", port=port, scheme="http", password=SecretStr(password), timezone=timezone, **fields
    ).save(name, overwrite=True)
