"""Push: every body a PBX pushed, stored verbatim before it is parsed (``push_bodies``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import ID, UTC

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    """Create ``push_bodies``."""
    op.create_table(
        "push_bodies",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("peer", sa.Text()),
        sa.Column("content_type", sa.Text()),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("body_format", sa.Text()),
        sa.Column("legs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("inserted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "ingest_run_id",
            ID,
            sa.ForeignKey("ingest_runs.id", name="fk_push_bodies_ingest_run_id_ingest_runs"),
            nullable=True,
        ),
        sa.Column("processed_at", UTC),
        sa.PrimaryKeyConstraint("id", name="pk_push_bodies"),
    )
    op.create_index("ix_push_bodies_status_tenant_id", "push_bodies", ["status", "tenant", "id"])
    op.create_index("ix_push_bodies_tenant_sha256", "push_bodies", ["tenant", "sha256"])


def downgrade() -> None:
    """Drop what revision 0008 created."""
    op.drop_index("ix_push_bodies_tenant_sha256", table_name="push_bodies")
    op.drop_index("ix_push_bodies_status_tenant_id", table_name="push_bodies")
    op.drop_table("push_bodies")
