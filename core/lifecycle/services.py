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

from datetime import date, datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core.clock import aware as _aware, utc_now as _now
from core.db.models import AuditEventRow, EstimateRow
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError, NotFound
from core.estimation.catalog import load_catalog
from core.identity import OPS_ROLES, Identity, PermissionDenied, load_personas, notice_lang, require
from core.lifecycle import feasibility as feas
from core.lifecycle.forms import HIGH_PRIORITIES, IntakeForm, consistency_errors
from core.lifecycle.persistence import (
    HOLDING_ALLOCATION, AllocationRow, ApprovalStepRow, PoolCapacityRow, RequestRow,
)
from core.lifecycle.rules import (
    REVIEWER_ROLES, add_working_days, capacity_check, check_compliance, facts, load_tiers, missing_fields,
    ops_role_for, request_number, route, steps_taken_by,
)
from core.lifecycle.states import OPEN, STATUSES, InvalidTransition, RequestState, timestamp_field, transition
from core.notifications.outbox import OUTBOX, insert_once
from core.org import Org, load_org

APPLY_ROLES = frozenset({"applicant", "prov_ops", "hq_ops", "dept_head", "admin"})
REVIEW_ROLES = REVIEWER_ROLES | {"admin"}
DECISIONS = ("approve", "approve_adjusted", "reject")
SYSTEM = Identity(id="system", name="ComputeLoop", email="", role="system")
_RESERVE_ATTEMPTS = 5


class CapacityRace(ComputeLoopError):
    """The pool no longer has the GPUs this approval needs (another approval took them first)."""


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
    project = load_org().projects.get(row.project)
    return f"{row.number or row.id} {project.name_zh if project else row.project}".strip()


def _notice_params(row: RequestRow, **extra: Any) -> dict[str, Any]:
    params = {
        "request_id": row.id, "number": row.number or "", "title": _title(row), "applicant": row.created_by,
        "pool": row.pool_id,
        "gpus": row.approved_gpus or row.requested_gpus, "days": row.approved_days or row.duration_days,
        "tier": row.tier, "status": row.status,
    }
    params.update(extra)
    return params


def _notify(s: Session, *, dedup_key: str, recipient_id: str, recipient_email: str, template: str,
            params: dict[str, Any]) -> None:
    # exactly-once by dedup_key: a key queued before is skipped, never an error that undoes the change
    insert_once(s, OUTBOX, {"dedup_key": dedup_key, "recipient_id": recipient_id, "recipient_email": recipient_email,
                            "lang": notice_lang(recipient_id), "template": template, "params": params, "created_at": _now(),
                            "status": "pending", "attempts": 0, "next_attempt_at": None, "sent_at": None,
                            "last_error": ""}, "dedup_key")


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
    rows = s.execute(select(AllocationRow.pool_id, func.sum(AllocationRow.gpus))
                     .where(AllocationRow.status.in_(HOLDING_ALLOCATION)).group_by(AllocationRow.pool_id)).all()
    return {pool_id: int(total or 0) for pool_id, total in rows}


def _free_by_pool(s: Session, org: Org) -> dict[str, int]:
    held = _held_by_pool(s)
    return {p.id: p.gpus - held.get(p.id, 0) for p in org.pools.values()}


def _high_priority_gpus(s: Session, pool_id: str) -> int:
    total = s.scalar(select(func.sum(AllocationRow.gpus)).where(
        AllocationRow.pool_id == pool_id, AllocationRow.status.in_(HOLDING_ALLOCATION),
        AllocationRow.priority.in_(sorted(HIGH_PRIORITIES))))
    return int(total or 0)


