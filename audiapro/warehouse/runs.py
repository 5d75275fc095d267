"""``ingest_runs`` bookkeeping and quarantined rows: which run loaded what, and what it refused."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from audiapro.redaction import redact
from audiapro.warehouse.dialect import upsert_insert
from audiapro.warehouse.tables import RUN_FAILED, ingest_runs, rejected_rows

#: Separates the parts of a reject fingerprint; cannot occur in reasons or source names.
_FINGERPRINT_SEPARATOR: Final = "\x1f"
#: Error texts are kept for operators, not as logs: long tracebacks are cut.
MAX_ERROR_CHARS: Final = 4000


def utcnow() -> datetime:
    """The current time, tz-aware UTC."""
    return datetime.now(UTC)


@dataclass
class RunInfo:
    """What the caller knows about the run a batch belongs to (mutable: ``fetched`` is often known late).

    Attributes:
        kind: ``poll``, ``backfill``, ``import``... (free text).
        window_start: Start of the requested source window, if any.
        window_end: End of the requested source window, if any.
        source_ref: What was read: the window, a file hash...
        flow_run_id: The orchestrator's run id, for cross-reference.
        fetched: Raw legs fetched from the source (before normalization).
        started_at: When the run started.
    """

    kind: str
    window_start: datetime | None = None
    window_end: datetime | None = None
    source_ref: str | None = None
    flow_run_id: str | None = None
    fetched: int = 0
    started_at: datetime = field(default_factory=utcnow)


def redact_error(error: str) -> str:
    """An error text as stored: secret values removed (:func:`audiapro.redaction.redact`), length capped."""
    return redact(error, max_chars=MAX_ERROR_CHARS)


def insert_run(
    conn: sa.Connection, *, tenant: str, run: RunInfo, status: str, now: datetime, error: str | None = None
) -> int:
    """Insert the ``ingest_runs`` row of a run and return its id (failed runs are finished at once)."""
    run_id = conn.execute(
        sa.insert(ingest_runs)
        .values(
            tenant=tenant,
            kind=run.kind,
            status=status,
            window_start=run.window_start,
            window_end=run.window_end,
            source_ref=run.source_ref,
            flow_run_id=run.flow_run_id,
            started_at=run.started_at,
            finished_at=now if status == RUN_FAILED else None,
            fetched=run.fetched,
            error=None if error is None else redact_error(error),
        )
        .returning(ingest_runs.c.id)
    ).scalar_one()
    return int(run_id)


def finish_run(conn: sa.Connection, run_id: int, *, now: datetime, **counts: int) -> None:
    """Store the counts of a run and its finish time."""
    conn.execute(sa.update(ingest_runs).where(ingest_runs.c.id == run_id).values(finished_at=now, **counts))


def reject_fingerprint(source: str | None, reason: str, raw: str | None) -> str:
    """Identity of a quarantined row: SHA-256 of its source, reason and raw text (hex).

    The position is left out on purpose: a bad leg re-read by every poll's lookback sits at a
    different position in each batch but is the same problem, stored once.
    """
    text = _FINGERPRINT_SEPARATOR.join((source or "", reason, raw or ""))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def insert_rejects(
    conn: sa.Connection, records: list[dict[str, Any]], *, run_id: int, tenant: str, now: datetime
) -> int:
    """Store quarantined rows (from ``frames.reject_records``) under the run, once per fingerprint.

    A row whose fingerprint the tenant already has (the same bad leg read again, by this batch or an
    earlier one) is skipped: ``ON CONFLICT (tenant, fingerprint) DO NOTHING``.

    Returns:
        How many rows were newly stored.
    """
    if not records:
        return 0
    rows = [
        {
            **record,
            "ingest_run_id": run_id,
            "tenant": tenant,
            "created_at": now,
            "fingerprint": reject_fingerprint(record["source"], record["reason"], record["raw"]),
        }
        for record in records
    ]
    insert = upsert_insert(conn, rejected_rows).on_conflict_do_nothing(
        index_elements=["tenant", "fingerprint"]
    )
    # RETURNING yields only the rows actually inserted (executemany rowcounts are not reliable).
    return len(conn.execute(insert.returning(rejected_rows.c.id), rows).all())
