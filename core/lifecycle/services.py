"""Services of application and allocation (申请与分配): the API pages and the CLI call.

Every function takes keyword-only ``sessions`` (a session factory) and ``actor`` (an
:class:`~core.identity.Identity`), checks permissions itself, runs in one unit of work and
returns plain values. Every status change goes through :func:`core.lifecycle.states.transition`
and writes an audit event in the same transaction; notices are outbox rows in that transaction.

Capacity is race-safe: granting GPUs updates the pool's ``pool_capacity`` row under
``SELECT … FOR UPDATE`` (PostgreSQL) plus an optimistic ``version`` check (works on SQLite too),
so two approvers racing for a pool's last GPUs can never over-commit it.

Reasons of transitions the system makes come from a closed set — ``submitted``, ``claimed``,
``capacity_short`` (queued), ``tier:<tier id>`` (auto-approval), ``provision`` / ``retry`` /
``provisioned`` / ``provisioning_failed`` (core.lifecycle.provisioning), ``preempted`` (a
green-channel emergency took the GPUs, core.lifecycle.green_channel); a person's decision or
cancellation carries the reason they typed (required).

Approvals provision automatically: once :func:`decide` (or an auto-approval in :func:`submit`)
has committed, :func:`core.lifecycle.provisioning.provision_after_approval` runs for the
request. The returned view keeps the decision's status (approved/adjusted) and adds
``provisioning`` — what the automatic provisioning did (``status`` active or
provisioning_failed, ``failed_step``). A failure leaves the request visibly provisioning_failed
and never undoes the approval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core.clock import aware as _aware, utc_now as _now, utc_today
from core.db.locks import xact_lock
from core.db.models import AuditEventRow, EstimateRow
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError, NotFound
from core.estimation.catalog import load_catalog
from core.i18n import Msg
from core.identity import APPLY_ROLES, OPS_ROLES, Identity, PermissionDenied, load_personas, notice_lang, require
from core.lifecycle import capacity as cap
from core.lifecycle import feasibility as feas
from core.lifecycle.allocations import COMMITTED, end_of, move as move_allocation, status_on_grant
from core.lifecycle.forms import HIGH_PRIORITIES, IntakeForm, consistency_errors
from core.lifecycle.persistence import (
    HOLDING_ALLOCATION, AllocationRow, ApprovalStepRow, PoolCapacityRow, RequestRow,
)
from core.lifecycle.rules import (
    REVIEWER_ROLES, STEP_ROLES, CapacityCheck, Flag, Routing, add_working_days, auto_approval_facts, auto_tier_ids,
    capacity_check, check_compliance, check_start_horizon, facts, load_tiers, missing_fields, ops_role_for,
    request_number, route, steps_taken_by,
)
from core.lifecycle.states import OPEN, STATUSES, InvalidTransition, RequestState, timestamp_field, transition
from core.notifications.outbox import enqueue
from core.org import Org, load_org
from core.text import check_length

REVIEW_ROLES = REVIEWER_ROLES | {"admin"}
DECISIONS = ("approve", "approve_adjusted", "reject")
SYSTEM = Identity(id="system", name="ComputeLoop", email="", role="system")
_RESERVE_ATTEMPTS = 5


class CapacityRace(ComputeLoopError):
    """The pool no longer has the GPUs this approval needs (another approval took them first)."""


class DepartmentNotYours(InputError, PermissionDenied):
    """An application for a department the actor may not apply for: refused like any permission,
    and naming the form's field (``department``) like any bad input."""


# --------------------------------------------------------------------------- helpers


def _dept_of(actor: Identity, org: Org) -> str:
    """The org department id of ``actor`` (personas carry the department's name)."""
    return org.department_id(actor.department)


def _depts_of_unit(unit: str, org: Org) -> set[str]:
    return {d.id for d in org.departments.values() if d.unit == unit}


def _as_form(form: IntakeForm | dict | None) -> IntakeForm:
    return form if isinstance(form, IntakeForm) else IntakeForm.from_dict(form or {})


def _audit(s: Session, actor: Identity, action: str, row: RequestRow, reason: str = "",
           before: dict | None = None, after: dict | None = None, at: datetime | None = None) -> None:
    s.add(AuditEventRow(at=at or _now(), actor=actor.id, action=action, subject=f"request:{row.id}",
                        reason=reason or "", before=before, after=after))


def _move(s: Session, row: RequestRow, to: str, actor: Identity, reason: str, at: datetime | None = None) -> None:
    """The one way a request changes status: the table-guarded transition plus its audit event."""
    at = at or _now()
    state = RequestState(row.status, {})
    event = transition(state, to, actor=actor.id, reason=reason, at=at)
    row.status = state.status
    setattr(row, timestamp_field(to), at)
    row.updated_at = at
    _audit(s, actor, "request.transition", row, reason=reason, before={"status": event.before},
           after={"status": event.after}, at=at)


def _title(row: RequestRow) -> str:
    """The request's project in words (the number is a notice parameter of its own)."""
    project = load_org().projects.get(row.project)
    return project.name_zh if project else row.project


def _notice_params(row: RequestRow, **extra: Any) -> dict[str, Any]:
    params = {
        "request_id": row.id, "number": row.number or "", "title": _title(row), "applicant": (row.form or {}).get("applicant") or row.created_by,
        "pool": row.pool_id,
        "gpus": row.approved_gpus or row.requested_gpus, "days": row.approved_days or row.duration_days,
        "tier": row.tier, "status": row.status,
    }
    params.update(extra)
    return params


def _notify(s: Session, *, dedup_key: str, recipient_id: str, recipient_email: str, template: str,
            params: dict[str, Any]) -> None:
    # exactly-once by dedup_key: a key queued before is skipped, never an error that undoes the change
    enqueue(s, dedup_key=dedup_key, recipient_id=recipient_id, recipient_email=recipient_email,
            lang=notice_lang(recipient_id), template=template, params=params, now=_now())


def _applicant_email(row: RequestRow) -> str:
    for p in load_personas():
        if p.id == row.created_by:
            return p.email
    return row.created_by_email


def _notify_applicant(s: Session, row: RequestRow, event: str, template: str, **extra: Any) -> None:
    _notify(s, dedup_key=f"request:{row.id}:{event}", recipient_id=row.created_by,
            recipient_email=_applicant_email(row), template=template, params=_notice_params(row, **extra))


