"""Emergency resource support requests between provinces and HQ (issue 15: 两级协同扩容,
紧急资源支援请求): a province's request for GPUs, HQ's decision with the donor pool and window,
and the push of the scheduler queues' sizes to the clusters.

A new table only; downgrade drops it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-09
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "support_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("pool_id", sa.String(64), nullable=False),
        sa.Column("gpu_model", sa.String(64), nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("deployment", sa.String(253), nullable=False),
        sa.Column("raised_by", sa.String(120), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("donor_pool_id", sa.String(64), nullable=True),
        sa.Column("donor_unit", sa.String(16), nullable=True),
        sa.Column("decided_by", sa.String(120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_by", sa.String(120), nullable=True),
        sa.Column("cluster_result", sa.JSON, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    for column in ("status", "unit", "pool_id", "raised_by", "donor_pool_id", "donor_unit"):
        op.create_index(f"ix_support_requests_{column}", "support_requests", [column])


def downgrade() -> None:
    op.drop_table("support_requests")
