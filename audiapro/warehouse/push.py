"""Bodies a PBX pushed (``push_bodies``): stored verbatim first, then parsed and loaded or quarantined.

The receiver writes a body here before it parses anything (:func:`store_push_body`); the loader takes
pending bodies in id order (:func:`pending_push_bodies`) and marks them loaded inside the load
transaction of their legs (:func:`mark_push_loaded`, through ``load_batch``'s ``on_commit``), so a
crash leaves a body pending, never loaded without its legs. Also the upload page's status read
(:func:`read_imported_file`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa

from audiapro.warehouse.engine import begin_write
from audiapro.warehouse.history import ImportedFile
from audiapro.warehouse.runs import redact_error, utcnow
from audiapro.warehouse.tables import (
    PUSH_CAPTURED,
    PUSH_LOADED,
    PUSH_PENDING,
    PUSH_QUARANTINED,
    imported_files,
    push_bodies,
)

#: States in which a body with the same content counts as already received (a quarantined one does
#: not: the same body sent again is stored again, the parser may know it by now).
_RECEIVED: Final = (PUSH_PENDING, PUSH_LOADED, PUSH_CAPTURED)


@dataclass(frozen=True)
class StoredBody:
    """What storing a pushed body did.

    Attributes:
        id: The row of this body (or of the earlier identical one).
        duplicate: The tenant had sent this exact body before: nothing was stored.
    """

    id: int
    duplicate: bool


@dataclass(frozen=True)
class PushBody:
    """A stored body, as the loader and ``audiapro push reparse`` read it."""

    id: int
    tenant: str
    body: bytes
    content_type: str | None
    status: str
    reason: str | None


def store_push_body(
    engine: sa.Engine,
    *,
    tenant: str,
    body: bytes,
    sha256: str,
    headers: Mapping[str, str],
    peer: str | None,
    content_type: str | None,
    capture: bool = False,
    now: datetime | None = None,
) -> StoredBody:
    """Keep a pushed body verbatim (``pending``, or ``captured`` in capture mode) unless already kept.

    Args:
        engine: Warehouse engine.
        tenant: Whose PBX sent it.
        body: The bytes as received.
        sha256: Their SHA-256 (hex).
        headers: Request headers to keep (the caller leaves credentials out).
        peer: The sender's address.
        content_type: Its ``Content-Type`` header, if any.
        capture: Store only; the loader never reads captured bodies.
        now: Receipt time (UTC).
    """
    same = (
        sa.select(push_bodies.c.id)
        .where(push_bodies.c.tenant == tenant, push_bodies.c.sha256 == sha256)
        .where(push_bodies.c.status.in_(_RECEIVED))
        .limit(1)
    )
    values = {
        "tenant": tenant,
        "received_at": now or utcnow(),
        "peer": peer,
        "content_type": content_type,
        "headers": json.dumps(dict(headers), sort_keys=True),
        "size_bytes": len(body),
        "sha256": sha256,
        "body": body,
        "status": PUSH_CAPTURED if capture else PUSH_PENDING,
    }
    with begin_write(engine) as conn:
        earlier = conn.execute(same).scalar()
        if earlier is not None:
            return StoredBody(id=int(earlier), duplicate=True)
        new_id = conn.execute(
            sa.insert(push_bodies).values(**values).returning(push_bodies.c.id)
        ).scalar_one()
    return StoredBody(id=int(new_id), duplicate=False)


def pending_push_bodies(engine: sa.Engine, *, limit: int, tenant: str | None = None) -> list[PushBody]:
    """The oldest pending bodies (of one tenant, or of the tenant with the oldest one), in id order."""
    query = sa.select(push_bodies).where(push_bodies.c.status == PUSH_PENDING)
    with engine.connect() as conn:
        if tenant is None:
            first = conn.execute(query.order_by(push_bodies.c.id).limit(1)).first()
            if first is None:
                return []
            tenant = str(first.tenant)
        rows = conn.execute(
            query.where(push_bodies.c.tenant == tenant).order_by(push_bodies.c.id).limit(limit)
        )
        return [_body(row) for row in rows]


def quarantined_push_bodies(engine: sa.Engine, *, tenant: str | None = None) -> list[PushBody]:
    """Every quarantined body (of one tenant), in id order."""
    query = sa.select(push_bodies).where(push_bodies.c.status == PUSH_QUARANTINED)
    if tenant is not None:
        query = query.where(push_bodies.c.tenant == tenant)
    with engine.connect() as conn:
        return [_body(row) for row in conn.execute(query.order_by(push_bodies.c.id))]


def count_pending_push(engine: sa.Engine) -> int:
    """Bodies waiting for the loader (every tenant)."""
    query = sa.select(sa.func.count()).select_from(push_bodies).where(push_bodies.c.status == PUSH_PENDING)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def push_status_counts(engine: sa.Engine, tenant: str | None = None) -> dict[str, int]:
    """Bodies per state (of one tenant, or all)."""
    query = sa.select(push_bodies.c.status, sa.func.count()).group_by(push_bodies.c.status)
    if tenant is not None:
        query = query.where(push_bodies.c.tenant == tenant)
    with engine.connect() as conn:
        return {str(status): int(count) for status, count in conn.execute(query)}


def quarantine_push_bodies(
    engine: sa.Engine, reasons: Mapping[int, str], *, now: datetime | None = None
) -> None:
    """Mark bodies unparseable, each with its one-line reason (redacted, capped)."""
    if not reasons:
        return
    stamp = now or utcnow()
    with begin_write(engine) as conn:
        for body_id, reason in reasons.items():
            conn.execute(
                sa.update(push_bodies)
                .where(push_bodies.c.id == body_id)
                .values(status=PUSH_QUARANTINED, reason=redact_error(reason), processed_at=stamp)
            )


def mark_push_loaded(
    conn: sa.Connection,
    loaded: Sequence[tuple[int, str, int]],
    *,
    run_id: int,
    inserted: int,
    now: datetime | None = None,
) -> None:
    """Mark bodies loaded inside the load transaction of their legs.

    Args:
        conn: The load transaction's connection.
        loaded: ``(body id, body format, legs parsed from it)`` per body.
        run_id: The ``ingest_runs`` row of the load.
        inserted: Legs the load inserted (recorded on the batch's first body; the rest get 0).
        now: Processing time.
    """
    stamp = now or utcnow()
    for place, (body_id, body_format, legs) in enumerate(loaded):
        conn.execute(
            sa.update(push_bodies)
            .where(push_bodies.c.id == body_id)
            .values(
                status=PUSH_LOADED,
                reason=None,
                body_format=body_format,
                legs=legs,
                inserted=inserted if place == 0 else 0,
                ingest_run_id=run_id,
                processed_at=stamp,
            )
        )


def read_imported_file(engine: sa.Engine, tenant: str, sha256: str) -> ImportedFile | None:
    """The import record of a file (by its content hash), None before its import claimed it."""
    table = imported_files
    query = sa.select(table).where(table.c.tenant == tenant, table.c.sha256 == sha256)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return ImportedFile(
        id=int(row.id),
        tenant=row.tenant,
        sha256=row.sha256,
        filename=row.filename,
        status=row.status,
        chunks_done=int(row.chunks_done),
        rows_read=int(row.rows_read),
        inserted=int(row.inserted),
        duplicates=int(row.duplicates),
        rejected=int(row.rejected),
        error=row.error,
    )


def _body(row: sa.Row[tuple[object, ...]]) -> PushBody:
    mapping = row._mapping
    return PushBody(
        id=int(mapping["id"]),
        tenant=str(mapping["tenant"]),
        body=bytes(mapping["body"]),
        content_type=mapping["content_type"],
        status=str(mapping["status"]),
        reason=mapping["reason"],
    )


def requeue_push_bodies(engine: sa.Engine, ids: Sequence[int]) -> None:
    """Put bodies back in the load queue (``pending``), e.g. after the parser learned their format."""
    if not ids:
        return
    with begin_write(engine) as conn:
        conn.execute(
            sa.update(push_bodies)
            .where(push_bodies.c.id.in_(list(ids)))
            .values(status=PUSH_PENDING, reason=None, processed_at=None)
        )
