"""Warning services (预警): raise a month's warnings from the rollups, list them, triage them, and
let the owner reply.

Raising is idempotent: one warning per (resource, month, level) — the unique key — so rerunning
the daily job never raises it twice nor notifies twice (outbox ``dedup_key``
``warning:<id>:raised``). Each warning carries the owner of its namespace in the month
(:mod:`core.reclaim.ownership`), and who may read it follows the requests' scope rule
(provincial ops: their province's). Triage moves through :data:`core.reclaim.states.TRIAGE` only, each move
with a note, a timestamp per status and an audit event in the same transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import unit_of_work
from core.errors import InputError, NotFound
from core.identity import OPS_ROLES, Identity, PermissionDenied, notice_lang, require
from core.lifecycle import services as svc
from core.lifecycle.persistence import RequestRow
from core.metrics.persistence import read_days
from core.notifications.outbox import enqueue
from core.org import load_org
from core.reclaim import common
from core.reclaim.ownership import Owned, owners_in_month
from core.reclaim.persistence import WarningNoteRow, WarningRow
from core.reclaim.policy import load_thresholds
from core.reclaim.states import TRIAGE, TRIAGE_STATUSES, check_move
from core.reclaim.warnings import LEVELS, assess, month_bounds
from core.text import check_length

RAISE_ROLES = OPS_ROLES | {"system"}


def _view(w: WarningRow, notes: list[WarningNoteRow] | None = None) -> dict[str, Any]:
    out = {
        "id": w.id, "resource": w.resource, "month": w.month, "level": w.level, "status": w.status,
        "request_id": w.request_id, "allocation_id": w.allocation_id, "owner": w.owner,
        "owner_source": w.owner_source, "department": w.department, "unit": w.unit,
        "pool": w.pool_id, "util": w.util, "mem": w.mem, "gpu_hours": w.gpu_hours, "coverage": w.coverage,
        "days_in_scope": w.days_in_scope, "days_observed": w.days_observed, "series": list(w.series or []),
        "created_at": common.aware(w.created_at),
        "timestamps": {st: common.aware(getattr(w, f"{st}_at")) for st in TRIAGE_STATUSES
                       if getattr(w, f"{st}_at") is not None},
        "next": sorted(TRIAGE[w.status]),
    }
    if notes is not None:
        out["notes"] = [{"at": common.aware(n.at), "actor": n.actor, "kind": n.kind, "text": n.text,
                         "before": n.before, "after": n.after} for n in notes]
    return out


def _own(w: WarningRow, o: Owned) -> None:
    """Put ``o``'s ownership on the warning."""
    w.owner_source, w.owner, w.department, w.unit = o.source, o.owner, o.department, o.unit
    w.pool_id, w.request_id, w.allocation_id = o.pool_id, o.request_id, o.allocation_id


def _notify_owner(s: Session, w: WarningRow, email: str) -> None:
    """The owner's notice of the warning, once: the dedup key is the warning's, whatever the runs."""
    email = common.email_of(w.owner, email)
    if not w.owner or "@" not in email:
        return
    enqueue(s, dedup_key=f"warning:{w.id}:raised", recipient_id=w.owner, recipient_email=email,
            lang=notice_lang(w.owner), template="warning_raised",
            params={"level": w.level, "target": w.resource, "month": w.month,
                    "gpu_util": round(w.util or 0.0, 4), "mem_util": round(w.mem or 0.0, 4)})


