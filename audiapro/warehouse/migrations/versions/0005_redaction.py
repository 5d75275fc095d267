"""Redaction: counts of personal data replaced in each transcript, and encrypted originals."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Add ``call_analyses.redactions`` and ``call_analyses.transcript_encrypted``."""
    with op.batch_alter_table("call_analyses") as batch:
        batch.add_column(sa.Column("redactions", sa.Text()))
        batch.add_column(sa.Column("transcript_encrypted", sa.Text()))


def downgrade() -> None:
    """Drop what revision 0005 added."""
    with op.batch_alter_table("call_analyses") as batch:
        batch.drop_column("transcript_encrypted")
        batch.drop_column("redactions")