def _approvers(role: str, row: RequestRow, org: Org) -> list[Identity]:
    """Personas who may take the step ``role`` of ``row`` (never its applicant)."""
    out = []
    for p in load_personas():
        if role not in steps_taken_by(p) or p.id == row.created_by:
            continue
        if p.role == "prov_ops" and p.province != row.unit:
            continue
        if role == "dept_head" and _dept_of(p, org) != row.department:
            continue
        out.append(p)
    return out


def _notify_reviewers(s: Session, row: RequestRow, step: ApprovalStepRow, org: Org) -> None:
    for p in _approvers(step.role, row, org):
        _notify(s, dedup_key=f"request:{row.id}:needs_review:{step.seq}:{p.id}", recipient_id=p.id,
                recipient_email=p.email, template="request_needs_review",
                params=_notice_params(row, step=step.seq, role=step.role,
                                      claim_deadline=_iso(row.claim_deadline)))


def _iso(value: datetime | date | None) -> str:
    return _aware(value).isoformat() if isinstance(value, datetime) else (value.isoformat() if value else "")


def _held_by_pool(s: Session) -> dict[str, int]:
    """GPUs per pool that count today (:func:`core.lifecycle.capacity.committed_on`)."""
    return cap.committed_on(s)


def _free_by_pool(s: Session, org: Org, start: date | None = None, end: date | None = None) -> dict[str, int]:
    """GPUs per pool free on every day of the window (default: today)."""
    return cap.free_by_pool(s, org, start=start, end=end)


def _high_priority_gpus(s: Session, pool_id: str) -> int:
    total = s.scalar(select(func.sum(AllocationRow.gpus)).where(
        AllocationRow.pool_id == pool_id, AllocationRow.status.in_(HOLDING_ALLOCATION),
        AllocationRow.priority.in_(sorted(HIGH_PRIORITIES))))
    return int(total or 0)


def ensure_capacity_rows(sessions: sessionmaker[Session], pool_ids: Iterable[str]) -> None:
    """Create missing ``pool_capacity`` rows in their own transaction (a concurrent insert is fine)."""
    wanted = set(pool_ids)
    with unit_of_work(sessions) as s:
        have = set(s.scalars(select(PoolCapacityRow.pool_id).where(PoolCapacityRow.pool_id.in_(wanted))))
    missing = wanted - have
    if not missing:
        return
    try:
        with unit_of_work(sessions) as s:
            booked = cap.booked_total(s)
            for pool_id in sorted(missing):
                s.add(PoolCapacityRow(pool_id=pool_id, allocated_gpus=booked.get(pool_id, 0), version=0))
    except IntegrityError:
        pass  # another transaction created them first


