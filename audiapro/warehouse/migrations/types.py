"""Column types the migrations share, frozen here rather than taken from ``tables.py``.

A revision must create the same thing forever, so it never reads the live table definitions; these
two types are the only ones every revision spells the same way.
"""

import sqlalchemy as sa

# 64-bit surrogate keys on Postgres; SQLite only auto-increments a plain INTEGER primary key.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Every instant in the warehouse is stored with its zone (UTC).
UTC = sa.DateTime(timezone=True)
