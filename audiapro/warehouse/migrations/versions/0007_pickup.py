"""File pickup ledgers: SFTP files by (path, size, mtime), e-mails by (mailbox, UIDVALIDITY, UID)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import UTC

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    """Create ``sftp_files`` and ``mail_messages``."""
    op.create_table(
        "sftp_files",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("remote_path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.BigInteger(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text()),
        sa.Column("detail", sa.Text()),
        sa.Column("first_seen_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("source", "remote_path", "size", "mtime", name="pk_sftp_files"),
    )
    op.create_table(
        "mail_messages",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("mailbox", sa.Text(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text()),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attachments", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("detail", sa.Text()),
        sa.Column("seen_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("source", "mailbox", "uidvalidity", "uid", name="pk_mail_messages"),
    )


def downgrade() -> None:
    """Drop what revision 0007 created."""
    op.drop_table("mail_messages")
    op.drop_table("sftp_files")
