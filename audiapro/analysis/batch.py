"""Batch API support for the text-analysis step (transcription cannot be batched).

Backfill pattern: transcribe synchronously, put the analysis requests in one Batch (50% price), poll,
then join results back on `custom_id` (the output file does not keep input order). Every submitted
`custom_id` gets a result once the batch is terminal: output lines, error lines, or a synthesized
error for requests an expired, cancelled or failed batch never ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import openai
from pydantic import BaseModel, ConfigDict, Field

from audiapro.analysis.errors import MAX_ERROR_CHARS, service_error
from audiapro.analysis.models import CallContext, CallInsights, Transcript
from audiapro.analysis.pricing import PriceTable
from audiapro.redaction import redact

RESPONSES_ENDPOINT: Final = "/v1/responses"
COMPLETION_WINDOW: Final = "24h"  # the only window the API accepts
#: Batch input limits (requests per file, bytes per file).
MAX_BATCH_REQUESTS: Final = 50_000
MAX_BATCH_BYTES: Final = 200 * 1024 * 1024
BATCH_FILE_NAME: Final = "call-analysis-batch.jsonl"
PENDING_STATUSES: Final = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
HTTP_OK: Final = 200


class BatchItem(BaseModel):
    """One call whose transcript waits for batch analysis.

    Attributes:
        custom_id: Stable request id (see `models.analysis_key`).
        context: Call facts.
        recording_sha256: Hash of the recording that was transcribed.
        transcript: The transcript to analyse.
        transcription_model: Model that produced the transcript.
        audio_seconds: Audio seconds billed for the transcript.
        transcription_cost_usd: What the transcript cost.
        redactions: Personal data replaced in the transcript, by category (None: not redacted).
        transcript_encrypted: The original transcript, encrypted (policy `redact_keep_encrypted`).
    """

    model_config = ConfigDict(frozen=True)

    custom_id: str
    context: CallContext
    recording_sha256: str | None
    transcript: Transcript
    transcription_model: str
    audio_seconds: float = Field(default=0.0, ge=0)
    transcription_cost_usd: float = Field(default=0.0, ge=0)
    redactions: dict[str, int] | None = None
    transcript_encrypted: str | None = Field(default=None, repr=False)


class BatchResult(BaseModel):
    """Result of one batch request: insights or an error, with usage priced at the batch discount.

    Attributes:
        custom_id: Request id.
        insights: Parsed insights (None on error).
        error: Why there are no insights (None on success); credential-free.
        model: Model that answered, when known.
        input_tokens: Billed input tokens.
        output_tokens: Billed output tokens.
        cost_usd: Cost at the batch price.
    """

    custom_id: str
    insights: CallInsights | None = None
    error: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


def encode_lines(requests: Iterable[tuple[str, Mapping[str, Any]]]) -> bytes:
    """JSONL batch input from `(custom_id, /v1/responses body)` pairs; repeated ids are sent once.

    Raises:
        ValueError: The file would exceed the Batch API limits (split the items).
    """
    seen: set[str] = set()
    lines: list[str] = []
    for custom_id, body in requests:
        if custom_id in seen:
            continue  # the same id means the same call, audio, model and prompt: one request
        seen.add(custom_id)
        line = {"custom_id": custom_id, "method": "POST", "url": RESPONSES_ENDPOINT, "body": body}
        lines.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    if len(lines) > MAX_BATCH_REQUESTS or len(data) > MAX_BATCH_BYTES:
        raise ValueError(
            f"batch too large ({len(lines)} requests, {len(data)} bytes); limits are "
            f"{MAX_BATCH_REQUESTS} requests and {MAX_BATCH_BYTES} bytes"
        )
    return data


def submit_batch(client: openai.OpenAI, lines: bytes, *, metadata: Mapping[str, str] | None = None) -> str:
    """Upload batch input and start the batch.

    Args:
        client: OpenAI client.
        lines: Output of `OpenAIAnalyzer.build_batch_lines`.
        metadata: Optional batch metadata (e.g. tenant, run id).

    Returns:
        The batch id.

    Raises:
        ValueError: `lines` is empty.
        AnalysisServiceError: The API refused (message redacted).
    """
    if not lines.strip():
        raise ValueError("no batch lines to submit")
    try:
        upload = client.files.create(file=(BATCH_FILE_NAME, lines, "application/jsonl"), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id,
            endpoint=RESPONSES_ENDPOINT,
            completion_window=COMPLETION_WINDOW,
            metadata=dict(metadata) if metadata else openai.omit,
        )
    except openai.OpenAIError as exc:
        raise service_error(exc, (client.api_key,)) from None
    return batch.id


def _output_text(body: Mapping[str, Any]) -> str | None:
    for item in body.get("output") or []:
        if isinstance(item, Mapping) and item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, Mapping) and part.get("type") == "output_text":
                    return str(part.get("text", ""))
    return None


def _line_result(line: Mapping[str, Any], prices: PriceTable, secrets: tuple[str, ...]) -> BatchResult:
    custom_id = str(line.get("custom_id"))
    response = line.get("response") or {}
    body = response.get("body") or {}
    status = response.get("status_code")
    if line.get("error") or status != HTTP_OK:
        problem = line.get("error") or body.get("error") or {}
        message = problem.get("message") if isinstance(problem, Mapping) else str(problem)
        return BatchResult(
            custom_id=custom_id,
            error=redact(
                f"batch request failed: HTTP {status}: {message}", secrets, max_chars=MAX_ERROR_CHARS
            ),
        )
    usage = body.get("usage") or {}
    input_tokens = int(usage.get("input_tokens") or 0)
    output_tokens = int(usage.get("output_tokens") or 0)
    cached = int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    model = body.get("model")
    cost = (
        prices.text_cost(model, input_tokens, output_tokens, cached_input_tokens=cached, batch=True)
        if isinstance(model, str)
        else 0.0
    )
    result = BatchResult(
        custom_id=custom_id,
        model=model if isinstance(model, str) else None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
    )
    text = _output_text(body)
    if body.get("status") == "incomplete" or text is None:
        return result.model_copy(update={"error": "malformed answer: response incomplete or empty"})
    try:
        insights = CallInsights.model_validate_json(text)
    except ValueError as exc:
        first = " ".join(str(exc).split())
        return result.model_copy(
            update={"error": redact(f"malformed answer: {first}", secrets, max_chars=MAX_ERROR_CHARS)}
        )
    return result.model_copy(update={"insights": insights})


def _read_jsonl(client: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    """Objects of a JSONL file; unparseable lines are skipped (a failed batch's input may hold them)."""
    objects: list[dict[str, Any]] = []
    for raw in client.files.content(file_id).text.splitlines():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    return objects


def collect_batch(
    client: openai.OpenAI, batch_id: str, *, prices: PriceTable | None = None
) -> dict[str, BatchResult] | None:
    """Results of a batch, or None while it is still running.

    Each call retrieves the batch once (a poll). Results are keyed by `custom_id`; a request the
    batch never ran (expired, cancelled, failed validation) gets an error result.

    Args:
        client: OpenAI client.
        batch_id: Id from `submit_batch`.
        prices: Prices for `cost_usd` at the batch discount; pass the analyzer's
            (`analyzer.settings.prices`) when it has custom ones. Default: `PriceTable()`.

    Returns:
        `{custom_id: BatchResult}` once terminal, else None.

    Raises:
        AnalysisServiceError: The API refused (message redacted).
    """
    prices = prices or PriceTable()
    secrets = (client.api_key,)
    try:
        batch = client.batches.retrieve(batch_id)
        if batch.status in PENDING_STATUSES:
            return None
        results: dict[str, BatchResult] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                for line in _read_jsonl(client, file_id):
                    result = _line_result(line, prices, secrets)
                    results[result.custom_id] = result
        if batch.status != "completed" or len(results) < (
            batch.request_counts.total if batch.request_counts else 0
        ):
            reason = (
                "missing from the batch output"
                if batch.status == "completed"
                else f"batch {batch.status} before the request ran"
            )
            if batch.errors and batch.errors.data:
                reason += ": " + "; ".join(str(e.message) for e in batch.errors.data[:3])
            for line in _read_jsonl(client, batch.input_file_id):
                custom_id = str(line.get("custom_id"))
                results.setdefault(
                    custom_id,
                    BatchResult(
                        custom_id=custom_id, error=redact(reason, secrets, max_chars=MAX_ERROR_CHARS)
                    ),
                )
    except openai.OpenAIError as exc:
        raise service_error(exc, secrets) from None
    return results
