"""The ``reports`` table: drafts and published, immutable report snapshots.

A published row is never updated nor deleted: the service refuses it, an ORM hook refuses it,
and the migration installs a database trigger that refuses it (so even raw SQL cannot change a
published snapshot). A correction is a new row (next version) that names the one it supersedes
and carries the reason.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models import Base
from core.errors import ComputeLoopError

REPORT_STATUSES = ("draft", "published")


class PublishedReportImmutable(ComputeLoopError):
    """Something tried to change or delete a published report."""


class ReportRow(Base):
    """One version of the report of a month and scope."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("month", "scope", "version", name="uq_reports_month_scope_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # draft | published
    deidentified: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot: Mapped[dict] = mapped_column(JSON)
    coverage: Mapped[float | None] = mapped_column(Float, nullable=True)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    built_by: Mapped[str] = mapped_column(String(120))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    correction_reason: Mapped[str] = mapped_column(Text, default="")
    supersedes: Mapped[int | None] = mapped_column(Integer, nullable=True)


@event.listens_for(ReportRow, "before_update")
def _refuse_update_of_published(_mapper, _connection, target: ReportRow) -> None:  # noqa: ANN001
    from sqlalchemy import inspect

    history = inspect(target).attrs.status.history
    before = history.deleted[0] if history.deleted else target.status
    if before == "published":
        raise PublishedReportImmutable("reports.immutable", id=target.id)


@event.listens_for(ReportRow, "before_delete")
def _refuse_delete_of_published(_mapper, _connection, target: ReportRow) -> None:  # noqa: ANN001
    if target.status == "published":
        raise PublishedReportImmutable("reports.immutable", id=target.id)
