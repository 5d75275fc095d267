"""Initial warehouse: ingest runs, call legs, calls, sync state, rejected rows.

Written out in full (not derived from ``tables.py``) so that later changes to the table definitions
cannot change what this revision creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import UTC, counters, required, run_fk, surrogate_key

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Create the initial tables."""
    op.create_table(
        "ingest_runs",
        *surrogate_key("ingest_runs"),
        *required(sa.Text(), "tenant", "kind", "status"),
        sa.Column("window_start", UTC),
        sa.Column("window_end", UTC),
        sa.Column("source_ref", sa.Text()),
        sa.Column("flow_run_id", sa.Text()),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC),
        *counters("fetched", "inserted", "updated", "unchanged", "rejected"),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_ingest_runs_tenant_started_at", "ingest_runs", ["tenant", "started_at"])

    op.create_table(
        "cdr_legs",
        *surrogate_key("cdr_legs"),
        *required(sa.Text(), "tenant", "leg_key"),
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
        run_fk("cdr_legs", nullable=False),
        run_fk("cdr_legs", "last_ingest_run_id", nullable=False),
        *required(UTC, "loaded_at", "updated_at"),
        sa.UniqueConstraint("tenant", "leg_key", name="uq_cdr_legs_tenant_leg_key"),
    )
    op.create_index("ix_cdr_legs_tenant_start_at", "cdr_legs", ["tenant", "start_at"])
    op.create_index("ix_cdr_legs_tenant_session", "cdr_legs", ["tenant", "session"])
    op.create_index("ix_cdr_legs_tenant_acct_id", "cdr_legs", ["tenant", "acct_id"])

    op.create_table(
        "calls",
        *surrogate_key("calls"),
        *required(sa.Text(), "tenant", "session"),
        sa.Column("started_at", UTC),
        sa.Column("ended_at", UTC),
        sa.Column("direction", sa.Text()),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("answered_by", sa.Text()),
        *required(sa.Integer(), "leg_count", "talk_s"),
        sa.Column("duration_s", sa.Integer()),
        sa.Column("recording_count", sa.Integer(), nullable=False),
        sa.Column("src_e164", sa.Text()),
        sa.Column("src_raw", sa.Text()),
        sa.Column("dst_raw", sa.Text()),
        run_fk("calls", nullable=False),
        run_fk("calls", "last_ingest_run_id", nullable=False),
        *required(UTC, "created_at", "updated_at"),
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
        *counters("consecutive_failures"),
        run_fk("sync_state", "last_run_id", nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant", name="pk_sync_state"),
    )

    op.create_table(
        "rejected_rows",
        *surrogate_key("rejected_rows"),
        run_fk("rejected_rows", nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("source", sa.Text()),
        sa.Column("position", sa.Integer()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text()),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_rejected_rows_ingest_run_id", "rejected_rows", ["ingest_run_id"])


def downgrade() -> None:
    """Drop everything revision 0001 created."""
    for table in ("rejected_rows", "sync_state", "calls", "cdr_legs", "ingest_runs"):
        op.drop_table(table)
