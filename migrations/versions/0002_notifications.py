"""Notification outbox (exactly-once delivery) and in-app inbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dedup_key", sa.String(200), nullable=False, unique=True),
        sa.Column("recipient_id", sa.String(120), nullable=False),
        sa.Column("recipient_email", sa.String(200), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("template", sa.String(80), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_notification_outbox_recipient_id", "notification_outbox", ["recipient_id"])
    op.create_index("ix_notification_outbox_status", "notification_outbox", ["status"])
    op.create_table(
        "notification_inbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("outbox_id", sa.Integer, sa.ForeignKey("notification_outbox.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("recipient_id", sa.String(120), nullable=False),
        sa.Column("template", sa.String(80), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_notification_inbox_recipient_id", "notification_inbox", ["recipient_id"])


def downgrade() -> None:
    op.drop_table("notification_inbox")
    op.drop_table("notification_outbox")
