"""Allocations get the status "scheduled": approved, waiting for a start date that is still ahead
(issue 11: nothing is provisioned before the start date, and the GPUs count against the pool from
that date, not from the approval). Allocation statuses follow one transition table
(core/lifecycle/allocations.py); the column is a string, so the schema itself does not change.

Existing rows: an allocation still "approved" whose start date is ahead (its automatic
provisioning never ran) becomes "scheduled", so the daily job provisions it on its start date.
The pool_capacity rows already count it (they count every allocation that is not released).
Downgrade: "scheduled" back to "approved".

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

from core.clock import utc_today

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().execute(sa.text("UPDATE allocations SET status = 'scheduled' "
                                  "WHERE status = 'approved' AND starts_on > :today"), {"today": utc_today()})


def downgrade() -> None:
    op.get_bind().execute(sa.text("UPDATE allocations SET status = 'approved' WHERE status = 'scheduled'"))
