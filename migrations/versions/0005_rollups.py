"""Daily GPU usage rollups (one row per day × GPU × namespace), read by monthly boards and reclaim.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gpu_daily_rollups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("cluster", sa.String(64), nullable=False),
        sa.Column("hostname", sa.String(253), nullable=False),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("mean_util", sa.Float, nullable=True),
        sa.Column("peak_util", sa.Float, nullable=True),
        sa.Column("mean_mem", sa.Float, nullable=True),
        sa.Column("peak_mem", sa.Float, nullable=True),
        sa.Column("allocated_gpu_hours", sa.Float, nullable=False),
        sa.Column("used_gpu_hours", sa.Float, nullable=False),
        sa.Column("energy_kwh", sa.Float, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("expected_samples", sa.Integer, nullable=False),
        sa.Column("coverage", sa.Float, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("day", "uuid", "namespace", name="uq_gpu_daily_rollups_day_uuid_namespace"),
    )
    op.create_index("ix_gpu_daily_rollups_day", "gpu_daily_rollups", ["day"])
    op.create_index("ix_gpu_daily_rollups_namespace_day", "gpu_daily_rollups", ["namespace", "day"])


def downgrade() -> None:
    op.drop_index("ix_gpu_daily_rollups_namespace_day", table_name="gpu_daily_rollups")
    op.drop_index("ix_gpu_daily_rollups_day", table_name="gpu_daily_rollups")
    op.drop_table("gpu_daily_rollups")
