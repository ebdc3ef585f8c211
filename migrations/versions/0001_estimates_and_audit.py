"""Saved estimates, their recorded outcomes, and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "estimates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("gpu_id", sa.String(64), nullable=False),
        sa.Column("workload", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("department", sa.String(120), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("estimated_gpu_hours", sa.Float, nullable=True),
        sa.Column("estimated_wall_clock_hours", sa.Float, nullable=True),
    )
    op.create_table(
        "estimate_outcomes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("estimate_id", sa.Integer, sa.ForeignKey("estimates.id", ondelete="CASCADE"), nullable=False),
        sa.Column("actual_gpu_hours", sa.Float, nullable=False),
        sa.Column("actual_wall_clock_hours", sa.Float, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("recorded_by", sa.String(120), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_estimate_outcomes_estimate_id", "estimate_outcomes", ["estimate_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(120), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_subject", "audit_events", ["subject"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("estimate_outcomes")
    op.drop_table("estimates")
