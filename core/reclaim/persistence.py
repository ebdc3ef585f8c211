"""Table mappings of warnings and reclaim (built by ``migrations/versions/0007_warnings_reclaim.py``;
who owned the namespace — ``owner_source``, the candidates' ``unit`` — by ``0016_reclaim_owners.py``).

Domain modules (:mod:`core.reclaim.warnings`, :mod:`core.reclaim.candidates`,
:mod:`core.reclaim.states`) never import this file.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models import Base
from core.reclaim.states import TRIAGE_STATUSES


class WarningRow(Base):
    """A utilisation warning of one resource (namespace) and month; never raised twice per level."""

    __tablename__ = "warnings"
    __table_args__ = (UniqueConstraint("resource", "month", "level", name="uq_warnings_resource_month_level"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource: Mapped[str] = mapped_column(String(63), index=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    level: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24), index=True)
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    allocation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # who owned the namespace in the month (core.reclaim.ownership): allocation | team_mapping | none
    owner_source: Mapped[str] = mapped_column(String(16), default="none")
    owner: Mapped[str] = mapped_column(String(120), default="")
    department: Mapped[str] = mapped_column(String(64), index=True, default="")
    unit: Mapped[str] = mapped_column(String(16), index=True, default="")  # the province (or HQ)
    pool_id: Mapped[str] = mapped_column(String(64), default="")
    util: Mapped[float | None] = mapped_column(Float, nullable=True)
    mem: Mapped[float | None] = mapped_column(Float, nullable=True)
    gpu_hours: Mapped[float] = mapped_column(Float, default=0.0)
    coverage: Mapped[float] = mapped_column(Float, default=0.0)
    days_in_scope: Mapped[int] = mapped_column(Integer, default=0)
    days_observed: Mapped[int] = mapped_column(Integer, default=0)
    series: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # one timestamp per triage status
    new_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    owner_contacted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    accepted_risk_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


assert all(hasattr(WarningRow, f"{s}_at") for s in TRIAGE_STATUSES), "one timestamp column per triage status"


class WarningNoteRow(Base):
    """A step of a warning's triage (with its note), an ops note, or the owner's reply."""

    __tablename__ = "warning_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))  # transition | reply
    text: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[str | None] = mapped_column(String(24), nullable=True)
    after: Mapped[str | None] = mapped_column(String(24), nullable=True)


class ExtensionRequestRow(Base):
    """An extension request (延期申请) of an expiring allocation and its decision."""

    __tablename__ = "extension_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    allocation_id: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(120))
    department: Mapped[str] = mapped_column(String(64), default="")
    days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending|approved|refused|withdrawn
    ends_on_before: Mapped[date] = mapped_column(Date)
    ends_on_after: Mapped[date | None] = mapped_column(Date, nullable=True)
    pool_id: Mapped[str] = mapped_column(String(64), default="")
    pool_free: Mapped[int | None] = mapped_column(Integer, nullable=True)
    queue_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReclaimRecordRow(Base):
    """A reclaim record (回收清单): what was planned (dry run), approved, released and deleted."""

    __tablename__ = "reclaim_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # expiry|return|candidate|pool_review|forced
    status: Mapped[str] = mapped_column(String(16), index=True)  # planned|data_pending|completed|cancelled
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    allocation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    namespace: Mapped[str] = mapped_column(String(63), default="")
    cluster: Mapped[str] = mapped_column(String(64), default="")
    pool_id: Mapped[str] = mapped_column(String(64), default="")
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    gpu_model: Mapped[str] = mapped_column(String(64), default="")
    owner: Mapped[str] = mapped_column(String(120), default="")
    department: Mapped[str] = mapped_column(String(64), index=True, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    plan: Mapped[str] = mapped_column(String(24), default="")  # remove|scale_down|move_smaller_gpu
    release_gpus: Mapped[int] = mapped_column(Integer, default=0)
    voluntary: Mapped[bool] = mapped_column(Boolean, default=False)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    approvals: Mapped[list] = mapped_column(JSON, default=list)  # [{"actor", "at", "note"}]
    planned: Mapped[list] = mapped_column(JSON, default=list)  # refs deleted at execution (dry run)
    deleted: Mapped[list] = mapped_column(JSON, default=list)
    data_planned: Mapped[list] = mapped_column(JSON, default=list)  # PVCs + namespace, after retention
    data_deleted: Mapped[list] = mapped_column(JSON, default=list)
    data_due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    backend: Mapped[str] = mapped_column(String(16), default="")
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    executed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    executed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReclaimCandidateRow(Base):
    """An inference service detected as a reclaim candidate (待回收候选) for a month."""

    __tablename__ = "reclaim_candidates"
    __table_args__ = (UniqueConstraint("namespace", "month", name="uq_reclaim_candidates_namespace_month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63))
    month: Mapped[str] = mapped_column(String(7), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    allocation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner_source: Mapped[str] = mapped_column(String(16), default="none")  # as on warnings
    owner: Mapped[str] = mapped_column(String(120), default="")
    department: Mapped[str] = mapped_column(String(64), default="")
    unit: Mapped[str] = mapped_column(String(16), index=True, default="")  # the province (or HQ)
    pool_id: Mapped[str] = mapped_column(String(64), default="")
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    days_counted: Mapped[int] = mapped_column(Integer, default=0)
    max_peak_util: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_peak_mem: Mapped[float | None] = mapped_column(Float, nullable=True)
    series: Mapped[list] = mapped_column(JSON, default=list)
    plan: Mapped[str | None] = mapped_column(String(24), nullable=True)
    plan_gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    notes: Mapped[list] = mapped_column(JSON, default=list)  # [{"at", "actor", "from", "to", "note"}]
    reclaim_record_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PoolReviewRow(Base):
    """A monthly L1 pool review entry: a progress note, or a proposal of partial reclaim/transfer."""

    __tablename__ = "pool_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[str] = mapped_column(String(64), index=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # note|partial_reclaim|transfer
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target_pool: Mapped[str | None] = mapped_column(String(64), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
