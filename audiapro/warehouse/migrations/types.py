"""Column types and column builders the migrations share, frozen here rather than taken from ``tables.py``.

A revision must create the same thing forever, so it never reads the live table definitions. What
every revision spells the same way lives here instead, and is as frozen as the revisions themselves:
change nothing below, add a new builder for a new shape.
"""

import sqlalchemy as sa

# 64-bit surrogate keys on Postgres; SQLite only auto-increments a plain INTEGER primary key.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Every instant in the warehouse is stored with its zone (UTC).
UTC = sa.DateTime(timezone=True)


def surrogate_key(table: str) -> tuple[sa.Column, sa.PrimaryKeyConstraint]:
    """The ``id`` column of ``table`` and its primary key, named as the naming convention names it.

    Args:
        table: The table being created.

    Returns:
        The column and the constraint, to be unpacked into ``op.create_table``.
    """
    return sa.Column("id", ID, autoincrement=True), sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def run_fk(table: str, column: str = "ingest_run_id", *, nullable: bool) -> sa.Column:
    """A column of ``table`` that references ``ingest_runs.id``, with the convention's constraint name.

    Args:
        table: The table being created.
        column: The referencing column's name.
        nullable: Whether the row may exist without a run.

    Returns:
        The column.
    """
    return sa.Column(
        column,
        ID,
        sa.ForeignKey("ingest_runs.id", name=f"fk_{table}_{column}_ingest_runs"),
        nullable=nullable,
    )


def required(column_type: sa.types.TypeEngine, *names: str) -> list[sa.Column]:
    """NOT NULL columns of one type, in the order given.

    Args:
        column_type: The columns' SQL type.
        *names: The columns' names.

    Returns:
        The columns.
    """
    return [sa.Column(name, column_type, nullable=False) for name in names]


def counters(*names: str, column_type: sa.types.TypeEngine | None = None) -> list[sa.Column]:
    """NOT NULL count columns that start at zero (integers unless ``column_type`` says otherwise).

    Args:
        *names: The columns' names, in order.
        column_type: The columns' SQL type; ``sa.Integer()`` when omitted.

    Returns:
        The columns.
    """
    kind = sa.Integer() if column_type is None else column_type
    return [sa.Column(name, kind, nullable=False, server_default="0") for name in names]
