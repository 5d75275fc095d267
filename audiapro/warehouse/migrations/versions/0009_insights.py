"""Insights and toll-fraud alerts: daily KPIs, breakdowns, callback worklist, fraud alerts, views."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audiapro.warehouse.migrations.types import ID, UTC

revision = "0009"
down_revision = "0008"


#: Per-dimension views over ``daily_breakdowns`` (plain SQL both back ends read): name -> dimension.
BREAKDOWN_VIEWS = {
    "insights_by_hour": "hour",
    "insights_by_disposition": "disposition",
    "insights_by_trunk": "trunk",
    "insights_by_country": "country",
    "insights_by_extension": "extension",
    "insights_repeat_callers": "repeat_caller",
}
_BREAKDOWN_VIEW = """
CREATE VIEW {name} AS
SELECT tenant, day, key AS {column}, calls, answered, missed, talk_s,
       CASE WHEN calls > 0 THEN 100.0 * answered / calls END AS asr,
       CASE WHEN answered > 0 THEN 1.0 * talk_s / answered END AS acd_s,
       avg_ring_s
FROM daily_breakdowns WHERE dimension = '{dimension}'
"""
_OTHER_VIEWS = {
    "callback_worklist": """
CREATE VIEW callback_worklist AS
SELECT tenant, day, number, missed_calls, first_missed_at, last_missed_at, last_session
FROM callback_queue
""",
    "open_fraud_alerts": """
CREATE VIEW open_fraud_alerts AS
SELECT id, tenant, rule, severity, subject, window_start, window_end, calls, estimated_cost,
       evidence, detected_at
FROM fraud_alerts WHERE acknowledged_at IS NULL
""",
}


def upgrade() -> None:
    """Create the insight tables, ``fraud_alerts``, ``insight_settings`` and the views."""
    op.create_table(
        "daily_kpis",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("calls", "inbound", "outbound", "internal", "external", "answered", "missed")
        ),
        sa.Column("asr", sa.Float()),
        sa.Column("acd_s", sa.Float()),
        sa.Column("talk_s", sa.Integer(), nullable=False),
        sa.Column("busiest_hour", sa.Integer()),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "busiest_hour_calls",
                "peak_concurrent",
                "peak_concurrent_outbound",
                "after_hours_external",
                "international",
                "callbacks_open",
            )
        ),
        sa.Column("through_run_id", sa.BigInteger()),
        sa.Column("computed_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "day", name="pk_daily_kpis"),
    )
    op.create_table(
        "daily_breakdowns",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("calls", "answered", "missed", "talk_s")
        ),
        sa.Column("avg_ring_s", sa.Float()),
        sa.PrimaryKeyConstraint("tenant", "day", "dimension", "key", name="pk_daily_breakdowns"),
    )
    op.create_table(
        "callback_queue",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("missed_calls", sa.Integer(), nullable=False),
        sa.Column("first_missed_at", UTC, nullable=False),
        sa.Column("last_missed_at", UTC, nullable=False),
        sa.Column("last_session", sa.Text(), nullable=False),
        sa.Column("computed_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "day", "number", name="pk_callback_queue"),
    )
    op.create_table(
        "fraud_alerts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("window_start", UTC, nullable=False),
        sa.Column("window_end", UTC, nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("estimated_cost", sa.Float()),
        sa.Column("detected_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("acknowledged_at", UTC),
        sa.Column("acknowledged_by", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_fraud_alerts"),
        sa.UniqueConstraint(
            "tenant",
            "rule",
            "subject",
            "window_start",
            name="uq_fraud_alerts_tenant_rule_subject_window_start",
        ),
    )
    op.create_index("ix_fraud_alerts_tenant_detected_at", "fraud_alerts", ["tenant", "detected_at"])
    op.create_table(
        "insight_settings",
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant", name="pk_insight_settings"),
    )
    for name, dimension in BREAKDOWN_VIEWS.items():
        column = "number" if dimension == "repeat_caller" else dimension
        op.execute(_BREAKDOWN_VIEW.format(name=name, column=column, dimension=dimension))
    for sql in _OTHER_VIEWS.values():
        op.execute(sql)


def downgrade() -> None:
    """Drop what revision 0009 created."""
    for name in (*BREAKDOWN_VIEWS, *_OTHER_VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index("ix_fraud_alerts_tenant_detected_at", table_name="fraud_alerts")
    for table in ("insight_settings", "fraud_alerts", "callback_queue", "daily_breakdowns", "daily_kpis"):
        op.drop_table(table)
