"""Training results (训练结果): the evaluation outcome of a training run, recorded by the owner of the
training allocation, for the report's time–quality–energy of typical training jobs.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run", sa.String(120), nullable=False),
        sa.Column("metric", sa.String(80), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("higher_is_better", sa.Boolean, nullable=False),
        sa.Column("dataset", sa.String(120), nullable=False),
        sa.Column("baseline", sa.Float, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.String(120), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_training_results_request_id", "training_results", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_training_results_request_id", table_name="training_results")
    op.drop_table("training_results")
