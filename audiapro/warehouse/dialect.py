"""The few SQL constructs that differ between Postgres and SQLite."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

POSTGRES = "postgresql"
SQLITE = "sqlite"
_UNIX_EPOCH_JULIAN_DAY = 2440587.5
_SECONDS_PER_DAY = 86400.0


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


def epoch_seconds(conn: sa.Connection, instant: Any) -> sa.ColumnElement[Any]:
    """Seconds since 1970-01-01 UTC of a stored instant, as a float (NULL stays NULL).

    Fractions are kept (timestamps may carry microseconds), so sums of differences round once.
    """
    if conn.dialect.name == POSTGRES:
        # date_part() is double precision; EXTRACT is numeric since PG 14, several times slower.
        return sa.func.date_part("epoch", instant, type_=sa.Float)
    # julianday() of SQLite's UTC text timestamps, shifted to the Unix epoch (Julian day 2440587.5).
    return (sa.func.julianday(instant, type_=sa.Float) - _UNIX_EPOCH_JULIAN_DAY) * _SECONDS_PER_DAY


def joined_text(conn: sa.Connection, text: Any, separator: str) -> sa.FunctionElement[Any]:
    """Aggregate: the values of ``text`` joined by ``separator`` (NULL when there is none)."""
    if conn.dialect.name == POSTGRES:
        return sa.func.string_agg(text, sa.literal(separator), type_=sa.Text)
    return sa.func.group_concat(text, sa.literal(separator), type_=sa.Text)


def count_distinct_strings(conn: sa.Connection, arrays: Any) -> sa.ScalarSelect[Any]:
    """Scalar subquery: the number of distinct strings in a JSON array of string arrays (text)."""
    if conn.dialect.name == POSTGRES:
        lists = sa.func.json_array_elements(sa.cast(arrays, postgresql.JSON)).table_valued("value")
        strings = sa.func.json_array_elements_text(lists.c.value).table_valued("value")
    else:
        lists = sa.func.json_each(arrays).table_valued("value")
        strings = sa.func.json_each(lists.c.value).table_valued("value")
    return (
        sa.select(sa.func.count(sa.distinct(strings.c.value)))
        .select_from(lists.join(strings, sa.true()))
        .scalar_subquery()
    )


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
