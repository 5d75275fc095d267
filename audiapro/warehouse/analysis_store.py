"""Writes to ``call_analyses``: records by ``analysis_key`` (final rows never overwritten), paid transcripts.

See ``audiapro.warehouse.analyses`` for the row states.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from audiapro.analysis.models import SCHEMA_VERSION, AnalysisRecord
from audiapro.warehouse.analyses import (
    OFFLINE,
    PENDING_BATCH,
    SKIPPED,
    TRANSCRIBED,
    WRITE_CHUNK,
    PendingAnalysis,
    settled_condition,
)
from audiapro.warehouse.dialect import upsert_insert
from audiapro.warehouse.engine import begin_write
from audiapro.warehouse.runs import utcnow
from audiapro.warehouse.tables import call_analyses

#: Columns an upsert may change on a refreshable row (see the module docstring).
VALUE_COLUMNS: Final = (
    "status",
    "skip_reason",
    "error",
    "transcript",
    "insights",
    "flags",
    "audio_seconds",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "attempts",
    "batch_id",
    "redactions",
    "transcript_encrypted",
)
#: A change in one of these is worth a write.
CHANGE_COLUMNS: Final = ("status", "skip_reason", "error", "insights", "flags", "cost_usd", "batch_id")


def record_row(record: AnalysisRecord, *, batch_id: str | None, now: datetime) -> dict[str, Any]:
    """The ``call_analyses`` row of a record."""
    return {
        "analysis_key": record.key,
        "tenant": record.tenant,
        "session": record.session,
        "recording_sha256": record.recording_sha256,
        "analyzer": record.analyzer,
        "model": record.model,
        "transcription_model": record.transcription_model,
        "prompt_version": record.prompt_version,
        "schema_version": record.schema_version,
        "status": record.status,
        "skip_reason": record.skip_reason.value if record.skip_reason else None,
        "error": record.error,
        "transcript": record.transcript.model_dump_json() if record.transcript else None,
        "insights": record.insights.model_dump_json() if record.insights else None,
        "flags": record.flags.model_dump_json() if record.flags else None,
        "audio_seconds": record.audio_seconds,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost_usd": record.cost_usd,
        "attempts": record.attempts,
        "batch_id": batch_id,
        "redactions": None if record.redactions is None else json.dumps(record.redactions, sort_keys=True),
        "transcript_encrypted": record.transcript_encrypted,
        "created_at": record.created_at,
        "updated_at": now,
    }


def _refreshable() -> sa.ColumnElement[bool]:
    a = call_analyses.c
    return sa.or_(
        a.status.in_((TRANSCRIBED, PENDING_BATCH)),
        sa.and_(a.status == SKIPPED, a.recording_sha256.is_(None)),
        a.analyzer == OFFLINE,
    )


def _supersede_skips(conn: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Delete policy/budget skip rows of calls that now have an analysis of the same config."""
    a = call_analyses.c
    deleted = 0
    for row in rows:
        if row["analyzer"] == OFFLINE or (row["status"] == SKIPPED and row["recording_sha256"] is None):
            continue  # offline rows and skips themselves supersede nothing
        result = conn.execute(
            sa.delete(call_analyses).where(
                a.tenant == row["tenant"],
                a.session == row["session"],
                a.model.is_(None) if row["model"] is None else a.model == row["model"],
                a.prompt_version == row["prompt_version"],
                a.schema_version == row["schema_version"],
                a.status == SKIPPED,
                a.recording_sha256.is_(None),
                a.analysis_key != row["analysis_key"],
            )
        )
        deleted += result.rowcount or 0
    return deleted


def upsert_rows(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert rows by ``analysis_key``; update existing ones only while refreshable and changed."""
    for first in range(0, len(rows), WRITE_CHUNK):
        insert = upsert_insert(conn, call_analyses).values(rows[first : first + WRITE_CHUNK])
        excluded = insert.excluded
        changed = sa.or_(*(call_analyses.c[n].is_distinct_from(excluded[n]) for n in CHANGE_COLUMNS))
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["analysis_key"],
                set_={**{n: excluded[n] for n in VALUE_COLUMNS}, "updated_at": excluded.updated_at},
                where=sa.and_(_refreshable(), changed),
            )
        )


def store_records(
    engine: sa.Engine,
    records: Sequence[AnalysisRecord],
    *,
    batch_id: str | None = None,
    now: datetime | None = None,
) -> int:
    """Store records by ``analysis_key`` in one transaction; final rows are never overwritten.

    A new key is inserted. An existing key is updated only while its row is refreshable (policy or
    budget skip, transcribed, pending batch, offline) and something changed. A record that is an
    analysis of a call (not a policy skip) deletes the call's policy/budget skip rows of the same
    config.

    Args:
        engine: Warehouse engine.
        records: Records to store (duplicate keys: the last wins).
        batch_id: Batch the records came from (stored in ``batch_id``).
        now: ``updated_at`` (default: now).

    Returns:
        How many records were given (rows unchanged by the upsert included).
    """
    if not records:
        return 0
    stamp = now or utcnow()
    by_key = {r.key: record_row(r, batch_id=batch_id, now=stamp) for r in records}
    rows = list(by_key.values())
    with begin_write(engine) as conn:
        upsert_rows(conn, rows)
        _supersede_skips(conn, rows)
    return len(rows)


def store_pending(engine: sa.Engine, pending: PendingAnalysis, *, now: datetime | None = None) -> bool:
    """Store a paid transcript whose text step is still to do (status ``transcribed``).

    Returns:
        True when the row was new (False: the key already had a row, which is left alone).
    """
    stamp = now or utcnow()
    row = {
        "analysis_key": pending.analysis_key,
        "tenant": pending.tenant,
        "session": pending.session,
        "recording_sha256": pending.recording_sha256,
        "analyzer": "openai",
        "model": pending.model,
        "transcription_model": pending.transcription_model,
        "prompt_version": pending.prompt_version,
        "schema_version": pending.schema_version,
        "status": TRANSCRIBED,
        "transcript": pending.transcript,
        "flags": pending.flags,
        "audio_seconds": pending.audio_seconds,
        "cost_usd": pending.cost_usd,
        "redactions": pending.redactions,
        "transcript_encrypted": pending.transcript_encrypted,
        "created_at": stamp,
        "updated_at": stamp,
    }
    with begin_write(engine) as conn:
        insert = upsert_insert(conn, call_analyses).values(row).on_conflict_do_nothing()
        inserted = (conn.execute(insert).rowcount or 0) > 0
        _supersede_skips(conn, [row])
    return inserted


def confirm_existing(
    engine: sa.Engine,
    analysis_key: str,
    *,
    model: str | None,
    prompt_version: str,
    now: datetime | None = None,
) -> bool:
    """Mark an existing final or in-progress row as current for its call (after a re-download).

    Returns:
        True when the key has such a row (the call needs nothing more), else False.
    """
    a = call_analyses.c
    query = (
        sa.update(call_analyses)
        .where(a.analysis_key == analysis_key, settled_condition(model, prompt_version, SCHEMA_VERSION))
        .values(updated_at=now or utcnow())
    )
    with begin_write(engine) as conn:
        return (conn.execute(query).rowcount or 0) > 0
