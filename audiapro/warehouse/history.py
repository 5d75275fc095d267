"""Bookkeeping of historical loads: completed backfill windows and imported CDR files.

Both records are written inside the load transaction of the data they describe (through
``load_batch(..., on_commit=...)``), so a crash can never leave a window marked done without its legs,
or an import chunk counted without its rows; a rerun resumes exactly after the last commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa

from audiapro.warehouse.dialect import upsert_insert
from audiapro.warehouse.engine import begin_write
from audiapro.warehouse.runs import RunInfo, finish_run, insert_run, redact_error, utcnow
from audiapro.warehouse.tables import (
    RUN_SUCCEEDED,
    backfill_windows,
    imported_chunks,
    imported_files,
    ingest_runs,
    rejected_rows,
)

WINDOW_DONE: Final = "done"
IMPORT_LOADING: Final = "loading"
IMPORT_DONE: Final = "done"
IMPORT_FAILED: Final = "failed"


class ImportConflictError(RuntimeError):
    """Another import of the same file committed a chunk first (two imports of one file at once)."""


# --- backfill windows -----------------------------------------------------------------------------


def record_backfill_window(
    conn: sa.Connection,
    *,
    tenant: str,
    start: datetime,
    end: datetime,
    run_id: int,
    flow_run_id: str | None,
    now: datetime | None = None,
) -> None:
    """Mark ``[start, end]`` loaded for ``tenant`` (inside the window's load transaction).

    A forced reload of the same window updates the existing row (run, flow run, time).
    """
    stamp = now or utcnow()
    insert = upsert_insert(conn, backfill_windows).values(
        tenant=tenant,
        window_start=start,
        window_end=end,
        status=WINDOW_DONE,
        ingest_run_id=run_id,
        flow_run_id=flow_run_id,
        completed_at=stamp,
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["tenant", "window_start", "window_end"],
            set_={
                "status": insert.excluded.status,
                "ingest_run_id": insert.excluded.ingest_run_id,
                "flow_run_id": insert.excluded.flow_run_id,
                "completed_at": insert.excluded.completed_at,
            },
        )
    )


def completed_backfill_windows(
    engine: sa.Engine, tenant: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Done windows of ``tenant`` that overlap ``[start, end]``, ordered by start."""
    table = backfill_windows
    query = (
        sa.select(table.c.window_start, table.c.window_end)
        .where(
            table.c.tenant == tenant,
            table.c.status == WINDOW_DONE,
            table.c.window_start <= end,
            table.c.window_end >= start,
        )
        .order_by(table.c.window_start, table.c.window_end)
    )
    with engine.connect() as conn:
        return [(row.window_start, row.window_end) for row in conn.execute(query)]


# --- imported files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedFile:
    """One file's import record (``imported_files``).

    Attributes:
        id: Row id.
        tenant: Tenant the file was imported for.
        sha256: Content hash (hex); the same content is one import.
        filename: Name the file had when first imported.
        status: ``loading``, ``done`` or ``failed``.
        chunks_done: Chunks committed.
        rows_read: File rows (legs and rejects) committed; a resumed import skips this many.
        inserted: Legs new to the warehouse.
        duplicates: Legs already stored (from polling, a backfill or another file).
        rejected: Rows quarantined.
        error: Why the last attempt failed.
    """

    id: int
    tenant: str
    sha256: str
    filename: str
    status: str
    chunks_done: int
    rows_read: int
    inserted: int
    duplicates: int
    rejected: int
    error: str | None


_FILE_FIELDS: Final = ("id", "tenant", "sha256", "filename", "status", "chunks_done", "rows_read",
                       "inserted", "duplicates", "rejected", "error")  # fmt: skip


def _read_file(conn: sa.Connection, where: sa.ColumnElement[bool]) -> ImportedFile:
    row = conn.execute(sa.select(*(imported_files.c[name] for name in _FILE_FIELDS)).where(where)).one()
    return ImportedFile(**row._mapping)


def claim_import(
    engine: sa.Engine,
    *,
    tenant: str,
    sha256: str,
    filename: str,
    size_bytes: int,
    flow_run_id: str | None,
) -> ImportedFile:
    """Start (or resume) the import of a file, identified by ``(tenant, sha256)``.

    Returns:
        The record as found: ``status == "done"`` means the file was imported before (nothing to
        do); otherwise it is (again) ``loading`` and ``rows_read`` says how far earlier attempts got.
    """
    now = utcnow()
    key = sa.and_(imported_files.c.tenant == tenant, imported_files.c.sha256 == sha256)
    with begin_write(engine) as conn:
        conn.execute(
            upsert_insert(conn, imported_files)
            .values(
                tenant=tenant,
                sha256=sha256,
                filename=filename,
                size_bytes=size_bytes,
                status=IMPORT_LOADING,
                flow_run_id=flow_run_id,
                started_at=now,
            )
            .on_conflict_do_nothing(index_elements=["tenant", "sha256"])
        )
        record = _read_file(conn, key)
        if record.status != IMPORT_DONE:
            conn.execute(
                sa.update(imported_files)
                .where(key)
                .values(status=IMPORT_LOADING, flow_run_id=flow_run_id, error=None, finished_at=None)
            )
            record = _read_file(conn, key)
    return record


def record_import_chunk(
    conn: sa.Connection,
    *,
    file_id: int,
    rows_before: int,
    rows: int,
    inserted: int,
    duplicates: int,
    rejected: int,
) -> None:
    """Count one committed chunk (inside the chunk's load transaction).

    Raises:
        ImportConflictError: ``rows_read`` is no longer ``rows_before``: another import of the same
            file committed in between. Raising rolls this chunk back, so nothing is counted twice.
    """
    table = imported_files
    result = conn.execute(
        sa.update(table)
        .where(table.c.id == file_id, table.c.rows_read == rows_before, table.c.status == IMPORT_LOADING)
        .values(
            chunks_done=table.c.chunks_done + 1,
            rows_read=table.c.rows_read + rows,
            inserted=table.c.inserted + inserted,
            duplicates=table.c.duplicates + duplicates,
            rejected=table.c.rejected + rejected,
        )
    )
    if result.rowcount != 1:
        raise ImportConflictError(
            "another import of this file is running or committed first; let it finish, then rerun"
        )


def finish_import(engine: sa.Engine, file_id: int, *, error: str | None = None) -> ImportedFile:
    """Mark an import ``done`` (or ``failed`` with the redacted ``error``) and return its record."""
    values = {"status": IMPORT_DONE if error is None else IMPORT_FAILED, "finished_at": utcnow()}
    with begin_write(engine) as conn:
        conn.execute(
            sa.update(imported_files)
            .where(imported_files.c.id == file_id)
            .values(**values, error=None if error is None else redact_error(error))
        )
        return _read_file(conn, imported_files.c.id == file_id)


def rejects_sql(tenant: str, source_ref: str) -> str:
    """SQL an operator can paste into psql to list every quarantined row of one import (quoted)."""
    quoted_tenant, quoted_ref = tenant.replace("'", "''"), source_ref.replace("'", "''")
    return (
        "SELECT r.position AS line, r.reason, r.raw FROM rejected_rows r "
        "JOIN ingest_runs i ON i.id = r.ingest_run_id "
        f"WHERE i.tenant = '{quoted_tenant}' AND i.source_ref = '{quoted_ref}' "
        "ORDER BY r.position;"
    )


def import_rejects(engine: sa.Engine, tenant: str, source_ref: str, limit: int) -> list[tuple[int, str]]:
    """``(position, reason)`` of the first ``limit`` rows quarantined by the runs of ``source_ref``."""
    query = (
        sa.select(rejected_rows.c.position, rejected_rows.c.reason)
        .join(ingest_runs, ingest_runs.c.id == rejected_rows.c.ingest_run_id)
        .where(ingest_runs.c.tenant == tenant, ingest_runs.c.source_ref == source_ref)
        .order_by(rejected_rows.c.position)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(int(row.position or 0), str(row.reason)) for row in conn.execute(query)]


# --- chunks of imported files, by content ------------------------------------------------------------


@dataclass(frozen=True)
class KnownChunk:
    """What a committed import chunk with the same content digest held.

    Attributes:
        rows: File rows (legs and rejects).
        legs: Legs (after in-chunk deduplication), all stored when the chunk committed.
        rejected: Rows quarantined then.
    """

    rows: int
    legs: int
    rejected: int


def known_chunk(engine: sa.Engine, *, tenant: str, digest: str) -> KnownChunk | None:
    """The committed chunk of ``tenant`` with this content digest, if any (see ``imported_chunks``)."""
    table = imported_chunks
    query = sa.select(table.c.rows, table.c.legs, table.c.rejected).where(
        table.c.tenant == tenant, table.c.digest == digest
    )
    with engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    return None if row is None else KnownChunk(rows=row.rows, legs=row.legs, rejected=row.rejected)


def record_chunk_digest(conn: sa.Connection, *, tenant: str, digest: str, chunk: KnownChunk) -> None:
    """Remember a chunk's digest, inside the transaction that stored every one of its legs."""
    conn.execute(
        upsert_insert(conn, imported_chunks)
        .values(
            tenant=tenant,
            digest=digest,
            rows=chunk.rows,
            legs=chunk.legs,
            rejected=chunk.rejected,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["tenant", "digest"])
    )


def record_known_chunk(
    engine: sa.Engine, *, tenant: str, file_id: int, rows_before: int, chunk: KnownChunk, run: RunInfo
) -> int:
    """Count a chunk whose content was committed before, without loading it again (one transaction).

    Its legs are all stored (they count as duplicates, as the merge would count them) and its bad
    rows are quarantined already; the chunk gets its ``ingest_runs`` row and moves the import record
    on, exactly like a loaded chunk.

    Returns:
        The run id.

    Raises:
        ImportConflictError: Another import of the same file committed in between.
    """
    now = utcnow()
    with begin_write(engine) as conn:
        run_id = insert_run(conn, tenant=tenant, run=run, status=RUN_SUCCEEDED, now=now)
        finish_run(conn, run_id, now=now, inserted=0, updated=0, unchanged=chunk.legs, rejected=0)
        record_import_chunk(
            conn,
            file_id=file_id,
            rows_before=rows_before,
            rows=chunk.rows,
            inserted=0,
            duplicates=chunk.legs,
            rejected=chunk.rejected,
        )
    return run_id


def forget_chunk_digests(conn: sa.Connection, *, tenant: str) -> int:
    """Delete the tenant's chunk digests (before a purge removes legs they vouch for)."""
    return int(
        conn.execute(sa.delete(imported_chunks).where(imported_chunks.c.tenant == tenant)).rowcount or 0
    )
