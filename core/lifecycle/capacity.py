"""The GPUs of each pool that allocations count against, read from the database — the one
definition the capacity checks, the water level, the queue and the green channel all use.

What counts on which day is :func:`core.capacity_figures.counts_on` (from today on
:func:`core.lifecycle.allocations.booking`): an allocation held now counts until its end date; a
scheduled one (approved, start date ahead) only from its start date. The figures themselves
(total, allocated, reserved, available, …) are defined in :mod:`core.capacity_figures`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import capacity_figures as cf
from core.adjust.support_persistence import quota_shift
from core.clock import aware, utc_today
from core.lifecycle.allocations import COMMITTED, Booking, booking, end_of, free_in_window, plus_days
from core.lifecycle.persistence import AllocationRow
from core.org import Org


def bookings(s: Session, *, today: date | None = None, pools: list[str] | None = None,
             exclude_allocation: int | None = None) -> list[Booking]:
    """Every allocation that counts against its pool (one query), as bookings."""
    today = today or utc_today()
    query = select(AllocationRow.id, AllocationRow.pool_id, AllocationRow.gpus, AllocationRow.status,
                   AllocationRow.starts_on, AllocationRow.ends_on).where(AllocationRow.status.in_(sorted(COMMITTED)))
    if pools is not None:
        query = query.where(AllocationRow.pool_id.in_(sorted(pools) or [""]))
    out = []
    for alloc_id, pool, gpus, status, starts_on, ends_on in s.execute(query):
        if alloc_id == exclude_allocation:
            continue
        b = booking(pool, int(gpus or 0), status, starts_on, ends_on, today)
        if b is not None:
            out.append(b)
    return out


def holdings(s: Session, *, since: date | None = None) -> list[cf.Holding]:
    """The allocations the figures count (one query): every one that counts against its pool now
    or later, and with ``since`` also those released on or after that day (for past days)."""
    wanted = AllocationRow.status.in_(sorted(COMMITTED))
    if since is not None:
        wanted = wanted | (AllocationRow.released_at.is_not(None)
                           & (AllocationRow.released_at >= datetime.combine(since, time.min, tzinfo=timezone.utc)))
    query = select(AllocationRow.pool_id, AllocationRow.gpus, AllocationRow.status, AllocationRow.starts_on,
                   AllocationRow.ends_on, AllocationRow.released_at, AllocationRow.namespace).where(wanted)
    return [cf.Holding(pool, int(gpus or 0), status, starts_on, ends_on,
                       aware(released).date() if released is not None else None, namespace or None)
            for pool, gpus, status, starts_on, ends_on, released, namespace in s.execute(query)]


def committed_on(s: Session, day: date | None = None) -> dict[str, int]:
    """GPUs per pool allocated on ``day`` (default today; :func:`core.capacity_figures.allocated_on`):
    held now, plus scheduled allocations whose window has begun. The water level's "allocated"
    and the pools' "held"."""
    today = utc_today()
    day = day or today
    return cf.allocated_on(holdings(s, since=day if day < today else None), day, today)


def figures_today(s: Session, org: Org) -> dict[str, cf.Figures]:
    """Per pool: total (data/org.yaml), allocated, reserved and available today (nothing observed)."""
    allocated = committed_on(s)
    today = utc_today()
    shift = quota_shift(s, today, plus_days(today, 1))  # support-request transfers running today
    return {p.id: cf.pool_figures(p, allocated=allocated.get(p.id, 0), size=cf.total(p) + shift.get(p.id, 0))
            for p in org.pools.values()}


def booked_total(s: Session) -> dict[str, int]:
    """GPUs per pool of every allocation that is not released, whatever its dates: what the
    ``pool_capacity`` row of each pool counts (it changes under the row lock with every grant and
    release)."""
    rows = s.execute(select(AllocationRow.pool_id, func.sum(AllocationRow.gpus))
                     .where(AllocationRow.status.in_(sorted(COMMITTED))).group_by(AllocationRow.pool_id)).all()
    return {pool: int(total or 0) for pool, total in rows}


def window(start: date | None, days: int | None, today: date | None = None) -> tuple[date, date]:
    """The days a request would hold its GPUs: from its start date (today when none or past) for
    ``days`` days (at least one)."""
    today = today or utc_today()
    first = max(start, today) if start else today
    return first, end_of(first, days or 1)


def free_by_pool(s: Session, org: Org, *, start: date | None = None, end: date | None = None,
                 today: date | None = None, exclude_allocation: int | None = None,
                 exclude_transfer: int | None = None) -> dict[str, int]:
    """Per pool: GPUs free on every day from ``start`` to ``end`` (exclusive); default: today.
    ``exclude_allocation`` / ``exclude_transfer``: as if that allocation or that support request's
    transfer did not exist (negative: the bookings would exceed the pool)."""
    today = today or utc_today()
    start = start or today
    end = end or plus_days(start, 1)
    shift = quota_shift(s, start, end, exclude=exclude_transfer)  # support-request transfers in the window
    sizes = {p.id: cf.total(p) + shift.get(p.id, 0) for p in org.pools.values()}
    return free_in_window(sizes, bookings(s, today=today, exclude_allocation=exclude_allocation), start, end)