def raise_warnings(*, sessions: sessionmaker[Session], actor: Identity, month: str) -> dict[str, Any]:
    """Assess ``month`` from the daily rollups and raise the warnings not raised before.

    Each warning carries the owner of its namespace in the month (:mod:`core.reclaim.ownership`:
    the allocation that held it, else the organisation's team mapping, else no owner), and the
    owner is notified once. A warning raised before without an owner gets the one found since
    (and its notice). Returns ``{"month", "assessed", "raised": [ids], "existing", "insufficient",
    "owners_found": [ids]}``.

    Raises:
        PermissionDenied: not ops/admin/system.
        InputError: ``month`` is not YYYY-MM.
    """
    require(actor, RAISE_ROLES, "raise utilisation warnings")
    first, last = month_bounds(month)
    thresholds = load_thresholds()
    at = common.now()
    with unit_of_work(sessions) as s:
        frame = read_days(s, first, last)
        owned = owners_in_month(s, frame["namespace"].unique().to_list(), month, frame)
        windows = {ns: o.span for ns, o in owned.items() if o.span is not None}
        results = assess(frame, month, thresholds, windows)
        raised, existing, found = [], 0, []
        # the month's warnings already raised, read once: a warning is never raised twice
        have = {(w.resource, w.level): w for w in s.scalars(select(WarningRow).where(WarningRow.month == month))}
        for a in results:
            if a.level is None:
                continue
            o = owned[a.resource]
            if (a.resource, a.level) in have:
                existing += 1
                w = have[(a.resource, a.level)]
                if w.owner_source == "none" and o.source != "none":
                    _own(w, o)
                    w.updated_at = at
                    common.audit(s, actor, "warning.owner_found", f"warning:{w.id}", reason=o.source,
                                 after=o.as_dict(), at=at)
                    _notify_owner(s, w, o.email)
                    found.append(w.id)
                continue
            evidence = a.as_dict()
            w = WarningRow(resource=a.resource, month=month, level=a.level, status="new",
                           util=a.util, mem=a.mem, gpu_hours=a.gpu_hours, coverage=a.coverage,
                           days_in_scope=a.days_in_scope, days_observed=a.days_observed, series=evidence["series"],
                           created_at=at, updated_at=at, new_at=at)
            _own(w, o)
            s.add(w)
            s.flush()
            common.audit(s, actor, "warning.raised", f"warning:{w.id}", reason=a.level,
                         after={"resource": a.resource, "month": month, "level": a.level, "util": a.util,
                                "mem": a.mem, "coverage": a.coverage, **o.as_dict()}, at=at)
            _notify_owner(s, w, o.email)
            raised.append(w.id)
    return {"month": month, "assessed": len(results), "raised": raised, "existing": existing,
            "insufficient": sum(1 for a in results if a.insufficient), "owners_found": found}


