"""The few SQL constructs that differ between Postgres and SQLite."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

POSTGRES = "postgresql"
SQLITE = "sqlite"


def upsert_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """An ``INSERT`` supporting ``on_conflict_do_update`` and ``excluded`` on this back end."""
    if conn.dialect.name == POSTGRES:
        return postgresql.insert(table)
    if conn.dialect.name == SQLITE:
        return sqlite.insert(table)
    raise NotImplementedError(f"the warehouse supports Postgres and SQLite, not {conn.dialect.name}")


def seconds_between(conn: sa.Connection, start: Any, end: Any) -> sa.ColumnElement[Any]:
    """Whole seconds from ``start`` to ``end`` (NULL when either is NULL), as an integer."""
    if conn.dialect.name == POSTGRES:
        return sa.cast(sa.func.round(sa.extract("epoch", end - start)), sa.Integer)
    # SQLite keeps timestamps as text; julianday() reads that format, in days.
    days = sa.func.julianday(end) - sa.func.julianday(start)
    return sa.cast(sa.func.round(days * 86400), sa.Integer)
