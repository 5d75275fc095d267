"""Shared helpers for the analysis integration tests (no tests here).

A simulated PBX with stereo recordings is loaded into a real warehouse, and analysers use the real
`openai` client against the bundled OpenAI simulator on loopback.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import openai
import sqlalchemy as sa
from pydantic import SecretStr

from audiapro.analysis.config import AnalyzerSettings
from audiapro.analysis.openai_analyzer import OpenAIAnalyzer
from audiapro.analysis.openai_simulator import OpenAIFaults, OpenAISimConfig, OpenAISimulator
from audiapro.analysis.policy import Budget
from audiapro.analysis.recordings import CallAudioFetcher
from audiapro.analysis.tenant import TenantAnalysisConfig
from audiapro.ingest import ingest_window
from audiapro.tenants import TenantSettings
from audiapro.ucm.client import UcmClient, UcmConnection
from audiapro.ucm.pool import ClientPool
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator

TENANT = "acme"
TZ = "America/New_York"
DAY = date(2026, 3, 2)  # a Monday
SINCE = datetime.combine(DAY, time(0), tzinfo=UTC) - timedelta(hours=12)
#: A pinned "now" for analysis runs: the next day's noon, when every call of ``DAY`` has ended.
AFTER_DAY = datetime.combine(DAY + timedelta(days=1), time(12), tzinfo=UTC)
UCM_PASSWORD = "Ucm-Analysis-Pa55!"
API_KEY = "sk-test-integration-3c9d1e7f2a6b8d40"
TRANSCRIBE_PATH = "/v1/audio/transcriptions"
RESPONSES_PATH = "/v1/responses"
# Prefect runs its event and log shippers on this thread; it may start during a recording.
PREFECT_SERVICE_THREADS = ("GlobalEventLoopThread",)
ELIGIBLE_DIRECTIONS = ("inbound", "outbound", "external")
MIN_TALK_S = 20
BIG_BUDGET_USD = 1000.0


def ucm_config(*, seed: int = 5, calls_per_day: int = 40) -> SimulatorConfig:
    """One Monday of calls with stereo recordings (caller left, agent right)."""
    return SimulatorConfig(
        seed=seed,
        calls_per_day=calls_per_day,
        start=DAY,
        days=1,
        tz=TZ,
        password=UCM_PASSWORD,
        stereo_recordings=True,
    )


def ucm_connection(base_url: str) -> UcmConnection:
    """Connection to a simulated PBX over plain HTTP on loopback."""
    return UcmConnection.from_url(base_url, api_user="cdrapi", password=SecretStr(UCM_PASSWORD), timezone=TZ)


def load_day(engine: sa.Engine, base_url: str, tenant: str = TENANT) -> None:
    """Load the simulated day into the warehouse (as a backfill window)."""
    start = datetime.combine(DAY, time(0), tzinfo=UTC) - timedelta(hours=12)
    end = start + timedelta(days=2)
    with UcmClient(ucm_connection(base_url)) as client:
        ingest_window(
            client,
            engine,
            TenantSettings(name=tenant, timezone=TZ),
            start,
            end,
            kind="backfill",
            advance_cursor=False,
        )


@dataclass
class AnalysisEnv:
    """A loaded warehouse, both simulators serving, an analyzer and a recording fetcher."""

    engine: sa.Engine
    ucm: UcmSimulator
    ucm_url: str
    openai_sim: OpenAISimulator
    client: openai.OpenAI
    analyzer: OpenAIAnalyzer
    fetcher: CallAudioFetcher

    def config(self, *, daily_usd: float = BIG_BUDGET_USD, **fields: Any) -> TenantAnalysisConfig:
        """The tenant's analysis settings (generous budget unless told)."""
        return TenantAnalysisConfig(tenant=TENANT, timezone=TZ, budget=Budget(daily_usd=daily_usd), **fields)


@contextmanager
def analysis_env(
    engine: sa.Engine,
    *,
    faults: OpenAIFaults | None = None,
    settings: AnalyzerSettings | None = None,
    batch_complete_after_polls: int = 0,
    seed: int = 5,
) -> Iterator[AnalysisEnv]:
    """Serve both simulators, load the day, and hand out an analyzer and a fetcher."""
    ucm = UcmSimulator(ucm_config(seed=seed))
    sim = OpenAISimulator(
        OpenAISimConfig(api_key=API_KEY, seed=seed, batch_complete_after_polls=batch_complete_after_polls),
        faults=faults,
    )
    with ucm.serve() as ucm_url, sim.serve() as base_url:
        load_day(engine, ucm_url)
        client = openai.OpenAI(base_url=base_url, api_key=API_KEY)
        analyzer = OpenAIAnalyzer(client, settings or AnalyzerSettings(request_timeout_s=10.0))
        fetcher = CallAudioFetcher(ClientPool(lambda: UcmClient(ucm_connection(ucm_url)), size=2))
        try:
            yield AnalysisEnv(engine, ucm, ucm_url, sim, client, analyzer, fetcher)
        finally:
            fetcher.close()
            client.close()


def analysis_rows(engine: sa.Engine, tenant: str = TENANT) -> list[dict[str, Any]]:
    """Every `call_analyses` row of the tenant."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM call_analyses WHERE tenant = :t"), {"t": tenant})
        return [dict(row._mapping) for row in rows]


def eligible_sessions(engine: sa.Engine, tenant: str = TENANT) -> set[str]:
    """Calls the default policy selects, computed independently of `select_calls`."""
    query = sa.text(
        "SELECT session FROM calls WHERE tenant = :t AND answered AND talk_s >= :talk "
        "AND recording_count > 0 AND direction IN ('inbound', 'outbound', 'external')"
    )
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(query, {"t": tenant, "talk": MIN_TALK_S})}


def all_sessions(engine: sa.Engine, tenant: str = TENANT) -> set[str]:
    """Every call of the tenant."""
    with engine.connect() as conn:
        return {
            row[0]
            for row in conn.execute(sa.text("SELECT session FROM calls WHERE tenant = :t"), {"t": tenant})
        }


def final_rows_by_session(rows: list[dict[str, Any]]) -> Counter[str]:
    """How many final (succeeded, failed, skipped with a recording hash) rows each call has."""
    final = [
        r
        for r in rows
        if r["status"] in ("succeeded", "failed") or (r["status"] == "skipped" and r["recording_sha256"])
    ]
    return Counter(r["session"] for r in final)


def _prefect_api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@contextmanager
def recorded_connections() -> Iterator[list[Any]]:
    """Record the address of every outgoing socket connection made in this process.

    Left out: connections to the Prefect test API, and any made by threads that were already
    running before recording began other than the caller's own. Background services of earlier flow
    tests (Prefect's event and log shippers on its global loop thread) flush at any moment, possibly
    to a server an earlier test has since stopped; they are not what is under test.
    """
    seen: list[Any] = []
    original = socket.socket.connect
    prefect_api = os.environ.get("PREFECT_API_URL") or str(_prefect_api_url() or "")
    prefect_port = urllib.parse.urlsplit(prefect_api).port if prefect_api else None
    background = {t.ident for t in threading.enumerate()} - {threading.get_ident()}

    def connect(self: socket.socket, address: Any) -> Any:
        to_prefect = prefect_port and isinstance(address, tuple) and address[1] == prefect_port
        from_background = threading.get_ident() in background or threading.current_thread().name in (
            PREFECT_SERVICE_THREADS
        )
        if not (to_prefect or from_background):
            seen.append(address)
        return original(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]