def list_warnings(*, sessions: sessionmaker[Session], actor: Identity, month: str | None = None,
                  level: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """Warnings ``actor`` may read, newest first, optionally filtered.

    HQ ops and admins read all; provincial ops their province's (the owner's unit, or for usage
    nobody owns, where it ran) and their province's departments'; applicants and department heads
    their own department's and their own.

    Raises:
        PermissionDenied: executives and the committee.
        InputError: an unknown level or status, or a malformed month.
    """
    require(actor, common.READ_ROLES, "read warnings and reclaim")
    if level is not None and level not in LEVELS:
        raise InputError("error.choice", field="level", value=level, choices=", ".join(LEVELS))
    if status is not None and status not in TRIAGE_STATUSES:
        raise InputError("error.choice", field="status", value=status, choices=", ".join(TRIAGE_STATUSES))
    if month is not None:
        month_bounds(month)
    org = load_org()
    with unit_of_work(sessions) as s:
        q = (select(WarningRow).where(common.department_scope(actor, org, WarningRow.department, WarningRow.owner,
                                                                 WarningRow.unit))
             .order_by(WarningRow.month.desc(), WarningRow.id.desc()))
        if month:
            q = q.where(WarningRow.month == month)
        if level:
            q = q.where(WarningRow.level == level)
        if status:
            q = q.where(WarningRow.status == status)
        return [_view(w) for w in s.scalars(q)]


def _load(s: Session, actor: Identity, warning_id: int, *, lock: bool = False) -> WarningRow:
    q = select(WarningRow).where(WarningRow.id == warning_id)
    if lock:
        q = q.with_for_update()
    w = s.scalars(q).first()
    if w is None or not common.may_see(actor, load_org(), w.department, w.owner, w.unit):
        raise NotFound("error.not_found", what="warning", id=warning_id)
    return w


def _notes(s: Session, warning_id: int) -> list[WarningNoteRow]:
    return list(s.scalars(select(WarningNoteRow).where(WarningNoteRow.warning_id == warning_id)
                          .order_by(WarningNoteRow.at, WarningNoteRow.id)))


def get_warning(*, sessions: sessionmaker[Session], actor: Identity, warning_id: int) -> dict[str, Any]:
    """One warning with its evidence series, its notes/replies in order and the number of the
    request whose allocation owned the namespace (``number``; None without one).

    Raises:
        NotFound: no such warning, or not visible to ``actor``.
    """
    require(actor, common.READ_ROLES, "read warnings and reclaim")
    with unit_of_work(sessions) as s:
        w = _load(s, actor, warning_id)
        request = s.get(RequestRow, w.request_id) if w.request_id else None
        return {**_view(w, _notes(s, w.id)), "number": request.number if request else None}


def triage(*, sessions: sessionmaker[Session], actor: Identity, warning_id: int, to: str, note: str) -> dict[str, Any]:
    """Move a warning along its triage (new → acknowledged → owner_contacted → resolved |
    accepted_risk) with a note; contacting the owner notifies them.

    Raises:
        PermissionDenied: not ops/admin (provincial ops: their province only).
        InputError: no note, or one longer than data/input_limits.yaml allows.
        InvalidMove: the table does not allow the move.
        NotFound: no such warning.
    """
    require(actor, OPS_ROLES, "triage warnings")
    note = check_length((note or "").strip(), field="note", kind="note")
    if not note:
        raise InputError("reclaim.note_required", field="note")
    at = common.now()
    with unit_of_work(sessions) as s:
        w = _load(s, actor, warning_id, lock=True)
        before = w.status
        check_move(TRIAGE, before, to)
        w.status, w.updated_at = to, at
        setattr(w, f"{to}_at", at)
        s.add(WarningNoteRow(warning_id=w.id, at=at, actor=actor.id, kind="transition", text=note, before=before,
                             after=to))
        common.audit(s, actor, "warning.transition", f"warning:{w.id}", reason=note, before={"status": before},
                     after={"status": to}, at=at)
        email = common.email_of(w.owner)
        if to == "owner_contacted" and w.owner and "@" in email:
            enqueue(s, dedup_key=f"warning:{w.id}:contact", recipient_id=w.owner, recipient_email=email,
                    lang=notice_lang(w.owner), template="warning_contact",
                    params={"level": w.level, "target": w.resource, "month": w.month, "note": note})
        s.flush()
        return _view(w, _notes(s, w.id))


def reply(*, sessions: sessionmaker[Session], actor: Identity, warning_id: int, text: str) -> dict[str, Any]:
    """The owner's reply to a warning (the owner, or the head of the owner's department).

    Raises:
        PermissionDenied: anyone else.
        InputError: empty reply, or one longer than data/input_limits.yaml allows.
        NotFound: no such warning, or not visible.
    """
    text = check_length((text or "").strip(), field="reply", kind="reply")
    if not text:
        raise InputError("reclaim.reply_required", field="reply")
    at = common.now()
    org = load_org()
    with unit_of_work(sessions) as s:
        w = _load(s, actor, warning_id, lock=True)
        owner_side = actor.id == w.owner or (actor.role == "dept_head" and svc._dept_of(actor, org) == w.department)
        if not owner_side:
            raise PermissionDenied("error.permission_denied", action="reply to a warning", role=actor.role)
        s.add(WarningNoteRow(warning_id=w.id, at=at, actor=actor.id, kind="reply", text=text))
        w.updated_at = at
        common.audit(s, actor, "warning.reply", f"warning:{w.id}", reason=text, at=at)
        s.flush()
        return _view(w, _notes(s, w.id))


def month_of(day: date) -> str:
    """YYYY-MM of ``day``."""
    return f"{day.year:04d}-{day.month:02d}"
