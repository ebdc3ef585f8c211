"""Provincial ops work in two levels (省侧 L1/L2): L1 claims and does the initial review (初审),
L2 does the in-depth feasibility assessment. The single provincial step of earlier requests was
the assessment, so it becomes the L2 step.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE request_approvals SET role = 'prov_ops_l2' WHERE role = 'prov_ops'")


def downgrade() -> None:
    op.execute("UPDATE request_approvals SET role = 'prov_ops' WHERE role IN ('prov_ops_l1', 'prov_ops_l2')")
