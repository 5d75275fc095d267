"""One tenant's analysis run: select → fetch recording → transcribe → analyse → store, per call.

Plain functions (no Prefect): the `analyze-calls` flow, the CLI and the tests call `analyze_tenant`.

With an OpenAI analyzer a run:
    1. collects finished Batch API jobs (and settles submissions a crash left behind);
    2. reads the calls that need analysis for the analyzer's (model, prompt version) and applies the
       tenant's eligibility policy and daily budget: every skipped call gets a row with its reason;
    3. resumes transcripts that were paid for but not analysed (crash, outage, waiting for a batch);
    4. analyses the selected calls on a bounded thread pool: download the recording (one PBX session
       per worker), skip it if this recording was analysed before, transcribe, store the transcript,
       then analyse and store the record (or leave it for a batch);
    5. with `use_batch`, submits the stored transcripts as one Batch API job, collected by a later run.
Each call is stored as soon as it is paid for, so a crash or a retried run never pays twice.

Without an analyzer (no OpenAI key), the offline rules fill what the CDR alone tells (missed calls,
callbacks, repeat callers, after hours) for every call of the window; nothing touches the network.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from audiapro.analysis.audio import content_sha256
from audiapro.analysis.batch_run import collect_batches, submit_pending
from audiapro.analysis.models import AnalysisRecord, CallContext, OfflineFlags, SkipReason, analysis_key
from audiapro.analysis.offline import OfflineAnalyzer
from audiapro.analysis.openai_analyzer import OpenAIAnalyzer
from audiapro.analysis.policy import REASON_COLUMN, select_calls
from audiapro.analysis.recordings import CallAudioFetcher
from audiapro.analysis.records import (
    item_from_pending,
    parse_flags,
    pending_from_item,
    redact_item,
    skip_record,
    with_flags,
)
from audiapro.analysis.redact import TranscriptPrivacy
from audiapro.analysis.summary import CallOutcome, RunSummary
from audiapro.analysis.tenant import TenantAnalysisConfig
from audiapro.ucm.errors import UcmRecordingError, UcmRecordingNotFound
from audiapro.warehouse import (
    PendingAnalysis,
    RecordingRef,
    calls_needing_analysis,
    confirm_existing,
    pending_analyses,
    read_calls,
    recording_refs,
    spent_today,
    store_pending,
    store_records,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("audiapro.analysis")

#: Default window of a run without `since`: calls that started within this many hours.
DEFAULT_SINCE_HOURS: Final = 24
ProgressCallback = Callable[[int, int], None]


def default_since(now: datetime) -> datetime:
    """Start of the default window ending at `now`."""
    return now - timedelta(hours=DEFAULT_SINCE_HOURS)


def _flags_by_session(config: TenantAnalysisConfig, history: pd.DataFrame) -> dict[str, OfflineFlags]:
    if history.empty:
        return {}
    flags = OfflineAnalyzer(config.offline).flags(history)
    return {
        str(session): OfflineFlags.model_validate(values)
        for session, values in zip(history["session"], flags.to_dict("records"), strict=True)
    }


def analyze_offline(
    engine: sa.Engine, config: TenantAnalysisConfig, *, since: datetime, now: datetime
) -> RunSummary:
    """Offline records (flags only, cost 0) for every call of the window; refreshed when flags change."""
    summary = RunSummary(tenant=config.tenant, mode="offline")
    history = read_calls(engine, config.tenant, since - timedelta(days=config.history_days), now)
    if history.empty:
        return summary
    records = OfflineAnalyzer(config.offline).analyze(history, created_at=now)
    in_window = set(history.loc[history["started_at"] >= since, "session"].astype(str))
    chosen = [r for r in records if r.session in in_window]
    store_records(engine, chosen, now=now)
    summary.considered = summary.analyzed = len(chosen)
    return summary


@dataclass(eq=False)
class _CallWorker:
    """Analyses one call or resumes one transcript; runs on the pool's threads."""

    engine: sa.Engine
    analyzer: OpenAIAnalyzer
    fetcher: CallAudioFetcher
    flags: Mapping[str, OfflineFlags]
    _: KW_ONLY
    use_batch: bool
    privacy: TranscriptPrivacy

    def _store(self, record: AnalysisRecord, *, already_paid_usd: float = 0.0) -> CallOutcome:
        record = with_flags(record, self.flags.get(record.session))
        store_records(self.engine, [record])
        return CallOutcome.of(record, already_paid_usd=already_paid_usd)

    def call(self, row: Mapping[str, Any], refs: list[RecordingRef]) -> CallOutcome:
        settings = self.analyzer.settings
        context = CallContext.from_row(row)
        flags = self.flags.get(context.session)
        try:
            audio = self.fetcher.fetch(refs)
        except UcmRecordingNotFound:
            audio = None
        except UcmRecordingError as exc:  # the PBX sent something that is not a recording
            record = skip_record(row, SkipReason.no_recording, settings, flags)
            failed = record.model_copy(update={"status": "failed", "skip_reason": None, "error": str(exc)})
            return self._store(failed)
        if audio is None:  # re-evaluated next run: the PBX may have it by then
            return self._store(skip_record(row, SkipReason.no_recording, settings, flags))
        sha = content_sha256(audio)
        key = analysis_key(context.tenant, context.session, sha, settings.text_model, settings.prompt_version)
        if confirm_existing(
            self.engine, key, model=settings.text_model, prompt_version=settings.prompt_version
        ):
            return CallOutcome("unchanged")
        prepared = self.analyzer.prepare_batch_item(audio, context, privacy=self.privacy)
        if isinstance(prepared, AnalysisRecord):  # nothing to analyse (silence) or unusable audio
            return self._store(prepared)
        store_pending(self.engine, pending_from_item(prepared, settings, flags))
        if self.use_batch:
            return CallOutcome("queued", spent_usd=prepared.transcription_cost_usd)
        return self._store(self.analyzer.analyze_prepared(prepared))

    def resume(self, pending: PendingAnalysis) -> CallOutcome:
        record = self.analyzer.analyze_prepared(redact_item(item_from_pending(pending), self.privacy))
        record = with_flags(record, parse_flags(pending.flags))
        return self._store(record, already_paid_usd=pending.cost_usd)


def _run_pool(
    jobs: list[Callable[[], CallOutcome]],
    *,
    workers: int,
    summary: RunSummary,
    on_progress: ProgressCallback | None,
) -> None:
    """Run jobs on a bounded pool; the first error cancels the jobs not started and is raised."""
    if not jobs:
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analyze") as pool:
        futures: list[Future[CallOutcome]] = [pool.submit(job) for job in jobs]
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                summary.add(future.result())
                if on_progress is not None:
                    on_progress(done, len(futures))
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _store_skips(
    engine: sa.Engine,
    skipped: pd.DataFrame,
    analyzer: OpenAIAnalyzer,
    flags: Mapping[str, OfflineFlags],
    summary: RunSummary,
) -> None:
    records = [
        skip_record(row, SkipReason(row[REASON_COLUMN]), analyzer.settings, flags.get(str(row["session"])))
        for row in skipped.to_dict("records")
    ]
    store_records(engine, records)
    for record in records:
        summary.add(CallOutcome.of(record))


def analyze_tenant(
    engine: sa.Engine,
    config: TenantAnalysisConfig,
    *,
    analyzer: OpenAIAnalyzer | None,
    fetcher: CallAudioFetcher | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
    use_batch: bool = False,
    max_calls: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunSummary:
    """Analyse one tenant's calls that started since `since` (see the module docstring).

    Args:
        engine: Warehouse engine (schema at head).
        config: The tenant's policy, budget, keywords and business hours.
        analyzer: The OpenAI analyzer, or None for the offline rules (no network at all).
        fetcher: Downloads recordings (required with an analyzer).
        since: Start of the window (default: `DEFAULT_SINCE_HOURS` before `now`).
        now: The current instant (default: now).
        use_batch: Send the text step through the Batch API (collected by a later run).
        max_calls: Send at most this many new calls to the model (the rest wait for the next run);
            None uses the tenant's `max_calls`.
        on_progress: Called with (done, total) as calls finish, on the calling thread.

    Returns:
        The run's summary.

    Raises:
        AnalysisServiceError: The AI service cannot be used (records stored so far are kept).
        UcmError: The PBX could not deliver recordings.
    """
    began = time.monotonic()
    now = now or datetime.now(UTC)
    since = since or default_since(now)
    if analyzer is None:
        summary = analyze_offline(engine, config, since=since, now=now)
        summary.seconds = time.monotonic() - began
        return summary
    if fetcher is None:
        raise ValueError("an OpenAI analyzer needs a recording fetcher")
    settings = analyzer.settings
    summary = RunSummary(tenant=config.tenant, mode="openai", budget_usd=config.budget.daily_usd)
    collect_batches(engine, analyzer, config.tenant, summary, privacy=config.privacy)

    history = read_calls(engine, config.tenant, since - timedelta(days=config.history_days), now)
    flags = _flags_by_session(config, history)
    needing = calls_needing_analysis(
        engine,
        config.tenant,
        since=since,
        until=now,
        model=settings.text_model,
        prompt_version=settings.prompt_version,
    )
    spend = spent_today(engine, config.tenant, timezone=config.timezone, now=now)
    budget = config.budget_for(
        transcription_model=settings.transcription_model, text_model=settings.text_model, batch=use_batch
    )
    to_analyze, skipped = select_calls(
        needing,
        config.policy,
        budget,
        spend.usd,
        settings.prices,
        spent_today_audio_minutes=spend.audio_minutes,
    )
    _store_skips(engine, skipped, analyzer, flags, summary)
    limit = max_calls or config.max_calls
    if limit is not None and len(to_analyze) > limit:
        summary.deferred = len(to_analyze) - limit
        to_analyze = to_analyze.head(limit)

    resumed = pending_analyses(
        engine, config.tenant, model=settings.text_model, prompt_version=settings.prompt_version
    )
    worker = _CallWorker(engine, analyzer, fetcher, flags, use_batch=use_batch, privacy=config.privacy)
    refs = recording_refs(engine, config.tenant, to_analyze["session"].astype(str).tolist())
    jobs: list[Callable[[], CallOutcome]] = []
    if not use_batch:
        jobs += [functools.partial(worker.resume, pending) for pending in resumed]
    for row in to_analyze.to_dict("records"):
        jobs.append(functools.partial(worker.call, row, refs.get(str(row["session"]), [])))
    summary.considered = len(needing) + len(resumed)
    _run_pool(jobs, workers=config.max_workers, summary=summary, on_progress=on_progress)
    if use_batch:
        submit_pending(engine, analyzer, config.tenant, summary, now=now, privacy=config.privacy)

    summary.spent_today_usd = spent_today(engine, config.tenant, timezone=config.timezone, now=now).usd
    summary.seconds = time.monotonic() - began
    log.info(
        "tenant %s: %d analysed, %d failed, %d skipped, %.4f USD",
        config.tenant,
        summary.analyzed,
        summary.failed,
        sum(summary.skipped.values()),
        summary.cost_usd,
    )
    return summary
