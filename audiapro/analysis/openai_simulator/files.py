"""In-memory `/v1/files` store (uploads, batch outputs)."""

from __future__ import annotations

import posixpath
import threading
import time
from dataclasses import dataclass
from typing import Any

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.config import OpenAISimConfig
from audiapro.analysis.openai_simulator.multipart import MultipartForm
from audiapro.analysis.openai_simulator.util import IdFactory

UPLOAD_PURPOSES: tuple[str, ...] = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
BATCH_FILE_EXTENSION = "jsonl"
# Files with purpose=batch expire after 30 days unless `expires_after` says otherwise.
DEFAULT_BATCH_FILE_TTL_S = 30 * 24 * 3600
MIN_EXPIRES_AFTER_S, MAX_EXPIRES_AFTER_S = 3600, 30 * 24 * 3600
DEFAULT_LIST_LIMIT = 10_000


@dataclass(frozen=True)
class StoredFile:
    """A file held by the simulator.

    Attributes:
        id: `file-…` id.
        filename: Name given at upload (or generated for outputs).
        purpose: Upload purpose, or `batch_output` for results.
        data: The bytes.
        created_at: Unix time of creation.
        expires_at: Unix expiry time, if any.
    """

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int
    expires_at: int | None

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
            "expires_at": self.expires_at,
            "status_details": None,
        }


class FileStore:
    """Thread-safe file registry.

    Args:
        config: Simulator configuration (size limits).
        ids: Id generator.
    """

    def __init__(self, config: OpenAISimConfig, ids: IdFactory) -> None:
        self._config = config
        self._ids = ids
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}

    def add(self, filename: str, purpose: str, data: bytes, expires_at: int | None = None) -> StoredFile:
        """Store bytes under a new id."""
        stored = StoredFile(
            self._ids.alnum("file-", 22), filename, purpose, data, int(time.time()), expires_at
        )
        with self._lock:
            self._files[stored.id] = stored
        return stored

    def upload(self, form: MultipartForm) -> dict[str, Any]:
        """Handle `POST /v1/files`."""
        upload = form.files.get("file")
        if upload is None:
            raise errors.missing_param("file")
        purpose = form.get("purpose")
        if not purpose:
            raise errors.missing_param("purpose")
        if purpose not in UPLOAD_PURPOSES:
            raise errors.unsupported_value("purpose", purpose, UPLOAD_PURPOSES)
        now = int(time.time())
        expires_at = now + DEFAULT_BATCH_FILE_TTL_S if purpose == "batch" else None
        if purpose == "batch":
            if posixpath.splitext(upload.filename.lower())[1] != f".{BATCH_FILE_EXTENSION}":
                raise errors.SimError(
                    400,
                    "Invalid file format for Batch API. Must be .jsonl",
                    param="file",
                    code="invalid_file_format",
                )
            if len(upload.data) > self._config.max_batch_file_bytes:
                raise errors.SimError(
                    413,
                    f"File is too large: {len(upload.data)} bytes exceeds the "
                    f"{self._config.max_batch_file_bytes} byte limit for batch input files.",
                    param="file",
                )
        expiry = form.nested("expires_after")
        if expiry:
            if expiry.get("anchor") != "created_at":
                raise errors.unsupported_value("expires_after.anchor", expiry.get("anchor"), ["created_at"])
            try:
                seconds = int(expiry.get("seconds", ""))
            except ValueError:
                raise errors.invalid_type("expires_after.seconds", "an integer") from None
            if not MIN_EXPIRES_AFTER_S <= seconds <= MAX_EXPIRES_AFTER_S:
                raise errors.invalid_value(
                    "expires_after.seconds",
                    f"expires_after.seconds must be between {MIN_EXPIRES_AFTER_S} and {MAX_EXPIRES_AFTER_S}.",
                )
            expires_at = now + seconds
        return self.add(upload.filename, purpose, upload.data, expires_at).to_json()

    def get(self, file_id: str) -> StoredFile:
        """The stored file, or 404."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise errors.not_found("File object", file_id, "file_id")
        return stored

    def delete(self, file_id: str) -> dict[str, Any]:
        """Handle `DELETE /v1/files/{id}`."""
        self.get(file_id)
        with self._lock:
            self._files.pop(file_id, None)
        return {"id": file_id, "object": "file", "deleted": True}

    def list(self, purpose: str | None) -> dict[str, Any]:
        """Handle `GET /v1/files` (newest first, single page)."""
        with self._lock:
            files = [f for f in self._files.values() if purpose is None or f.purpose == purpose]
        data = [f.to_json() for f in reversed(files)][:DEFAULT_LIST_LIMIT]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }
