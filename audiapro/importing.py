"""File import: a UCM web-UI CSV export or a saved cdrapi JSON reply into the warehouse, exactly once.

::

    file --check + hash--> claim (tenant, sha256)
         --> [thread] chunks (reader) --> normalize_frame --> prepare + render COPY text
         --> load under the tenant write lock (ON CONFLICT DO NOTHING; the chunk is counted in
             imported_files in the same transaction) --> finish

* Memory is bounded by ``chunk_rows`` whatever the file size: the readers stream, and at most two
  chunks beyond the one loading exist (one prepared and waiting, one being prepared).
* Two stages overlap: a background thread reads, normalizes and renders (for Postgres ``COPY``) the
  next chunk while the database loads this one (psycopg2 releases the GIL while the server works),
  so the Python work and the database work of an import run side by side on two cores.
* The same content (SHA-256) imported again for a tenant adds nothing. A crashed import resumes after
  its last committed chunk: the rows counted in ``imported_files.rows_read`` are skipped.
* A chunk whose raw records an earlier import of the tenant committed (same :func:`chunk_digest`,
  kept in ``imported_chunks`` in the chunk's own transaction) is counted without being normalized or
  merged: its legs were all stored then, so they are duplicates, as the merge would find. A file
  differing from an imported one by a byte therefore loads only the chunk holding that byte.
* Legs already stored (polled, backfilled, or from another file) are never overwritten: API rows carry
  AcctId and richer fields than an export. They count as duplicates.
* Rows that cannot be read or normalized are quarantined in ``rejected_rows`` with their 1-based line
  (CSV) or record number (JSON) and the reason, while the good rows load.

Import roots: the flow's ``path`` comes from whoever can start a run (the Prefect UI, the API), so
:func:`allowed_import_path` admits only files inside the spool (``settings.IMPORT_SPOOL_DIR``) or a
directory listed in ``AUDIAPRO_IMPORT_ROOTS``, after resolving links and ``..``, before the file is
opened. ``audiapro import FILE`` runs the flow in its own process and grants exactly FILE for that
run (:func:`granted_import_file`): its user names a file they can read themselves.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from audiapro import settings
from audiapro.allocator import pin_mmap_threshold
from audiapro.cdr.normalize import REJECT_MARKER, NormalizeContext, normalize_frame
from audiapro.cdr.readers import RawChunk, detect_format, iter_cdr_file
from audiapro.cdr.readers.prefetch import read_ahead
from audiapro.errors import describe_error
from audiapro.tenants import TenantSettings
from audiapro.warehouse import (
    DEFAULT_LOCK_TIMEOUT_S,
    IMPORT_DONE,
    ImportConflictError,
    KnownChunk,
    LoadResult,
    PreparedLegs,
    RunInfo,
    claim_import,
    finish_import,
    import_rejects,
    known_chunk,
    load_batch,
    prepare_batch,
    record_chunk_digest,
    record_import_chunk,
    record_known_chunk,
    rejects_sql,
    tenant_write_lock,
)
from audiapro.warehouse.dialect import POSTGRES

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("audiapro.importing")

#: Rows per chunk (and per load transaction). Normalizing a chunk peaks at about 9 KB per row, so
#: 20 000 rows keep an import near 200 MB whatever the file size, while the fixed cost of a chunk
#: (one transaction, one COPY, calls rebuilt) stays small against its rows.
DEFAULT_IMPORT_CHUNK_ROWS: Final = 20_000
#: Chunks prepared ahead (read, normalized, rendered) in a background thread while one loads.
PREPARE_AHEAD_CHUNKS: Final = 1
#: ``ingest_runs.source_ref`` of an import's chunks: the file's content hash.
SOURCE_REF_PREFIX: Final = "sha256:"
#: Quarantined rows listed in a summary (the SQL in the summary lists all of them).
REJECT_PREVIEW: Final = 5
#: Bytes hashed and counted at a time.
_SCAN_BLOCK_BYTES: Final = 1 << 20
#: Every JSON leg (and grouped-call summary) has this key once: a cheap row estimate for progress.
_JSON_LEG_MARKER: Final = b'"uniqueid"'

#: Part of every chunk digest: bump it when normalization changes what a raw row becomes (leg keys,
#: columns), so chunks committed by an older version are normalized and merged again.
CHUNK_DIGEST_VERSION: Final = "2"

#: Records joined at a time while hashing a chunk (bounds the text held for it).
_DIGEST_SLICE_ROWS: Final = 2_000

#: ``on_progress(fraction_done, rows_done)``, called after every committed chunk.
ProgressCallback = Callable[[float, int], None]


class ImportPathRefused(ValueError):
    """The file lies outside every import root (decided from its resolved path, before opening it)."""


#: Files granted to this process for imports (``audiapro import FILE``), with how often each is held.
_granted: dict[Path, int] = {}
_granted_lock = threading.Lock()


def import_roots(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The directories imports may read from, resolved: the spool, then ``AUDIAPRO_IMPORT_ROOTS``.

    Args:
        environ: Where to read the variable (``os.environ`` when omitted).
    """
    listed = (os.environ if environ is None else environ).get(settings.IMPORT_ROOTS_ENV, "")
    roots = [settings.IMPORT_SPOOL_DIR, *(Path(entry) for entry in listed.split(os.pathsep) if entry.strip())]
    return tuple(dict.fromkeys(root.resolve() for root in roots))


def allowed_import_path(path: str | Path, roots: Sequence[Path] | None = None) -> Path:
    """``path`` resolved (links and ``..`` followed), when it lies inside an import root.

    Nothing is opened: only the path's links are read. A link inside a root that leads outside every
    root is refused like the place it leads to. A file granted with :func:`granted_import_file` is
    admitted wherever it lies.

    Args:
        path: The file to import, as given (relative paths are taken from the current directory).
        roots: The import roots; :func:`import_roots` when omitted.

    Raises:
        ImportPathRefused: Outside every root; the one-line message names the roots and how to add one.
    """
    roots = import_roots() if roots is None else tuple(roots)
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a link loop
        resolved = None
    if resolved is not None:
        with _granted_lock:
            granted = resolved in _granted
        if granted or any(resolved.is_relative_to(root) for root in roots):
            return resolved
    shown = ", ".join(str(root) for root in roots)
    raise ImportPathRefused(
        f"refused to read {str(path)!r}: imports read only files inside the import roots ({shown}); "
        f"put the file into {settings.IMPORT_SPOOL_DIR.resolve()} or add its directory "
        f"to {settings.IMPORT_ROOTS_ENV} ({os.pathsep!r}-separated) where the flow runs"
    )


@contextmanager
def granted_import_file(path: str | Path) -> Iterator[Path]:
    """Admit exactly this file (resolved) for imports in this process while the block runs.

    For ``audiapro import FILE``, which runs the flow in its own process for a user who can read the
    file anyway; flows started from the UI or the API run elsewhere and never see the grant.

    Yields:
        The resolved path to hand to the flow.
    """
    resolved = Path(path).resolve()
    with _granted_lock:
        _granted[resolved] = _granted.get(resolved, 0) + 1
    try:
        yield resolved
    finally:
        with _granted_lock:
            _granted[resolved] -= 1
            if not _granted[resolved]:
                del _granted[resolved]


@dataclass(frozen=True)
class FileScan:
    """One pass over a file: its hash, size and what progress is measured against."""

    sha256: str
    size_bytes: int
    lines: int
    json_markers: int


@dataclass(frozen=True)
class ImportSummary:
    """What one import invocation did (small: returned by tasks, shown by the CLI and artifacts).

    Attributes:
        tenant: Tenant imported for.
        file: File name.
        sha256: Content hash.
        format: ``csv`` or ``json``.
        status: ``imported``, ``resumed`` (an earlier attempt had committed some chunks) or
            ``already imported`` (the same content was imported before: nothing done).
        read: Rows read from the file by this invocation (legs and rejected rows).
        new: Legs new to the warehouse.
        duplicate: Legs already stored (not overwritten).
        rejected: Rows quarantined (with line number and reason).
        chunks: Chunks committed by this invocation.
        chunks_known: Of these, chunks whose content (digest of the raw rows) an earlier import of the
            tenant committed: counted (their legs as duplicates, their bad rows as rejected) without
            being normalized or merged again. A file differing from an imported one by a byte loads
            only the chunk holding that byte.
        resumed_from_row: Rows skipped because an earlier attempt committed them.
        seconds: Wall time.
        first_rejects: ``[line, reason]`` of the first quarantined rows of this file.
        rejects_sql: A query listing every quarantined row of this file.
    """

    tenant: str
    file: str
    sha256: str
    format: str
    status: str
    read: int = 0
    new: int = 0
    duplicate: int = 0
    rejected: int = 0
    chunks: int = 0
    chunks_known: int = 0
    resumed_from_row: int = 0
    seconds: float = 0.0
    first_rejects: list[tuple[int, str]] = field(default_factory=list)
    rejects_sql: str = ""

    def as_row(self) -> dict[str, object]:
        """A flat dict (JSON-friendly) for task results and artifacts."""
        return asdict(self)


def scan_file(path: Path) -> FileScan:
    """Hash the file and count its lines and JSON leg markers in one sequential pass."""
    digest = hashlib.sha256()
    size = lines = markers = 0
    tail = b""
    with open(path, "rb") as fh:
        while block := fh.read(_SCAN_BLOCK_BYTES):
            digest.update(block)
            size += len(block)
            lines += block.count(b"\n")
            # Keep a marker's length of the previous block so a marker cut in two is still counted.
            window = tail + block
            markers += window.count(_JSON_LEG_MARKER)
            tail = block[-(len(_JSON_LEG_MARKER) - 1) :]
    return FileScan(sha256=digest.hexdigest(), size_bytes=size, lines=lines, json_markers=markers)


def import_file(
    path: str | Path,
    engine: sa.Engine,
    tenant: TenantSettings,
    *,
    chunk_rows: int = DEFAULT_IMPORT_CHUNK_ROWS,
    flow_run_id: str | None = None,
    on_progress: ProgressCallback | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> ImportSummary:
    """Import one CDR file for ``tenant`` (see the module docstring).

    Args:
        path: The file (format detected from its content).
        engine: Warehouse engine.
        tenant: Tenant settings; its time zone reads the file's local times, its region the numbers.
        chunk_rows: Rows per chunk (and per load transaction).
        flow_run_id: Recorded on the ingest runs and the import record.
        on_progress: Called after each committed chunk.
        lock_timeout_s: How long each chunk's load waits for the tenant lock.

    Returns:
        What this invocation did.

    Raises:
        ImportFormatError: The file as a whole is unusable (raised before anything is written, except
            for a JSON document that breaks off part-way: the chunks before the break stay loaded).
        TenantBusyError: The tenant lock stayed taken; rerun to resume.
        ImportConflictError: Another import of the same file is running.
    """
    began = time.monotonic()
    path = Path(path)
    file_format = detect_format(path)
    chunks = iter_cdr_file(path, chunk_rows=chunk_rows)
    first = next(chunks, None)  # whole-file checks (columns, encoding) run here, before any write
    scan = scan_file(path)
    record = claim_import(
        engine,
        tenant=tenant.name,
        sha256=scan.sha256,
        filename=path.name,
        size_bytes=scan.size_bytes,
        flow_run_id=flow_run_id,
    )
    base = ImportSummary(
        tenant=tenant.name,
        file=path.name,
        sha256=scan.sha256,
        format=file_format,
        status="already imported",
        rejects_sql=rejects_sql(tenant.name, f"{SOURCE_REF_PREFIX}{scan.sha256}"),
    )
    if record.status == IMPORT_DONE:
        chunks.close()
        log.info("tenant %s: %s (sha256 %s) was imported before; nothing to do", tenant.name, path.name,
                 scan.sha256[:12])  # fmt: skip
        if on_progress is not None:
            on_progress(1.0, record.rows_read)
        return _with_rejects(engine, base, seconds=time.monotonic() - began)

    loader = _ChunkLoader(engine, tenant, file_format, scan, record.id, record.rows_read, flow_run_id)
    stream = _keep_same_start_together(_skip_rows(_prepend(first, chunks), record.rows_read))
    # The COPY texts of every chunk (a few MB each) come and go: mapped of their own and returned
    # when freed, they cannot fragment the heap (1,000,000 legs: peak RSS 398 -> 359 MB).
    pin_mmap_threshold()
    # Reading, normalizing and rendering run ahead in one thread of their own.
    prepared = read_ahead((loader.prepare(chunk) for chunk in stream), depth=PREPARE_AHEAD_CHUNKS)
    try:
        with closing(prepared):
            for chunk in prepared:
                loader.load(chunk, lock_timeout_s=lock_timeout_s)
                if on_progress is not None:
                    on_progress(loader.fraction_done(chunk), loader.rows_done)
        finish_import(engine, record.id)
    except ImportConflictError:
        raise  # the other import owns the record: leave it as it is
    except Exception as exc:
        _record_failure(engine, record.id, exc)
        raise
    if on_progress is not None:
        on_progress(1.0, loader.rows_done)
    done = ImportSummary(
        **{
            **asdict(base),
            "status": "resumed" if record.rows_read else "imported",
            **loader.counts,
            "resumed_from_row": record.rows_read,
        }
    )
    return _with_rejects(engine, done, seconds=time.monotonic() - began)


@dataclass(frozen=True)
class _PreparedChunk:
    """One chunk of the file, normalized and ready to load (no connection needed to build it).

    ``known`` is set (and ``legs``/``rejects`` are empty) when the same content was committed before.
    """

    rows: int  # rows read from the file: legs and rejects
    last_position: int  # line (CSV) or record number (JSON) of its last row; 0 when empty
    digest: str
    legs: PreparedLegs | None
    rejects: pd.DataFrame
    known: KnownChunk | None = None


def chunk_digest(chunk: RawChunk, ctx: NormalizeContext) -> str:
    """SHA-256 of a chunk's raw rows and of what normalizes them (tenant zone, region, format).

    The rows are the records as read (``raw_json``: every field under its name in the file), with
    the columns the reader mapped them to and its reject reasons. Positions are left out: the legs
    a row becomes do not depend on its line. The records are hashed as text, one per line, a slice
    at a time: the readers' compact JSON never holds a line break, which is checked (one count per
    slice), so no record can forge a boundary; a chunk where one does is hashed as JSON lists.
    """
    frame = chunk.frame
    reasons = frame[REJECT_MARKER].tolist() if REJECT_MARKER in frame.columns else []
    context = [
        CHUNK_DIGEST_VERSION,
        ctx.timezone,
        ctx.region,
        ctx.source,
        len(chunk),
        list(map(str, frame.columns)),
        reasons,
    ]
    head = json.dumps(context, ensure_ascii=False).encode("utf-8", "surrogatepass")
    by_line = _digest_by_line(head, chunk.raw_json)
    return by_line if by_line is not None else _digest_as_json(head, chunk.raw_json)


def _digest_by_line(head: bytes, records: list[str]) -> str | None:
    """SHA-256 of ``head`` and the records one per line; None when a record holds a line break."""
    digest = hashlib.sha256(head)
    for start in range(0, len(records), _DIGEST_SLICE_ROWS):  # a slice at a time: bounded memory
        piece = records[start : start + _DIGEST_SLICE_ROWS]
        text = "\n".join(piece)
        if text.count("\n") != len(piece) - 1:
            return None
        digest.update(b"\n" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _digest_as_json(head: bytes, records: list[str]) -> str:
    """SHA-256 of ``head`` and the records as JSON lists (unambiguous whatever they hold)."""
    digest = hashlib.sha256(head)
    for start in range(0, len(records), _DIGEST_SLICE_ROWS):
        piece = records[start : start + _DIGEST_SLICE_ROWS]
        digest.update(json.dumps(piece, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class _ChunkLoader:
    """Prepares and loads chunks of one file, counting them into its import record."""

    def __init__(
        self,
        engine: sa.Engine,
        tenant: TenantSettings,
        file_format: str,
        scan: FileScan,
        file_id: int,
        rows_before: int,
        flow_run_id: str | None,
    ) -> None:
        self._engine = engine
        self._tenant = tenant
        self._ctx = NormalizeContext(
            tenant=tenant.name, timezone=tenant.timezone, region=tenant.region, source=file_format
        )
        self._render_copy = engine.dialect.name == POSTGRES
        self._format = file_format
        self._scan = scan
        self._file_id = file_id
        self._flow_run_id = flow_run_id
        self.rows_done = rows_before
        self.counts = {"read": 0, "new": 0, "duplicate": 0, "rejected": 0, "chunks": 0, "chunks_known": 0}

    def prepare(self, chunk: RawChunk) -> _PreparedChunk:
        """Normalize ``chunk`` and render it for the warehouse (CPU work: runs in a thread).

        A chunk whose digest an earlier import committed is not normalized at all.
        """
        last = chunk.positions[-1] if chunk.positions else 0
        digest = chunk_digest(chunk, self._ctx)
        known = known_chunk(self._engine, tenant=self._tenant.name, digest=digest)
        if known is not None and known.rows == len(chunk):
            return _PreparedChunk(
                rows=len(chunk),
                last_position=last,
                digest=digest,
                legs=None,
                rejects=pd.DataFrame(),
                known=known,
            )
        batch = normalize_frame(chunk.frame, self._ctx, positions=chunk.positions, raw_json=chunk.raw_json)
        legs = prepare_batch(batch.legs, self._tenant.name, render_copy=self._render_copy)
        return _PreparedChunk(
            rows=len(chunk), last_position=last, digest=digest, legs=legs, rejects=batch.rejects
        )

    def load(self, chunk: _PreparedChunk, *, lock_timeout_s: float) -> None:
        """Load a prepared chunk in one transaction with its import-record update."""
        run = RunInfo(
            kind="import",
            source_ref=f"{SOURCE_REF_PREFIX}{self._scan.sha256}",
            flow_run_id=self._flow_run_id,
            fetched=chunk.rows,
        )
        if chunk.known is not None or chunk.legs is None:
            self._count_known(chunk, run)
            return
        legs, rejected, rows_before = chunk.legs.given, len(chunk.rejects), self.rows_done

        def count_chunk(conn: sa.Connection, result: LoadResult) -> None:
            record_import_chunk(
                conn,
                file_id=self._file_id,
                rows_before=rows_before,
                rows=chunk.rows,
                inserted=result.inserted,
                duplicates=legs - result.inserted,
                rejected=rejected,
            )
            # Every leg of the chunk is stored once this commits (inserted now or before).
            content = KnownChunk(rows=chunk.rows, legs=legs, rejected=rejected)
            record_chunk_digest(conn, tenant=self._tenant.name, digest=chunk.digest, chunk=content)

        with tenant_write_lock(self._engine, self._tenant.name, timeout_s=lock_timeout_s):
            result = load_batch(
                self._engine,
                tenant=self._tenant.name,
                legs=chunk.legs,
                rejects=chunk.rejects,
                run=run,
                on_conflict="ignore",
                on_commit=count_chunk,
            )
        self._count(rows=chunk.rows, new=result.inserted, duplicate=legs - result.inserted, rejected=rejected)

    def _count_known(self, chunk: _PreparedChunk, run: RunInfo) -> None:
        """Count a chunk committed before (same digest) without normalizing or merging it."""
        assert chunk.known is not None
        record_known_chunk(
            self._engine,
            tenant=self._tenant.name,
            file_id=self._file_id,
            rows_before=self.rows_done,
            chunk=chunk.known,
            run=run,
        )
        self.counts["chunks_known"] += 1
        self._count(rows=chunk.rows, new=0, duplicate=chunk.known.legs, rejected=chunk.known.rejected)

    def _count(self, *, rows: int, new: int, duplicate: int, rejected: int) -> None:
        self.rows_done += rows
        for name, value in (("read", rows), ("new", new), ("chunks", 1), ("duplicate", duplicate),
                            ("rejected", rejected)):  # fmt: skip
            self.counts[name] += value

    def fraction_done(self, chunk: _PreparedChunk) -> float:
        """Progress after ``chunk``: by physical line for CSV, by estimated record count for JSON."""
        if self._format == "csv":
            done, total = chunk.last_position, self._scan.lines
        else:
            done, total = self.rows_done, self._scan.json_markers
        return min(done / total, 1.0) if total else 1.0


def _with_rejects(engine: sa.Engine, summary: ImportSummary, *, seconds: float) -> ImportSummary:
    first = import_rejects(engine, summary.tenant, f"{SOURCE_REF_PREFIX}{summary.sha256}", REJECT_PREVIEW)
    return ImportSummary(**{**asdict(summary), "first_rejects": first, "seconds": round(seconds, 3)})


def _record_failure(engine: sa.Engine, file_id: int, exc: BaseException) -> None:
    try:
        finish_import(engine, file_id, error=describe_error(exc))
    except Exception:  # the warehouse itself may be what failed; the original error matters more
        log.warning("could not record the failed import %d", file_id, exc_info=True)


# --- chunk stream ---------------------------------------------------------------------------------


def _prepend(first: RawChunk | None, rest: Iterator[RawChunk]) -> Iterator[RawChunk]:
    return itertools.chain([first], rest) if first is not None else iter(())


def _slice(chunk: RawChunk, start: int, stop: int) -> RawChunk:
    return RawChunk(
        frame=chunk.frame.iloc[start:stop].reset_index(drop=True),
        positions=chunk.positions[start:stop],
        raw_json=chunk.raw_json[start:stop],
    )


def _skip_rows(chunks: Iterable[RawChunk], rows: int) -> Iterator[RawChunk]:
    """Drop the first ``rows`` rows of the stream (committed by an earlier attempt)."""
    for chunk in chunks:
        if rows >= len(chunk):
            rows -= len(chunk)
            continue
        yield _slice(chunk, rows, len(chunk)) if rows else chunk
        rows = 0


def _keep_same_start_together(chunks: Iterable[RawChunk]) -> Iterator[RawChunk]:
    """Move the rows at a chunk's end that share its last start time into the next chunk.

    Legs identical in every key field (they share ``start``) are numbered ``#2``, ``#3`` within one
    batch; split over two batches, the second would get the first one's key and be taken for a
    duplicate. Exports are sorted by start time, so keeping equal starts together prevents that.
    Committed chunks still end on row boundaries of the file, which is all resuming needs.
    """
    carry: RawChunk | None = None
    for chunk in chunks:
        current = chunk if carry is None else _concat(carry, chunk)
        cut = _tail_start(current)
        carry = _slice(current, cut, len(current)) if 0 < cut < len(current) else None
        if carry is not None:
            current = _slice(current, 0, cut)
        yield current
    if carry is not None:
        yield carry


def _tail_start(chunk: RawChunk) -> int:
    """Index where the trailing run of rows with the chunk's last start time begins."""
    frame = chunk.frame
    if "start" not in frame.columns or len(frame) < 2 or frame[REJECT_MARKER].iloc[-1]:
        return len(frame)
    starts = frame["start"].str.strip()
    last = starts.iloc[-1]
    if not last:
        return len(frame)
    differs = np.flatnonzero((starts != last).to_numpy())
    # Every row shares the start: keep the chunk whole rather than carry it all (bounded memory).
    return int(differs[-1]) + 1 if len(differs) else len(frame)


def _concat(first: RawChunk, second: RawChunk) -> RawChunk:
    frame = pd.concat([first.frame, second.frame], ignore_index=True)
    if not first.frame.columns.equals(second.frame.columns):
        # Chunks of a JSON file may differ in columns: absent fields are empty, as the reader gives
        # them, and the reader's "__reject__ last" layout is kept.
        frame = frame.fillna("")
        frame = frame[[*(c for c in frame.columns if c != REJECT_MARKER), REJECT_MARKER]]
    return RawChunk(
        frame=frame, positions=first.positions + second.positions, raw_json=first.raw_json + second.raw_json
    )
