"""Load speed: the leg and call keys compare as bytes (``COLLATE "C"``) on Postgres.

Postgres compares ``text`` under the database's collation, and for every collation but ``C``/``POSIX``
that goes through the C library's ``strcoll`` (Postgres 15: a ``C.UTF-8`` or ``en_US.UTF-8`` cluster
alike). A first import inserts each leg into the unique ``(tenant, leg_key)`` and the
``(tenant, session)`` indexes, and the calls rebuild sorts and groups by session and inserts into
``calls``' ``(tenant, session)`` index: millions of such comparisons per million legs. The keys are
identifiers (digits, dots, ``#``, hex), never sorted for people, so byte order is as good as any: with
``COLLATE "C"`` a comparison is a ``memcmp``. Measured on 200,000 legs (database side alone): the
Postgres backend's CPU time 4-10 % lower on a ``C.UTF-8`` cluster, 20-33 % on an ``en_US.UTF-8`` one
(docs/benchmarks.md, Issue 17 fourth pass).

Columns: ``cdr_legs.leg_key`` and ``cdr_legs.session``, ``calls.session`` and
``call_analyses.session`` (joined to ``calls.session``). Every key column compared with another
gets the same collation: a comparison of two columns of different collations has none, and no index
of either column can serve it (measured: with the load's temp tables in ``C`` and ``cdr_legs`` in the
database's collation, the calls rebuild scanned ``cdr_legs`` for every batch, 120 s of server CPU
for 200,000 legs instead of 6). ``tenant`` stays:
every index entry of one tenant holds the same tenant text, and equal texts are found equal by a
``memcmp`` before ``strcoll`` is called.

Equality (every lookup by key) is unchanged: Postgres's deterministic collations compare equal only
byte-identical texts. Only the order of keys changes, where the query orders by them as a last tie
breaker (the calls rebuild's first leg among legs with the same start and uniqueid), and on a
``C.UTF-8`` cluster not even that.

``ALTER COLUMN ... TYPE text COLLATE "C"`` keeps the rows (text to text needs no rewrite) and rebuilds
the indexes holding the column. SQLite compares text with ``memcmp`` already (its ``BINARY``
collation): nothing to do there.
"""

from __future__ import annotations

from typing import Final

from alembic import op

revision = "0011"
down_revision = "0010"

#: Table -> its key columns that compare as bytes from this revision on.
KEY_COLUMNS: Final = {
    "cdr_legs": ("leg_key", "session"),
    "calls": ("session",),
    "call_analyses": ("session",),
}
#: The collation of the key columns (byte order).
BYTE_COLLATION: Final = "C"
#: What the columns had before: the database's collation.
DATABASE_COLLATION: Final = "default"


def _set_collation(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's text comparison (BINARY) is byte order already
    for table, columns in KEY_COLUMNS.items():
        changes = ", ".join(f'ALTER COLUMN {column} TYPE text COLLATE "{collation}"' for column in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    """Give the key columns the ``C`` collation (Postgres rebuilds their indexes)."""
    _set_collation(BYTE_COLLATION)


def downgrade() -> None:
    """Give the key columns the database's collation back."""
    _set_collation(DATABASE_COLLATION)
