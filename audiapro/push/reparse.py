"""``audiapro push reparse``: quarantined bodies parsed again; those that parse now are loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from audiapro.push.loader import TenantLookup, load_pending
from audiapro.push.parse import PushParseError, parse_push_body
from audiapro.warehouse.push import quarantine_push_bodies, quarantined_push_bodies, requeue_push_bodies

if TYPE_CHECKING:
    import sqlalchemy as sa


@dataclass(frozen=True)
class Reparsed:
    """What a reparse did: bodies tried, put back in the queue, and the legs then loaded."""

    tried: int
    requeued: int
    inserted: int
    duplicates: int


def reparse_quarantined(engine: sa.Engine, tenants: TenantLookup, *, tenant: str | None = None) -> Reparsed:
    """Parse every quarantined body (of ``tenant``) again; queue and load those that parse.

    A body that still does not parse keeps its quarantine, with the reason of this attempt.
    """
    bodies = quarantined_push_bodies(engine, tenant=tenant)
    parsed, reasons = [], {}
    for body in bodies:
        try:
            parse_push_body(body.body, body.content_type)
        except PushParseError as exc:
            reasons[body.id] = str(exc)
            continue
        parsed.append(body.id)
    quarantine_push_bodies(engine, reasons)
    requeue_push_bodies(engine, parsed)
    inserted = duplicates = 0
    while (done := load_pending(engine, tenants)) is not None:
        inserted += done.inserted
        duplicates += done.duplicates
    return Reparsed(tried=len(bodies), requeued=len(parsed), inserted=inserted, duplicates=duplicates)
