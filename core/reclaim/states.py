"""State machines of warnings (triage) and reclaim candidates: statuses, ONE transition table
each, and the guarded move. Pure domain code (no SQLAlchemy)."""

from __future__ import annotations

from typing import Mapping

from core.errors import ComputeLoopError

# Warning triage (预警处置): ops acknowledge, contact the owner, then close as resolved or as an
# accepted risk. Each move carries a note.
TRIAGE: dict[str, frozenset[str]] = {
    "new": frozenset({"acknowledged"}),
    "acknowledged": frozenset({"owner_contacted"}),
    "owner_contacted": frozenset({"resolved", "accepted_risk"}),
    "resolved": frozenset(),
    "accepted_risk": frozenset(),
}
TRIAGE_STATUSES: tuple[str, ...] = tuple(TRIAGE)

# Reclaim candidates (待回收候选): ops review, contact the owner, agree a plan, execute it; any open
# candidate may be dismissed (with a note saying why).
CANDIDATE: dict[str, frozenset[str]] = {
    "detected": frozenset({"under_review", "dismissed"}),
    "under_review": frozenset({"owner_contacted", "dismissed"}),
    "owner_contacted": frozenset({"plan_agreed", "dismissed"}),
    "plan_agreed": frozenset({"executed", "dismissed"}),
    "executed": frozenset(),
    "dismissed": frozenset(),
}
CANDIDATE_STATUSES: tuple[str, ...] = tuple(CANDIDATE)
PLANS: tuple[str, ...] = ("scale_down", "move_smaller_gpu", "remove")

# Extension requests (延期申请).
EXTENSION: dict[str, frozenset[str]] = {
    "pending": frozenset({"approved", "refused", "withdrawn"}),
    "approved": frozenset(),
    "refused": frozenset(),
    "withdrawn": frozenset(),
}


class InvalidMove(ComputeLoopError):
    """A move the transition table does not allow."""

    def __init__(self, from_status: str, to_status: str) -> None:
        self.from_status, self.to_status = from_status, to_status
        super().__init__("reclaim.invalid_transition", from_status=from_status, to_status=to_status)


def check_move(table: Mapping[str, frozenset[str]], before: str, to: str) -> str:
    """Return ``to`` when ``table`` allows ``before`` → ``to``; else raise :class:`InvalidMove`."""
    if to not in table.get(before, frozenset()):
        raise InvalidMove(before, to)
    return to


def is_terminal(table: Mapping[str, frozenset[str]], status: str) -> bool:
    """True when nothing may follow ``status``."""
    return not table.get(status)
