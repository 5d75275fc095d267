"""Initial warehouse: ingest runs, call legs, calls, sync state, rejected rows.

Written out in full (not derived from ``tables.py``) so that later changes to the table definitions
cannot change what this revision creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import ID, UTC

revision = "0001"
down_revision = None


def _run_fk(table: str, column: str, *, nullable: bool) -> sa.Column:
    return sa.Column(
        column,
        ID,
        sa.ForeignKey("ingest_runs.id", name=f"fk_{table}_{column}_ingest_runs"),
        nullable=nullable,
    )


def upgrade() -> None:
    """Create the initial tables."""
    op.create_table(
        "ingest_runs",
        sa.Column("id", ID, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("window_start", UTC),
        sa.Column("window_end", UTC),
        sa.Column("source_ref", sa.Text()),
        sa.Column("flow_run_id", sa.Text()),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC),
        sa.Column("fetched", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("inserted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_runs"),
    )
    op.create_index("ix_ingest_runs_tenant_started_at", "ingest_runs", ["tenant", "started_at"])

    op.create_table(
        "cdr_legs",
        sa.Column("id", ID, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("leg_key", sa.Text(), nullable=False),
        sa.Column("acct_id", sa.Text()),
        sa.Column("uniqueid", sa.Text()),
        sa.Column("session", sa.Text()),
        sa.Column("start_local", sa.Text()),
        sa.Column("start_at", UTC),
        sa.Column("answer_at", UTC),
        sa.Column("end_at", UTC),
        sa.Column("duration_s", sa.Integer()),
        sa.Column("billsec_s", sa.Integer()),
        sa.Column("disposition", sa.Text()),
        sa.Column("direction", sa.Text()),
        sa.Column("src_raw", sa.Text()),
        sa.Column("dst_raw", sa.Text()),
        sa.Column("src_e164", sa.Text()),
        sa.Column("dst_e164", sa.Text()),
        sa.Column("caller_name", sa.Text()),
        sa.Column("answered_by", sa.Text()),
        sa.Column("action_type", sa.Text()),
        sa.Column("action_owner", sa.Text()),
        sa.Column("src_trunk", sa.Text()),
        sa.Column("dst_trunk", sa.Text()),
        sa.Column("channel", sa.Text()),
        sa.Column("dstchannel", sa.Text()),
        sa.Column("dcontext", sa.Text()),
        sa.Column("lastapp", sa.Text()),
        sa.Column("recording_files", sa.Text()),
        sa.Column("recording_count", sa.Integer()),
        sa.Column("raw", sa.Text()),
        _run_fk("cdr_legs", "ingest_run_id", nullable=False),
        _run_fk("cdr_legs", "last_ingest_run_id", nullable=False),
        sa.Column("loaded_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cdr_legs"),
        sa.UniqueConstraint("tenant", "leg_key", name="uq_cdr_legs_tenant_leg_key"),
    )
    op.create_index("ix_cdr_legs_tenant_start_at", "cdr_legs", ["tenant", "start_at"])
    op.create_index("ix_cdr_legs_tenant_session", "cdr_legs", ["tenant", "session"])
    op.create_index("ix_cdr_legs_tenant_acct_id", "cdr_legs", ["tenant", "acct_id"])

    op.create_table(
        "calls",
        sa.Column("id", ID, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("session", sa.Text(), nullable=False),
        sa.Column("started_at", UTC),
        sa.Column("ended_at", UTC),
        sa.Column("direction", sa.Text()),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("answered_by", sa.Text()),
        sa.Column("leg_count", sa.Integer(), nullable=False),
        sa.Column("talk_s", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Integer()),
        sa.Column("recording_count", sa.Integer(), nullable=False),
        sa.Column("src_e164", sa.Text()),
        sa.Column("src_raw", sa.Text()),
        sa.Column("dst_raw", sa.Text()),
        _run_fk("calls", "ingest_run_id", nullable=False),
        _run_fk("calls", "last_ingest_run_id", nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.UniqueConstraint("tenant", "session", name="uq_calls_tenant_session"),
    )
    op.create_index("ix_calls_tenant_started_at", "calls", ["tenant", "started_at"])

    op.create_table(
        "sync_state",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("cursor_at", UTC),
        sa.Column("last_success_at", UTC),
        sa.Column("last_attempt_at", UTC),
        sa.Column("last_error", sa.Text()),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
        _run_fk("sync_state", "last_run_id", nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant", name="pk_sync_state"),
    )

    op.create_table(
        "rejected_rows",
        sa.Column("id", ID, autoincrement=True),
        _run_fk("rejected_rows", "ingest_run_id", nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("source", sa.Text()),
        sa.Column("position", sa.Integer()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text()),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejected_rows"),
    )
    op.create_index("ix_rejected_rows_ingest_run_id", "rejected_rows", ["ingest_run_id"])


def downgrade() -> None:
    """Drop everything revision 0001 created."""
    for table in ("rejected_rows", "sync_state", "calls", "cdr_legs", "ingest_runs"):
        op.drop_table(table)
