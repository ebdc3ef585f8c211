"""Daily CPU rollups per namespace (one row per day × cluster × namespace): core-seconds used,
covered seconds, peak cores used and core-seconds requested, read by the monthly report's top list
by CPU utilisation (core/metrics/cpu.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cpu_daily_rollups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("cluster", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("cpu_core_s", sa.Float, nullable=False),
        sa.Column("covered_s", sa.Float, nullable=False),
        sa.Column("window_s", sa.Float, nullable=False),
        sa.Column("coverage", sa.Float, nullable=False),
        sa.Column("cores_used_peak", sa.Float, nullable=True),
        sa.Column("requested_core_s", sa.Float, nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("day", "cluster", "namespace", name="uq_cpu_daily_rollups_day_cluster_namespace"),
    )
    op.create_index("ix_cpu_daily_rollups_day", "cpu_daily_rollups", ["day"])
    op.create_index("ix_cpu_daily_rollups_namespace_day", "cpu_daily_rollups", ["namespace", "day"])


def downgrade() -> None:
    op.drop_index("ix_cpu_daily_rollups_namespace_day", table_name="cpu_daily_rollups")
    op.drop_index("ix_cpu_daily_rollups_day", table_name="cpu_daily_rollups")
    op.drop_table("cpu_daily_rollups")
