"""Tables of dynamic adjustment: the adjustment record and the autoscaling policies.

Built by ``migrations/versions/0006_adjustments.py``. :func:`record_adjustment` writes one
record in the caller's session, so it commits or rolls back with the change it describes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import utc_now
from core.db.models import Base

# The closed set of adjustment kinds (每类调整的记录要求, 《算力动态调整实施规范》).
KINDS: tuple[str, ...] = ("queue_reorder", "preemption", "defragmentation", "scale_policy_change", "scale_event",
                          "manual_adjustment", "green_channel", "support_transfer", "node_addition")


class AdjustmentRow(Base):
    """One adjustment: who or what (``system``) changed what, when, why, before and after."""

    __tablename__ = "adjustments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    # the pool the record is about (:func:`pool_of`), for filtering; None when it names none
    pool: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    before: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)


class ScalingPolicyRow(Base):
    """A dual-threshold (双阈值) autoscaling policy of one inference deployment."""

    __tablename__ = "scaling_policies"
    __table_args__ = (UniqueConstraint("namespace", "deployment", name="uq_scaling_policies_namespace_deployment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63))
    deployment: Mapped[str] = mapped_column(String(253))
    min_replicas: Mapped[int] = mapped_column(Integer)
    max_replicas: Mapped[int] = mapped_column(Integer)
    gpus_per_replica: Mapped[int] = mapped_column(Integer, default=1)
    util_high: Mapped[float] = mapped_column(Float)
    util_low: Mapped[float] = mapped_column(Float)
    mem_high: Mapped[float] = mapped_column(Float)
    sustain_s: Mapped[int] = mapped_column(Integer)
    scale_up_window_s: Mapped[int] = mapped_column(Integer)
    scale_down_window_s: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def pool_of(record: Mapping[str, Any]) -> str | None:
    """The pool an adjustment record is about: a ``pool:`` subject, else ``pool`` in after/before."""
    subject = record.get("subject") or ""
    if subject.startswith("pool:"):
        return subject[len("pool:"):]
    for side in ("after", "before"):
        value = record.get(side)
        if isinstance(value, Mapping) and value.get("pool"):
            return str(value["pool"])
    return None


def record_adjustment(session: Session, *, actor: str, kind: str, subject: str, reason: str = "",
                      before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
                      automatic: bool = False, at: datetime | None = None) -> AdjustmentRow:
    """Add an adjustment record to ``session`` (the caller's transaction).

    Args:
        actor: the person's id, or ``"system"`` for automatic adjustments.
        kind: one of :data:`KINDS`.
        subject: what was adjusted, e.g. ``request:12``, ``pool:hq-ft``, ``deployment:ns/name``.

    Raises:
        ValueError: ``kind`` outside :data:`KINDS` (a programming error, not a person's input).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown adjustment kind {kind!r}")
    row = AdjustmentRow(at=at or utc_now(), actor=actor or "system", kind=kind, subject=subject,
                        before=before, after=after, reason=reason or "", automatic=bool(automatic),
                        pool=pool_of({"subject": subject, "before": before, "after": after}))
    session.add(row)
    return row
