"""Table mappings of the lifecycle: requests, their approval steps, allocations, pool capacity.

Declared on :class:`core.db.models.Base` (one metadata); the schema itself is built by
``migrations/versions/0003_lifecycle.py``. Domain modules never import this file.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.models import Base
from core.lifecycle.states import STATUSES


class RequestRow(Base):
    """A resource application (资源申请单) with its intake form, pre-check results and status."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(24), unique=True, nullable=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    created_by: Mapped[str] = mapped_column(String(120), index=True)
    created_by_email: Mapped[str] = mapped_column(String(200), default="")
    department: Mapped[str] = mapped_column(String(64), index=True, default="")
    unit: Mapped[str] = mapped_column(String(16), index=True, default="")
    project: Mapped[str] = mapped_column(String(64), default="")
    demand_type: Mapped[str] = mapped_column(String(16), default="")
    demand_subtype: Mapped[str] = mapped_column(String(24), default="")
    pool_id: Mapped[str] = mapped_column(String(64), index=True, default="")
    requested_gpus: Mapped[int] = mapped_column(Integer, default=0)
    duration_days: Mapped[int] = mapped_column(Integer, default=0)
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    approved_gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approved_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    estimate_id: Mapped[int | None] = mapped_column(ForeignKey("estimates.id", ondelete="SET NULL"), nullable=True)
    form: Mapped[dict] = mapped_column(JSON)
    flags: Mapped[list] = mapped_column(JSON, default=list)
    capacity: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    tier: Mapped[str] = mapped_column(String(40), default="")
    tier_message: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    expected_review_working_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claim_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    decision: Mapped[str] = mapped_column(String(24), default="")
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)

    # one timestamp per status
    draft_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    in_review_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    adjusted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rejected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    provisioning_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    provisioning_failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expiring_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    extended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reclaimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    returned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    steps: Mapped[list["ApprovalStepRow"]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="ApprovalStepRow.seq")

    # A concurrent update of the same request fails (StaleDataError) instead of overwriting.
    __mapper_args__ = {"version_id_col": version}


assert all(hasattr(RequestRow, f"{s}_at") for s in STATUSES), "one timestamp column per status"


class ApprovalStepRow(Base):
    """One approval step of a request: the role that must approve, and what it decided."""

    __tablename__ = "request_approvals"
    __table_args__ = (UniqueConstraint("request_id", "seq", name="uq_request_approvals_request_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|adjusted|rejected
    decided_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    adjusted_gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    adjusted_days: Mapped[int | None] = mapped_column(Integer, nullable=True)

    request: Mapped[RequestRow] = relationship(back_populates="steps")


class AllocationRow(Base):
    """GPUs of a pool granted to a request (holding while approved, provisioning or active)."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), unique=True)
    pool_id: Mapped[str] = mapped_column(String(64), index=True)
    gpus: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # approved|provisioning|active|released
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PoolCapacityRow(Base):
    """GPUs of a pool held by allocations; updated under a row lock plus an optimistic version."""

    __tablename__ = "pool_capacity"

    pool_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    allocated_gpus: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)


HOLDING_ALLOCATION = ("approved", "provisioning", "active")
