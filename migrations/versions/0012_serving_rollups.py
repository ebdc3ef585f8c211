"""Daily rollups of the services' request figures (one row per day × cluster × namespace): requests,
covered seconds, peak QPS, latency sum and count and the latency histogram's cumulative bucket
counts per ``le`` (JSON), read by the monthly inference usage sheet (core/metrics/serving_rollup.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-15
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_daily_rollups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("cluster", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("requests", sa.Float, nullable=False),
        sa.Column("covered_s", sa.Float, nullable=False),
        sa.Column("window_s", sa.Float, nullable=False),
        sa.Column("coverage", sa.Float, nullable=False),
        sa.Column("qps_peak", sa.Float, nullable=True),
        sa.Column("latency_sum_s", sa.Float, nullable=True),
        sa.Column("latency_count", sa.Float, nullable=True),
        sa.Column("buckets", sa.JSON, nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("day", "cluster", "namespace", name="uq_serving_daily_rollups_day_cluster_namespace"),
    )
    op.create_index("ix_serving_daily_rollups_day", "serving_daily_rollups", ["day"])
    op.create_index("ix_serving_daily_rollups_namespace_day", "serving_daily_rollups", ["namespace", "day"])


def downgrade() -> None:
    op.drop_index("ix_serving_daily_rollups_namespace_day", table_name="serving_daily_rollups")
    op.drop_index("ix_serving_daily_rollups_day", table_name="serving_daily_rollups")
    op.drop_table("serving_daily_rollups")
