"""Poll health: the long-call sweep's last run and empty windows in a row on ``sync_state``;
``login_blocks`` remembers a PBX's refused login for every process.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import UTC

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    """Add the sync_state columns and the login_blocks table."""
    with op.batch_alter_table("sync_state") as batch:
        batch.add_column(sa.Column("last_sweep_at", UTC))
        batch.add_column(sa.Column("empty_ticks", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "login_blocks",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("blocked_until", UTC, nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("failed_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant", name="pk_login_blocks"),
    )


def downgrade() -> None:
    """Drop what revision 0003 created."""
    op.drop_table("login_blocks")
    with op.batch_alter_table("sync_state") as batch:
        batch.drop_column("empty_ticks")
        batch.drop_column("last_sweep_at")
