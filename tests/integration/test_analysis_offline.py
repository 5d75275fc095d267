"""Offline analysis (no OpenAI key): CDR-only flags for every call, no network, on both back ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from audiapro.analysis.models import OFFLINE_RULES_VERSION
from audiapro.analysis.run import analyze_tenant
from audiapro.analysis.tenant import TenantAnalysisConfig
from audiapro.ucm.simulator import UcmSimulator
from audiapro.warehouse import analysis_counts, read_calls, spent_today
from tests.integration.analysis_support import (
    AFTER_DAY,
    SINCE,
    TENANT,
    TZ,
    all_sessions,
    analysis_rows,
    load_day,
    recorded_connections,
    ucm_config,
)

pytestmark = pytest.mark.timeout(120)
OPENS_HOUR, CLOSES_HOUR = 8, 18


def test_offline_rules_fill_every_call_without_any_network(engine: sa.Engine) -> None:
    ucm = UcmSimulator(ucm_config())
    config = TenantAnalysisConfig(tenant=TENANT, timezone=TZ)
    with ucm.serve() as ucm_url:
        load_day(engine, ucm_url)
        with recorded_connections() as connections:
            first = analyze_tenant(engine, config, analyzer=None, since=SINCE, now=AFTER_DAY)
            second = analyze_tenant(engine, config, analyzer=None, since=SINCE, now=AFTER_DAY)
        served = ucm.stats.recordings_served
    assert connections == []  # (Postgres connects from libpq, not Python sockets)
    assert served == 0
    rows = analysis_rows(engine)
    assert {r["session"] for r in rows} == all_sessions(engine) and len(rows) == len(all_sessions(engine))
    assert first.mode == "offline" and first.analyzed == len(rows) and first.cost_usd == 0
    assert second.analyzed == len(rows)  # recomputed: still one row per call
    for row in rows:
        assert (row["analyzer"], row["status"], row["model"]) == ("offline", "succeeded", None)
        assert row["prompt_version"] == OFFLINE_RULES_VERSION and row["cost_usd"] == 0
        assert row["transcript"] is None and row["insights"] is None
    assert spent_today(engine, TENANT, timezone=TZ, now=AFTER_DAY).usd == 0
    assert analysis_counts(engine, TENANT) == [
        {"tenant": TENANT, "analyzer": "offline", "status": "succeeded", "skip_reason": "",
         "rows": len(rows), "cost_usd": 0.0}
    ]  # fmt: skip

    # The flags agree with the calls: missed = nobody talked, after hours = outside 08-18 weekdays.
    calls = read_calls(engine, TENANT, SINCE, datetime(2100, 1, 1, tzinfo=UTC)).set_index("session")
    flags = {r["session"]: json.loads(r["flags"]) for r in rows}
    local = calls["started_at"].dt.tz_convert(TZ)
    hours = local.dt.hour
    after_hours = (hours < OPENS_HOUR) | (hours >= CLOSES_HOUR) | (local.dt.day_of_week >= 5)
    voicemail = calls["lastapp"].fillna("").str.lower().eq("voicemail")
    for session, call in calls.iterrows():
        flag = flags[str(session)]
        assert flag["after_hours"] == bool(after_hours[session])
        nobody_talked = (not call["answered"] or call["talk_s"] <= 0) and not voicemail[session]
        assert flag["missed"] == nobody_talked
        assert flag["voicemail"] == bool(voicemail[session])
        if flag["missed"] or flag["voicemail"]:
            assert flag["outcome"] in ("missed", "voicemail")
    assert any(f["missed"] for f in flags.values()) and any(f["voicemail"] for f in flags.values())
    assert pd.Series([f["callback_needed"] for f in flags.values()]).any()
