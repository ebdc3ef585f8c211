"""An index on the daily GPU rollups' ``computed_at``: the water level's trend is cached under the
newest rollup (``core.metrics.persistence.newest_rollup``), which must be one index lookup on a
table of millions of rows. The newest id alone does not do: SQLite reuses the ids of a day that is
rolled up again when it was the last one stored.

An index only; downgrade drops it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_gpu_daily_rollups_computed_at", "gpu_daily_rollups", ["computed_at"])


def downgrade() -> None:
    op.drop_index("ix_gpu_daily_rollups_computed_at", table_name="gpu_daily_rollups")
