"""The analyze-calls flow on a real Prefect API: blocks, artifacts, CLI, poll trigger, no leaked key."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
import yaml
from prefect import flow
from pydantic import SecretStr
from typer.testing import CliRunner

import flows.analyze as analyze_flow
from audiapro.analysis.openai_simulator import OpenAISimConfig, OpenAISimulator
from audiapro.cli import app
from audiapro.ucm.simulator import UcmSimulator
from audiapro.warehouse import get_engine, upgrade
from blocks.clouducm import CloudUCM
from blocks.openai import AnalysisSettings, OpenAICredentials, load_openai_credentials
from flows.analyze import ANALYZE_DEPLOYMENT, SUMMARY_KEY, analyze_calls, trigger_analysis
from flows.poll import poll_cdrs
from tests.integration.analysis_support import (
    API_KEY,
    SINCE,
    TZ,
    UCM_PASSWORD,
    analysis_rows,
    eligible_sessions,
    load_day,
    recorded_connections,
    ucm_config,
)
from tests.integration.pipeline_support import save_simulated_tenant
from tests.integration.prefect_support import flow_logs
from tests.wall_clock_pbx import wall_clock_pbx

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.timeout(180)]
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _save_pbx(name: str, base_url: str) -> None:
    save_simulated_tenant(name, base_url, password=UCM_PASSWORD, timezone=TZ)


@pytest.fixture
def blocks_cleanup() -> Iterator[list[tuple[type[Any], str]]]:
    """Blocks to delete after the test, so other tests see no OpenAI key and no stray tenant."""
    created: list[tuple[type[Any], str]] = []
    yield created
    for kind, name in created:
        with contextlib.suppress(Exception):  # already gone
            kind.delete(name)


def _artifacts(flow_run_id: UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def test_flow_with_an_openai_block_analyses_once_and_never_leaks_the_key(
    warehouse_url: str,
    blocks_cleanup: list[tuple[type[Any], str]],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = "an-acme"
    ucm = UcmSimulator(ucm_config(seed=8))
    sim = OpenAISimulator(OpenAISimConfig(api_key=API_KEY, seed=8))
    with ucm.serve() as ucm_url, sim.serve() as base_url:
        _save_pbx(tenant, ucm_url)
        blocks_cleanup.append((CloudUCM, tenant))
        OpenAICredentials(api_key=SecretStr(API_KEY), base_url=base_url, request_timeout_s=10.0).save(
            "default", overwrite=True
        )
        blocks_cleanup.append((OpenAICredentials, "default"))
        AnalysisSettings(keywords=["refund"], max_workers=2).save(tenant, overwrite=True)
        blocks_cleanup.append((AnalysisSettings, tenant))
        engine = get_engine(warehouse_url)
        upgrade(engine)
        load_day(engine, ucm_url, tenant)
        state = analyze_calls(tenant=tenant, since=SINCE, return_state=True)
        cli = runner.invoke(app, ["analyze", "--tenant", tenant, "--since", SINCE.isoformat()])
        stats = sim.stats

    assert state.is_completed(), state.message
    (row,) = state.result()
    eligible = eligible_sessions(engine, tenant)
    assert row["status"] == "ok" and row["mode"] == "openai"
    assert row["analyzed"] + row["failed"] == len(eligible) > 0 and row["cost_usd"] > 0
    assert cli.exit_code == 0, cli.output
    assert tenant in cli.output and "openai" in cli.output
    assert len(stats.billed) == len(stats.fingerprints) and not stats.duplicate_fingerprints()

    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    artifacts = _artifacts(flow_run_id)
    summary = next(a for a in artifacts if a.key == SUMMARY_KEY)
    table = json.loads(summary.data) if isinstance(summary.data, str) else summary.data
    assert table[0]["tenant"] == tenant and table[0]["analyzed"] == row["analyzed"]
    assert "skipped_budget_exceeded" in table[0]
    progress = [a for a in artifacts if a.type == "progress"]
    assert progress and progress[0].data == 100.0

    rows = analysis_rows(engine, tenant)
    dumped = "\n".join(
        [
            caplog.text,
            *capsys.readouterr(),
            cli.output,
            flow_logs(flow_run_id),
            json.dumps(rows, default=str),
        ]
        + [f"{a.key} {a.description} {a.data}" for a in artifacts]
    )
    assert "analysis" in dumped
    assert API_KEY not in dumped and API_KEY[:14] not in dumped
    # Logs and artifacts name calls without phone numbers (session ids end with the caller's number).
    # (httpcore's own DEBUG trace prints raw response headers, a recording's file name among them.)
    ours = [caplog.handler.format(r) for r in caplog.records if not r.name.startswith("httpcore")]
    logged = "\n".join([*ours, flow_logs(flow_run_id), *(str(a.data) for a in artifacts)])
    numbers = {
        leg[field]
        for leg in ucm.ground_truth()
        for field in ("src", "dst")
        if len(re.sub(r"\D", "", leg[field])) >= 7
    }
    leaks = [line for line in logged.splitlines() if any(n in line for n in numbers)]
    assert numbers and not leaks, leaks[:5]
    with engine.connect() as conn:
        batches = conn.execute(sa.text("SELECT * FROM analysis_batches")).all()
    assert API_KEY not in repr(batches)


def test_poll_triggers_offline_analysis_of_new_calls_without_network(
    warehouse_url: str, blocks_cleanup: list[tuple[type[Any], str]]
) -> None:
    tenant = "an-poll"
    assert load_openai_credentials() is None  # no key configured: offline
    # The poll's window follows the wall clock: the PBX is built around it (manual clock).
    ucm = UcmSimulator(wall_clock_pbx(seed=9, calls_per_day=40, tz=TZ, password=UCM_PASSWORD))
    openai_sim = OpenAISimulator(OpenAISimConfig(api_key=API_KEY))
    with ExitStack() as stack:
        ucm_url = stack.enter_context(ucm.serve())
        openai_url = stack.enter_context(openai_sim.serve())
        _save_pbx(tenant, ucm_url)
        blocks_cleanup.append((CloudUCM, tenant))
        connections = stack.enter_context(recorded_connections())
        state = poll_cdrs(tenant=tenant, return_state=True)
        requests = sum(openai_sim.stats.requests.values())
    assert state.is_completed(), state.message
    (row,) = state.result()
    assert row["inserted"] > 0
    engine = get_engine(warehouse_url)
    rows = analysis_rows(engine, tenant)
    with engine.connect() as conn:
        calls = conn.execute(sa.text("SELECT count(*) FROM calls WHERE tenant = :t"), {"t": tenant}).scalar()
    assert rows and len(rows) == calls and {r["analyzer"] for r in rows} == {"offline"}
    assert requests == 0 and ucm.stats.recordings_served == 0
    openai_port = int(openai_url.rsplit(":", 1)[1].split("/")[0])
    assert not [c for c in connections if isinstance(c, tuple) and c[1] == openai_port]


def test_under_a_deployment_the_poll_starts_a_deployment_run_and_does_not_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run_deployment(name: str, **kwargs: Any) -> None:
        calls.append({"name": name, **kwargs})

    import prefect.deployments

    monkeypatch.setattr(analyze_flow, "_running_under_deployment", lambda: True)
    monkeypatch.setattr(prefect.deployments, "run_deployment", fake_run_deployment)
    rows = [
        {"tenant": "new", "status": "ok", "inserted": 3, "updated": 0, "window_start": SINCE.isoformat()},
        {"tenant": "quiet", "status": "ok", "inserted": 0, "updated": 0, "window_start": SINCE.isoformat()},
        {"tenant": "broken", "status": "failed", "error": "x"},
    ]

    @flow
    def tick() -> list[str]:
        return trigger_analysis(rows)

    assert tick() == ["new"]
    (call,) = calls
    assert call["name"] == ANALYZE_DEPLOYMENT and call["timeout"] == 0
    assert call["parameters"] == {"tenants": ["new"], "since": SINCE.isoformat()}
    assert call["idempotency_key"].startswith("poll-")


def test_the_deployment_is_declared() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == "analyze-calls"]
    path, function = deployment["entrypoint"].split(":")
    assert (REPO / path).is_file() and function == analyze_calls.fn.__name__
    assert f"{analyze_calls.name}/{deployment['name']}" == ANALYZE_DEPLOYMENT
