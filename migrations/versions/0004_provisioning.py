"""Provisioning results on allocations (the allocation sheet) and green-channel fields on requests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ALLOCATION_COLUMNS = (
    ("namespace", sa.String(63)),
    ("cluster", sa.String(64)),
    ("backend", sa.String(16)),
    ("gpu_model", sa.String(64)),
    ("cpu", sa.Float),
    ("memory_gi", sa.Integer),
    ("storage_gi", sa.Integer),
    ("pvcs", sa.JSON),
    ("jupyter_url", sa.String(500)),
    ("manifests_yaml", sa.Text),
    ("kubeconfig", sa.Text),
    ("steps", sa.JSON),
    ("failed_step", sa.String(200)),
    ("error", sa.JSON),
    ("provisioned_at", sa.DateTime(timezone=True)),
    ("preempted_by", sa.Integer),
)
REQUEST_COLUMNS = (
    ("emergency_category", sa.String(40)),
    ("emergency_plan", sa.JSON),
    ("review_due", sa.Date),
    ("reviewed_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    # Nullable columns (and ones with a constant server default) can be added in place on SQLite
    # too, so no table copy is needed on the way up.
    for name, type_ in ALLOCATION_COLUMNS:
        op.add_column("allocations", sa.Column(name, type_, nullable=True))
    op.add_column("allocations", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    for name, type_ in REQUEST_COLUMNS:
        op.add_column("requests", sa.Column(name, type_, nullable=True))
    op.add_column("requests", sa.Column("justification", sa.Text, nullable=False, server_default=""))
    op.create_index("ix_requests_emergency_category", "requests", ["emergency_category"])


def downgrade() -> None:
    op.drop_index("ix_requests_emergency_category", table_name="requests")
    # batch mode: SQLite rebuilds the table to drop columns
    with op.batch_alter_table("requests") as batch:
        for name, _ in REQUEST_COLUMNS:
            batch.drop_column(name)
        batch.drop_column("justification")
    with op.batch_alter_table("allocations") as batch:
        for name, _ in ALLOCATION_COLUMNS:
            batch.drop_column(name)
        batch.drop_column("attempts")
