"""Warnings (预警) with their triage notes, extension requests, reclaim records, reclaim candidates and
L1 pool reviews.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-15
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warnings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("resource", sa.String(63), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("request_id", sa.Integer, nullable=True),
        sa.Column("allocation_id", sa.Integer, nullable=True),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("pool_id", sa.String(64), nullable=False),
        sa.Column("util", sa.Float, nullable=True),
        sa.Column("mem", sa.Float, nullable=True),
        sa.Column("gpu_hours", sa.Float, nullable=False),
        sa.Column("coverage", sa.Float, nullable=False),
        sa.Column("days_in_scope", sa.Integer, nullable=False),
        sa.Column("days_observed", sa.Integer, nullable=False),
        sa.Column("series", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("new_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner_contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_risk_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("resource", "month", "level", name="uq_warnings_resource_month_level"),
    )
    op.create_index("ix_warnings_month", "warnings", ["month"])
    op.create_index("ix_warnings_status", "warnings", ["status"])
    op.create_index("ix_warnings_resource", "warnings", ["resource"])
    op.create_index("ix_warnings_department", "warnings", ["department"])
    op.create_table(
        "warning_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("warning_id", sa.Integer, sa.ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("before", sa.String(24), nullable=True),
        sa.Column("after", sa.String(24), nullable=True),
    )
    op.create_index("ix_warning_notes_warning_id", "warning_notes", ["warning_id"])
    op.create_table(
        "extension_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("allocation_id", sa.Integer, nullable=False),
        sa.Column("requested_by", sa.String(120), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ends_on_before", sa.Date, nullable=False),
        sa.Column("ends_on_after", sa.Date, nullable=True),
        sa.Column("pool_id", sa.String(64), nullable=False),
        sa.Column("pool_free", sa.Integer, nullable=True),
        sa.Column("queue_length", sa.Integer, nullable=True),
        sa.Column("decided_by", sa.String(120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_extension_requests_request_id", "extension_requests", ["request_id"])
    op.create_index("ix_extension_requests_status", "extension_requests", ["status"])
    op.create_table(
        "reclaim_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dedup_key", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_id", sa.Integer, nullable=True),
        sa.Column("allocation_id", sa.Integer, nullable=True),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("cluster", sa.String(64), nullable=False),
        sa.Column("pool_id", sa.String(64), nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("gpu_model", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("plan", sa.String(24), nullable=False),
        sa.Column("release_gpus", sa.Integer, nullable=False),
        sa.Column("voluntary", sa.Boolean, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("approvals", sa.JSON, nullable=False),
        sa.Column("planned", sa.JSON, nullable=False),
        sa.Column("deleted", sa.JSON, nullable=False),
        sa.Column("data_planned", sa.JSON, nullable=False),
        sa.Column("data_deleted", sa.JSON, nullable=False),
        sa.Column("data_due_on", sa.Date, nullable=True),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("executed_by", sa.String(120), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("dedup_key", name="uq_reclaim_records_dedup_key"),
    )
    op.create_index("ix_reclaim_records_kind", "reclaim_records", ["kind"])
    op.create_index("ix_reclaim_records_request_id", "reclaim_records", ["request_id"])
    op.create_index("ix_reclaim_records_status", "reclaim_records", ["status"])
    op.create_index("ix_reclaim_records_department", "reclaim_records", ["department"])
    op.create_table(
        "reclaim_candidates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_id", sa.Integer, nullable=True),
        sa.Column("allocation_id", sa.Integer, nullable=True),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("pool_id", sa.String(64), nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("days_counted", sa.Integer, nullable=False),
        sa.Column("max_peak_util", sa.Float, nullable=True),
        sa.Column("max_peak_mem", sa.Float, nullable=True),
        sa.Column("series", sa.JSON, nullable=False),
        sa.Column("plan", sa.String(24), nullable=True),
        sa.Column("plan_gpus", sa.Integer, nullable=True),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("reclaim_record_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("namespace", "month", name="uq_reclaim_candidates_namespace_month"),
    )
    op.create_index("ix_reclaim_candidates_status", "reclaim_candidates", ["status"])
    op.create_index("ix_reclaim_candidates_month", "reclaim_candidates", ["month"])
    op.create_table(
        "pool_reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pool_id", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("request_id", sa.Integer, nullable=True),
        sa.Column("gpus", sa.Integer, nullable=True),
        sa.Column("target_pool", sa.String(64), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_pool_reviews_pool_id", "pool_reviews", ["pool_id"])
    op.create_index("ix_pool_reviews_month", "pool_reviews", ["month"])


def downgrade() -> None:
    op.drop_index("ix_pool_reviews_pool_id", table_name="pool_reviews")
    op.drop_index("ix_pool_reviews_month", table_name="pool_reviews")
    op.drop_table("pool_reviews")
    op.drop_index("ix_reclaim_candidates_status", table_name="reclaim_candidates")
    op.drop_index("ix_reclaim_candidates_month", table_name="reclaim_candidates")
    op.drop_table("reclaim_candidates")
    op.drop_index("ix_reclaim_records_kind", table_name="reclaim_records")
    op.drop_index("ix_reclaim_records_request_id", table_name="reclaim_records")
    op.drop_index("ix_reclaim_records_status", table_name="reclaim_records")
    op.drop_index("ix_reclaim_records_department", table_name="reclaim_records")
    op.drop_table("reclaim_records")
    op.drop_index("ix_extension_requests_request_id", table_name="extension_requests")
    op.drop_index("ix_extension_requests_status", table_name="extension_requests")
    op.drop_table("extension_requests")
    op.drop_index("ix_warning_notes_warning_id", table_name="warning_notes")
    op.drop_table("warning_notes")
    op.drop_index("ix_warnings_month", table_name="warnings")
    op.drop_index("ix_warnings_status", table_name="warnings")
    op.drop_index("ix_warnings_resource", table_name="warnings")
    op.drop_index("ix_warnings_department", table_name="warnings")
    op.drop_table("warnings")
