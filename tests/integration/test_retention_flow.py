"""cleanup-retention on a real Prefect API and Postgres: the tenant's block decides, the table artifact
counts what went, a rerun clears nothing."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import flows.retention as retention_flow
from audiapro.retention import recording_keeper, recording_path
from audiapro.warehouse import get_engine, upgrade
from audiapro.warehouse.tables import call_analyses
from blocks.clouducm import CloudUCM
from flows.retention import SUMMARY_KEY, cleanup_retention
from tests.integration.prefect_support import latest_artifact
from tests.integration.test_retention import NOW, WAV, seed

pytestmark = pytest.mark.usefixtures("prefect_api")
TENANT = "flow-retain"


def rows_of(artifact: Any) -> list[dict[str, Any]]:
    return list(json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data)


def test_the_flow_applies_each_tenant_block_and_reports_the_counts(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIAPRO_HOME", str(tmp_path))
    monkeypatch.setattr(retention_flow, "now_utc", lambda: NOW)
    engine = get_engine(warehouse_url)
    upgrade(engine)
    seed(engine, TENANT)
    CloudUCM(recording_retention_days=7, transcript_retention_days=30, raw_cdr_retention_days=30).save(
        TENANT, overwrite=True
    )
    keep = recording_keeper(TENANT, days=7)
    assert keep is not None
    for session, age in (("old-call", 8), ("new-call", 1)):
        keep(session, WAV)
        stamp = (NOW - timedelta(days=age)).timestamp()
        os.utime(recording_path(TENANT, session), (stamp, stamp))

    state = cleanup_retention(tenant=TENANT, return_state=True)
    assert state.is_completed(), state.message
    (row,) = rows_of(latest_artifact(SUMMARY_KEY))
    assert row["tenant"] == TENANT and row["status"] == "ok"
    assert (row["files_deleted"], row["bytes_freed"]) == (1, len(WAV))
    assert (row["transcripts_cleared"], row["raw_rows_cleared"]) == (1, 3)
    with engine.connect() as conn:
        query = sa.select(call_analyses.c.session).where(
            call_analyses.c.tenant == TENANT, call_analyses.c.transcript.is_not(None)
        )
        assert conn.scalars(query).all() == ["new-call"]
    assert recording_path(TENANT, "new-call").exists()

    assert cleanup_retention(tenant=TENANT, return_state=True).is_completed()
    (again,) = rows_of(latest_artifact(SUMMARY_KEY))
    assert (again["files_deleted"], again["transcripts_cleared"], again["raw_rows_cleared"]) == (0, 0, 0)
    engine.dispose()
