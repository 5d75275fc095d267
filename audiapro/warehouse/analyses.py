"""``call_analyses``: which calls need analysis, what was spent today, and storing results exactly once.

One row per ``analysis_key`` (call, recording content hash, model, prompt version, schema version).
Row states:

* ``succeeded`` / ``failed``, and ``skipped`` with a recording hash (e.g. ``no_speech``): final. Never
  overwritten, so nothing is stored or paid twice.
* ``skipped`` without a recording hash (a policy or budget skip, decided before any download):
  re-evaluated by every run, and deleted once the call gets an analysis of its own.
* ``transcribed``: the transcript is paid for and stored, the text step is not done yet (a crash or
  service outage between the two steps, or waiting for a Batch API submission). Any later run
  resumes it without transcribing again.
* ``pending_batch``: the text step was submitted as part of ``batch_id`` (see ``analysis_batches``).

Offline rows (``analyzer = offline``, cost 0) are refreshed when their flags change (a callback came in).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from audiapro.analysis.models import SCHEMA_VERSION
from audiapro.warehouse.runs import utcnow
from audiapro.warehouse.tables import call_analyses, calls, cdr_legs

SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
TRANSCRIBED: Final = "transcribed"
PENDING_BATCH: Final = "pending_batch"
OFFLINE: Final = "offline"
#: Rows written per INSERT statement.
WRITE_CHUNK: Final = 500
SECONDS_PER_MINUTE: Final = 60.0

#: Columns of the frames returned by `read_calls` and `calls_needing_analysis`.
CALL_FRAME_COLUMNS: Final = (
    "tenant",
    "session",
    "started_at",
    "ended_at",
    "direction",
    "answered",
    "answered_by",
    "talk_s",
    "duration_s",
    "recording_count",
    "src_e164",
    "dst_e164",
    "lastapp",
    "action_type",
    "updated_at",
)


@dataclass(frozen=True)
class Spend:
    """What a tenant's analyses cost on one local day.

    Attributes:
        usd: Sum of ``cost_usd`` of rows created that day.
        audio_minutes: Billed audio minutes of those rows.
        day_start: Start of the tenant's day (UTC).
        day_end: End of the tenant's day (UTC, exclusive).
    """

    usd: float
    audio_minutes: float
    day_start: datetime
    day_end: datetime


@dataclass(frozen=True)
class PendingAnalysis:
    """A transcribed call whose text analysis is not done (status ``transcribed`` or ``pending_batch``).

    Attributes:
        analysis_key: The row's key (also the Batch API ``custom_id``).
        tenant: Tenant.
        session: Call session id.
        recording_sha256: Hash of the transcribed recording.
        model: Text model the analysis is for.
        transcription_model: Model that made the transcript.
        prompt_version: Prompt version the analysis is for.
        transcript: The transcript as JSON (`models.Transcript`).
        audio_seconds: Billed transcription seconds.
        cost_usd: What the transcript cost.
        flags: Offline flags as JSON, if any.
        status: ``transcribed`` or ``pending_batch``.
        batch_id: Batch (or submission marker) the row belongs to.
        schema_version: Schema version of the row.
        attempts: Times the text step was sent and came back unanswered (batch requests never run).
        call: Columns of the call when read back (direction, started_at, talk_s, answered_by).
        redactions: Redaction counts by category as JSON (None: the transcript was not redacted).
        transcript_encrypted: The encrypted original transcript (privacy `redact_keep_encrypted`).
    """

    analysis_key: str
    tenant: str
    session: str
    recording_sha256: str | None
    model: str
    transcription_model: str
    prompt_version: str
    transcript: str
    audio_seconds: float
    cost_usd: float
    flags: str | None = None
    status: str = TRANSCRIBED
    batch_id: str | None = None
    schema_version: int = SCHEMA_VERSION
    attempts: int = 0
    call: Mapping[str, Any] = field(default_factory=dict)
    redactions: str | None = None
    transcript_encrypted: str | None = field(default=None, repr=False)


# -- reads ---------------------------------------------------------------------------------------


def _leg_value(column: str, *, last: bool) -> sa.ScalarSelect[Any]:
    """A column of the call's first (by start) or last (by end) leg, as a correlated subquery."""
    legs = cdr_legs.alias("leg")
    order = (
        (legs.c.end_at.desc().nulls_last(), legs.c.leg_key.desc())
        if last
        else (legs.c.start_at.asc().nulls_last(), legs.c.leg_key.asc())
    )
    return (
        sa.select(legs.c[column])
        .where(legs.c.tenant == calls.c.tenant, legs.c.session == calls.c.session)
        .order_by(*order)
        .limit(1)
        .scalar_subquery()
    )


