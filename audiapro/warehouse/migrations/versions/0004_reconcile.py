"""Completeness: the latest reconciliation of each tenant's PBX-local day against its PBX."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import UTC, counters, required, run_fk

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    """Create ``reconcile_days``."""
    op.create_table(
        "reconcile_days",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("pbx_legs", sa.Integer(), nullable=False),
        *counters("malformed", "malformed_legs"),
        *required(
            sa.Integer(),
            "stored_legs",
            "missing_before",
            "loaded_now",
            "rejected",
            "phantom_legs",
            "matched_legs",
        ),
        sa.Column("completeness", sa.Float(), nullable=False),
        sa.Column("checked_at", UTC, nullable=False),
        sa.Column("flow_run_id", sa.Text()),
        run_fk("reconcile_days", nullable=True),
        sa.PrimaryKeyConstraint("tenant", "day", name="pk_reconcile_days"),
    )


def downgrade() -> None:
    """Drop what revision 0004 created."""
    op.drop_table("reconcile_days")
