"""History and analysis: backfill windows, imported files, call analyses, analysis batches;
rejected rows get a fingerprint so a bad leg re-read by every poll is stored once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import ID, UTC

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    """Create the history and analysis tables."""
    op.create_table(
        "backfill_windows",
        sa.Column("id", ID, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("window_start", UTC, nullable=False),
        sa.Column("window_end", UTC, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "ingest_run_id",
            ID,
            sa.ForeignKey("ingest_runs.id", name="fk_backfill_windows_ingest_run_id_ingest_runs"),
            nullable=True,
        ),
        sa.Column("flow_run_id", sa.Text()),
        sa.Column("completed_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_backfill_windows"),
        sa.UniqueConstraint(
            "tenant", "window_start", "window_end", name="uq_backfill_windows_tenant_window_start_window_end"
        ),
    )
    op.create_table(
        "imported_files",
        sa.Column("id", ID, autoincrement=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rows_read", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("inserted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("duplicates", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text()),
        sa.Column("flow_run_id", sa.Text()),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC),
        sa.PrimaryKeyConstraint("id", name="pk_imported_files"),
        sa.UniqueConstraint("tenant", "sha256", name="uq_imported_files_tenant_sha256"),
    )
    op.create_table(
        "call_analyses",
        sa.Column("id", ID, autoincrement=True),
        sa.Column("analysis_key", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("session", sa.Text(), nullable=False),
        sa.Column("recording_sha256", sa.Text()),
        sa.Column("analyzer", sa.Text(), nullable=False),
        sa.Column("model", sa.Text()),
        sa.Column("transcription_model", sa.Text()),
        sa.Column("prompt_version", sa.Text(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("skip_reason", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("transcript", sa.Text()),
        sa.Column("insights", sa.Text()),
        sa.Column("flags", sa.Text()),
        sa.Column("audio_seconds", sa.Float(), nullable=False, server_default="0"),
        sa.Column("input_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("batch_id", sa.Text()),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_analyses"),
        sa.UniqueConstraint("analysis_key", name="uq_call_analyses_analysis_key"),
    )
    op.create_index("ix_call_analyses_tenant_session", "call_analyses", ["tenant", "session"])
    op.create_index("ix_call_analyses_tenant_created_at", "call_analyses", ["tenant", "created_at"])
    op.create_index("ix_call_analyses_batch_id", "call_analyses", ["batch_id"])
    op.create_table(
        "analysis_batches",
        sa.Column("batch_id", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("submitted_at", UTC, nullable=False),
        sa.Column("collected_at", UTC),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("batch_id", name="pk_analysis_batches"),
    )
    with op.batch_alter_table("rejected_rows") as batch:
        batch.add_column(sa.Column("fingerprint", sa.Text()))
    op.create_index(
        "uq_rejected_rows_tenant_fingerprint", "rejected_rows", ["tenant", "fingerprint"], unique=True
    )


def downgrade() -> None:
    """Drop what revision 0002 created."""
    op.drop_index("uq_rejected_rows_tenant_fingerprint", table_name="rejected_rows")
    with op.batch_alter_table("rejected_rows") as batch:
        batch.drop_column("fingerprint")
    for table in ("analysis_batches", "call_analyses", "imported_files", "backfill_windows"):
        op.drop_table(table)