def _calls_select(tenant: str, start: datetime, end: datetime) -> sa.Select[Any]:
    c = calls.c
    return (
        sa.select(
            c.tenant,
            c.session,
            c.started_at,
            c.ended_at,
            c.direction,
            c.answered,
            c.answered_by,
            c.talk_s,
            c.duration_s,
            c.recording_count,
            c.src_e164,
            _leg_value("dst_e164", last=False).label("dst_e164"),
            _leg_value("lastapp", last=True).label("lastapp"),
            _leg_value("action_type", last=True).label("action_type"),
            c.updated_at,
        )
        .where(c.tenant == tenant, c.started_at >= start, c.started_at < end)
        .order_by(c.started_at, c.session)
    )


def _frame(rows: Sequence[sa.Row[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(CALL_FRAME_COLUMNS))
    for column in ("started_at", "ended_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["answered"] = frame["answered"].astype(bool)
    for column in ("talk_s", "recording_count"):
        frame[column] = pd.to_numeric(frame[column]).fillna(0).astype("int64")
    return frame


def read_calls(engine: sa.Engine, tenant: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Calls of ``tenant`` that started in ``[start, end)``, oldest first.

    Besides the ``calls`` columns the frame carries the first leg's ``dst_e164`` and the last leg's
    ``lastapp`` / ``action_type`` (voicemail indicators), as the offline analyzer uses them.

    Returns:
        A frame with `CALL_FRAME_COLUMNS` (timestamps as UTC datetimes).
    """
    with engine.connect() as conn:
        rows = conn.execute(_calls_select(tenant, start, end)).all()
    return _frame(rows)


def settled_condition(model: str | None, prompt_version: str, schema_version: int) -> sa.ColumnElement[bool]:
    """Rows of the analyzer config that end the call's need for analysis (final or in progress)."""
    a = call_analyses.c
    same_config = sa.and_(
        a.model.is_(None) if model is None else a.model == model,
        a.prompt_version == prompt_version,
        a.schema_version == schema_version,
    )
    state = sa.or_(
        a.status.in_((SUCCEEDED, FAILED, TRANSCRIBED, PENDING_BATCH)),
        sa.and_(a.status == SKIPPED, a.recording_sha256.is_not(None)),
    )
    return sa.and_(same_config, state)


def calls_needing_analysis(
    engine: sa.Engine,
    tenant: str,
    *,
    since: datetime,
    until: datetime,
    model: str,
    prompt_version: str,
    schema_version: int = SCHEMA_VERSION,
) -> pd.DataFrame:
    """Calls that started in ``[since, until)`` and have no analysis for this analyzer config.

    A call needs analysis when no row of ``(model, prompt_version, schema_version)`` is final or in
    progress, or when the call changed after that row was last confirmed (a late leg brought more
    audio: the run downloads it again and analyses it only if the recording hash is new). Policy and
    budget skips do not count, so every run re-evaluates them.

    Returns:
        A frame with `CALL_FRAME_COLUMNS`, oldest first.
    """
    a = call_analyses.c
    done = sa.exists().where(
        a.tenant == calls.c.tenant,
        a.session == calls.c.session,
        settled_condition(model, prompt_version, schema_version),
        a.updated_at >= calls.c.updated_at,
    )
    query = _calls_select(tenant, since, until).where(~done)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return _frame(rows)


def spent_today(engine: sa.Engine, tenant: str, *, timezone: str, now: datetime | None = None) -> Spend:
    """USD and billed audio minutes of ``tenant``'s analyses created on its current local day.

    Args:
        engine: Warehouse engine.
        tenant: Tenant.
        timezone: The tenant's IANA zone (its day starts at local midnight).
        now: The current instant (default: now).

    Returns:
        The day's spend.
    """
    zone = ZoneInfo(timezone)
    local = (now or utcnow()).astimezone(zone)
    day_start = datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(UTC)
    day_end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    a = call_analyses.c
    query = sa.select(
        sa.func.coalesce(sa.func.sum(a.cost_usd), 0.0), sa.func.coalesce(sa.func.sum(a.audio_seconds), 0.0)
    ).where(a.tenant == tenant, a.created_at >= day_start, a.created_at < day_end)
    with engine.connect() as conn:
        usd, seconds = conn.execute(query).one()
    minutes = float(seconds) / SECONDS_PER_MINUTE
    return Spend(usd=float(usd), audio_minutes=minutes, day_start=day_start, day_end=day_end)


def pending_analyses(
    engine: sa.Engine,
    tenant: str,
    *,
    status: str = TRANSCRIBED,
    model: str | None = None,
    prompt_version: str | None = None,
    batch_id: str | None = None,
    limit: int | None = None,
) -> list[PendingAnalysis]:
    """Transcribed rows waiting for their text step.

    Args:
        engine: Warehouse engine.
        tenant: Tenant.
        status: ``transcribed`` (rows not yet in a batch are returned) or ``pending_batch``.
        model: Only rows of this text model.
        prompt_version: Only rows of this prompt version.
        batch_id: Only rows of this batch (or submission marker), whatever ``status``.
        limit: At most this many rows (the oldest).

    Returns:
        The rows with the call's context columns, oldest first.
    """
    a = call_analyses.c
    query = (
        sa.select(
            *(a[name] for name in _PENDING_FIELDS),
            calls.c.direction,
            calls.c.started_at,
            calls.c.talk_s,
            calls.c.answered_by,
        )
        .select_from(
            call_analyses.outerjoin(calls, sa.and_(calls.c.tenant == a.tenant, calls.c.session == a.session))
        )
        .where(a.tenant == tenant)
        .order_by(a.created_at, a.analysis_key)
    )
    if batch_id is not None:
        query = query.where(a.batch_id == batch_id)
    else:
        query = query.where(a.status == status)
        if status == TRANSCRIBED:
            query = query.where(a.batch_id.is_(None))
    if model is not None:
        query = query.where(a.model == model)
    if prompt_version is not None:
        query = query.where(a.prompt_version == prompt_version)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_pending(row._mapping) for row in rows]


_PENDING_FIELDS: Final = (
    "analysis_key",
    "tenant",
    "session",
    "recording_sha256",
    "model",
    "transcription_model",
    "prompt_version",
    "transcript",
    "audio_seconds",
    "cost_usd",
    "flags",
    "status",
    "batch_id",
    "schema_version",
    "attempts",
    "redactions",
    "transcript_encrypted",
)


def _pending(row: sa.RowMapping) -> PendingAnalysis:
    values = {name: row[name] for name in _PENDING_FIELDS}
    context = {name: row[name] for name in ("direction", "started_at", "talk_s", "answered_by")}
    return PendingAnalysis(**values, call=context)


def analysis_counts(engine: sa.Engine, tenant: str | None = None) -> list[dict[str, Any]]:
    """Rows and cost by tenant, analyzer, status and skip reason (for the CLI and summaries)."""
    a = call_analyses.c
    keys = (a.tenant, a.analyzer, a.status, a.skip_reason)
    query = sa.select(*keys, sa.func.count(), sa.func.coalesce(sa.func.sum(a.cost_usd), 0.0)).group_by(*keys)
    if tenant is not None:
        query = query.where(a.tenant == tenant)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(*keys)).all()
    names = ("tenant", "analyzer", "status", "skip_reason", "rows", "cost_usd")
    return [dict(zip(names, (t, z, s, r or "", int(n), float(c)), strict=True)) for t, z, s, r, n, c in rows]


@dataclass(frozen=True)
class RecordingRef:
    """A recording of a call leg, in the order the call's audio is joined.

    Attributes:
        session: Call session id.
        path: Recording path as the PBX lists it (embeds phone numbers: never log it).
        action_type: The leg's action type (queue recordings live in another directory).
    """

    session: str
    path: str
    action_type: str


def recording_refs(engine: sa.Engine, tenant: str, sessions: Sequence[str]) -> dict[str, list[RecordingRef]]:
    """Recording paths of the given calls, legs by start time, files in PBX order.

    Returns:
        ``{session: [RecordingRef, ...]}``; calls without recordings are absent.
    """
    legs = cdr_legs.c
    refs: dict[str, list[RecordingRef]] = {}
    wanted = list(dict.fromkeys(sessions))
    with engine.connect() as conn:
        for first in range(0, len(wanted), WRITE_CHUNK):
            query = (
                sa.select(legs.session, legs.recording_files, legs.action_type)
                .where(
                    legs.tenant == tenant,
                    legs.session.in_(wanted[first : first + WRITE_CHUNK]),
                    legs.recording_count > 0,
                )
                .order_by(legs.session, legs.start_at.asc().nulls_last(), legs.leg_key)
            )
            for session, files, action_type in conn.execute(query):
                for path in json.loads(files or "[]"):
                    if isinstance(path, str) and path.strip():
                        refs.setdefault(session, []).append(RecordingRef(session, path, action_type or ""))
    return refs
