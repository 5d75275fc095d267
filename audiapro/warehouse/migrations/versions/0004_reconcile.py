"""Completeness: the latest reconciliation of each tenant's PBX-local day against its PBX.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``reconcile_days``."""
    op.create_table(
        "reconcile_days",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("pbx_legs", sa.Integer(), nullable=False),
        sa.Column("malformed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("malformed_legs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("stored_legs", sa.Integer(), nullable=False),
        sa.Column("missing_before", sa.Integer(), nullable=False),
        sa.Column("loaded_now", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("phantom_legs", sa.Integer(), nullable=False),
        sa.Column("matched_legs", sa.Integer(), nullable=False),
        sa.Column("completeness", sa.Float(), nullable=False),
        sa.Column("checked_at", _UTC, nullable=False),
        sa.Column("flow_run_id", sa.Text()),
        sa.Column(
            "ingest_run_id",
            _ID,
            sa.ForeignKey("ingest_runs.id", name="fk_reconcile_days_ingest_run_id_ingest_runs"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("tenant", "day", name="pk_reconcile_days"),
    )


def downgrade() -> None:
    """Drop what revision 0004 created."""
    op.drop_table("reconcile_days")
