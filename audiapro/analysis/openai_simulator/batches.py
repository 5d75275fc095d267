"""Files and the Batch API for `/v1/responses`: JSONL input, a poll-driven lifecycle, result files.

Lifecycle: `validating` (create) → `in_progress` → `completed` once the batch has been retrieved
`batch_complete_after_polls` times; an invalid input file ends in `failed`, a cancel request in
`cancelling` → `cancelled`. Lines run through the synchronous Responses code and are billed at the
batch discount when the batch completes; output lines are shuffled, as the real API does not keep
input order.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.config import OpenAISimConfig
from audiapro.analysis.openai_simulator.faults import FaultInjector, FaultKind
from audiapro.analysis.openai_simulator.multipart import MultipartForm
from audiapro.analysis.openai_simulator.stats import IdFactory, StatsRecorder
from audiapro.analysis.openai_simulator.structured import RESPONSES_PATH, respond

COMPLETION_WINDOW: Final = "24h"  # the only window the API accepts
COMPLETION_WINDOW_S: Final = 24 * 3600
TERMINAL: Final = frozenset({"completed", "failed", "cancelled", "expired"})
CANCELLABLE: Final = frozenset({"validating", "in_progress", "finalizing"})
LINE_FIELDS: Final = ("custom_id", "method", "url", "body")


@dataclass(frozen=True)
class StoredFile:
    """A file held by the simulator (an upload with purpose `batch`, or a result file)."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def to_json(self) -> dict[str, Any]:
        """The FileObject wire shape."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class _Batch:
    id: str
    input_file_id: str
    metadata: dict[str, str] | None
    created_at: int
    requests: list[tuple[str, Mapping[str, Any]]]
    problems: list[dict[str, Any]]
    status: str = "validating"
    polls: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": RESPONSES_PATH,
            "errors": {"object": "list", "data": self.problems} if self.status == "failed" else None,
            "input_file_id": self.input_file_id,
            "completion_window": COMPLETION_WINDOW,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + COMPLETION_WINDOW_S,
            "request_counts": dict(self.counts),
            "metadata": self.metadata,
        }


def _problem(code: str, line: int, message: str, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "line": line, "message": message, "param": param}


def _line_problem(number: int, item: Any, seen: set[str]) -> dict[str, Any] | None:
    """Why line `number` of a batch input is invalid, or None."""
    if not isinstance(item, Mapping) or any(k not in item for k in LINE_FIELDS):
        return _problem(
            "invalid_request", number, f"Each line must be an object with {', '.join(LINE_FIELDS)}."
        )
    if item["method"] != "POST" or item["url"] != RESPONSES_PATH:
        message = f"The URL '{item['url']}' does not match the batch endpoint '{RESPONSES_PATH}'."
        return _problem("mismatched_endpoint", number, message, "url")
    if str(item["custom_id"]) in seen:
        message = f"The custom_id '{item['custom_id']}' is a duplicate of another request."
        return _problem("duplicate_custom_id", number, message, "custom_id")
    return None


def parse_input(data: bytes) -> tuple[list[tuple[str, Mapping[str, Any]]], list[dict[str, Any]]]:
    """Split a batch input file into `(custom_id, body)` requests and problems (1-based lines)."""
    requests: list[tuple[str, Mapping[str, Any]]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    lines = [ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    for number, raw in enumerate(lines, start=1):
        try:
            item = json.loads(raw)
        except ValueError:
            problems.append(
                _problem("invalid_json_line", number, "This line is not parseable as valid JSON.")
            )
            continue
        problem = _line_problem(number, item, seen)
        if problem is None:
            seen.add(str(item["custom_id"]))
            requests.append((str(item["custom_id"]), item["body"]))
        else:
            problems.append(problem)
    if not lines:
        problems.append(_problem("empty_file", 0, "The batch input file is empty."))
    return requests, problems


class BatchStore:
    """Thread-safe registry of files and batches, and the executor of batch lines.

    Args:
        config: Simulator configuration.
        ids: Id source.
        injector: Fault source for per-line faults.
        recorder: Billing sink.
    """

    def __init__(
        self, config: OpenAISimConfig, ids: IdFactory, injector: FaultInjector, recorder: StatsRecorder
    ) -> None:
        self._config = config
        self._ids = ids
        self._injector = injector
        self._recorder = recorder
        self._lock = threading.RLock()  # a completing batch stores its result files under the lock
        self._files: dict[str, StoredFile] = {}
        self._batches: dict[str, _Batch] = {}

    # -- files --------------------------------------------------------------------------------

    def _add_file(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(self._ids.new("file-", 22), filename, purpose, data, int(time.time()))
        with self._lock:
            self._files[stored.id] = stored
        return stored

    def upload(self, form: MultipartForm) -> dict[str, Any]:
        """Handle `POST /v1/files` (batch input only)."""
        upload = form.files.get("file")
        if upload is None:
            raise errors.missing_param("file")
        if form.get("purpose") != "batch":
            raise errors.unsupported("purpose", f"File purpose '{form.get('purpose')}'")
        if not upload.filename.lower().endswith(".jsonl"):
            raise errors.invalid(
                "file", "Invalid file format for Batch API. Must be .jsonl", "invalid_file_format"
            )
        return self._add_file(upload.filename, "batch", upload.data).to_json()

    def file(self, file_id: str) -> StoredFile:
        """The stored file, or 404."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise errors.not_found("File object", file_id, "file_id")
        return stored

    # -- batches ------------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Handle `POST /v1/batches`."""
        errors.only_known_fields(
            body, frozenset({"input_file_id", "endpoint", "completion_window", "metadata"})
        )
        if body.get("endpoint") != RESPONSES_PATH:
            # e.g. /v1/audio/transcriptions: the real API cannot batch audio.
            raise errors.unsupported("endpoint", f"Batching {body.get('endpoint')}")
        if body.get("completion_window") != COMPLETION_WINDOW:
            raise errors.invalid("completion_window", f"completion_window must be '{COMPLETION_WINDOW}'.")
        source = self.file(str(body.get("input_file_id")))
        requests, problems = parse_input(source.data)
        batch = _Batch(
            self._ids.new("batch_"), source.id, body.get("metadata"), int(time.time()), requests, problems
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
            batch.counts["total"] = len(batch.requests)
            if batch.status == "cancelling":
                batch.status = "cancelled"
            elif batch.status not in TERMINAL:
                if batch.problems:
                    batch.status = "failed"
                elif batch.polls >= self._config.batch_complete_after_polls:
                    self._run(batch)
                else:
                    batch.status = "in_progress"
            return batch.to_json()

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Handle `POST /v1/batches/{id}/cancel`."""
        with self._lock:
            batch = self._get(batch_id)
            if batch.status in CANCELLABLE:
                batch.status = "cancelling"
            elif batch.status != "cancelling":
                message = f"Cannot cancel a batch with status '{batch.status}'."
                raise errors.invalid("batch_id", message, "invalid_state")
            return batch.to_json()

    def list(self, limit: int, after: str | None) -> dict[str, Any]:
        """Handle `GET /v1/batches` (newest first, cursor `after`)."""
        with self._lock:
            batches = list(reversed(self._batches.values()))
        ids = [b.id for b in batches]
        if after is not None:
            batches = batches[ids.index(after) + 1 :] if after in ids else []
        page = [b.to_json() for b in batches[:limit]]
        last = page[-1]["id"] if page else None
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": last,
            "has_more": len(batches) > limit,
        }

    def _execute(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        fault = self._injector.batch_line()
        if fault is FaultKind.BATCH_LINE_ERROR:
            self._injector.record(fault)
            message = "The server had an error while processing your request. Sorry about that!"
            return 500, errors.SimError(500, message, type=errors.SERVER_ERROR).body()
        try:
            return 200, respond(body, self._config, self._recorder, self._ids, fault=fault, batch=True)
        except errors.SimError as exc:
            return exc.status, exc.body()

    def _run(self, batch: _Batch) -> None:
        results: dict[bool, list[str]] = {True: [], False: []}
        for custom_id, body in batch.requests:
            status, answer = self._execute(body)
            response = {"status_code": status, "request_id": self._ids.new("req_", 32), "body": answer}
            line = {
                "id": self._ids.new("batch_req_", 32),
                "custom_id": custom_id,
                "response": response,
                "error": None,
            }
            results[status == 200].append(json.dumps(line, ensure_ascii=False))
        # Consumers must join on custom_id: the output does not keep the input order.
        random.Random(f"batch-order:{self._config.seed}:{batch.id}").shuffle(results[True])
        for ok, lines in results.items():
            if lines:
                name = f"batch_{batch.id}_{'output' if ok else 'error'}.jsonl"
                stored = self._add_file(name, "batch_output", ("\n".join(lines) + "\n").encode())
                setattr(batch, "output_file_id" if ok else "error_file_id", stored.id)
        batch.counts = {
            "total": len(batch.requests),
            "completed": len(results[True]),
            "failed": len(results[False]),
        }
        batch.status = "completed"
