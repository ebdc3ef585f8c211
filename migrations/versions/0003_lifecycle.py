"""Resource applications, their approval steps, allocations and per-pool capacity.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUSES = (
    "draft", "submitted", "in_review", "queued", "approved", "adjusted", "rejected", "provisioning",
    "provisioning_failed", "active", "expiring", "extended", "reclaimed", "returned", "cancelled",
)


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.String(24), nullable=True, unique=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_by_email", sa.String(200), nullable=False, server_default=""),
        sa.Column("department", sa.String(64), nullable=False, server_default=""),
        sa.Column("unit", sa.String(16), nullable=False, server_default=""),
        sa.Column("project", sa.String(64), nullable=False, server_default=""),
        sa.Column("demand_type", sa.String(16), nullable=False, server_default=""),
        sa.Column("demand_subtype", sa.String(24), nullable=False, server_default=""),
        sa.Column("pool_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("requested_gpus", sa.Integer, nullable=False, server_default="0"),
        sa.Column("duration_days", sa.Integer, nullable=False, server_default="0"),
        sa.Column("start_date", sa.Date, nullable=True),
        sa.Column("approved_gpus", sa.Integer, nullable=True),
        sa.Column("approved_days", sa.Integer, nullable=True),
        sa.Column("priority", sa.String(16), nullable=False, server_default="normal"),
        sa.Column("estimate_id", sa.Integer, sa.ForeignKey("estimates.id", ondelete="SET NULL"), nullable=True),
        sa.Column("form", sa.JSON, nullable=False),
        sa.Column("flags", sa.JSON, nullable=False),
        sa.Column("capacity", sa.JSON, nullable=True),
        sa.Column("tier", sa.String(40), nullable=False, server_default=""),
        sa.Column("tier_message", sa.JSON, nullable=True),
        sa.Column("expected_review_working_days", sa.Integer, nullable=True),
        sa.Column("claim_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(120), nullable=True),
        sa.Column("decision", sa.String(24), nullable=False, server_default=""),
        sa.Column("decision_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        *[sa.Column(f"{s}_at", sa.DateTime(timezone=True), nullable=True) for s in STATUSES],
    )
    op.create_index("ix_requests_status", "requests", ["status"])
    op.create_index("ix_requests_created_by", "requests", ["created_by"])
    op.create_index("ix_requests_department", "requests", ["department"])
    op.create_index("ix_requests_unit", "requests", ["unit"])
    op.create_index("ix_requests_pool_id", "requests", ["pool_id"])
    op.create_table(
        "request_approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("decided_by", sa.String(120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("adjusted_gpus", sa.Integer, nullable=True),
        sa.Column("adjusted_days", sa.Integer, nullable=True),
        sa.UniqueConstraint("request_id", "seq", name="uq_request_approvals_request_seq"),
    )
    op.create_index("ix_request_approvals_request_id", "request_approvals", ["request_id"])
    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("requests.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("pool_id", sa.String(64), nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False, server_default="normal"),
        sa.Column("starts_on", sa.Date, nullable=True),
        sa.Column("ends_on", sa.Date, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_allocations_pool_id", "allocations", ["pool_id"])
    op.create_index("ix_allocations_status", "allocations", ["status"])
    op.create_table(
        "pool_capacity",
        sa.Column("pool_id", sa.String(64), primary_key=True),
        sa.Column("allocated_gpus", sa.Integer, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("pool_capacity")
    op.drop_table("allocations")
    op.drop_table("request_approvals")
    op.drop_table("requests")
