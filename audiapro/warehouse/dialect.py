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


def in_small_set(conn: sa.Connection, column: Any, values: sa.Select[Any]) -> sa.ColumnElement[bool]:
    """``column IN (values)`` for a batch-sized set of values probed against a large table.

    Postgres plans ``IN (subquery)`` as a hash join, and its estimate of how many stored rows match
    comes from the column's n_distinct, which ANALYZE underestimates badly for ids that repeat only
    a few times (sessions): at 1.2 M stored legs a 20 000-leg batch was planned as a full scan of
    ``cdr_legs`` (1.3-2.8 s per batch, growing with the table) even with fresh statistics on the
    batch's temp tables. ``= ANY(array)`` is planned as index lookups (about 0.1 s there).
    """
    if conn.dialect.name == POSTGRES:
        listed = values.subquery()
        array = sa.select(sa.func.array_agg(listed.c[0])).scalar_subquery()
        # The cast makes it an array expression: bare "ANY (SELECT ...)" would compare row by row.
        return column == sa.any_(sa.cast(array, postgresql.ARRAY(column.type)))
    return column.in_(values)
