"""Load speed: the AcctId index only over legs that have one; digests of committed import chunks."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import ID, UTC

revision = "0006"
down_revision = "0005"

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
        sa.Column("id", ID, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("legs", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imported_chunks"),
        sa.UniqueConstraint("tenant", "digest", name="uq_imported_chunks_tenant_digest"),
    )


def downgrade() -> None:
    """Drop what revision 0006 added; the AcctId index covers every leg again."""
    op.drop_table("imported_chunks")
    op.drop_index(_ACCT_INDEX, table_name="cdr_legs")
    op.create_index(_ACCT_INDEX, "cdr_legs", ["tenant", "acct_id"])
