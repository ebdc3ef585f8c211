"""The lifecycle of a resource application: statuses, the ONE transition table, the guarded move.

Pure domain code (no SQLAlchemy). The persistence layer keeps one timestamp column per status
(``<status>_at``); the services write an audit event for every :class:`TransitionEvent`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from core.errors import ComputeLoopError
from core.i18n import Msg


class Status(str, Enum):
    """Every status a resource application can be in."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    QUEUED = "queued"
    APPROVED = "approved"
    ADJUSTED = "adjusted"
    REJECTED = "rejected"
    PROVISIONING = "provisioning"
    PROVISIONING_FAILED = "provisioning_failed"
    ACTIVE = "active"
    EXPIRING = "expiring"
    EXTENDED = "extended"
    RECLAIMED = "reclaimed"
    RETURNED = "returned"
    CANCELLED = "cancelled"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)

# The one transition table: status -> statuses it may move to. Anything else is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"submitted", "cancelled"}),
    # submitted: auto-approved at once (standard tier), claimed by ops, queued for capacity,
    # or refused by the pre-check
    "submitted": frozenset({"in_review", "queued", "approved", "rejected", "cancelled"}),
    "in_review": frozenset({"approved", "adjusted", "rejected", "queued", "cancelled"}),
    # a queued request is taken up again by ops when capacity frees
    "queued": frozenset({"in_review", "rejected", "cancelled"}),
    "approved": frozenset({"provisioning", "cancelled"}),
    "adjusted": frozenset({"provisioning", "cancelled"}),
    "provisioning": frozenset({"active", "provisioning_failed"}),
    "provisioning_failed": frozenset({"provisioning", "cancelled"}),
    # running work may be preempted by a green-channel emergency (reason "preempted"): its GPUs
    # go back to the pool and the request waits in the queue for ops to take it up again
    "active": frozenset({"expiring", "returned", "reclaimed", "queued"}),
    "expiring": frozenset({"extended", "returned", "reclaimed", "queued"}),
    "extended": frozenset({"expiring", "returned", "reclaimed", "queued"}),
    "rejected": frozenset(),
    "reclaimed": frozenset(),
    "returned": frozenset(),
    "cancelled": frozenset(),
}

TERMINAL: frozenset[str] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
# Statuses whose allocation holds GPUs of its pool.
HOLDING: frozenset[str] = frozenset({"approved", "adjusted", "provisioning", "provisioning_failed", "active",
                                     "expiring", "extended"})
# Statuses of running work a green-channel emergency may preempt.
PREEMPTIBLE: frozenset[str] = frozenset({"active", "expiring", "extended"})
# Statuses that still wait for a decision.
OPEN: frozenset[str] = frozenset({"submitted", "in_review", "queued"})


def timestamp_field(status: str) -> str:
    """Name of the timestamp kept for ``status`` (one per status)."""
    return f"{status}_at"


class InvalidTransition(ComputeLoopError):
    """A move the transition table does not allow."""

    def __init__(self, from_status: str, to_status: str) -> None:
        self.from_status = from_status
        self.to_status = to_status
        # shown by their names in the reader's language (``in_review`` → 评估中)
        super().__init__("lifecycle.invalid_transition", from_status=_named(from_status), to_status=_named(to_status))


def _named(status: str) -> Msg | str:
    return Msg(f"status.{status}") if status in STATUSES else status


@dataclass
class RequestState:
    """The lifecycle part of a request: its status and when it entered each status."""

    status: str = "draft"
    timestamps: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class TransitionEvent:
    """What a transition did, for the audit log."""

    before: str
    after: str
    actor: str
    reason: str
    at: datetime


def allowed(from_status: str, to_status: str) -> bool:
    """True when the table allows ``from_status`` → ``to_status``."""
    return to_status in TRANSITIONS.get(from_status, frozenset())


def transition(entity: RequestState, to: str, *, actor: str, reason: str, at: datetime) -> TransitionEvent:
    """Move ``entity`` to ``to`` and stamp the time, or raise :class:`InvalidTransition`.

    Args:
        entity: anything with ``status`` and a ``timestamps`` dict (changed in place).
        to: the target status.
        actor: id of the person (or "system") making the move.
        reason: why — stored in the audit event.
        at: when (aware datetime).
    """
    to = Status(to).value if to in STATUSES else to
    before = entity.status
    if not allowed(before, to):
        raise InvalidTransition(before, to)
    entity.status = to
    entity.timestamps[to] = at
    return TransitionEvent(before=before, after=to, actor=actor, reason=reason, at=at)
