"""Whether an inbox item still asks its reader to act, computed from the request as it is now.

An "awaiting your approval" notice (``request_needs_review``) names the request and the approval
step it was sent for (``params.step``, its seq). It still needs action while the request waits
for a decision (submitted, in review, queued) and that step is the one pending. Otherwise it is
marked "no action needed", with why: the request was withdrawn (cancelled), the step was taken
(by whom, with what outcome), or the request moved on to another status. Nothing is recorded:
the answer follows every change of the request, whoever makes it and by whichever path.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.lifecycle.persistence import RequestRow
from core.lifecycle.states import OPEN
from core.notifications.links import APPROVAL_TEMPLATES, request_id_of

def _state(row: RequestRow | None, step_seq: Any) -> dict[str, Any]:
    if row is None:  # requests are never deleted; a notice naming an unknown one asks nothing
        return {"needed": False, "why": "moved_on", "status": None}
    pending = next((st for st in row.steps if st.status == "pending"), None)
    if row.status in OPEN and pending is not None and (step_seq is None or pending.seq == step_seq):
        return {"needed": True}
    if row.status == "cancelled":
        return {"needed": False, "why": "withdrawn", "status": row.status}
    taken = next((st for st in row.steps if st.seq == step_seq and st.status != "pending"), None)
    if taken is not None and taken.decided_by:
        return {"needed": False, "why": "decided", "status": row.status, "by": taken.decided_by,
                "outcome": taken.status}
    return {"needed": False, "why": "moved_on", "status": row.status}


def action_states(s: Session, notices: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any] | None]:
    """For each (template, params): None when the notice asks for no action at all, else its state.

    A state is ``{"needed": True}`` or ``{"needed": False, "why": "withdrawn" | "decided" |
    "moved_on", "status": <request status>, ["by": <who took the step>, "outcome": <step status>]}``.
    The requests are read in one query (their steps in one more), whatever the number of notices.
    """
    notices = list(notices)
    wanted = {request_id_of(p) for t, p in notices if t in APPROVAL_TEMPLATES} - {None}
    rows = {r.id: r for r in s.scalars(select(RequestRow).where(RequestRow.id.in_(sorted(wanted))))} if wanted else {}
    out: list[dict[str, Any] | None] = []
    for template, params in notices:
        request_id = request_id_of(params)
        if template not in APPROVAL_TEMPLATES or request_id is None:
            out.append(None)
        else:
            out.append(_state(rows.get(request_id), params.get("step")))
    return out
