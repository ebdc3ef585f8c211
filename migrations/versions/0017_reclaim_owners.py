"""Warnings and reclaim candidates say who owned the namespace in the month (issue 10: warnings
and candidates with owners): ``owner_source`` (allocation | team_mapping | none) on both, and the
province (``unit``) on candidates too, indexed on both for the provincial ops' scope.

Existing rows: a warning or candidate that names an allocation was owned by it ("allocation");
a candidate's province is its request's unit. Others stay "none" (no owner): the next run of the
daily job fills in an owner found since (core/reclaim/warning_service.py).
Downgrade: the columns and indexes go.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # columns with a server default are added in place (SQLite too); indexes need no table copy
    op.add_column("warnings", sa.Column("owner_source", sa.String(16), nullable=False, server_default="none"))
    op.create_index("ix_warnings_unit", "warnings", ["unit"])
    op.add_column("reclaim_candidates", sa.Column("owner_source", sa.String(16), nullable=False, server_default="none"))
    op.add_column("reclaim_candidates", sa.Column("unit", sa.String(16), nullable=False, server_default=""))
    op.create_index("ix_reclaim_candidates_unit", "reclaim_candidates", ["unit"])
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE warnings SET owner_source = 'allocation' WHERE allocation_id IS NOT NULL"))
    bind.execute(sa.text("UPDATE reclaim_candidates SET owner_source = 'allocation' WHERE allocation_id IS NOT NULL"))
    bind.execute(sa.text("UPDATE reclaim_candidates SET unit = COALESCE((SELECT requests.unit FROM requests "
                         "WHERE requests.id = reclaim_candidates.request_id), '')"))


def downgrade() -> None:
    # In place, SQLite too (3.35+ drops unindexed columns): a batch rebuild drops the table, and with
    # foreign keys on, SQLite would delete the rows that refer to it (a warning's notes).
    op.drop_index("ix_reclaim_candidates_unit", table_name="reclaim_candidates")
    op.drop_column("reclaim_candidates", "unit")
    op.drop_column("reclaim_candidates", "owner_source")
    op.drop_index("ix_warnings_unit", table_name="warnings")
    op.drop_column("warnings", "owner_source")
