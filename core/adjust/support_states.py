"""A support request's statuses, the ONE transition table and the guarded move, and which
transfers change which pool's quota on which days (pure domain code, no SQLAlchemy).

A provincial ops user raises a request (``open``); HQ ops approve it with a donor pool and a
window (``approved``) or reject it with a reason (``rejected``). The transfer counts from the
approval for its window, ``starts_on`` to ``ends_on`` (exclusive): the donor pool's quota goes down
by the GPUs and the receiver's goes up. It becomes ``active`` once the clusters' scheduler queues
carry the new sizes, and ``returned`` when the window ends (the daily job) or HQ ops end it early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable

from core import transitions
from core.errors import ComputeLoopError
from core.i18n import Msg
from core.lifecycle.allocations import plus_days

TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"open"}),
    "open": frozenset({"approved", "rejected"}),
    # approved: the clusters are resized when the window starts (at once when it has started)
    "approved": frozenset({"active", "returned"}),
    "active": frozenset({"returned"}),
    "rejected": frozenset(),
    "returned": frozenset(),
}
STATUSES: tuple[str, ...] = ("open", "approved", "rejected", "active", "returned")
assert set(STATUSES) == {s for s in TRANSITIONS if s is not None}, "one entry per status"
# Statuses whose transfer counts in its window.
TRANSFERRING: frozenset[str] = frozenset({"approved", "active"})


class InvalidSupportTransition(ComputeLoopError):
    """A move of a support request the table does not allow."""

    def __init__(self, from_status: str | None, to_status: str) -> None:
        super().__init__("support.invalid_transition", status_from=_named(from_status), status_to=_named(to_status))


def _named(status: str | None) -> Msg | str:
    return Msg(f"support.status.{status}") if status in STATUSES else str(status)


def allowed(before: str | None, to: str) -> bool:
    """True when the table allows ``before`` → ``to``."""
    return transitions.allowed(TRANSITIONS, before, to)


def move(row: Any, to: str) -> str:
    """Set ``row.status`` to ``to`` when the table allows it; returns the status before.

    Raises:
        InvalidSupportTransition: the move is not in the table.
    """
    return transitions.move(row, to, TRANSITIONS, InvalidSupportTransition)


@dataclass(frozen=True)
class Transfer:
    """GPUs of quota moved from ``donor`` to ``receiver`` from ``start`` to ``end`` (exclusive)."""

    donor: str
    receiver: str
    gpus: int
    start: date
    end: date


def quota_shift(transfers: Iterable[Transfer], start: date, end: date) -> dict[str, int]:
    """Per pool, the change of its quota that holds on EVERY day from ``start`` to ``end`` (exclusive),
    so a capacity check over that window never grants what a day of it lacks: a donor lends its GPUs
    if any day of the window falls in the transfer, a receiver gains them only if the transfer covers
    the whole window. Pools without a change are left out."""
    out: dict[str, int] = {}
    for t in transfers:
        if t.gpus <= 0 or t.end <= start or t.start >= end:
            continue
        out[t.donor] = out.get(t.donor, 0) - t.gpus
        if t.start <= start and end <= t.end:
            out[t.receiver] = out.get(t.receiver, 0) + t.gpus
    return {pool: delta for pool, delta in out.items() if delta}


def sizes_on(base: dict[str, int], transfers: Iterable[Transfer], day: date) -> dict[str, int]:
    """Each pool's quota on ``day``: its size in ``base`` plus the transfers running that day."""
    shift = quota_shift(transfers, day, plus_days(day, 1))
    return {pool: size + shift.get(pool, 0) for pool, size in base.items()}
