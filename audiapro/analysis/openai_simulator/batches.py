"""Batch API: validation of the JSONL input, a poll-driven lifecycle, output and error files.

Lifecycle: `validating` (create) → `in_progress` → `completed` once the batch has been retrieved
`batch_complete_after_polls` times; an invalid input file ends in `failed`, a cancel request in
`cancelling` → `cancelled`. Lines are executed by the same engine as the synchronous endpoints and
billed at the batch discount when the batch completes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.config import FaultKind, OpenAISimConfig
from audiapro.analysis.openai_simulator.faults import FaultInjector
from audiapro.analysis.openai_simulator.files import FileStore
from audiapro.analysis.openai_simulator.structured import CHAT_PATH, RESPONSES_PATH, TextEngine
from audiapro.analysis.openai_simulator.util import IdFactory, seeded_rng

# Endpoints the 3.57 client accepts for batches (`types/batch_create_params.py`).
REAL_BATCH_ENDPOINTS: tuple[str, ...] = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
SIMULATED_BATCH_ENDPOINTS: tuple[str, ...] = (RESPONSES_PATH, CHAT_PATH)
COMPLETION_WINDOWS: tuple[str, ...] = ("24h",)
COMPLETION_WINDOW_S = 24 * 3600
TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})
CANCELLABLE = frozenset({"validating", "in_progress", "finalizing"})
DEFAULT_LIST_LIMIT = 20


@dataclass
class _Batch:
    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: dict[str, str] | None
    created_at: int
    requests: list[dict[str, Any]]
    validation_errors: list[dict[str, Any]]
    model: str | None
    status: str = "validating"
    polls: int = 0
    times: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    usage: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        errors_obj = {"object": "list", "data": self.validation_errors} if self.status == "failed" else None
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": errors_obj,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.times.get("in_progress_at"),
            "expires_at": self.created_at + COMPLETION_WINDOW_S,
            "finalizing_at": self.times.get("finalizing_at"),
            "completed_at": self.times.get("completed_at"),
            "failed_at": self.times.get("failed_at"),
            "expired_at": None,
            "cancelling_at": self.times.get("cancelling_at"),
            "cancelled_at": self.times.get("cancelled_at"),
            "request_counts": dict(self.counts),
            "usage": self.usage,
            "metadata": self.metadata,
        }


def _line_error(code: str, line: int, message: str, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "line": line, "message": message, "param": param}


def parse_input(
    data: bytes, endpoint: str, max_requests: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split a batch input file into requests and validation errors (1-based line numbers)."""
    requests: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    lines = [ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return [], [_line_error("empty_file", 0, "The batch input file is empty.")]
    if len(lines) > max_requests:
        problems.append(_line_error("too_many_requests", len(lines), f"At most {max_requests} requests."))
    for number, raw in enumerate(lines, start=1):
        try:
            item = json.loads(raw)
        except ValueError:
            problems.append(
                _line_error("invalid_json_line", number, "This line is not parseable as valid JSON.")
            )
            continue
        if not isinstance(item, Mapping):
            problems.append(_line_error("invalid_request", number, "Each line must be a JSON object."))
            continue
        missing = [k for k in ("custom_id", "method", "url", "body") if k not in item]
        if missing:
            problems.append(
                _line_error(
                    "missing_required_parameter",
                    number,
                    f"Missing required parameter: '{missing[0]}'.",
                    missing[0],
                )
            )
            continue
        custom_id, body = str(item["custom_id"]), item["body"]
        if item["method"] != "POST":
            problems.append(_line_error("invalid_method", number, "Only POST is supported.", "method"))
        elif item["url"] != endpoint:
            problems.append(
                _line_error(
                    "mismatched_endpoint",
                    number,
                    f"The URL '{item['url']}' does not match the batch endpoint '{endpoint}'.",
                    "url",
                )
            )
        elif custom_id in seen:
            problems.append(
                _line_error(
                    "duplicate_custom_id",
                    number,
                    f"The custom_id '{custom_id}' is a duplicate of another request.",
                    "custom_id",
                )
            )
        elif not isinstance(body, Mapping):
            problems.append(_line_error("invalid_request", number, "'body' must be a JSON object.", "body"))
        else:
            seen.add(custom_id)
            models.add(str(body.get("model")))
            requests.append({"custom_id": custom_id, "body": body})
    if len(models) > 1:
        # The Batch guide: each input file may only include requests to a single model.
        problems.append(
            _line_error(
                "mismatched_model",
                0,
                f"All requests in a batch must use the same model; found {sorted(models)}.",
                "body.model",
            )
        )
    return requests, problems


class BatchStore:
    """Thread-safe batch registry and executor.

    Args:
        config: Simulator configuration.
        ids: Id generator.
        files: File store holding inputs and outputs.
        engine: Text engine used to run each line.
        injector: Fault source for per-line faults.
    """

    def __init__(
        self,
        config: OpenAISimConfig,
        ids: IdFactory,
        files: FileStore,
        engine: TextEngine,
        injector: FaultInjector,
    ) -> None:
        self._config = config
        self._ids = ids
        self._files = files
        self._engine = engine
        self._injector = injector
        self._lock = threading.Lock()
        self._batches: dict[str, _Batch] = {}

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Handle `POST /v1/batches`."""
        for name in ("input_file_id", "endpoint", "completion_window"):
            if name not in body:
                raise errors.missing_param(name)
        endpoint = body["endpoint"]
        if endpoint not in REAL_BATCH_ENDPOINTS:
            # e.g. /v1/audio/transcriptions: the real API cannot batch audio.
            raise errors.unsupported_value("endpoint", endpoint, REAL_BATCH_ENDPOINTS)
        if endpoint not in SIMULATED_BATCH_ENDPOINTS:
            raise errors.unsupported_by_simulator("endpoint", f"Batching {endpoint}")
        if body["completion_window"] not in COMPLETION_WINDOWS:
            raise errors.unsupported_value("completion_window", body["completion_window"], COMPLETION_WINDOWS)
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise errors.invalid_type("metadata", "an object")
        source = self._files.get(str(body["input_file_id"]))
        if source.purpose != "batch":
            raise errors.invalid_value(
                "input_file_id", f"File {source.id} must be uploaded with purpose 'batch'."
            )
        requests, problems = parse_input(source.data, endpoint, self._config.max_batch_requests)
        models = {str(r["body"].get("model")) for r in requests}
        batch = _Batch(
            id=self._ids.alnum("batch_", 24),
            endpoint=endpoint,
            input_file_id=source.id,
            completion_window=body["completion_window"],
            metadata=dict(metadata) if metadata else None,
            created_at=int(time.time()),
            requests=requests,
            validation_errors=problems,
            model=next(iter(models)) if len(models) == 1 else None,
        )
        with self._lock:
            self._batches[batch.id] = batch
            return batch.to_json()

    def _get(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise errors.not_found("batch", batch_id, "batch_id")
        return batch

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        """Handle `GET /v1/batches/{id}`; each call advances the lifecycle by one poll."""
        with self._lock:
            batch = self._get(batch_id)
            batch.polls += 1
            now = int(time.time())
            if batch.status == "cancelling":
                batch.status = "cancelled"
                batch.times["cancelled_at"] = now
                batch.counts = {"total": len(batch.requests), "completed": 0, "failed": 0}
            elif batch.status not in TERMINAL:
                if batch.validation_errors:
                    batch.status = "failed"
                    batch.times["failed_at"] = now
                elif batch.polls >= self._config.batch_complete_after_polls:
                    self._run(batch, now)
                else:
                    batch.status = "in_progress"
                    batch.times.setdefault("in_progress_at", now)
                    batch.counts = {"total": len(batch.requests), "completed": 0, "failed": 0}
            return batch.to_json()

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Handle `POST /v1/batches/{id}/cancel`."""
        with self._lock:
            batch = self._get(batch_id)
            if batch.status in CANCELLABLE:
                batch.status = "cancelling"
                batch.times["cancelling_at"] = int(time.time())
            elif batch.status != "cancelling":
                raise errors.SimError(
                    400,
                    f"Cannot cancel a batch with status '{batch.status}'.",
                    param="batch_id",
                    code="invalid_state",
                )
            return batch.to_json()

    def list(self, limit: int, after: str | None) -> dict[str, Any]:
        """Handle `GET /v1/batches` (newest first, cursor `after`)."""
        with self._lock:
            batches = list(reversed(self._batches.values()))
            if after is not None:
                ids = [b.id for b in batches]
                batches = batches[ids.index(after) + 1 :] if after in ids else []
            page = [b.to_json() for b in batches[:limit]]
            has_more = len(batches) > limit
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": has_more,
        }

    def _execute(self, batch: _Batch, request: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        if self._injector.draw_batch_line_error():
            self._injector.record(FaultKind.BATCH_LINE_ERROR)
            failure = errors.SimError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type=errors.SERVER_ERROR,
            )
            return failure.status, failure.body()
        run = self._engine.responses if batch.endpoint == RESPONSES_PATH else self._engine.chat
        try:
            return 200, run(request["body"], fault=None, batch=True)
        except errors.SimError as exc:
            return exc.status, exc.body()

    def _run(self, batch: _Batch, now: int) -> None:
        batch.times.setdefault("in_progress_at", now)
        batch.times["finalizing_at"] = now
        outputs: list[str] = []
        failures: list[str] = []
        usage = {"input_tokens": 0, "output_tokens": 0}
        for request in batch.requests:
            status, body = self._execute(batch, request)
            line = {
                "id": self._ids.hex("batch_req_", 32),
                "custom_id": request["custom_id"],
                "response": {"status_code": status, "request_id": self._ids.hex("req_", 32), "body": body},
                "error": None,
            }
            (outputs if status == 200 else failures).append(json.dumps(line, ensure_ascii=False))
            if status == 200:
                raw_usage = body.get("usage", {})
                usage["input_tokens"] += int(raw_usage.get("input_tokens", raw_usage.get("prompt_tokens", 0)))
                usage["output_tokens"] += int(
                    raw_usage.get("output_tokens", raw_usage.get("completion_tokens", 0))
                )
        if self._config.batch_shuffle_output:
            # The real API does not preserve input order; consumers must join on custom_id.
            seeded_rng("batch-order", self._config.seed, batch.id).shuffle(outputs)
        if outputs:
            batch.output_file_id = self._files.add(
                f"batch_{batch.id}_output.jsonl", "batch_output", ("\n".join(outputs) + "\n").encode()
            ).id
        if failures:
            batch.error_file_id = self._files.add(
                f"batch_{batch.id}_error.jsonl", "batch_output", ("\n".join(failures) + "\n").encode()
            ).id
        batch.counts = {"total": len(batch.requests), "completed": len(outputs), "failed": len(failures)}
        batch.usage = {
            "input_tokens": usage["input_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        }
        batch.status = "completed"
        batch.times["completed_at"] = now
