"""Redaction: counts of personal data replaced in each transcript, and encrypted originals.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
