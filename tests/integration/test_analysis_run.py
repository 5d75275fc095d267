"""Analysis runs (plain functions) on Postgres and SQLite: exactly once across reruns, faults, budget, batch.

The real `openai` client talks to the bundled OpenAI simulator, whose billing log is the ground truth
of what was paid: every billed request must be accounted for by exactly one stored row.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

import audiapro.analysis.batch_run as batch_run
from audiapro.analysis.config import AnalyzerSettings
from audiapro.analysis.errors import AnalysisServiceError
from audiapro.analysis.openai_simulator import FaultKind, OpenAIFaults, OpenAIStats
from audiapro.analysis.policy import CostEstimate
from audiapro.analysis.pricing import PriceTable
from audiapro.analysis.run import analyze_tenant
from audiapro.warehouse import read_calls
from tests.integration.analysis_support import (
    API_KEY,
    RESPONSES_PATH,
    SINCE,
    TENANT,
    TRANSCRIBE_PATH,
    AnalysisEnv,
    all_sessions,
    analysis_env,
    analysis_rows,
    eligible_sessions,
    final_rows_by_session,
)

pytestmark = pytest.mark.timeout(120)
TINY_RETRY_AFTER_S = 0.01


def run(env: AnalysisEnv, **options: Any) -> Any:
    config = options.pop("config", None) or env.config()
    return analyze_tenant(
        env.engine, config, analyzer=env.analyzer, fetcher=env.fetcher, since=SINCE, **options
    )


def billed(stats: OpenAIStats, path: str, *, batch: bool = False) -> list[str]:
    return [b.fingerprint for b in stats.billed if b.endpoint == path and b.batch == batch]


def assert_paid_once(env: AnalysisEnv, rows: list[dict[str, Any]]) -> None:
    """Every billed request is in exactly one stored row; nothing was paid twice."""
    stats = env.openai_sim.stats
    transcriptions = billed(stats, TRANSCRIBE_PATH)
    assert transcriptions and len(transcriptions) == len(set(transcriptions)), (
        "a recording was transcribed twice"
    )
    # A malformed answer is retried with the same request: those repeats are the row's `attempts`.
    attempts = sum(r["attempts"] for r in rows if not r["batch_id"])
    assert len(billed(stats, RESPONSES_PATH)) == attempts
    assert len(billed(stats, RESPONSES_PATH, batch=True)) == len([r for r in rows if r["batch_id"]])
    repeats = Counter(billed(stats, RESPONSES_PATH))
    assert sum(n - 1 for n in repeats.values()) == sum(max(r["attempts"] - 1, 0) for r in rows)
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(stats.cost_usd)
    assert sum(r["audio_seconds"] for r in rows) == pytest.approx(stats.audio_seconds)


def assert_one_analysis_per_eligible_call(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    eligible = eligible_sessions(engine)
    assert eligible, "the simulated day must have eligible calls"
    final = final_rows_by_session(rows)
    assert set(final) == eligible and set(final.values()) == {1}
    others = all_sessions(engine) - eligible
    skipped = [r for r in rows if r["session"] in others]
    assert {r["session"] for r in skipped} == others and len(skipped) == len(others)
    assert all(r["status"] == "skipped" and r["skip_reason"] for r in skipped)
    assert not [r for r in rows if r["status"] in ("transcribed", "pending_batch")]


def test_exactly_one_analysis_per_eligible_call_across_faults_and_reruns(engine: sa.Engine) -> None:
    # Rates high enough that both fault kinds fire on a handful of text requests whatever order the
    # worker threads send them in (the fault RNG is seeded, the request order is not).
    faults = OpenAIFaults(
        rate_limit_rate=0.3,
        retry_after_s=TINY_RETRY_AFTER_S,
        server_error_rate=0.05,
        invalid_json_rate=0.5,
    )
    settings = AnalyzerSettings(request_timeout_s=10.0, max_api_retries=8, max_parse_retries=2)
    with analysis_env(engine, faults=faults, settings=settings) as env:
        first = run(env)
        after_first = env.openai_sim.stats
        second = run(env)
        third = run(env, use_batch=True)
        rows = analysis_rows(engine)
        stats = env.openai_sim.stats
        assert_paid_once(env, rows)
    assert stats.faults[FaultKind.RATE_LIMIT] and stats.faults[FaultKind.INVALID_JSON]
    assert first.analyzed + first.failed > 0 and first.cost_usd > 0
    # Reruns (sync and batch) find nothing to pay for.
    assert len(stats.billed) == len(after_first.billed)
    assert second.analyzed == second.failed == second.cost_usd == 0
    assert third.batch_submitted == third.queued_for_batch == 0
    assert_one_analysis_per_eligible_call(engine, rows)
    # Stereo recordings: caller and agent transcribed separately, both roles stored.
    succeeded = [r for r in rows if r["status"] == "succeeded"]
    assert succeeded
    for row in succeeded:
        transcript = json.loads(row["transcript"])
        assert transcript["mode"] == "stereo"
        assert {s["speaker"] for s in transcript["segments"]} == {"caller", "agent"}
        assert json.loads(row["insights"])["outcome"] and json.loads(row["flags"]) is not None
    # Every skipped call says why; the reasons come from the policy.
    reasons = Counter(r["skip_reason"] for r in rows if r["status"] == "skipped")
    assert reasons and set(reasons) <= {"not_answered", "too_short", "no_recording", "internal_call"}
    assert first.skipped == second.skipped  # skips are re-evaluated each run, identically
    assert API_KEY not in json.dumps(rows, default=str)


def test_an_outage_between_transcription_and_analysis_resumes_without_paying_twice(
    engine: sa.Engine,
) -> None:
    # The text step fails with a 500 and no retries: the run stops after transcripts were paid.
    faults = OpenAIFaults(script=(FaultKind.SERVER_ERROR,), endpoints=frozenset({"responses"}))
    settings = AnalyzerSettings(request_timeout_s=10.0, max_api_retries=0)
    with analysis_env(engine, faults=faults, settings=settings) as env:
        with pytest.raises(AnalysisServiceError) as caught:
            run(env)
        interrupted = analysis_rows(engine)
        assert [r for r in interrupted if r["status"] == "transcribed"]
        resumed = run(env)
        rows = analysis_rows(engine)
        stats = env.openai_sim.stats
        assert_paid_once(env, rows)
    assert caught.value.status_code == 500 and API_KEY not in str(caught.value)
    assert resumed.analyzed > 0 and not stats.duplicate_fingerprints()
    assert_one_analysis_per_eligible_call(engine, rows)


def _estimates(engine: sa.Engine) -> list[float]:
    """Estimated cost of each eligible call, in the order the budget charges them."""
    calls = read_calls(engine, TENANT, SINCE, SINCE.replace(year=2100))
    eligible = calls[calls["session"].isin(eligible_sessions(engine))].sort_values(["started_at", "session"])
    return CostEstimate().cost_usd(eligible["talk_s"].astype(float), PriceTable()).tolist()


def test_the_budget_cap_stops_spending_and_records_the_skip_reason(engine: sa.Engine) -> None:
    with analysis_env(engine) as env:
        estimates = _estimates(engine)
        assert len(estimates) > 3
        cap = sum(estimates[:3]) + 1e-9  # room for the three oldest eligible calls
        first = run(env, config=env.config(daily_usd=cap))
        spent_first = env.openai_sim.stats.cost_usd
        rows = analysis_rows(engine)
        budget_rows = [r for r in rows if r["skip_reason"] == "budget_exceeded"]
        second = run(env, config=env.config(daily_usd=cap))
        spent_second = env.openai_sim.stats.cost_usd
        third = run(env)  # the cap is raised
        final = analysis_rows(engine)
    assert first.analyzed + first.failed == 3
    assert first.skipped["budget_exceeded"] == len(estimates) - 3 == len(budget_rows)
    assert all(r["cost_usd"] == 0 and r["recording_sha256"] is None for r in budget_rows)
    assert 0 < spent_first <= cap and spent_second <= cap  # estimates err high: never past the cap
    assert first.spent_today_usd == pytest.approx(spent_first)
    assert second.skipped["budget_exceeded"] > 0
    assert third.skipped["budget_exceeded"] == 0
    assert not [r for r in final if r["skip_reason"] == "budget_exceeded"]
    assert_one_analysis_per_eligible_call(engine, final)


def test_the_batch_path_submits_in_one_run_and_collects_in_the_next(engine: sa.Engine) -> None:
    with analysis_env(engine) as env:
        submitted = run(env, use_batch=True)
        pending = analysis_rows(engine)
        assert not billed(env.openai_sim.stats, RESPONSES_PATH)  # only transcription so far
        collected = run(env)
        rows = analysis_rows(engine)
        stats = env.openai_sim.stats
        assert_paid_once(env, rows)
        with engine.connect() as conn:
            batches = conn.execute(sa.text("SELECT status, request_count FROM analysis_batches")).all()
    waiting = [r for r in pending if r["status"] == "pending_batch"]
    assert submitted.batch_submitted == submitted.queued_for_batch == len(waiting) > 0
    assert len({r["batch_id"] for r in waiting}) == 1
    assert collected.batch_collected == len(waiting) and collected.batches_open == 0
    assert batches == [("collected", len(waiting))]
    usage = stats.usage_by_model["gpt-6-luna"]
    assert usage.batch_requests == usage.requests == len(waiting)
    batch_rows = [r for r in rows if r["batch_id"]]
    assert len(batch_rows) == len(waiting) and all(r["status"] == "succeeded" for r in batch_rows)
    assert not stats.duplicate_fingerprints()
    assert_one_analysis_per_eligible_call(engine, rows)


def test_a_crash_after_submitting_a_batch_is_settled_without_resubmitting(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_confirm = batch_run.confirm_batch

    def crash(*args: Any, **kwargs: Any) -> int:
        monkeypatch.setattr(batch_run, "confirm_batch", real_confirm)
        raise RuntimeError("process killed after the API accepted the batch")

    monkeypatch.setattr(batch_run, "confirm_batch", crash)
    with analysis_env(engine) as env:
        with pytest.raises(RuntimeError):
            run(env, use_batch=True)
        with engine.connect() as conn:
            markers = conn.execute(sa.text("SELECT batch_id, status FROM analysis_batches")).all()
        assert len(markers) == 1 and markers[0][1] == "submitting"
        settled = run(env)
        rows = analysis_rows(engine)
        stats = env.openai_sim.stats
        assert_paid_once(env, rows)
    assert stats.requests["POST /v1/batches"] == 1  # adopted by its marker, not sent again
    assert settled.batch_collected > 0 and not stats.duplicate_fingerprints()
    assert_one_analysis_per_eligible_call(engine, rows)


def test_max_calls_defers_the_rest_to_the_next_run(engine: sa.Engine) -> None:
    with analysis_env(engine) as env:
        first = run(env, max_calls=2)
        second = run(env)
        rows = analysis_rows(engine)
    assert first.analyzed + first.failed == 2 and first.deferred == len(eligible_sessions(engine)) - 2
    assert second.analyzed + second.failed == first.deferred
    assert_one_analysis_per_eligible_call(engine, rows)


def test_batch_requests_the_batch_never_answered_are_sent_again_once(engine: sa.Engine) -> None:
    faults = OpenAIFaults(batch_line_error_rate=0.4, endpoints=frozenset())
    with analysis_env(engine, faults=faults) as env:
        run(env, use_batch=True)
        collected = run(env)  # collects, and analyses the unanswered ones synchronously
        rows = analysis_rows(engine)
        stats = env.openai_sim.stats
        assert_paid_once(env, rows)
    assert stats.faults[FaultKind.BATCH_LINE_ERROR] > 0
    synchronous = [r for r in rows if r["status"] == "succeeded" and not r["batch_id"]]
    assert (
        len(synchronous)
        == stats.faults[FaultKind.BATCH_LINE_ERROR]
        == collected.analyzed - collected.batch_collected
    )
    assert not stats.duplicate_fingerprints()
    assert_one_analysis_per_eligible_call(engine, rows)
