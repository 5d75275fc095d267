"""``analysis_batches``: Batch API jobs of the text-analysis step, from submission to collection.

A submission is made crash-safe with a marker: before anything is sent, one transaction stores an
``analysis_batches`` row whose ``batch_id`` is the marker (status ``submitting``) and stamps the marker
on the transcribed rows it carries. After the API accepted the batch, a second transaction replaces
the marker by the real batch id (status ``submitted``; rows become ``pending_batch``). A run that finds
a marker left behind by a crash looks the batch up by the marker in the batch metadata: found, it is
adopted (`confirm_batch`); not found, nothing was sent and the rows are released (`release_batch`).
Either way no request is submitted, or paid, twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa

from audiapro.analysis.models import AnalysisRecord
from audiapro.warehouse.analyses import PENDING_BATCH, TRANSCRIBED, WRITE_CHUNK
from audiapro.warehouse.analysis_store import record_row, upsert_rows
from audiapro.warehouse.engine import begin_write
from audiapro.warehouse.runs import redact_error, utcnow
from audiapro.warehouse.tables import analysis_batches, call_analyses

SUBMITTING: Final = "submitting"
SUBMITTED: Final = "submitted"
COLLECTED: Final = "collected"
BATCH_FAILED: Final = "failed"
#: Batch rows still waiting for something.
OPEN_STATUSES: Final = (SUBMITTING, SUBMITTED)


@dataclass(frozen=True)
class BatchRow:
    """One ``analysis_batches`` row.

    Attributes:
        batch_id: The API's batch id, or a submission marker while ``status`` is ``submitting``.
        tenant: Tenant.
        status: ``submitting``, ``submitted``, ``collected`` or ``failed``.
        request_count: Requests in the batch.
        submitted_at: When it was submitted (or reserved).
    """

    batch_id: str
    tenant: str
    status: str
    request_count: int
    submitted_at: datetime


def open_batches(engine: sa.Engine, tenant: str) -> list[BatchRow]:
    """The tenant's batches that are reserved or submitted but not collected, oldest first."""
    b = analysis_batches.c
    query = (
        sa.select(b.batch_id, b.tenant, b.status, b.request_count, b.submitted_at)
        .where(b.tenant == tenant, b.status.in_(OPEN_STATUSES))
        .order_by(b.submitted_at, b.batch_id)
    )
    with engine.connect() as conn:
        return [BatchRow(*row) for row in conn.execute(query)]


def reserve_batch(
    engine: sa.Engine, tenant: str, marker: str, keys: Sequence[str], *, now: datetime | None = None
) -> int:
    """Record an upcoming submission under ``marker`` and stamp it on its transcribed rows.

    Returns:
        How many rows were reserved (rows already in another batch are left out).
    """
    stamp = now or utcnow()
    a = call_analyses.c
    reserved = 0
    with begin_write(engine) as conn:
        conn.execute(
            sa.insert(analysis_batches).values(
                batch_id=marker, tenant=tenant, status=SUBMITTING, request_count=len(keys), submitted_at=stamp
            )
        )
        for first in range(0, len(keys), WRITE_CHUNK):
            result = conn.execute(
                sa.update(call_analyses)
                .where(
                    a.analysis_key.in_(keys[first : first + WRITE_CHUNK]),
                    a.status == TRANSCRIBED,
                    a.batch_id.is_(None),
                )
                .values(batch_id=marker, updated_at=stamp)
            )
            reserved += result.rowcount or 0
    return reserved


def confirm_batch(engine: sa.Engine, marker: str, batch_id: str, *, now: datetime | None = None) -> int:
    """Replace a submission marker by the API's batch id; its rows become ``pending_batch``.

    Returns:
        How many rows now wait for the batch.
    """
    stamp = now or utcnow()
    a, b = call_analyses.c, analysis_batches.c
    with begin_write(engine) as conn:
        reserved = conn.execute(
            sa.select(b.tenant, b.request_count, b.submitted_at).where(b.batch_id == marker)
        ).one()
        conn.execute(
            sa.insert(analysis_batches).values(
                batch_id=batch_id,
                tenant=reserved.tenant,
                status=SUBMITTED,
                request_count=reserved.request_count,
                submitted_at=reserved.submitted_at,
            )
        )
        moved = conn.execute(
            sa.update(call_analyses)
            .where(a.batch_id == marker)
            .values(batch_id=batch_id, status=PENDING_BATCH, updated_at=stamp)
        ).rowcount
        conn.execute(sa.delete(analysis_batches).where(b.batch_id == marker))
    return moved or 0


def release_batch(engine: sa.Engine, marker: str) -> int:
    """Forget a submission that never reached the API: its rows are ``transcribed`` and free again.

    Returns:
        How many rows were released.
    """
    a, b = call_analyses.c, analysis_batches.c
    with begin_write(engine) as conn:
        released = conn.execute(
            sa.update(call_analyses).where(a.batch_id == marker).values(batch_id=None, status=TRANSCRIBED)
        ).rowcount
        conn.execute(sa.delete(analysis_batches).where(b.batch_id == marker))
    return released or 0


def finish_batch(
    engine: sa.Engine,
    batch_id: str,
    records: Sequence[AnalysisRecord],
    *,
    requeue: Sequence[str] = (),
    error: str | None = None,
    now: datetime | None = None,
) -> int:
    """Store a terminal batch's records and close its row, in one transaction.

    Args:
        engine: Warehouse engine.
        batch_id: The batch.
        records: Final records of its requests (failed ones included).
        requeue: Keys of requests the batch never answered (nothing billed): their transcripts go
            back to ``transcribed`` (``attempts`` + 1) for the next submission or synchronous run.
        error: Why the batch itself failed, if it did (marks the batch ``failed``).
        now: Timestamp (default: now).

    Returns:
        Records stored.
    """
    stamp = now or utcnow()
    rows = [record_row(r, batch_id=batch_id, now=stamp) for r in records]
    a = call_analyses.c
    with begin_write(engine) as conn:
        if rows:
            upsert_rows(conn, rows)
        for first in range(0, len(requeue), WRITE_CHUNK):
            conn.execute(
                sa.update(call_analyses)
                .where(a.analysis_key.in_(requeue[first : first + WRITE_CHUNK]), a.batch_id == batch_id)
                .values(status=TRANSCRIBED, batch_id=None, attempts=a.attempts + 1, updated_at=stamp)
            )
        conn.execute(
            sa.update(analysis_batches)
            .where(analysis_batches.c.batch_id == batch_id)
            .values(
                status=BATCH_FAILED if error else COLLECTED,
                collected_at=stamp,
                error=None if error is None else redact_error(error),
            )
        )
    return len(rows)
