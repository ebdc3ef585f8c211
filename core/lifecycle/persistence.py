"""Table mappings of the lifecycle: requests, their approval steps, allocations, pool capacity.

Declared on :class:`core.db.models.Base` (one metadata); the schema itself is built by
``migrations/versions/0003_lifecycle.py``, ``0004_provisioning.py`` (provisioning results on
allocations, green-channel fields on requests) and ``0016_request_submission_tokens.py``. Domain
modules never import this file.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.types import SealedText
from core.db.models import Base
from core.lifecycle.allocations import HELD, STATUSES as ALLOCATION_STATUSES
from core.lifecycle.states import STATUSES


class RequestRow(Base):
    """A resource application (资源申请单) with its intake form, pre-check results and status."""

    __tablename__ = "requests"
    # One request per submission token of an applicant: a double click or a resubmission of the same
    # form finds the first request (migrations/versions/0016_request_submission_tokens.py).
    __table_args__ = (Index("uq_requests_created_by_idempotency_key", "created_by", "idempotency_key", unique=True),)

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
    # the token the Apply page creates when its form is (re)started; None for drafts and CLI submissions
    idempotency_key: Mapped[str | None] = mapped_column(String(64), nullable=True)

    # green channel (绿色通道): category of data/green_channel.yaml, the justification, the plan the
    # approval executed, and the post-emergency review
    emergency_category: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    justification: Mapped[str] = mapped_column(Text, default="")
    emergency_plan: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    review_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

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

    # selectin: lists of requests load every request's steps in one extra query, not one per request.
    steps: Mapped[list["ApprovalStepRow"]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="ApprovalStepRow.seq", lazy="selectin")

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
    """GPUs of a pool granted to a request (scheduled until its start date, then holding while
    approved, provisioning, failed or active), and what provisioning put on the cluster (the
    allocation sheet, 算力资源分配清单)."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), unique=True)
    pool_id: Mapped[str] = mapped_column(String(64), index=True)
    gpus: Mapped[int] = mapped_column(Integer)
    # core.lifecycle.allocations.STATUSES, changed only through its transition table (allocations.move)
    status: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # provisioning (written by core.lifecycle.provisioning)
    namespace: Mapped[str | None] = mapped_column(String(63), nullable=True)
    cluster: Mapped[str | None] = mapped_column(String(64), nullable=True)
    backend: Mapped[str | None] = mapped_column(String(16), nullable=True)
    gpu_model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cpu: Mapped[float | None] = mapped_column(Float, nullable=True)
    memory_gi: Mapped[int | None] = mapped_column(Integer, nullable=True)
    storage_gi: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pvcs: Mapped[list | None] = mapped_column(JSON, nullable=True)  # [{"name", "size_gi"}]
    jupyter_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    manifests_yaml: Mapped[str | None] = mapped_column(Text, nullable=True)
    kubeconfig: Mapped[str | None] = mapped_column(SealedText, nullable=True)  # a live token: sealed (core.tokens)
    steps: Mapped[list | None] = mapped_column(JSON, nullable=True)  # [{"step", "status", "error"}]
    failed_step: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # {"key", "params"}
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provisioned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the green-channel request whose approval preempted this allocation
    preempted_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PoolCapacityRow(Base):
    """GPUs of a pool booked by allocations that are not released (scheduled ones included), and the
    lock every grant of the pool takes: updated under a row lock plus an optimistic version."""

    __tablename__ = "pool_capacity"

    pool_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    allocated_gpus: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)


# Allocation statuses that hold GPUs of their pool now (core.lifecycle.allocations.HELD). A failed
# provisioning keeps them: the approval stands and a retry finishes the job.
HOLDING_ALLOCATION = tuple(s for s in ALLOCATION_STATUSES if s in HELD)
