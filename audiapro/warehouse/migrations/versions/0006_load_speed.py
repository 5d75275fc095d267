"""Load speed: the AcctId index only over legs that have one; digests of committed import chunks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = sa.DateTime(timezone=True)
_ACCT_INDEX = "ix_cdr_legs_tenant_acct_id"
_HAS_ACCT = "acct_id IS NOT NULL"


def upgrade() -> None:
    """Make the AcctId index partial; add ``imported_chunks``."""
    op.drop_index(_ACCT_INDEX, table_name="cdr_legs")
    op.create_index(
        _ACCT_INDEX,
        "cdr_legs",
        ["tenant", "acct_id"],
        postgresql_where=sa.text(_HAS_ACCT),
        sqlite_where=sa.text(_HAS_ACCT),
    )
    op.create_table(
        "imported_chunks",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("legs", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imported_chunks"),
        sa.UniqueConstraint("tenant", "digest", name="uq_imported_chunks_tenant_digest"),
    )


def downgrade() -> None:
    """Drop what revision 0006 added; the AcctId index covers every leg again."""
    op.drop_table("imported_chunks")
    op.drop_index(_ACCT_INDEX, table_name="cdr_legs")
    op.create_index(_ACCT_INDEX, "cdr_legs", ["tenant", "acct_id"])
