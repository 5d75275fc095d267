"""Stored push bodies -> parsed -> normalized -> loaded, a small batch of bodies per transaction.

The receiver only stores bodies (``audiapro.warehouse.push``); :func:`load_pending` takes the oldest
pending bodies of one tenant, parses each (a body that does not parse is quarantined with its reason),
and loads their legs through the normal path in ONE transaction, which also marks the bodies loaded.

* Legs already stored (polled, imported, pushed before) are left exactly as they are
  (``on_conflict="ignore"``): the poll, with its richer cdrapi rows, stays the source of truth, and a
  replayed buffer adds nothing.
* The same leg twice in one batch (a body replayed while the first copy still waits) is loaded once:
  identical legs are otherwise numbered ``#2`` by the leg key (audiapro.cdr.keys).
* Push never moves the poll cursor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from audiapro.cdr.normalize import NormalizeContext, normalize_legs
from audiapro.push.parse import PushParseError, RawLeg, parse_push_body
from audiapro.tenants import TenantSettings
from audiapro.warehouse import LoadResult, RunInfo, load_batch, tenant_write_lock
from audiapro.warehouse.push import PushBody, mark_push_loaded, pending_push_bodies, quarantine_push_bodies

if TYPE_CHECKING:
    import sqlalchemy as sa

log = logging.getLogger("audiapro.push")

#: Bodies per load transaction: a replayed 10,000-record buffer loads in a few hundred transactions,
#: not one per leg, while a live push of one leg still loads on its own at once.
BATCH_BODIES: Final = 200
#: Source name stored with pushed legs' rejects and runs.
PUSH_SOURCE: Final = "push"
#: Seconds a push load waits for the tenant lock (a poll or an import may be loading).
LOCK_TIMEOUT_S: Final = 60.0

#: Returns a tenant's settings, None when the tenant no longer exists.
TenantLookup = Callable[[str], "TenantSettings | None"]


@dataclass(frozen=True)
class PushLoad:
    """What one batch did.

    Attributes:
        tenant: Whose bodies.
        bodies: Bodies taken (loaded and quarantined).
        quarantined: Bodies that did not parse.
        legs: Distinct legs parsed from the loaded bodies.
        inserted: Legs new to the warehouse.
        duplicates: Legs already stored.
        rejected: Legs quarantined by normalization (rejected_rows).
        run_id: The ingest run (None when no body parsed).
    """

    tenant: str
    bodies: int
    quarantined: int
    legs: int
    inserted: int
    duplicates: int
    rejected: int
    run_id: int | None


def load_pending(
    engine: sa.Engine, tenants: TenantLookup, *, max_bodies: int = BATCH_BODIES
) -> PushLoad | None:
    """Load the oldest pending bodies of one tenant (module docstring); None when none waits.

    Raises:
        TenantBusyError: The tenant's lock stayed taken; the bodies stay pending for the next try.
    """
    bodies = pending_push_bodies(engine, limit=max_bodies)
    if not bodies:
        return None
    tenant = bodies[0].tenant
    settings = tenants(tenant)
    if settings is None:
        reasons = {body.id: f"tenant {tenant!r} does not exist (any more)" for body in bodies}
        quarantine_push_bodies(engine, reasons)
        return PushLoad(tenant, len(bodies), len(bodies), 0, 0, 0, 0, None)
    parsed, reasons = _parse_all(bodies)
    quarantine_push_bodies(engine, reasons)
    if not parsed:
        return PushLoad(tenant, len(bodies), len(reasons), 0, 0, 0, 0, None)
    legs = _distinct([leg for _, _, found in parsed for leg in found])
    result = _load(engine, settings, legs, parsed)
    duplicates = result.read - result.inserted
    log.info("tenant %s: %d pushed bodies, %d legs, %d new, %d already stored, %d quarantined",
             tenant, len(bodies), len(legs), result.inserted, duplicates, len(reasons))  # fmt: skip
    return PushLoad(tenant, len(bodies), len(reasons), len(legs), result.inserted, duplicates,
                    result.rejected, result.run_id)  # fmt: skip


def _parse_all(bodies: list[PushBody]) -> tuple[list[tuple[int, str, list[RawLeg]]], dict[int, str]]:
    parsed: list[tuple[int, str, list[RawLeg]]] = []
    reasons: dict[int, str] = {}
    for body in bodies:
        try:
            found = parse_push_body(body.body, body.content_type)
        except PushParseError as exc:
            reasons[body.id] = str(exc)
            continue
        parsed.append((body.id, found.format, found.legs))
    if reasons:
        log.warning("%d pushed bodies quarantined (unparseable): ids %s", len(reasons), sorted(reasons))
    return parsed, reasons


def _distinct(legs: list[RawLeg]) -> list[RawLeg]:
    """Legs in order, each distinct leg once (a replayed copy in the same batch dropped)."""
    seen: dict[str, RawLeg] = {}
    for leg in legs:
        seen.setdefault(json.dumps(leg, sort_keys=True), leg)
    return list(seen.values())


def _load(
    engine: sa.Engine,
    settings: TenantSettings,
    legs: list[RawLeg],
    parsed: list[tuple[int, str, list[RawLeg]]],
) -> LoadResult:
    ctx = NormalizeContext(
        tenant=settings.name, timezone=settings.timezone, region=settings.region, source=PUSH_SOURCE
    )
    batch = normalize_legs(legs, ctx)
    first, last = parsed[0][0], parsed[-1][0]
    run = RunInfo(kind=PUSH_SOURCE, source_ref=f"push_bodies:{first}-{last}", fetched=len(legs))
    marks = [(body_id, body_format, len(found)) for body_id, body_format, found in parsed]

    def mark(conn: sa.Connection, result: LoadResult) -> None:
        mark_push_loaded(conn, marks, run_id=result.run_id, inserted=result.inserted)

    with tenant_write_lock(engine, settings.name, timeout_s=LOCK_TIMEOUT_S):
        return load_batch(
            engine,
            tenant=settings.name,
            legs=batch.legs,
            rejects=batch.rejects,
            run=run,
            on_conflict="ignore",
            on_commit=mark,
        )
