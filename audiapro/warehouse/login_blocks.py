"""``login_blocks``: a PBX that refused our login, remembered for every process until a set time.

Written by the login guard (``audiapro.logins``) when a login fails with an authentication error,
read before every handshake, cleared by a successful login, a changed password or ``tenant test``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from audiapro.warehouse.dialect import upsert_insert
from audiapro.warehouse.tables import login_blocks

_VALUES = ("blocked_until", "status", "reason", "failed_at")


@dataclass(frozen=True)
class LoginBlock:
    """One tenant's block.

    Attributes:
        tenant: Tenant name.
        blocked_until: No login is attempted before this instant (UTC).
        status: UCM status of the refused login (e.g. -37), if any.
        reason: One line for operators (no secrets).
        failed_at: When the login failed.
    """

    tenant: str
    blocked_until: datetime
    status: int | None
    reason: str
    failed_at: datetime


@contextmanager
def _connected(bind: sa.Engine | sa.Connection, *, write: bool) -> Iterator[sa.Connection]:
    """``bind`` itself when it is a connection (the login lock's autocommit session), else one of the
    engine's: a transaction when ``write``."""
    if isinstance(bind, sa.Connection):
        yield bind
    elif write:
        with bind.begin() as conn:
            yield conn
    else:
        with bind.connect() as conn:
            yield conn


def read_login_block(bind: sa.Engine | sa.Connection, tenant: str) -> LoginBlock | None:
    """The tenant's block (expired or not), or ``None`` (``bind``: an engine, or a connection)."""
    with _connected(bind, write=False) as conn:
        row = conn.execute(sa.select(login_blocks).where(login_blocks.c.tenant == tenant)).one_or_none()
    return None if row is None else LoginBlock(**row._mapping)


def list_login_blocks(engine: sa.Engine, *, active_at: datetime) -> list[LoginBlock]:
    """Blocks still in force at ``active_at``, by tenant."""
    query = (
        sa.select(login_blocks)
        .where(login_blocks.c.blocked_until > active_at)
        .order_by(login_blocks.c.tenant)
    )
    with engine.connect() as conn:
        return [LoginBlock(**row._mapping) for row in conn.execute(query)]


def set_login_block(bind: sa.Engine | sa.Connection, block: LoginBlock) -> None:
    """Store (or replace) the tenant's block (``bind``: an engine, or an autocommit connection)."""
    with _connected(bind, write=True) as conn:
        insert = upsert_insert(conn, login_blocks).values(
            tenant=block.tenant,
            blocked_until=block.blocked_until,
            status=block.status,
            reason=block.reason,
            failed_at=block.failed_at,
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["tenant"],
                set_={
                    name: insert.excluded[name] for name in ("blocked_until", "status", "reason", "failed_at")
                },
            )
        )


def clear_login_block(bind: sa.Engine | sa.Connection, tenant: str) -> bool:
    """Lift the tenant's block; returns whether there was one (``bind`` as for :func:`set_login_block`)."""
    with _connected(bind, write=True) as conn:
        return bool(conn.execute(sa.delete(login_blocks).where(login_blocks.c.tenant == tenant)).rowcount)
