"""Automatic adjustment records: what the queue and the autoscalers looked like when last observed.

``queue_positions`` holds each waiting request's last recorded place, so the queue snapshot job
records only the requests whose place changed; ``autoscaler_observations`` holds each
HorizontalPodAutoscaler's last seen replicas, so the autoscaler job records each scale once.
``adjustment_watches`` has one row per job, updated first in the job's transaction so two runs of
the same job (cron overlap) take turns instead of recording the same change twice.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-14
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    watches = op.create_table(
        "adjustment_watches",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.bulk_insert(watches, [{"name": "queue_snapshot", "last_run_at": None},
                             {"name": "autoscaler_events", "last_run_at": None}])
    op.create_table(
        "queue_positions",
        sa.Column("request_id", sa.Integer, sa.ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("pool_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("pool_position", sa.Integer, nullable=False),
        sa.Column("effective", sa.Float, nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "autoscaler_observations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("cluster", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("target_kind", sa.String(64), nullable=False),
        sa.Column("target_name", sa.String(253), nullable=False),
        sa.Column("current_replicas", sa.Integer, nullable=True),
        sa.Column("desired_replicas", sa.Integer, nullable=True),
        sa.Column("last_scale_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("cluster", "namespace", "name", name="uq_autoscaler_observations_hpa"),
    )


def downgrade() -> None:
    op.drop_table("autoscaler_observations")
    op.drop_table("queue_positions")
    op.drop_table("adjustment_watches")