def _ensure_capacity_rows(sessions: sessionmaker[Session], pool_ids: Iterable[str]) -> None:
    """Create missing ``pool_capacity`` rows in their own transaction (a concurrent insert is fine)."""
    wanted = set(pool_ids)
    with unit_of_work(sessions) as s:
        have = set(s.scalars(select(PoolCapacityRow.pool_id).where(PoolCapacityRow.pool_id.in_(wanted))))
    missing = wanted - have
    if not missing:
        return
    try:
        with unit_of_work(sessions) as s:
            held = _held_by_pool(s)
            for pool_id in sorted(missing):
                s.add(PoolCapacityRow(pool_id=pool_id, allocated_gpus=held.get(pool_id, 0), version=0))
    except IntegrityError:
        pass  # another transaction created them first


def _reserve(s: Session, org: Org, pool_id: str, gpus: int) -> None:
    """Add ``gpus`` to the pool's allocated count, or raise :class:`CapacityRace`.

    The row is locked (PostgreSQL ``FOR UPDATE``; SQLite serialises writers) and the update only
    applies if the version read is still current, so a lost race retries on fresh numbers.
    """
    size = org.pool(pool_id).gpus
    for _ in range(_RESERVE_ATTEMPTS):
        cap = s.execute(select(PoolCapacityRow).where(PoolCapacityRow.pool_id == pool_id).with_for_update()
                        .execution_options(populate_existing=True)).scalar_one()
        free = size - cap.allocated_gpus
        if gpus > free:
            raise CapacityRace("lifecycle.capacity_race", pool=pool_id, requested=gpus, free=max(free, 0))
        result = s.execute(
            update(PoolCapacityRow)
            .where(PoolCapacityRow.pool_id == pool_id, PoolCapacityRow.version == cap.version)
            .values(allocated_gpus=cap.allocated_gpus + gpus, version=cap.version + 1)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            return
    raise CapacityRace("lifecycle.capacity_race", pool=pool_id, requested=gpus, free=0)


def _release(s: Session, pool_id: str, gpus: int) -> None:
    s.execute(update(PoolCapacityRow).where(PoolCapacityRow.pool_id == pool_id)
              .values(allocated_gpus=PoolCapacityRow.allocated_gpus - gpus, version=PoolCapacityRow.version + 1)
              .execution_options(synchronize_session=False))


def _can_see(actor: Identity, row: RequestRow, org: Org) -> bool:
    if row.created_by == actor.id:
        return True
    if row.status == "draft":
        return False
    if actor.role in ("hq_ops", "admin"):
        return True
    if actor.role == "prov_ops":
        return row.unit == actor.province or row.department in _depts_of_unit(actor.province, org)
    if actor.role in ("applicant", "dept_head") and row.department == _dept_of(actor, org):
        return True
    # approvers see the requests that carry a step for their role
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


def _check_refs(form: IntakeForm, actor: Identity, org: Org, *, allow_dynamic_reserve: bool = False) -> None:
    """References of a complete form exist and belong together; the dynamic reserve is refused
    (only the green channel passes ``allow_dynamic_reserve``)."""
    if form.department not in org.departments:
        raise InputError("error.choice", field="department", value=form.department,
                         choices=", ".join(org.departments))
    project = org.projects.get(form.project or "")
    if project is None:
        raise InputError("error.choice", field="project", value=form.project, choices=", ".join(org.projects))
    if project.department != form.department:
        raise InputError("lifecycle.project_not_in_department", field="project", project=form.project,
                         department=form.department)
    if actor.role == "applicant" and form.department != _dept_of(actor, org):
        raise InputError("lifecycle.department_not_yours", field="department", department=form.department)
    pool = org.pool(form.pool or "")
    if pool.kind == "dynamic_reserve" and not allow_dynamic_reserve:
        raise InputError("lifecycle.pool_not_offered", field="pool", pool=pool.id)
    for other in form.extra_pools:
        org.pool(other)


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


def precheck(*, sessions: sessionmaker[Session], actor: Identity, form: IntakeForm | dict) -> dict[str, Any]:
    """What submitting ``form`` now would say, without writing anything.

    Returns ``{"missing": [...], "flags": [...], "capacity": {...} | None, "tier": {...} | None}``.

    Raises:
        PermissionDenied: executives and the committee do not apply.
        InputError: a value of the form is malformed.
    """
    require(actor, APPLY_ROLES, "check a resource application")
    form = _as_form(form)
    org = load_org()
    out: dict[str, Any] = {"missing": missing_fields(form), "flags": [], "capacity": None, "tier": None}
    pool = org.pools.get(form.pool or "")
    if pool is None or not form.requested_gpus:
        return out
    f = facts(form, org)
    out["flags"] = [fl.as_dict() for fl in check_compliance(f)]
    routing = route(f)
    out["tier"] = {"id": routing.tier, "key": routing.msg.key, "params": dict(routing.msg.params),
                   "steps": list(routing.steps),
                   "expected_review_working_days": routing.expected_review_working_days}
    with unit_of_work(sessions) as s:
        out["capacity"] = capacity_check(pool, form.requested_gpus, _free_by_pool(s, org), org).as_dict()
    return out


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


def submit(*, sessions: sessionmaker[Session], actor: Identity, form: IntakeForm | dict | None = None,
           request_id: int | None = None, queue_if_short: bool = False) -> dict[str, Any]:
    """Submit a resource application: pre-check, route, and approve at once when the tier allows.

    Args:
        form: the intake form (a dict or :class:`IntakeForm`); omitted to submit the saved draft
            ``request_id`` as it is.
        request_id: a draft of the actor's to submit (its form is replaced by ``form`` if given).
        queue_if_short: when the pool lacks the GPUs, queue the request instead of refusing it.

    Returns the request view (number, status, flags, tier and its message, capacity, steps...).

    Raises:
        InputError: ``lifecycle.incomplete`` (field = first missing, ``missing`` = all of them),
            a malformed or inconsistent value, a blocking compliance rule
            (``lifecycle.compliance_blocked``), too few free GPUs without ``queue_if_short``
            (``lifecycle.capacity_short`` with the largest shape that fits and other pools).
            Nothing is written in any of these cases.
        PermissionDenied: executives and the committee do not apply; a draft of someone else's.
        CapacityRace: the GPUs went to a concurrent approval between the pre-check and the grant.
    """
    require(actor, APPLY_ROLES, "submit a resource application")
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
    consistency_errors(form)
    _check_refs(form, actor, org)
    pool = org.pool(form.pool or "")
    _ensure_capacity_rows(sessions, [pool.id])
    now = _now()
    try:
        with unit_of_work(sessions) as s:
            estimate = _estimate_outputs(s, form.estimate_id, actor, org)
            f = facts(form, org, has_estimate=estimate is not None)
            flags = check_compliance(f)
            blocking = [fl for fl in flags if fl.block]
            if blocking:
                raise InputError("lifecycle.compliance_blocked", field="compliance", rule=blocking[0].id)
            capacity = capacity_check(pool, form.requested_gpus or 0, _free_by_pool(s, org), org)
            if not capacity.fits and not queue_if_short:
                m = capacity.msg()
                raise InputError(m.key, field="requested_gpus", **dict(m.params))
            routing = route(f)
            row = _submitted_row(s, actor, form, org, request_id, now)
            row.flags = [fl.as_dict() for fl in flags]
            row.capacity = capacity.as_dict()
            row.tier = routing.tier
            row.tier_message = {"key": routing.msg.key, "params": dict(routing.msg.params)}
            row.expected_review_working_days = routing.expected_review_working_days
            steps = routing.steps or ((ops_role_for(f),) if not capacity.fits else ())
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
            view = _view(row)
    except StaleDataError:
        raise ComputeLoopError("lifecycle.concurrent_update", id=request_id or 0) from None
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
    """Reserve the pool's GPUs race-safely, create the allocation and move to approved/adjusted."""
    gpus = row.approved_gpus or row.requested_gpus
    days = row.approved_days or row.duration_days
    row.approved_gpus, row.approved_days = gpus, days
    _reserve(s, org, row.pool_id, gpus)
    start = row.start_date
    previous = s.scalars(select(AllocationRow).where(AllocationRow.request_id == row.id)).first()
    event = "approved"
    if previous is None:
        s.add(AllocationRow(request_id=row.id, pool_id=row.pool_id, gpus=gpus, status="approved",
                            priority=row.priority, starts_on=start,
                            ends_on=start + timedelta(days=days) if start else None, created_at=_now(),
                            attempts=0))
    else:
        # a requeued (preempted) request granted again: its released allocation row comes back,
        # keeping its namespace (state saved in its volumes) for the idempotent re-provisioning
        if previous.status in HOLDING_ALLOCATION:
            raise ComputeLoopError("lifecycle.concurrent_update", id=row.id)
        today = _now().date()
        start = max(start, today) if start else today
        event = f"approved:{int(_aware(previous.released_at or _now()).timestamp())}"
        previous.pool_id, previous.gpus, previous.status, previous.priority = row.pool_id, gpus, "approved", row.priority
        previous.starts_on, previous.ends_on = start, start + timedelta(days=days)
        previous.released_at, previous.preempted_by = None, None
        previous.failed_step, previous.error = None, None
    _move(s, row, final, actor, reason)
    _notify_applicant(s, row, event, "request_approved", reason=row.decision_reason or reason,
                      adjusted=final == "adjusted")


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

    Items: gpu_fit, storage_fit, network_domain, software, conflict — each with status ok/warn/fail
    and a message (``key`` + ``params``).

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
        items = feas.assess(form, org=org, catalog=load_catalog(), cuda=feas.load_cuda_table(),
                            estimate=estimate, high_priority_gpus=_high_priority_gpus(s, row.pool_id))
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


def claim(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> dict[str, Any]:
    """Ops take a submitted or queued request into review (submitted/queued → in_review).

    Raises:
        PermissionDenied: not ops, another province's request, or the actor's own request.
        InvalidTransition: the request is not waiting to be claimed.
    """
    require(actor, OPS_ROLES, "claim a resource application")
    org = load_org()
    with unit_of_work(sessions) as s:
        row = _load_visible(s, actor, request_id, org, lock=True)
        if row.created_by == actor.id:
            raise PermissionDenied("lifecycle.own_request", number=row.number or row.id)
        if not _in_scope(actor, row, org):
            raise PermissionDenied("error.permission_denied", action="claim this request", role=actor.role)
        _move(s, row, "in_review", actor, "claimed")
        row.claimed_by = actor.id
        return _view(row)


def decide(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, decision: str, reason: str,
           adjusted_gpus: int | None = None, adjusted_days: int | None = None,
           provisioner: Any = None) -> dict[str, Any]:
    """Take the current approval step of a request: approve, approve with adjustments, or reject.

    The last approving step grants the GPUs race-safely (status approved, or adjusted when any
    step changed the GPU count or duration) and creates the allocation; once that has committed
    the request is provisioned automatically (outcome under ``provisioning`` in the result).

    Args:
        decision: approve | approve_adjusted | reject.
        reason: why — required for every outcome.
        adjusted_gpus, adjusted_days: the new shape (approve_adjusted needs at least one).
        provisioner: the cluster backend for the automatic provisioning (default: the settings').

    Raises:
        InputError: unknown decision, no reason, or a missing/invalid adjustment.
        PermissionDenied: the actor's role is not the step's, out of scope, or it is their own request.
        InvalidTransition: the request waits for no decision.
        CapacityRace: the pool no longer has the GPUs (``free`` says how many are left).
        NotFound: no such request.
    """
    if decision not in DECISIONS:
        raise InputError("error.choice", field="decision", value=decision, choices=", ".join(DECISIONS))
    reason = (reason or "").strip()
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    if decision == "approve_adjusted":
        if adjusted_gpus is None and adjusted_days is None:
            raise InputError("lifecycle.adjustment_required", field="adjusted_gpus")
        for name, value in (("adjusted_gpus", adjusted_gpus), ("adjusted_days", adjusted_days)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InputError("error.out_of_range", field=name, value=value, low="1", high="100000")
    if not steps_taken_by(actor):
        raise PermissionDenied("error.permission_denied", action="approve resource applications", role=actor.role)
    org = load_org()
    _ensure_capacity_rows(sessions, org.pools)
    try:
        with unit_of_work(sessions) as s:
            row = _load(s, request_id, lock=True)
            if row.created_by == actor.id:
                raise PermissionDenied("lifecycle.own_request", number=row.number or row.id)
            target = "rejected" if decision == "reject" else "approved"
            step = _current_step(row) if row.status in OPEN else None
            if step is None:
                raise InvalidTransition(row.status, target)
            if step.role not in steps_taken_by(actor) or not _in_scope(actor, row, org):
                raise PermissionDenied("error.permission_denied", action=f"take the {step.role} step",
                                       role=actor.role)
            if any(st.decided_by == actor.id and st.role != step.role for st in row.steps):
                # four eyes: an L2 who did the initial review does not also assess the same request
                # (a re-grant of the same step after a requeue is not a second step)
                raise PermissionDenied("lifecycle.second_step_same_person", number=row.number or row.id)
            now = _now()
            if row.status != "in_review":
                _move(s, row, "in_review", actor, "claimed", at=now)
                row.claimed_by = row.claimed_by or actor.id
            step.decided_by, step.decided_at, step.reason = actor.id, now, reason
            step.status = {"approve": "approved", "approve_adjusted": "adjusted", "reject": "rejected"}[decision]
            if decision == "approve_adjusted":
                step.adjusted_gpus, step.adjusted_days = adjusted_gpus, adjusted_days
                row.approved_gpus = adjusted_gpus or row.approved_gpus or row.requested_gpus
                row.approved_days = adjusted_days or row.approved_days or row.duration_days
            _audit(s, actor, "request.step_decided", row, reason=reason, before={"step": step.seq, "status": "pending"},
                   after={"step": step.seq, "role": step.role, "status": step.status,
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
    """Withdraw a request (its applicant) or cancel it (ops); a granted allocation is released.

    Raises:
        InputError: no reason.
        PermissionDenied: neither the applicant nor ops.
        InvalidTransition: the request is past the point of cancelling (e.g. active, rejected).
    """
    reason = (reason or "").strip()
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    org = load_org()
    with unit_of_work(sessions) as s:
        row = _load_visible(s, actor, request_id, org, lock=True)
        if row.created_by != actor.id and actor.role not in OPS_ROLES:
            raise PermissionDenied("error.permission_denied", action="cancel this request", role=actor.role)
        _move(s, row, "cancelled", actor, reason)
        alloc = s.scalars(select(AllocationRow).where(AllocationRow.request_id == row.id,
                                                      AllocationRow.status.in_(HOLDING_ALLOCATION))).first()
        if alloc is not None:
            alloc.status, alloc.released_at = "released", _now()
            _release(s, alloc.pool_id, alloc.gpus)
        return _view(row)


def pool_usage(*, sessions: sessionmaker[Session], actor: Identity) -> list[dict[str, Any]]:
    """Per pool: size, GPUs held by allocations, free, and the capacity row's count (water level)."""
    require(actor, APPLY_ROLES, "read pool capacity")
    org = load_org()
    with unit_of_work(sessions) as s:
        held = _held_by_pool(s)
        caps = {c.pool_id: c.allocated_gpus for c in s.scalars(select(PoolCapacityRow))}
    return [{"pool": p.id, "kind": p.kind, "gpu": p.gpu, "gpus": p.gpus, "held": held.get(p.id, 0),
             "free": p.gpus - held.get(p.id, 0), "capacity_row": caps.get(p.id)} for p in org.pools.values()]
