"""The table of support requests (紧急资源支援请求) and the transfers the capacity checks count.

Built by ``migrations/versions/0018_support_requests.py``. :func:`transfers` and
:func:`quota_shift` read the transfers that are approved or running: the one place the capacity
figures learn that a pool lends or borrows GPUs for a window (``data/org.yaml`` is never changed).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.adjust.support_states import TRANSFERRING, Transfer
from core.adjust.support_states import quota_shift as _shift
from core.db.models import Base


class SupportRequestRow(Base):
    """A province's request for GPUs from HQ, HQ's decision, and the transfer it made."""

    __tablename__ = "support_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    unit: Mapped[str] = mapped_column(String(16), index=True)  # the receiving pool's province (or HQ)
    pool_id: Mapped[str] = mapped_column(String(64), index=True)  # the receiving pool
    gpu_model: Mapped[str] = mapped_column(String(64))
    gpus: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)  # exclusive
    reason: Mapped[str] = mapped_column(Text, default="")
    namespace: Mapped[str] = mapped_column(String(63), default="")
    deployment: Mapped[str] = mapped_column(String(253), default="")
    raised_by: Mapped[str] = mapped_column(String(120), index=True)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    donor_pool_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    donor_unit: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    returned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    returned_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    # the last push of the scheduler queues' sizes: {"backend", "ok", "clusters": [...]} (None: not yet)
    cluster_result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    # A concurrent decision on the same request fails (StaleDataError) instead of overwriting.
    __mapper_args__ = {"version_id_col": version}


def transfer_of(row: SupportRequestRow) -> Transfer:
    """The transfer an approved or running request makes."""
    return Transfer(row.donor_pool_id or "", row.pool_id, int(row.gpus or 0), row.starts_on, row.ends_on)


def transfers(s: Session, *, exclude: int | None = None) -> list[Transfer]:
    """Every transfer that counts (approved or running), in one query."""
    rows = s.scalars(select(SupportRequestRow).where(SupportRequestRow.status.in_(sorted(TRANSFERRING))))
    return [transfer_of(r) for r in rows if r.id != exclude and r.donor_pool_id]


def quota_shift(s: Session, start: date, end: date, *, exclude: int | None = None) -> dict[str, int]:
    """Per pool, the quota change the transfers make on every day from ``start`` to ``end``
    (exclusive): the hook the capacity figures add to each pool's size
    (:func:`core.adjust.support_states.quota_shift`); ``exclude``: leave out that support request's
    transfer (what the pools would have without it)."""
    return _shift(transfers(s, exclude=exclude), start, end)
