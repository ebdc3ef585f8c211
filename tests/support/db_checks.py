"""Small database read-backs the service tests assert on."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db.models import OutboxRow
from core.lifecycle.persistence import AllocationRow, PoolCapacityRow


def outbox(ctx) -> list[OutboxRow]:
    with ctx.sessions() as s:
        return list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def allocated(ctx, pool: str) -> int:
    with ctx.sessions() as s:
        cap = s.get(PoolCapacityRow, pool)
        held = s.scalar(select(func.coalesce(func.sum(AllocationRow.gpus), 0)).where(
            AllocationRow.pool_id == pool, AllocationRow.status != "released"))
        assert cap is None or cap.allocated_gpus == held  # the capacity row and the allocations agree
        return int(held)
