"""Completeness: the latest reconciliation of each tenant's PBX-local day against its PBX."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import ID, UTC

revision = "0004"
down_revision = "0003"


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
        sa.Column("checked_at", UTC, nullable=False),
        sa.Column("flow_run_id", sa.Text()),
        sa.Column(
            "ingest_run_id",
            ID,
            sa.ForeignKey("ingest_runs.id", name="fk_reconcile_days_ingest_run_id_ingest_runs"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("tenant", "day", name="pk_reconcile_days"),
    )


def downgrade() -> None:
    """Drop what revision 0004 created."""
    op.drop_table("reconcile_days")
