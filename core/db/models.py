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
