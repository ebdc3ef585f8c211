"""The pool each adjustment record is about, as an indexed column, so the record can be filtered by
pool in the database (it was derived from the record's JSON on the page, from the newest rows only).

Existing rows are filled in with the same rule the code uses (core/adjust/persistence.py
``pool_of``): a ``pool:`` subject, else ``pool`` in after, else in before.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _pool(subject: str, before, after):
    if (subject or "").startswith("pool:"):
        return subject[len("pool:"):]
    for side in (after, before):
        if isinstance(side, str):
            side = json.loads(side)
        if isinstance(side, dict) and side.get("pool"):
            return str(side["pool"])
    return None


def upgrade() -> None:
    with op.batch_alter_table("adjustments") as batch:
        batch.add_column(sa.Column("pool", sa.String(64), nullable=True))
        batch.create_index("ix_adjustments_pool", ["pool"])
    table = sa.table("adjustments", sa.column("id", sa.Integer), sa.column("subject", sa.String),
                     sa.column("before", sa.JSON), sa.column("after", sa.JSON), sa.column("pool", sa.String))
    bind = op.get_bind()
    rows = bind.execute(sa.select(table.c.id, table.c.subject, table.c.before, table.c.after)).all()
    updates = [{"row_id": r.id, "pool": p} for r in rows if (p := _pool(r.subject, r.before, r.after))]
    if updates:
        bind.execute(table.update().where(table.c.id == sa.bindparam("row_id")).values(pool=sa.bindparam("pool")),
                     updates)


def downgrade() -> None:
    with op.batch_alter_table("adjustments") as batch:
        batch.drop_index("ix_adjustments_pool")
        batch.drop_column("pool")
