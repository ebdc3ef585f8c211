"""The allocation of a granted request: its statuses, the ONE transition table, the guarded move,
and which allocations count against a pool's GPUs on which day.

Pure domain code (no SQLAlchemy), the allocation's counterpart of :mod:`core.lifecycle.states`:
provisioning, the services, the green channel and reclaim change an allocation's status only
through :func:`move`, so every path follows the same table.

An approved request whose start date is still ahead is ``scheduled``: nothing is put on the
cluster, and its GPUs count against the pool from its start date, not from today (a request for
next quarter does not hold GPUs now). The daily job moves it to ``approved`` on its start date and
provisions it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Mapping

from core import transitions
from core.errors import ComputeLoopError
from core.i18n import Msg

# None: the allocation does not exist yet (a grant creates it).
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"scheduled", "approved"}),
    # waiting for its start date; withdrawn or cancelled before it starts
    "scheduled": frozenset({"approved", "released"}),
    # its start date has come: provisioning takes it, or the request is cancelled first
    "approved": frozenset({"provisioning", "released"}),
    "provisioning": frozenset({"active", "failed"}),
    # a failed provisioning keeps its GPUs (the approval stands): a retry, or a cancellation
    "failed": frozenset({"provisioning", "released"}),
    # expiry, return, reclaim, preemption
    "active": frozenset({"released"}),
    # a preempted request granted again gets its row (and namespace) back
    "released": frozenset({"scheduled", "approved"}),
}
STATUSES: tuple[str, ...] = ("scheduled", "approved", "provisioning", "failed", "active", "released")
assert set(STATUSES) == {s for s in TRANSITIONS if s is not None}, "one entry per status"

# Statuses whose GPUs are held now (what the pool lends today, started or not).
HELD: frozenset[str] = frozenset({"approved", "provisioning", "failed", "active"})
# Statuses that count against the pool at all: held now, or from a start date ahead.
COMMITTED: frozenset[str] = HELD | {"scheduled"}


class InvalidAllocationTransition(ComputeLoopError):
    """A move of an allocation the table does not allow."""

    def __init__(self, from_status: str | None, to_status: str) -> None:
        self.from_status, self.to_status = from_status, to_status
        super().__init__("rules.allocation_invalid_transition", allocation_from=_named(from_status),
                         allocation_to=_named(to_status))


def _named(status: str | None) -> Msg | str:
    return Msg(f"allocation_status.{status}") if status in STATUSES else str(status)


def allowed(before: str | None, to: str) -> bool:
    """True when the table allows ``before`` → ``to`` (``before`` None: a new allocation)."""
    return transitions.allowed(TRANSITIONS, before, to)


def move(alloc: Any, to: str) -> str:
    """Set ``alloc.status`` to ``to`` when the table allows it; returns the status before.

    Raises:
        InvalidAllocationTransition: the move is not in the table.
    """
    before = transitions.move(alloc, to, TRANSITIONS, InvalidAllocationTransition)
    if to == "released" and hasattr(alloc, "kubeconfig"):
        # Its access goes with it: a released allocation keeps no cluster token (a re-grant mints a
        # new one when it is provisioned again).
        alloc.kubeconfig = None
    return before


def status_on_grant(starts_on: date | None, today: date) -> str:
    """The status a grant creates: ``scheduled`` while the start date is ahead, else ``approved``."""
    return "scheduled" if starts_on is not None and starts_on > today else "approved"


# --------------------------------------------------------------------------- dates that never overflow


def plus_days(day: date, days: int | float) -> date:
    """``day + days``, held at the calendar's ends (a stored date near 9999-12-31 never overflows)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def plus(at: datetime, delta: timedelta) -> datetime:
    """``at + delta``, held at the calendar's ends (same time zone)."""
    try:
        return at + delta
    except OverflowError:
        edge = datetime.max if delta > timedelta(0) else datetime.min
        return edge.replace(tzinfo=at.tzinfo)


def end_of(start: date, days: int) -> date:
    """The day after a window of ``days`` days from ``start`` (exclusive end)."""
    return plus_days(start, max(int(days or 1), 1))


# --------------------------------------------------------------------------- what counts on which day


@dataclass(frozen=True)
class Booking:
    """GPUs of a pool an allocation counts against, from ``start`` (inclusive) to ``end`` (exclusive)."""

    pool: str
    gpus: int
    start: date
    end: date


def booking(pool: str, gpus: int, status: str, starts_on: date | None, ends_on: date | None,
            today: date) -> Booking | None:
    """When an allocation counts against its pool (None when it does not count at all).

    * ``scheduled``: its window, ``starts_on`` to ``ends_on`` — from its start date, not from today.
    * held now (approved, provisioning, failed, active): from always until its end date; one that
      is past its end and not reclaimed yet (an undecided extension holds it) still counts today.
    * ``released``: nothing.
    """
    if status == "scheduled":
        start = starts_on or today
        return Booking(pool, gpus, start, ends_on or end_of(start, 1))
    if status in HELD:
        end = max(ends_on, plus_days(today, 1)) if ends_on is not None else date.max
        return Booking(pool, gpus, date.min, end)
    return None


def load_on(bookings: Iterable[Booking], pool: str, day: date) -> int:
    """GPUs of ``pool`` booked on ``day``."""
    return sum(b.gpus for b in bookings if b.pool == pool and b.start <= day < b.end)


def peak(bookings: Iterable[Booking], pool: str, start: date, end: date) -> int:
    """The most GPUs of ``pool`` booked on any day from ``start`` to ``end`` (exclusive): the load
    only rises where a booking starts, so those days and ``start`` are the ones to look at."""
    mine = [b for b in bookings if b.pool == pool]
    days = {start} | {b.start for b in mine if start < b.start < end}
    return max((load_on(mine, pool, d) for d in days), default=0)


def free_in_window(sizes: Mapping[str, int], bookings: Iterable[Booking], start: date, end: date) -> dict[str, int]:
    """Per pool: its size less the peak booked from ``start`` to ``end`` (may be negative)."""
    listed = list(bookings)
    return {pool: size - peak(listed, pool, start, end) for pool, size in sizes.items()}
