"""Dynamic adjustment: the adjustment record (ITSM/CMDB) and dual-threshold autoscaling policies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adjustments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("automatic", sa.Boolean, nullable=False),
    )
    op.create_index("ix_adjustments_at", "adjustments", ["at"])
    op.create_index("ix_adjustments_actor", "adjustments", ["actor"])
    op.create_index("ix_adjustments_kind", "adjustments", ["kind"])
    op.create_index("ix_adjustments_subject", "adjustments", ["subject"])
    op.create_table(
        "scaling_policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("deployment", sa.String(253), nullable=False),
        sa.Column("min_replicas", sa.Integer, nullable=False),
        sa.Column("max_replicas", sa.Integer, nullable=False),
        sa.Column("gpus_per_replica", sa.Integer, nullable=False),
        sa.Column("util_high", sa.Float, nullable=False),
        sa.Column("util_low", sa.Float, nullable=False),
        sa.Column("mem_high", sa.Float, nullable=False),
        sa.Column("sustain_s", sa.Integer, nullable=False),
        sa.Column("scale_up_window_s", sa.Integer, nullable=False),
        sa.Column("scale_down_window_s", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String(120), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("namespace", "deployment", name="uq_scaling_policies_namespace_deployment"),
    )


def downgrade() -> None:
    op.drop_table("scaling_policies")
    for name in ("subject", "kind", "actor", "at"):
        op.drop_index(f"ix_adjustments_{name}", table_name="adjustments")
    op.drop_table("adjustments")
