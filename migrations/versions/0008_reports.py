"""Monthly transparency reports (算力资源晾晒报告): drafts and immutable published snapshots.

A trigger refuses any UPDATE or DELETE of a published row, on PostgreSQL and SQLite alike.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deidentified", sa.Boolean, nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("coverage", sa.Float, nullable=True),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("built_by", sa.String(120), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(120), nullable=True),
        sa.Column("correction_reason", sa.Text, nullable=False),
        sa.Column("supersedes", sa.Integer, nullable=True),
        sa.UniqueConstraint("month", "scope", "version", name="uq_reports_month_scope_version"),
    )
    op.create_index("ix_reports_month", "reports", ["month"])
    op.create_index("ix_reports_status", "reports", ["status"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE OR REPLACE FUNCTION reports_published_immutable() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'published report % is immutable', OLD.id;
            END;
            $$ LANGUAGE plpgsql
        """)
        op.execute("""
            CREATE TRIGGER reports_published_immutable BEFORE UPDATE OR DELETE ON reports
            FOR EACH ROW WHEN (OLD.status = 'published') EXECUTE FUNCTION reports_published_immutable()
        """)
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER reports_published_immutable_{verb.lower()} BEFORE {verb} ON reports
                FOR EACH ROW WHEN OLD.status = 'published'
                BEGIN SELECT RAISE(ABORT, 'published report is immutable'); END
            """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS reports_published_immutable ON reports")
        op.execute("DROP FUNCTION IF EXISTS reports_published_immutable()")
    op.drop_index("ix_reports_status", table_name="reports")
    op.drop_index("ix_reports_month", table_name="reports")
    op.drop_table("reports")
