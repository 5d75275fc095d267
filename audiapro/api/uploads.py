"""Uploads from the browser (``/upload``): a streamed body into the spool, then an import-cdr-file run.

* The body is written chunk by chunk to a temporary file in the spool while it is hashed; the whole
  file is never in memory. Its size is capped by the request gate (``UPLOAD_MAX_BYTES``: 413 on a
  declared ``Content-Length`` above it before anything is read, and as soon as a streamed body
  passes it).
* The spooled file is named after its content (``upload-<sha256 prefix>.<csv|json>`` in
  ``<spool>/uploads/<tenant>/``): the name the client gave is shown back, never used in a path.
* The same content uploaded again for a tenant is recognised by its hash: the earlier import's
  counts are answered and nothing runs again.
* The import itself is an ``import-cdr-file`` flow run started through the orchestrator, so it is
  visible and retryable in the Prefect UI; its progress is read from the warehouse's import record.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from audiapro import settings
from audiapro.cdr.readers import ImportFormatError, detect_format, iter_cdr_file
from audiapro.warehouse.push import read_imported_file

if TYPE_CHECKING:
    import sqlalchemy as sa

#: Largest upload in bytes (a UCM export of a busy year is a few hundred MB).
UPLOAD_MAX_BYTES: Final = 1 << 30
#: Route prefix of the uploads (under the admin prefix: the admin token is checked before the body).
UPLOAD_PREFIX: Final = "/api/admin/uploads/"
#: Sub-directory of the spool the uploads land in.
UPLOAD_SPOOL: Final = "uploads"
#: Hex digits of the content hash in a spooled file's name.
NAME_HASH_CHARS: Final = 16
#: Rejected rows listed in a status answer.
REJECT_PREVIEW: Final = 20
#: Rows read to check that an upload is a CDR file before its import run is started.
CHECK_ROWS: Final = 10
#: Longest client file name echoed back.
MAX_SHOWN_NAME: Final = 200
_IMPORT_DONE: Final = "done"
#: Run states after which a run that never claimed its file will not do so any more.
RUN_ENDED_BADLY: Final = frozenset({"FAILED", "CRASHED", "CANCELLED"})


@dataclass(frozen=True)
class SpooledUpload:
    """An upload written to the spool.

    Attributes:
        path: Where it lies (named after its content).
        sha256: Content hash.
        size_bytes: Its size.
        existed: The same content was spooled for the tenant before (that file is kept as it was).
    """

    path: Path
    sha256: str
    size_bytes: int
    existed: bool = False


async def spool_upload(
    chunks: AsyncIterator[bytes], tenant: str, spool_dir: Path | None = None
) -> SpooledUpload:
    """Write a streamed body into ``<spool>/uploads/<tenant>/``, hashing it on the way.

    Raises:
        ValueError: The body is empty.
    """
    folder = (spool_dir or settings.IMPORT_SPOOL_DIR) / UPLOAD_SPOOL / tenant
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".incoming-{uuid.uuid4().hex}"
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as fh:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                fh.write(chunk)
        if not size:
            raise ValueError("the upload is empty")
        sha256 = digest.hexdigest()
        try:
            kind = detect_format(partial)
        except ImportFormatError:
            raise ValueError("the upload is blank") from None
        final = folder / f"upload-{sha256[:NAME_HASH_CHARS]}.{kind}"
        existed = final.exists()
        if not existed:  # an earlier copy may be read by its import right now: never replaced
            os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return SpooledUpload(path=final, sha256=sha256, size_bytes=size, existed=existed)


def unreadable_reason(path: Path) -> str | None:
    """Why the file is no CDR export (columns, encoding), None when its first rows read."""
    chunks = iter_cdr_file(path, chunk_rows=CHECK_ROWS)
    try:
        next(chunks, None)
    except ImportFormatError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        chunks.close()
    return None


def shown_name(name: str | None) -> str:
    """The client's file name for display only: its last part, printable, capped."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:MAX_SHOWN_NAME] or "upload"


def import_status(
    engine: sa.Engine, tenant: str, sha256: str, run_state: str | None = None
) -> dict[str, Any]:
    """The import's progress as the page shows it (``queued`` before the run claimed the file).

    Args:
        engine: The warehouse.
        tenant: Whose upload.
        sha256: The file's content hash.
        run_state: The import run's state type, when known: a run that ended badly before claiming
            the file (e.g. the worker cannot see the spool) turns ``queued`` into ``failed``.
    """
    from audiapro.importing import SOURCE_REF_PREFIX
    from audiapro.warehouse import import_rejects

    record = read_imported_file(engine, tenant, sha256)
    if record is None:
        failed = run_state in RUN_ENDED_BADLY
        error = f"the import run ended {run_state} before reading the file: see it in the Prefect UI"
        return {"state": "failed" if failed else "queued", "sha256": sha256, "read": 0, "new": 0,
                "duplicates": 0, "rejected": 0, "rejects": [], "error": error if failed else None,
                "run_state": run_state}  # fmt: skip
    rejects = import_rejects(engine, tenant, f"{SOURCE_REF_PREFIX}{sha256}", REJECT_PREVIEW)
    return {
        "state": record.status,
        "sha256": sha256,
        "read": record.rows_read,
        "new": record.inserted,
        "duplicates": record.duplicates,
        "rejected": record.rejected,
        "rejects": [{"line": line, "reason": reason} for line, reason in rejects],
        "error": record.error,
        "run_state": run_state,
    }


def already_imported(engine: sa.Engine, tenant: str, sha256: str) -> bool:
    """Whether this content was imported for the tenant before."""
    record = read_imported_file(engine, tenant, sha256)
    return record is not None and record.status == _IMPORT_DONE
