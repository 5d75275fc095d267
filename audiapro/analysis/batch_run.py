"""The Batch API path of a run: submit stored transcripts, collect finished batches in a later run.

Transcription cannot be batched, so a backfill transcribes synchronously (each transcript is stored
as it is paid for) and sends only the text step through the Batch API at half price. Submissions are
reserved in the warehouse before they are sent and looked up by a metadata marker after a crash
(see `audiapro.warehouse.analysis_batches`), so a request is never submitted twice.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import openai

from audiapro.analysis.batch import BatchResult, collect_batch, submit_batch
from audiapro.analysis.errors import service_error
from audiapro.analysis.openai_analyzer import DEFAULT_PRIVACY, OpenAIAnalyzer
from audiapro.analysis.records import item_from_pending, parse_flags, redact_item, settings_for, with_flags
from audiapro.analysis.redact import TranscriptPrivacy
from audiapro.analysis.summary import CallOutcome, RunSummary
from audiapro.warehouse import (
    BatchRow,
    PendingAnalysis,
    confirm_batch,
    finish_batch,
    open_batches,
    pending_analyses,
    release_batch,
    reserve_batch,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("audiapro.analysis")

#: Batch metadata key holding the submission marker.
MARKER_KEY: Final = "audiapro_submission"
MARKER_PREFIX: Final = "submitting-"
#: Requests per submitted batch: transcripts of up to ~60k characters keep a file under 200 MB.
BATCH_CHUNK: Final = 2000
#: Batches created this long before a reservation are not searched for its marker.
MARKER_SEARCH_SLACK: Final = timedelta(hours=1)
LIST_PAGE_SIZE: Final = 100
#: A request a batch never answered is sent again this many times before it is recorded as failed.
MAX_BATCH_REQUEUES: Final = 1


def _unanswered(result: BatchResult | None) -> bool:
    """The batch never answered the request (expired, cancelled, a line error): nothing was billed."""
    return result is None or (result.insights is None and result.input_tokens == result.output_tokens == 0)


def _analyzer_for(analyzer: OpenAIAnalyzer, pending: PendingAnalysis) -> OpenAIAnalyzer:
    settings = settings_for(analyzer.settings, pending)
    return analyzer if settings is analyzer.settings else OpenAIAnalyzer(analyzer.client, settings)


def _find_submission(client: openai.OpenAI, row: BatchRow) -> str | None:
    """The id of the batch a crashed run submitted under `row`'s marker, if it reached the API."""
    oldest = (row.submitted_at - MARKER_SEARCH_SLACK).timestamp()
    try:
        for batch in client.batches.list(limit=LIST_PAGE_SIZE):  # newest first, pages on demand
            if (batch.metadata or {}).get(MARKER_KEY) == row.batch_id:
                return batch.id
            if batch.created_at < oldest:
                break
    except openai.OpenAIError as exc:
        raise service_error(exc, (client.api_key,)) from None
    return None


def collect_batches(
    engine: sa.Engine,
    analyzer: OpenAIAnalyzer,
    tenant: str,
    summary: RunSummary,
    *,
    privacy: TranscriptPrivacy = DEFAULT_PRIVACY,
) -> None:
    """Collect the tenant's finished batches (and settle reservations a crash left behind).

    Args:
        engine: Warehouse engine.
        analyzer: Analyzer whose client polls the batches.
        tenant: Tenant.
        summary: Counts collected records, spend and batches still open.
        privacy: Redacts transcripts stored before redaction existed, before they are stored final.

    Raises:
        AnalysisServiceError: The API could not be asked.
    """
    for row in open_batches(engine, tenant):
        batch_id = row.batch_id
        if row.batch_id.startswith(MARKER_PREFIX):
            found = _find_submission(analyzer.client, row)
            if found is None:
                released = release_batch(engine, row.batch_id)
                log.info("tenant %s: %d transcripts of an unsent batch released", tenant, released)
                continue
            confirm_batch(engine, row.batch_id, found)
            batch_id = found
        results = collect_batch(analyzer.client, batch_id, prices=analyzer.settings.prices)
        if results is None:
            summary.batches_open += 1
            continue
        records, requeue = [], []
        for pending in pending_analyses(engine, tenant, batch_id=batch_id):
            result = results.get(pending.analysis_key)
            if _unanswered(result) and pending.attempts < MAX_BATCH_REQUEUES:
                requeue.append(pending.analysis_key)  # nothing billed: send it once more
                continue
            item = redact_item(item_from_pending(pending), privacy)
            record = _analyzer_for(analyzer, pending).record_from_batch(item, result)
            record = with_flags(record, parse_flags(pending.flags))
            records.append(record)
            summary.add(CallOutcome.of(record, already_paid_usd=pending.cost_usd))
        finish_batch(engine, batch_id, records, requeue=requeue)
        summary.batch_collected += len(records)
        log.info(
            "tenant %s: batch %s collected (%d records, %d requeued)",
            tenant,
            batch_id,
            len(records),
            len(requeue),
        )


def submit_pending(
    engine: sa.Engine,
    analyzer: OpenAIAnalyzer,
    tenant: str,
    summary: RunSummary,
    *,
    now: datetime,
    privacy: TranscriptPrivacy = DEFAULT_PRIVACY,
) -> None:
    """Submit every stored transcript of the analyzer's config that is not in a batch yet.

    Transcripts stored before redaction existed are redacted per `privacy` before they are sent.

    Raises:
        AnalysisServiceError: The API refused; the reservation stays and the next run settles it.
    """
    settings = analyzer.settings
    while True:  # one chunk at a time: reserved rows leave the query, so each read gets new ones
        waiting = pending_analyses(
            engine,
            tenant,
            model=settings.text_model,
            prompt_version=settings.prompt_version,
            limit=BATCH_CHUNK,
        )
        if not waiting:
            return
        items = [redact_item(item_from_pending(p), privacy) for p in waiting]
        lines = analyzer.build_batch_lines(items)
        marker = MARKER_PREFIX + uuid.uuid4().hex
        reserve_batch(engine, tenant, marker, [item.custom_id for item in items], now=now)
        batch_id = submit_batch(analyzer.client, lines, metadata={"tenant": tenant, MARKER_KEY: marker})
        confirm_batch(engine, marker, batch_id)
        summary.batch_submitted += len(items)
        summary.batches_open += 1
        log.info("tenant %s: %d analyses submitted as batch %s", tenant, len(items), batch_id)