def _reserve(s: Session, org: Org, pool_id: str, gpus: int, start: date, end: date) -> None:
    """Book ``gpus`` of the pool from ``start`` to ``end`` (exclusive), or raise :class:`CapacityRace`.

    The pool's capacity row is locked (PostgreSQL ``FOR UPDATE``; SQLite serialises writers) and
    its version bumped only if the version read is still current, so grants of one pool take turns;
    the check itself counts every allocation of the pool on every day of the window (a scheduled
    one from its start date), read after the lock.
    """
    for _ in range(_RESERVE_ATTEMPTS):
        row = s.execute(select(PoolCapacityRow).where(PoolCapacityRow.pool_id == pool_id).with_for_update()
                        .execution_options(populate_existing=True)).scalar_one()
        free = cap.free_by_pool(s, org, start=start, end=end).get(pool_id, 0)
        if gpus > free:
            raise CapacityRace("lifecycle.capacity_race", pool=pool_id, requested=gpus, free=max(free, 0))
        result = s.execute(
            update(PoolCapacityRow)
            .where(PoolCapacityRow.pool_id == pool_id, PoolCapacityRow.version == row.version)
            .values(allocated_gpus=row.allocated_gpus + gpus, version=row.version + 1)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            return
    raise CapacityRace("lifecycle.capacity_race", pool=pool_id, requested=gpus, free=0)


def _release(s: Session, pool_id: str, gpus: int) -> None:
    s.execute(update(PoolCapacityRow).where(PoolCapacityRow.pool_id == pool_id)
              .values(allocated_gpus=PoolCapacityRow.allocated_gpus - gpus, version=PoolCapacityRow.version + 1)
              .execution_options(synchronize_session=False))


def lock_pool(s: Session, pool_id: str) -> None:
    """Take the pool's capacity-row lock for the rest of the transaction, before a capacity check
    that is not a grant (an extension, a support transfer out of the pool): the row is read
    ``FOR UPDATE`` (PostgreSQL) and its version bumped in the database, so the write lock is held
    on SQLite too and a grant that read the row before (:func:`_reserve`) sees a new version and
    re-reads. The row must exist (:func:`ensure_capacity_rows`, before the unit of work)."""
    s.execute(select(PoolCapacityRow.pool_id).where(PoolCapacityRow.pool_id == pool_id).with_for_update()).scalar_one()
    s.execute(update(PoolCapacityRow).where(PoolCapacityRow.pool_id == pool_id)
              .values(version=PoolCapacityRow.version + 1).execution_options(synchronize_session=False))


def extend_booking(s: Session, org: Org, alloc: AllocationRow, new_end: date) -> None:
    """Move an allocation's end to ``new_end`` if its GPUs are free on every added day (other
    allocations — a scheduled one from its start date — counted under the pool's capacity-row
    lock, like a grant), else raise :class:`CapacityRace`."""
    old_end = alloc.ends_on
    if old_end is not None and new_end > old_end:
        lock_pool(s, alloc.pool_id)
        free = cap.free_by_pool(s, org, start=max(old_end, utc_today()), end=new_end,
                                exclude_allocation=alloc.id).get(alloc.pool_id, 0)
        if alloc.gpus > free:
            raise CapacityRace("rules.extension_overbooks", pool=alloc.pool_id, requested=alloc.gpus,
                               free=max(free, 0), start=old_end.isoformat(), end=new_end.isoformat())
    alloc.ends_on = new_end


def release_allocation(s: Session, alloc: AllocationRow, at: datetime) -> str:
    """Give an allocation's GPUs back to its pool (through the allocation transition table); returns
    the status it had."""
    before = move_allocation(alloc, "released")
    alloc.released_at = at
    _release(s, alloc.pool_id, alloc.gpus)
    return before


def _can_see(actor: Identity, row: RequestRow, org: Org) -> bool:
    if row.created_by == actor.id:
        return True
    if row.status == "draft":
        return False
    if actor.role in ("hq_ops", "admin"):
        return True
    if actor.role == "prov_ops":
        return row.unit == actor.province or row.department in _depts_of_unit(actor.province, org)
    if actor.role in ("applicant", "dept_head"):
        # a department head approves only their own department's requests
        return row.department == _dept_of(actor, org)
    # the company-wide approvers (committee, management) see the requests that carry their step
    mine = steps_taken_by(actor)
    return any(step.role in mine for step in row.steps)


def _load(s: Session, request_id: int, *, lock: bool = False) -> RequestRow:
    query = select(RequestRow).where(RequestRow.id == request_id)
    if lock:
        query = query.with_for_update()
    row = s.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound("error.not_found", what="request", id=request_id)
    return row


def _load_visible(s: Session, actor: Identity, request_id: int, org: Org, *, lock: bool = False) -> RequestRow:
    row = _load(s, request_id, lock=lock)
    if not _can_see(actor, row, org):
        raise NotFound("error.not_found", what="request", id=request_id)
    return row


def _view(row: RequestRow) -> dict[str, Any]:
    """The plain-dict view of a request returned by every service."""
    return {
        "id": row.id, "number": row.number, "status": row.status, "created_by": row.created_by,
        "department": row.department, "unit": row.unit, "project": row.project,
        "demand_type": row.demand_type, "demand_subtype": row.demand_subtype, "pool": row.pool_id,
        "requested_gpus": row.requested_gpus, "duration_days": row.duration_days,
        "start_date": row.start_date.isoformat() if row.start_date else None,
        "approved_gpus": row.approved_gpus, "approved_days": row.approved_days, "priority": row.priority,
        "estimate_id": row.estimate_id, "form": row.form, "flags": list(row.flags or []), "capacity": row.capacity,
        "tier": row.tier, "tier_message": row.tier_message,
        "expected_review_working_days": row.expected_review_working_days,
        "claim_deadline": _aware(row.claim_deadline), "claimed_by": row.claimed_by, "decision": row.decision,
        "decision_reason": row.decision_reason, "created_at": _aware(row.created_at),
        "timestamps": {s: _aware(getattr(row, timestamp_field(s))) for s in STATUSES
                       if getattr(row, timestamp_field(s)) is not None},
        "steps": [{"seq": st.seq, "role": st.role, "status": st.status, "decided_by": st.decided_by,
                   "decided_at": _aware(st.decided_at), "reason": st.reason, "adjusted_gpus": st.adjusted_gpus,
                   "adjusted_days": st.adjusted_days} for st in row.steps],
        "emergency": row.emergency_category is not None, "emergency_category": row.emergency_category,
        "justification": row.justification or "", "emergency_plan": row.emergency_plan,
        "review_due": row.review_due.isoformat() if row.review_due else None, "reviewed_at": _aware(row.reviewed_at),
    }


def _may_apply_for(actor: Identity, department: str, org: Org) -> bool:
    """Who applies for which department: applicants and department heads for their own (the
    seed's form names the applicant's own department, and a head approves only their own);
    provincial ops on behalf of a department of their province (they act only in their province);
    HQ ops and admins for any (they act company-wide; HQ ops file requests for teams, as the
    services' tests of HQ ops' own requests show). Nobody else applies at all (``APPLY_ROLES``)."""
    if actor.role in ("hq_ops", "admin", "system"):
        return True
    if actor.role == "prov_ops":
        return department in _depts_of_unit(actor.province, org)
    return department == _dept_of(actor, org)


def _ref_errors(form: IntakeForm, actor: Identity, org: Org, *,
                allow_dynamic_reserve: bool = False) -> list[InputError]:
    """What is wrong with the references of a form (each field that is filled in), in the order
    submitting reports them; the dynamic reserve is refused (only the green channel passes
    ``allow_dynamic_reserve``)."""
    errors: list[InputError] = []
    department = form.department
    if department and department not in org.departments:
        errors.append(InputError("error.choice", field="department", value=department,
                                 choices=", ".join(org.departments)))
    if form.project:
        project = org.projects.get(form.project)
        if project is None:
            errors.append(InputError("error.choice", field="project", value=form.project,
                                     choices=", ".join(org.projects)))
        elif department in org.departments and project.department != department:
            errors.append(InputError("lifecycle.project_not_in_department", field="project", project=form.project,
                                     department=department))
    if department in org.departments and not _may_apply_for(actor, department, org):
        errors.append(DepartmentNotYours("rules.department_not_yours", field="department", department=department))
    if form.pool:
        pool = org.pools.get(form.pool)
        if pool is None:
            errors.append(InputError("error.choice", field="pool", value=form.pool, choices=", ".join(org.pools)))
        elif pool.kind == "dynamic_reserve" and not allow_dynamic_reserve:
            errors.append(InputError("lifecycle.pool_not_offered", field="pool", pool=pool.id))
    for other in form.extra_pools or ():
        if other not in org.pools:
            errors.append(InputError("error.choice", field="extra_pools", value=other, choices=", ".join(org.pools)))
            break
    if form.gpu_model:
        catalog = load_catalog()
        try:
            catalog.get(form.gpu_model)
        except InputError:
            errors.append(InputError("rules.unknown_gpu_model", field="gpu_model", value=form.gpu_model,
                                     known=", ".join(catalog.ids())))
    return errors


def _check_refs(form: IntakeForm, actor: Identity, org: Org, *, allow_dynamic_reserve: bool = False) -> None:
    """Raise the first of :func:`_ref_errors`."""
    errors = _ref_errors(form, actor, org, allow_dynamic_reserve=allow_dynamic_reserve)
    if errors:
        raise errors[0]


def _estimate_outputs(s: Session, estimate_id: int | None, actor: Identity, org: Org) -> dict | None:
    if not estimate_id:
        return None
    row = s.get(EstimateRow, estimate_id)
    visible = row is not None and (row.created_by == actor.id or actor.role in OPS_ROLES | {"dept_head"}
                                   or (row.department and row.department == actor.department))
    if not visible:
        raise InputError("lifecycle.estimate_not_found", field="estimate_id", id=estimate_id)
    return row.outputs


# --------------------------------------------------------------------------- pre-check, drafts, submission


@dataclass
class _Assessment:
    """Everything submitting a form now would find: what :func:`precheck` shows and :func:`submit`
    acts on (one function for both, so they never disagree)."""

    missing: list[str]
    errors: list[InputError]  # in the order submitting raises them
    flags: list[Flag]
    capacity: CapacityCheck | None
    routing: Routing | None


def _auto_approved(s: Session, actor: Identity, department: str) -> tuple[int, int]:
    """GPUs the system approved by itself (tiers without steps) within the caps' window: for the
    applicant ``actor`` and for ``department``. A cancelled request does not count."""
    days = load_tiers().settings.get("auto_cap_window_days")
    if not days:
        return 0, 0
    gpus = func.coalesce(func.sum(func.coalesce(RequestRow.approved_gpus, RequestRow.requested_gpus)), 0)
    base = select(gpus).where(RequestRow.tier.in_(auto_tier_ids() or ("",)),
                              RequestRow.approved_at >= _now() - timedelta(days=int(days)),
                              RequestRow.status != "cancelled")
    return (int(s.scalar(base.where(RequestRow.created_by == actor.id)) or 0),
            int(s.scalar(base.where(RequestRow.department == department)) or 0))


def _assess(s: Session, actor: Identity, form: IntakeForm, org: Org, *, lock: bool = False) -> _Assessment:
    """Check ``form`` as submitting it now would. ``lock``: the caller is about to grant — the
    auto-approvals of the applicant and the department are counted under a lock of each, so two
    requests at once cannot both slip under a cap."""
    today = utc_today()
    errors: list[InputError] = []
    department = form.department or ""
    if lock:
        for name in sorted({f"auto_approval:user:{actor.id}", f"auto_approval:department:{department}"}):
            xact_lock(s, name)

    def attempt(check: Any) -> Any:
        try:
            return check()
        except InputError as exc:
            errors.append(exc)
            return None

    missing = missing_fields(form)
    attempt(lambda: consistency_errors(form, today))
    attempt(lambda: check_start_horizon(form.start_date, today))
    errors.extend(_ref_errors(form, actor, org))
    estimate = attempt(lambda: _estimate_outputs(s, form.estimate_id, actor, org))
    pool = org.pools.get(form.pool or "")
    if pool is None or not form.requested_gpus:
        return _Assessment(missing, errors, [], None, None)
    f = facts(form, org, has_estimate=estimate is not None)
    flags = check_compliance(f)
    blocking = [fl for fl in flags if fl.block]
    if blocking:
        errors.append(InputError("lifecycle.compliance_blocked", field="compliance", rule=blocking[0].id))
    start, end = cap.window(form.start_date, form.duration_days, today)
    capacity = capacity_check(pool, form.requested_gpus, _free_by_pool(s, org, start, end), org)
    user_gpus, department_gpus = _auto_approved(s, actor, department)
    f.update(auto_approval_facts(user_gpus, department_gpus, form.requested_gpus))
    return _Assessment(missing, errors, flags, capacity, route(f))


def _error_view(exc: ComputeLoopError) -> dict[str, Any]:
    params = {k: v if isinstance(v, (int, float, bool, str)) or v is None else str(v) for k, v in exc.params.items()}
    return {"key": exc.key, "field": getattr(exc, "field", None), "params": params}


def _tier_view(routing: Routing) -> dict[str, Any]:
    return {"id": routing.tier, "key": routing.msg.key, "params": dict(routing.msg.params),
            "steps": list(routing.steps), "expected_review_working_days": routing.expected_review_working_days}


def precheck(*, sessions: sessionmaker[Session], actor: Identity, form: IntakeForm | dict) -> dict[str, Any]:
    """What submitting ``form`` now would say, without writing anything — the same checks
    :func:`submit` runs (one function for both).

    Returns ``{"missing": [...], "errors": [{"key", "field", "params"}, ...], "flags": [...],
    "capacity": {...} | None, "tier": {...} | None}``: ``errors`` are what submitting would refuse
    (the first is what it raises once nothing is missing): a past or too distant start date,
    unknown or foreign department, project, pool or GPU model, an estimate not found, a blocking
    compliance rule. ``tier`` is the route, auto-approval caps included.

    Raises:
        PermissionDenied: executives and the committee do not apply.
        InputError: a value of the form is malformed.
    """
    require(actor, APPLY_ROLES, "check a resource application")
    form = _as_form(form)
    org = load_org()
    with unit_of_work(sessions) as s:
        a = _assess(s, actor, form, org)
    return {"missing": a.missing, "errors": [_error_view(e) for e in a.errors],
            "flags": [fl.as_dict() for fl in a.flags], "capacity": a.capacity.as_dict() if a.capacity else None,
            "tier": _tier_view(a.routing) if a.routing else None}


def save_draft(*, sessions: sessionmaker[Session], actor: Identity, form: IntakeForm | dict,
               request_id: int | None = None) -> int:
    """Save a form as a draft (complete or not); returns the request id. Resume with ``request_id``.

    Raises:
        PermissionDenied: the role may not apply, or the draft is someone else's.
        ComputeLoopError: ``lifecycle.not_a_draft`` — the request was submitted already.
        InputError: a malformed value (names the field).
    """
    require(actor, APPLY_ROLES, "save a resource application")
    form = _as_form(form)
    org = load_org()
    now = _now()
    with unit_of_work(sessions) as s:
        if request_id is None:
            row = RequestRow(status="draft", created_by=actor.id, created_by_email=actor.email, created_at=now,
                             updated_at=now, draft_at=now, form={}, flags=[])
            _fill(row, form, org)
            s.add(row)
            s.flush()
            _audit(s, actor, "request.created", row, after={"status": "draft"}, at=now)
            return row.id
        row = _load(s, request_id, lock=True)
        if row.created_by != actor.id:
            raise PermissionDenied("error.permission_denied", action="edit this draft", role=actor.role)
        if row.status != "draft":
            raise ComputeLoopError("lifecycle.not_a_draft", number=row.number or row.id, status=row.status)
        _fill(row, form, org)
        row.updated_at = now
        _audit(s, actor, "request.draft_saved", row, at=now)
        return row.id


def _fill(row: RequestRow, form: IntakeForm, org: Org) -> None:
    pool = org.pools.get(form.pool or "")
    row.form = form.to_dict()
    row.department = form.department or ""
    row.project = form.project or ""
    row.demand_type = form.demand_type or ""
    row.demand_subtype = form.demand_subtype or ""
    row.pool_id = form.pool or ""
    row.unit = org.clusters[pool.cluster].unit if pool else ""
    row.requested_gpus = form.requested_gpus or 0
    row.duration_days = form.duration_days or 0
    row.start_date = form.start_date
    row.priority = form.priority
    row.estimate_id = form.estimate_id


_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _submission_token(value: Any) -> str | None:
    """The submission token as given (None: the caller sends none); a malformed one names its field."""
    if value is None:
        return None
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise InputError("lifecycle.bad_value", field="idempotency_key", value=str(value)[:80])
    return value


def _submitted_with(s: Session, actor: Identity, token: str) -> RequestRow | None:
    """The request ``actor`` submitted with ``token``, if any."""
    query = select(RequestRow).where(RequestRow.created_by == actor.id, RequestRow.idempotency_key == token)
    return s.execute(query).scalar_one_or_none()


def _repeat_view(row: RequestRow) -> dict[str, Any]:
    """What a repeated submission returns: the first request, marked as found rather than made."""
    return {**_view(row), "duplicate": True}


def _earlier_submission(sessions: sessionmaker[Session], actor: Identity, token: str | None) -> dict[str, Any] | None:
    """The view of the request ``actor`` already submitted with ``token`` (None when there is none)."""
    if token is None:
        return None
    with unit_of_work(sessions) as s:
        row = _submitted_with(s, actor, token)
        return _repeat_view(row) if row is not None else None


def submit(*, sessions: sessionmaker[Session], actor: Identity, form: IntakeForm | dict | None = None,
           request_id: int | None = None, queue_if_short: bool = False,
           idempotency_key: str | None = None) -> dict[str, Any]:
    """Submit a resource application: pre-check, route, and approve at once when the tier allows.

    Args:
        form: the intake form (a dict or :class:`IntakeForm`); omitted to submit the saved draft
            ``request_id`` as it is.
        request_id: a draft of the actor's to submit (its form is replaced by ``form`` if given).
        queue_if_short: when the pool lacks the GPUs, queue the request instead of refusing it.
        idempotency_key: the submission token of the form (8–64 letters, digits, ``-`` or ``_``;
            the Apply page creates one whenever its form is (re)started). A second submission with
            the token ``actor`` already submitted with — a double click, a resubmission, two at
            once — returns the first request (``duplicate`` True) and changes nothing, before any
            check of the form. Without a token every call submits.

    Returns the request view (number, status, flags, tier and its message, capacity, steps...) and
    ``duplicate`` (False when this call made the request).

    The checks are :func:`precheck`'s (one function for both). A standard request is approved at
    once unless the applicant's or the department's auto-approvals of the window exceed a cap
    (``auto_cap_*`` of data/approval_tiers.yaml: tier ``auto_capped``, ops decide). An approved
    request whose start date is ahead is ``scheduled``: provisioned by the daily job on that day.

    Raises:
        InputError: ``lifecycle.incomplete`` (field = first missing, ``missing`` = all of them),
            a malformed or inconsistent value, a start date in the past or beyond the horizon
            (``rules.start_beyond_horizon``), an unknown GPU model, a blocking compliance rule
            (``lifecycle.compliance_blocked``), too few free GPUs over the request's window without
            ``queue_if_short`` (``lifecycle.capacity_short`` with the largest shape that fits and
            other pools). Nothing is written in any of these cases.
        PermissionDenied: executives and the committee do not apply; a draft of someone else's;
            a department the actor may not apply for (:class:`DepartmentNotYours`, field
            ``department``).
        CapacityRace: the GPUs went to a concurrent approval between the pre-check and the grant.
    """
    require(actor, APPLY_ROLES, "submit a resource application")
    token = _submission_token(idempotency_key)
    earlier = _earlier_submission(sessions, actor, token)
    if earlier is not None:
        return earlier
    org = load_org()
    if form is None:
        if request_id is None:
            raise InputError("lifecycle.incomplete", field="form", missing="form")
        with unit_of_work(sessions) as s:
            draft = _load_visible(s, actor, request_id, org)  # someone else's draft stays hidden
            if draft.created_by != actor.id:
                raise PermissionDenied("error.permission_denied", action="submit this draft", role=actor.role)
            form = IntakeForm.from_dict(draft.form)
    form = _as_form(form)
    missing = missing_fields(form)
    if missing:
        raise InputError("lifecycle.incomplete", field=missing[0], missing=", ".join(missing))
    if form.pool in org.pools:
        ensure_capacity_rows(sessions, [form.pool])
    now = _now()
    try:
        with unit_of_work(sessions) as s:
            if token is not None:
                # Two submissions of one form at once: the second waits here for the first to end,
                # then finds its request (before checks that the first one's grant would change).
                xact_lock(s, f"submit:{actor.id}:{token}")
                first = _submitted_with(s, actor, token)
                if first is not None:
                    return _repeat_view(first)
            checked = _assess(s, actor, form, org, lock=True)
            if checked.errors:
                raise checked.errors[0]
            flags, capacity, routing = checked.flags, checked.capacity, checked.routing
            assert capacity is not None and routing is not None  # complete form, known pool
            if not capacity.fits and not queue_if_short:
                m = capacity.msg()
                raise InputError(m.key, field="requested_gpus", **dict(m.params))
            row = _submitted_row(s, actor, form, org, request_id, now)
            row.idempotency_key = token
            row.flags = [fl.as_dict() for fl in flags]
            row.capacity = capacity.as_dict()
            row.tier = routing.tier
            row.tier_message = {"key": routing.msg.key, "params": dict(routing.msg.params)}
            row.expected_review_working_days = routing.expected_review_working_days
            steps = routing.steps or ((ops_role_for(facts(form, org)),) if not capacity.fits else ())
            for seq, role in enumerate(steps, start=1):
                row.steps.append(ApprovalStepRow(seq=seq, role=role, status="pending"))
            _move(s, row, "submitted", actor, "submitted", at=now)
            row.number = request_number(now.year, row.id)
            if steps:
                row.claim_deadline = add_working_days(now, int(load_tiers().settings.get("claim_working_days", 1)))
            _notify_applicant(s, row, "submitted", "request_submitted",
                              expected_review_working_days=routing.expected_review_working_days,
                              claim_deadline=_iso(row.claim_deadline), tier_key=routing.msg.key,
                              flags=[fl.id for fl in flags])
            if not capacity.fits:
                _move(s, row, "queued", SYSTEM, "capacity_short")
                s.flush()
                _notify_reviewers(s, row, row.steps[0], org)
            elif routing.auto:
                _grant(s, row, org, SYSTEM, reason=f"tier:{routing.tier}", final="approved")
            else:
                s.flush()
                _notify_reviewers(s, row, row.steps[0], org)
            s.flush()
            view = {**_view(row), "duplicate": False}
    except StaleDataError:
        raise ComputeLoopError("lifecycle.concurrent_update", id=request_id or 0) from None
    except IntegrityError:
        # the unique (applicant, token) index caught a submission the lookup above missed
        earlier = _earlier_submission(sessions, actor, token)
        if earlier is None:
            raise
        return earlier
    return _after_approval(sessions, view)


def _after_approval(sessions: sessionmaker[Session], view: dict[str, Any], provisioner: Any = None) -> dict[str, Any]:
    """Provision a request whose approval has just committed; the outcome goes under ``provisioning``."""
    if view["status"] in ("approved", "adjusted"):
        from core.lifecycle.provisioning import provision_after_approval

        view["provisioning"] = provision_after_approval(sessions=sessions, request_id=view["id"],
                                                        provisioner=provisioner)
    return view


def _submitted_row(s: Session, actor: Identity, form: IntakeForm, org: Org, request_id: int | None,
                   now: datetime) -> RequestRow:
    if request_id is None:
        row = RequestRow(status="draft", created_by=actor.id, created_by_email=actor.email, created_at=now,
                         updated_at=now, draft_at=now, form={}, flags=[])
        _fill(row, form, org)
        s.add(row)
        s.flush()
        _audit(s, actor, "request.created", row, after={"status": "draft"}, at=now)
        return row
    row = _load(s, request_id, lock=True)
    if row.created_by != actor.id:
        raise PermissionDenied("error.permission_denied", action="submit this draft", role=actor.role)
    _fill(row, form, org)
    return row


def _grant(s: Session, row: RequestRow, org: Org, actor: Identity, *, reason: str, final: str) -> None:
    """Book the pool's GPUs race-safely over the request's window, create (or bring back) the
    allocation and move the request to approved/adjusted. The allocation is ``scheduled`` while its
    start date is ahead (nothing is provisioned before it), else ``approved``."""
    gpus = row.approved_gpus or row.requested_gpus
    days = row.approved_days or row.duration_days
    row.approved_gpus, row.approved_days = gpus, days
    today = utc_today()
    previous = s.scalars(select(AllocationRow).where(AllocationRow.request_id == row.id)).first()
    if previous is not None and previous.status in COMMITTED:
        raise ComputeLoopError("lifecycle.concurrent_update", id=row.id)
    # a requeued (preempted) request starts again today; a new one on its start date
    start = today if previous is not None or row.start_date is None else row.start_date
    end = end_of(start, days)
    _reserve(s, org, row.pool_id, gpus, max(start, today), end)
    event = "approved"
    if previous is None:
        alloc = AllocationRow(request_id=row.id, pool_id=row.pool_id, gpus=gpus, priority=row.priority,
                              starts_on=start, ends_on=end, created_at=_now(), attempts=0)
        move_allocation(alloc, status_on_grant(start, today))
        s.add(alloc)
    else:
        # a requeued (preempted) request granted again: its released allocation row comes back,
        # keeping its namespace (state saved in its volumes) for the idempotent re-provisioning
        event = f"approved:{int(_aware(previous.released_at or _now()).timestamp())}"
        move_allocation(previous, status_on_grant(start, today))
        previous.pool_id, previous.gpus, previous.priority = row.pool_id, gpus, row.priority
        previous.starts_on, previous.ends_on = start, end
        previous.released_at, previous.preempted_by = None, None
        previous.failed_step, previous.error = None, None
    _move(s, row, final, actor, reason)
    _notify_applicant(s, row, event, "request_approved", reason=row.decision_reason or _reason_in_words(row, reason),
                      adjusted=final == "adjusted")


def _reason_in_words(row: RequestRow, reason: str) -> str:
    """A system decision's reason as the applicant reads it: an automatic approval ("tier:<id>" in the
    audit trail) says which rule approved it, in the applicant's language."""
    if reason.startswith("tier:") and row.tier_message:
        return Msg(row.tier_message["key"], dict(row.tier_message.get("params") or {})).render(
            notice_lang(row.created_by))
    return reason


# --------------------------------------------------------------------------- reading


def list_requests(*, sessions: sessionmaker[Session], actor: Identity, status: str | None = None,
                  limit: int = 200) -> list[dict[str, Any]]:
    """Requests ``actor`` may see, newest first.

    Applicants and department heads see their department's (drafts only their own), provincial ops
    their province's, HQ ops and admins all.

    Raises:
        PermissionDenied: executives and the committee read only published material.
    """
    require(actor, APPLY_ROLES, "list resource applications")
    org = load_org()
    with unit_of_work(sessions) as s:
        query = select(RequestRow).order_by(RequestRow.id.desc())
        if status:
            query = query.where(RequestRow.status == status)
        not_draft = RequestRow.status != "draft"
        if actor.role == "prov_ops":
            scope = or_(RequestRow.unit == actor.province,
                        RequestRow.department.in_(sorted(_depts_of_unit(actor.province, org)) or [""]))
            query = query.where(or_(RequestRow.created_by == actor.id, not_draft & scope))
        elif actor.role in ("applicant", "dept_head"):
            query = query.where(or_(RequestRow.created_by == actor.id,
                                    not_draft & (RequestRow.department == _dept_of(actor, org))))
        else:
            query = query.where(or_(RequestRow.created_by == actor.id, not_draft))
        return [_view(r) for r in s.scalars(query.limit(limit))]


def get_request(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> dict[str, Any]:
    """One request, if ``actor`` may see it (otherwise :class:`NotFound`)."""
    org = load_org()
    with unit_of_work(sessions) as s:
        return _view(_load_visible(s, actor, request_id, org))


def pending_approvals(*, sessions: sessionmaker[Session], actor: Identity) -> list[dict[str, Any]]:
    """Open requests whose current step waits for ``actor``'s role (admins: every open request).

    Raises:
        PermissionDenied: applicants approve nothing.
    """
    require(actor, REVIEW_ROLES, "review resource applications")
    org = load_org()
    with unit_of_work(sessions) as s:
        rows = s.scalars(select(RequestRow).where(RequestRow.status.in_(sorted(OPEN))).order_by(RequestRow.id))
        out = []
        for row in rows:
            step = _current_step(row)
            if step is None or row.created_by == actor.id:
                continue
            if actor.role == "admin" or (step.role in steps_taken_by(actor) and _in_scope(actor, row, org)):
                out.append(_view(row))
        return out


def timeline(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> list[dict[str, Any]]:
    """The audit events of a request in order: who did what, when, why, status before/after."""
    org = load_org()
    with unit_of_work(sessions) as s:
        _load_visible(s, actor, request_id, org)
        events = s.scalars(select(AuditEventRow).where(AuditEventRow.subject == f"request:{request_id}")
                           .order_by(AuditEventRow.at, AuditEventRow.id))
        return [{"at": _aware(e.at), "actor": e.actor, "action": e.action, "reason": e.reason,
                 "before": e.before, "after": e.after} for e in events]


def feasibility(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> list[dict[str, Any]]:
    """The pre-filled feasibility checklist of a request for its reviewer.

    Items: gpu_fit, storage_fit, network_domain, software, conflict, capacity (the pool's capacity
    figures today and the GPUs free over the request's window, as the Apply check counts them) —
    each with status ok/warn/fail and a message (``key`` + ``params``).

    Raises:
        PermissionDenied: only approvers and admins review.
        NotFound: no such request, or not visible to ``actor``.
    """
    require(actor, REVIEW_ROLES, "assess the feasibility of a resource application")
    org = load_org()
    with unit_of_work(sessions) as s:
        row = _load_visible(s, actor, request_id, org)
        form = IntakeForm.from_dict(row.form)
        estimate = s.get(EstimateRow, row.estimate_id).outputs if row.estimate_id else None
        # the room the Apply check counts: the request's window, its own allocation (if granted) aside
        start, end = cap.window(form.start_date, form.duration_days, utc_today())
        own = s.scalar(select(AllocationRow.id).where(AllocationRow.request_id == row.id))
        free = cap.free_by_pool(s, org, start=start, end=end, exclude_allocation=own)
        items = feas.assess(form, org=org, catalog=load_catalog(), cuda=feas.load_cuda_table(),
                            estimate=estimate, high_priority_gpus=_high_priority_gpus(s, row.pool_id),
                            pool_today=cap.figures_today(s, org)[row.pool_id], window_free=free[row.pool_id])
        return [i.as_dict() for i in items]


# --------------------------------------------------------------------------- review


def _current_step(row: RequestRow) -> ApprovalStepRow | None:
    return next((st for st in row.steps if st.status == "pending"), None)


def _in_scope(actor: Identity, row: RequestRow, org: Org) -> bool:
    if actor.role == "prov_ops":
        return row.unit == actor.province
    if actor.role == "dept_head":
        return row.department == _dept_of(actor, org)
    return True


def _may_take(actor: Identity, row: RequestRow, step: ApprovalStepRow, org: Org) -> bool:
    """True when ``actor`` may take ``step`` of ``row``: the step is one their role (and level)
    takes, and the request is in their scope (provincial ops: their province; a department head:
    their department)."""
    return step.role in steps_taken_by(actor) and _in_scope(actor, row, org)


def claim(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> dict[str, Any]:
    """Ops take a submitted or queued request into review (submitted/queued → in_review): only
    someone who may take its current step (HQ ops do not claim a provincial request, admins take
    no step).

    Raises:
        PermissionDenied: not ops, the actor's own request, or a step the actor does not take.
        NotFound: no such request, or not visible to ``actor``.
        InvalidTransition: the request is not waiting to be claimed.
    """
    require(actor, OPS_ROLES, "claim a resource application")
    org = load_org()
    with unit_of_work(sessions) as s:
        row = _load_visible(s, actor, request_id, org, lock=True)
        if row.created_by == actor.id:
            raise PermissionDenied("lifecycle.own_request", number=row.number or row.id)
        step = _current_step(row) if row.status in ("submitted", "queued") else None
        if step is None:
            raise InvalidTransition(row.status, "in_review")
        if not _may_take(actor, row, step, org):
            raise PermissionDenied("error.permission_denied", action="claim this request", role=actor.role)
        _move(s, row, "in_review", actor, "claimed")
        row.claimed_by = actor.id
        return _view(row)


def _named_step(row: RequestRow, step: int | str) -> ApprovalStepRow | None:
    """The step of ``row`` that ``step`` names: its number (seq), or its role (the pending step of
    that role, else the last one)."""
    if isinstance(step, int):
        return next((st for st in row.steps if st.seq == step), None)
    of_role = [st for st in row.steps if st.role == step]
    return next((st for st in of_role if st.status == "pending"), of_role[-1] if of_role else None)


def _step_arg(step: Any) -> int | str | None:
    """``step`` as a seq (int, or digits) or a role name; InputError (field "step") otherwise."""
    if step is None:
        return None
    if isinstance(step, bool):
        raise InputError("rules.step_unknown", field="step", step=str(step), steps="-")
    if isinstance(step, int):
        return step
    text = str(step).strip()
    if text.isdigit() and len(text) <= 6:
        return int(text)
    if text in STEP_ROLES:
        return text
    raise InputError("rules.step_unknown", field="step", step=text[:40], steps=", ".join(sorted(STEP_ROLES)))


def decide(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, decision: str, reason: str,
           adjusted_gpus: int | None = None, adjusted_days: int | None = None,
           provisioner: Any = None, step: int | str | None = None) -> dict[str, Any]:
    """Take an approval step of a request: approve, approve with adjustments, or reject.

    The last approving step books the GPUs race-safely (status approved, or adjusted when any
    step changed the GPU count or duration) and creates the allocation; once that has committed
    the request is provisioned automatically (outcome under ``provisioning`` in the result), or
    waits as ``scheduled`` until its start date.

    Args:
        decision: approve | approve_adjusted | reject.
        reason: why — required for every outcome.
        adjusted_gpus, adjusted_days: the new shape (approve_adjusted needs at least one).
        provisioner: the cluster backend for the automatic provisioning (default: the settings').
        step: the step the decision is for, by number (seq) or role, as the reviewer saw it —
            the page and the CLI always send it; a step that was decided meanwhile, or is not
            the current one, is refused instead of the decision landing on another step. None
            (programmatic callers: demo data, tests) takes the current step.

    Raises:
        InputError: unknown decision, no reason, a missing/invalid adjustment; ``rules.step_unknown``,
            ``rules.step_stale`` or ``rules.step_not_current`` (field ``step``).
        PermissionDenied: the actor's role is not the step's, out of scope, or it is their own request.
        InvalidTransition: the request waits for no decision.
        CapacityRace: the pool no longer has the GPUs (``free`` says how many are left).
        NotFound: no such request, or not visible to ``actor`` (nothing about it is told).
    """
    if decision not in DECISIONS:
        raise InputError("error.choice", field="decision", value=decision, choices=", ".join(DECISIONS))
    reason = check_length((reason or "").strip(), field="reason", kind="reason")
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    if decision == "approve_adjusted":
        if adjusted_gpus is None and adjusted_days is None:
            raise InputError("lifecycle.adjustment_required", field="adjusted_gpus")
        for name, value in (("adjusted_gpus", adjusted_gpus), ("adjusted_days", adjusted_days)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InputError("error.out_of_range", field=name, value=value, low="1", high="100000")
    wanted = _step_arg(step)
    if not steps_taken_by(actor):
        raise PermissionDenied("error.permission_denied", action="approve resource applications", role=actor.role)
    org = load_org()
    ensure_capacity_rows(sessions, org.pools)
    try:
        with unit_of_work(sessions) as s:
            row = _load_visible(s, actor, request_id, org, lock=True)
            if row.created_by == actor.id:
                raise PermissionDenied("lifecycle.own_request", number=row.number or row.id)
            target = "rejected" if decision == "reject" else "approved"
            current = _current_step(row) if row.status in OPEN else None
            if wanted is not None:
                named = _named_step(row, wanted)
                if named is None:
                    raise InputError("rules.step_unknown", field="step", step=str(wanted),
                                     steps=", ".join(f"{st.seq} {st.role}" for st in row.steps) or "-")
                if named.status != "pending":
                    raise InputError("rules.step_stale", field="step", seq=named.seq,
                                     role=Msg(f"role.{named.role}"), status=Msg(f"step_status.{named.status}"),
                                     by=named.decided_by or "-")
                if named is not current and current is not None:
                    raise InputError("rules.step_not_current", field="step", seq=named.seq,
                                     role=Msg(f"role.{named.role}"), current=current.seq,
                                     current_role=Msg(f"role.{current.role}"))
            if current is None:
                raise InvalidTransition(row.status, target)
            step_row = current
            if not _may_take(actor, row, step_row, org):
                raise PermissionDenied("error.permission_denied", action=f"take the {step_row.role} step",
                                       role=actor.role)
            if any(st.decided_by == actor.id and st.role != step_row.role for st in row.steps):
                # four eyes: an L2 who did the initial review does not also assess the same request
                # (a re-grant of the same step after a requeue is not a second step)
                raise PermissionDenied("lifecycle.second_step_same_person", number=row.number or row.id)
            now = _now()
            if row.status != "in_review":
                _move(s, row, "in_review", actor, "claimed", at=now)
                row.claimed_by = row.claimed_by or actor.id
            step_row.decided_by, step_row.decided_at, step_row.reason = actor.id, now, reason
            step_row.status = {"approve": "approved", "approve_adjusted": "adjusted", "reject": "rejected"}[decision]
            if decision == "approve_adjusted":
                step_row.adjusted_gpus, step_row.adjusted_days = adjusted_gpus, adjusted_days
                row.approved_gpus = adjusted_gpus or row.approved_gpus or row.requested_gpus
                row.approved_days = adjusted_days or row.approved_days or row.duration_days
            _audit(s, actor, "request.step_decided", row, reason=reason,
                   before={"step": step_row.seq, "status": "pending"},
                   after={"step": step_row.seq, "role": step_row.role, "status": step_row.status,
                          "adjusted_gpus": adjusted_gpus, "adjusted_days": adjusted_days}, at=now)
            row.decision, row.decision_reason = decision, reason
            if decision == "reject":
                _move(s, row, "rejected", actor, reason)
                _notify_applicant(s, row, "rejected", "request_rejected", reason=reason)
            else:
                following = _current_step(row)
                if following is not None:
                    s.flush()
                    _notify_reviewers(s, row, following, org)
                else:
                    final = "adjusted" if any(st.status == "adjusted" for st in row.steps) else "approved"
                    _grant(s, row, org, actor, reason=reason, final=final)
            s.flush()
            view = _view(row)
    except StaleDataError:
        raise ComputeLoopError("lifecycle.concurrent_update", id=request_id) from None
    return _after_approval(sessions, view, provisioner)


def cancel(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, reason: str) -> dict[str, Any]:
    """Withdraw a request (its applicant) or cancel it (ops); a granted allocation is released
    (a scheduled one too: its GPUs are no longer booked).

    Raises:
        InputError: no reason.
        PermissionDenied: neither the applicant nor ops.
        InvalidTransition: the request is past the point of cancelling (e.g. active, rejected).
    """
    reason = check_length((reason or "").strip(), field="reason", kind="reason")
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    org = load_org()
    with unit_of_work(sessions) as s:
        row = _load_visible(s, actor, request_id, org, lock=True)
        if row.created_by != actor.id and actor.role not in OPS_ROLES:
            raise PermissionDenied("error.permission_denied", action="cancel this request", role=actor.role)
        _move(s, row, "cancelled", actor, reason)
        alloc = s.scalars(select(AllocationRow).where(AllocationRow.request_id == row.id,
                                                      AllocationRow.status.in_(sorted(COMMITTED)))).first()
        if alloc is not None:
            release_allocation(s, alloc, _now())
        return _view(row)


def pool_usage(*, sessions: sessionmaker[Session], actor: Identity) -> list[dict[str, Any]]:
    """Per pool: size, GPUs that count today (held, and scheduled ones whose start date has come),
    free today, GPUs booked by every allocation not released (scheduled ones included) and the
    capacity row's count (which equals the booked GPUs)."""
    require(actor, APPLY_ROLES, "read pool capacity")
    org = load_org()
    with unit_of_work(sessions) as s:
        held = _held_by_pool(s)
        booked = cap.booked_total(s)
        caps = {c.pool_id: c.allocated_gpus for c in s.scalars(select(PoolCapacityRow))}
    return [{"pool": p.id, "kind": p.kind, "gpu": p.gpu, "gpus": p.gpus, "held": held.get(p.id, 0),
             "free": p.gpus - held.get(p.id, 0), "booked": booked.get(p.id, 0), "capacity_row": caps.get(p.id)}
            for p in org.pools.values()]
