"""Requests remember the submission token of the form they came from (issue 10: submit once).

The Apply page creates a token when its form is (re)started and sends it with every submission;
a unique index on (applicant, token) makes a double click or a resubmission of the same form find
the first request instead of creating a second, even when both arrive at once. Existing requests
have no token (NULL: never equal to another, so they do not collide).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

INDEX = "uq_requests_created_by_idempotency_key"


def upgrade() -> None:
    # a nullable column is added in place (SQLite too); a unique index needs no table copy either
    op.add_column("requests", sa.Column("idempotency_key", sa.String(64), nullable=True))
    op.create_index(INDEX, "requests", ["created_by", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="requests")
    # In place, SQLite too (3.35+ drops an unindexed column): a batch rebuild of `requests` would
    # drop the table, and with foreign keys on, SQLite deletes the allocations that refer to it.
    op.drop_column("requests", "idempotency_key")
