"""Table mappings. Domain code never imports this module; services and repositories do."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of every table."""


class EstimateRow(Base):
    """A saved estimate: its inputs and outputs as JSON, and who made it."""

    __tablename__ = "estimates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # training | inference
    title: Mapped[str] = mapped_column(String(200))
    gpu_id: Mapped[str] = mapped_column(String(64))
    workload: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(120))
    department: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    inputs: Mapped[dict] = mapped_column(JSON)
    outputs: Mapped[dict] = mapped_column(JSON)
    estimated_gpu_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    estimated_wall_clock_hours: Mapped[float | None] = mapped_column(Float, nullable=True)

    outcomes: Mapped[list["OutcomeRow"]] = relationship(back_populates="estimate", cascade="all, delete-orphan")


class OutcomeRow(Base):
    """The actual outcome of a finished job, recorded by an ops lead against its estimate."""

    __tablename__ = "estimate_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    estimate_id: Mapped[int] = mapped_column(ForeignKey("estimates.id", ondelete="CASCADE"), index=True)
    actual_gpu_hours: Mapped[float] = mapped_column(Float)
    actual_wall_clock_hours: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    estimate: Mapped[EstimateRow] = relationship(back_populates="outcomes")


class AuditEventRow(Base):
    """Append-only record of every change: actor, time, action, reason, before/after."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(120), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class OutboxRow(Base):
    """A notice to deliver, written in the same transaction as the change that causes it.

    ``dedup_key`` makes each notice exactly-once: writing the same key twice is refused by the
    unique index, and the sender marks a row sent only after the server accepted it.
    """

    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient_id: Mapped[str] = mapped_column(String(120), index=True)
    recipient_email: Mapped[str] = mapped_column(String(200))
    lang: Mapped[str] = mapped_column(String(8))
    template: Mapped[str] = mapped_column(String(80))
    params: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")


class InboxRow(Base):
    """The in-app copy of a notice, shown to its recipient in the portal."""

    __tablename__ = "notification_inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("notification_outbox.id", ondelete="CASCADE"), unique=True)
    recipient_id: Mapped[str] = mapped_column(String(120), index=True)
    template: Mapped[str] = mapped_column(String(80))
    params: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
