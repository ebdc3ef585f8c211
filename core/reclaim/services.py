"""Reclaim services (资源回收): expiry notices, extension requests, reclaim records with dry run and
execution, voluntary returns, inference reclaim candidates and the L1 pool review.

A reclaim goes in two steps, and the record (回收清单) keeps both:

1. **plan** (:func:`plan_reclaim`) — a dry run of the Kubernetes adapter
   (``Provisioner.deprovision(spec, dry_run=True)``) lists exactly what would be deleted: the
   objects deleted at execution (``planned``) and the volumes and namespace deleted only after the
   data-retention notice period (``data_planned``, due on ``data_due_on``).
2. **execute** (:func:`execute_reclaim`) — the cluster objects are deleted first (the adapter is
   idempotent, so a run that fails midway is finished by running it again), then one transaction
   releases the GPUs to the pool through the lifecycle's capacity release (``pool_capacity`` stays
   consistent), moves the request to ``reclaimed`` (``returned`` for a voluntary return) through the
   lifecycle's transition table, stores what was deleted and notifies the owner. A forced reclaim
   (candidate, pool review, forced) needs a recorded approval by someone other than the planner.

Expiry notices are outbox rows with dedup keys ``expiry:<allocation>:<days>`` (``:x<n>`` after
the n-th approved extension), so each is queued exactly once whatever the number of job runs.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.cluster.backends import ObjectRef, Provisioner
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError, NotFound
from core.identity import OPS_ROLES, Identity, PermissionDenied, notice_lang, require
from core.lifecycle import provisioning
from core.lifecycle import services as svc
from core.lifecycle.allocations import plus_days
from core.lifecycle.persistence import HOLDING_ALLOCATION, AllocationRow, RequestRow
from core.lifecycle.states import InvalidTransition
from core.metrics.persistence import read_days
from core.notifications.outbox import enqueue
from core.org import Org, load_org
from core.reclaim import common
from core.reclaim.judging import judge
from core.reclaim.persistence import (
    ExtensionRequestRow, PoolReviewRow, ReclaimCandidateRow, ReclaimRecordRow,
)
from core.reclaim.policy import load_policy
from core.reclaim.states import CANDIDATE, CANDIDATE_STATUSES, EXTENSION, PLANS, InvalidMove, check_move
from core.reclaim.warnings import month_bounds
from core.text import check_length

log = logging.getLogger(__name__)

KINDS = ("expiry", "return", "candidate", "pool_review", "forced")
FORCED_KINDS = frozenset({"candidate", "pool_review", "forced"})
DATA_KINDS = frozenset({"PersistentVolumeClaim", "Namespace"})
REVIEW_KINDS = ("note", "partial_reclaim", "transfer")
SYSTEM_ROLES = OPS_ROLES | {"system"}


# --------------------------------------------------------------------------- helpers


def _ref(r: ObjectRef) -> dict[str, Any]:
    return {"kind": r.kind, "name": r.name, "namespace": r.namespace}


def _objref(d: dict[str, Any]) -> ObjectRef:
    return ObjectRef(d["kind"], d["name"], d.get("namespace"))


def _pressure_by_pool(s: Session, org: Org) -> dict[str, dict[str, int]]:
    """Per pool: free GPUs and the number of requests queued for it (two queries for every pool)."""
    free = svc._free_by_pool(s, org)
    queued = dict(s.execute(select(RequestRow.pool_id, func.count()).where(RequestRow.status == "queued")
                            .group_by(RequestRow.pool_id)).all())
    return {pid: {"free": int(free.get(pid, 0)), "queue_length": int(queued.get(pid, 0))} for pid in org.pools}


def _pool_pressure(s: Session, org: Org, pool_id: str) -> dict[str, int]:
    """Free GPUs of the pool and the number of requests queued for it."""
    return _pressure_by_pool(s, org).get(pool_id, {"free": 0, "queue_length": 0})


def _record_view(r: ReclaimRecordRow) -> dict[str, Any]:
    return {
        "id": r.id, "kind": r.kind, "status": r.status, "request_id": r.request_id, "allocation_id": r.allocation_id,
        "namespace": r.namespace, "cluster": r.cluster, "pool": r.pool_id, "gpus": r.gpus, "gpu_model": r.gpu_model,
        "owner": r.owner, "department": r.department, "reason": r.reason, "plan": r.plan,
        "release_gpus": r.release_gpus, "voluntary": bool(r.voluntary), "forced": bool(r.forced),
        "approvals": list(r.approvals or []), "planned": list(r.planned or []), "deleted": list(r.deleted or []),
        "data_planned": list(r.data_planned or []), "data_deleted": list(r.data_deleted or []),
        "data_due_on": common.iso(r.data_due_on), "backend": r.backend, "created_by": r.created_by,
        "created_at": common.aware(r.created_at), "executed_by": r.executed_by,
        "executed_at": common.aware(r.executed_at), "completed_at": common.aware(r.completed_at),
    }


def _load_pair(s: Session, request_id: int, *, lock: bool = False) -> tuple[RequestRow, AllocationRow]:
    row = svc._load(s, request_id, lock=lock)
    q = select(AllocationRow).where(AllocationRow.request_id == request_id)
    if lock:
        q = q.with_for_update()
    alloc = s.scalars(q).first()
    if alloc is None:
        raise NotFound("error.not_found", what="allocation", id=request_id)
    return row, alloc


def _spec(row: RequestRow, alloc: AllocationRow, org: Org):
    return provisioning._spec(row, alloc, org, provisioning.load_provisioning_defaults())


def _delete_refs(provisioner: Provisioner, spec: Any, refs: list[ObjectRef]) -> list[ObjectRef]:
    """Delete exactly ``refs`` (not the whole allocation); the plan backend deletes nothing and
    hands the plan back."""
    if not refs:
        return []
    deleter = getattr(provisioner, "delete_objects", None)
    if deleter is not None:
        return list(deleter(spec, refs))
    if getattr(provisioner, "name", "") == "live" and hasattr(provisioner, "_call"):
        from kubernetes.client.exceptions import ApiException

        from core.cluster.backends import translate_error

        done = []
        for ref in refs:
            try:
                provisioner._call(spec, ref.kind, "delete", name=ref.name)  # noqa: SLF001 - see report
                done.append(ref)
            except ApiException as exc:
                if exc.status != 404:
                    raise translate_error(f"{ref.kind}/{ref.name}", exc) from exc
                done.append(ref)  # already gone is what we wanted
        return done
    return list(refs)


def _notify_owner(s: Session, row: RequestRow, *, dedup_key: str, template: str, params: dict[str, Any]) -> None:
    email = common.email_of(row.created_by, row.created_by_email)
    if "@" not in (email or ""):
        log.warning("request %s: owner %s has no e-mail; no %s notice", row.id, row.created_by, template)
        return
    enqueue(s, dedup_key=dedup_key, recipient_id=row.created_by, recipient_email=email,
            lang=notice_lang(row.created_by), template=template, params=params)


# --------------------------------------------------------------------------- expiry and notices


def _expiring_query(policy) -> Any:
    org = load_org()
    pools = sorted(p.id for p in org.pools.values() if p.kind in policy.expiring_pool_kinds) or [""]
    return (select(AllocationRow, RequestRow).join(RequestRow, RequestRow.id == AllocationRow.request_id)
            .where(AllocationRow.status == "active", AllocationRow.ends_on.is_not(None),
                   AllocationRow.pool_id.in_(pools), RequestRow.status.in_(("active", "expiring", "extended")))
            .order_by(AllocationRow.ends_on, AllocationRow.id))


def _extensions_granted(s: Session, request_id: int) -> int:
    return int(s.scalar(select(func.count()).select_from(ExtensionRequestRow).where(
        ExtensionRequestRow.request_id == request_id, ExtensionRequestRow.status == "approved")) or 0)


def notice_due(days_left: int, notice_days: Iterable[int]) -> int | None:
    """The notice that is due with ``days_left`` days to go: the smallest threshold ≥ days_left
    (a missed run catches up with the nearest notice, not the stale ones); None when none is."""
    due = [d for d in notice_days if d >= days_left]
    return min(due) if days_left > 0 and due else None


def send_expiry_notices(*, sessions: sessionmaker[Session], today: date) -> dict[str, Any]:
    """Queue the 7/3/1-day expiry notices due ``today`` (each exactly once) and move the request to
    ``expiring`` at its first notice. One transaction per allocation, so a failure midway keeps the
    notices already queued and a rerun queues only the missing ones."""
    policy = load_policy()
    with unit_of_work(sessions) as s:
        # only allocations with a notice due today are locked and looked at again
        due = [(a.id, a.request_id) for a, _r in s.execute(_expiring_query(policy))
               if a.ends_on is not None and notice_due((a.ends_on - today).days, policy.notice_days) is not None]
    queued, moved = [], 0
    for alloc_id, request_id in due:
        with unit_of_work(sessions) as s:
            row, alloc = _load_pair(s, request_id, lock=True)
            if alloc.id != alloc_id or alloc.status != "active" or alloc.ends_on is None:
                continue
            days_left = (alloc.ends_on - today).days
            days = notice_due(days_left, policy.notice_days)
            if days is None:
                continue
            if row.status in ("active", "extended"):
                svc._move(s, row, "expiring", common.SYSTEM, f"expiry_notice:{days}")
                moved += 1
            n = _extensions_granted(s, row.id)
            key = f"expiry:{alloc.id}:{days}" + (f":x{n}" if n else "")
            email = common.email_of(row.created_by, row.created_by_email)
            if "@" in (email or "") and enqueue(
                    s, dedup_key=key, recipient_id=row.created_by, recipient_email=email,
                    lang=notice_lang(row.created_by), template="expiry_notice",
                    params={"namespace": alloc.namespace or "", "days_left": days_left,
                            "expires_on": alloc.ends_on.isoformat(), "request_id": row.id, "number": row.number or ""}):
                queued.append(key)
    return {"queued": queued, "moved_to_expiring": moved}


def expiring_allocations(*, sessions: sessionmaker[Session], actor: Identity, today: date | None = None,
                         within_days: int | None = None) -> list[dict[str, Any]]:
    """Expiring allocations (expiry-managed pools) ending within ``within_days`` (default: the
    policy's window) that ``actor`` may see, with days left, the extension deadline, pending
    extensions and the pool's pressure — a fixed number of queries whatever the number of rows."""
    require(actor, common.READ_ROLES, "read warnings and reclaim")
    today = today or common.now().date()
    policy = load_policy()
    within_days = policy.expiring_window_days if within_days is None else within_days
    org = load_org()
    with unit_of_work(sessions) as s:
        rows = [(alloc, row) for alloc, row in s.execute(_expiring_query(policy))
                if (alloc.ends_on - today).days <= within_days
                and common.may_see(actor, org, row.department, row.created_by)]
        if not rows:
            return []
        pressure = _pressure_by_pool(s, org)
        pending = {e.request_id: e.id for e in s.scalars(
            select(ExtensionRequestRow).where(ExtensionRequestRow.request_id.in_([row.id for _, row in rows]),
                                              ExtensionRequestRow.status == "pending"))}
        return [{"request_id": row.id, "number": row.number, "status": row.status, "owner": row.created_by,
                 "department": row.department, "allocation_id": alloc.id, "namespace": alloc.namespace,
                 "pool": alloc.pool_id, "gpus": alloc.gpus, "ends_on": alloc.ends_on.isoformat(),
                 "days_left": (alloc.ends_on - today).days,
                 "extension_deadline": extension_deadline(alloc.ends_on, policy.extension_min_working_days).isoformat(),
                 "pending_extension": pending.get(row.id),
                 **pressure.get(alloc.pool_id, {"free": 0, "queue_length": 0})}
                for alloc, row in rows]


def extension_deadline(ends_on: date, working_days: int) -> date:
    """The last day an extension may be filed: ``working_days`` working days before ``ends_on``."""
    day = ends_on
    counted = 0
    while counted < working_days:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            counted += 1
    return day


# --------------------------------------------------------------------------- extensions


def _ext_view(e: ExtensionRequestRow) -> dict[str, Any]:
    return {"id": e.id, "request_id": e.request_id, "allocation_id": e.allocation_id, "requested_by": e.requested_by,
            "department": e.department, "days": e.days, "reason": e.reason, "status": e.status,
            "ends_on_before": common.iso(e.ends_on_before), "ends_on_after": common.iso(e.ends_on_after),
            "pool": e.pool_id, "pool_free": e.pool_free, "queue_length": e.queue_length, "decided_by": e.decided_by,
            "decided_at": common.aware(e.decided_at), "decision_reason": e.decision_reason,
            "created_at": common.aware(e.created_at)}


def request_extension(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, days: int, reason: str,
                      today: date | None = None) -> dict[str, Any]:
    """The owner asks to extend an expiring allocation (延期申请), with reasons.

    Raises:
        PermissionDenied: not the owner of the request.
        InputError: no reason, days out of range, past the deadline (``extension_min_working_days``
            working days before expiry), or an extension already pending.
        NotFound: no such request/allocation visible to ``actor``.
    """
    policy = load_policy()
    reason = check_length((reason or "").strip(), field="reason", kind="reason")
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= policy.extension_max_days:
        raise InputError("error.out_of_range", field="days", value=days, low="1", high=str(policy.extension_max_days))
    today = today or common.now().date()
    org = load_org()
    with unit_of_work(sessions) as s:
        row = svc._load_visible(s, actor, request_id, org, lock=True)
        if row.created_by != actor.id:
            raise PermissionDenied("error.permission_denied", action="request an extension", role=actor.role)
        _, alloc = _load_pair(s, request_id, lock=True)
        if alloc.status != "active" or alloc.ends_on is None or row.status not in ("active", "expiring", "extended"):
            raise InvalidTransition(row.status, "extended")
        deadline = extension_deadline(alloc.ends_on, policy.extension_min_working_days)
        if today > deadline:
            raise InputError("reclaim.extension_too_late", field="days", deadline=deadline.isoformat(),
                             working_days=policy.extension_min_working_days)
        if s.scalars(select(ExtensionRequestRow).where(ExtensionRequestRow.request_id == row.id,
                                                       ExtensionRequestRow.status == "pending")).first():
            raise InputError("reclaim.extension_pending", field="days")
        pressure = _pool_pressure(s, org, alloc.pool_id)
        e = ExtensionRequestRow(request_id=row.id, allocation_id=alloc.id, requested_by=actor.id,
                                department=row.department, days=days, reason=reason, status="pending",
                                ends_on_before=alloc.ends_on, pool_id=alloc.pool_id, pool_free=pressure["free"],
                                queue_length=pressure["queue_length"], created_at=common.now())
        s.add(e)
        s.flush()
        common.audit(s, actor, "extension.requested", f"request:{row.id}", reason=reason,
                     after={"extension": e.id, "days": days, "ends_on": alloc.ends_on.isoformat()})
        return _ext_view(e)


def list_extensions(*, sessions: sessionmaker[Session], actor: Identity, status: str | None = None) -> list[dict[str, Any]]:
    """Extension requests ``actor`` may see (owners: their department's), newest first, each with
    the pool's current free GPUs and queue length for the decision."""
    require(actor, common.READ_ROLES, "read warnings and reclaim")
    if status is not None and status not in EXTENSION:
        raise InputError("error.choice", field="status", value=status, choices=", ".join(EXTENSION))
    org = load_org()
    with unit_of_work(sessions) as s:
        q = (select(ExtensionRequestRow)
             .where(common.department_scope(actor, org, ExtensionRequestRow.department, ExtensionRequestRow.requested_by))
             .order_by(ExtensionRequestRow.id.desc()))
        if status:
            q = q.where(ExtensionRequestRow.status == status)
        pressure = _pressure_by_pool(s, org)
        return [{**_ext_view(e), "pressure_now": pressure.get(e.pool_id, {"free": 0, "queue_length": 0})}
                for e in s.scalars(q)]


def decide_extension(*, sessions: sessionmaker[Session], actor: Identity, extension_id: int, approve: bool,
                     reason: str, provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Ops approve (the end date moves by the requested days; the request becomes ``extended``) or
    refuse an extension request, with a reason; the owner is notified. After an approval the new
    end reaches the cluster (expiry label, a kubeconfig token lasting to it): ``cluster`` in the
    result says how that went.

    Raises:
        PermissionDenied: not ops/admin, or the actor's own request.
        InputError: no reason.
        InvalidMove: the extension was decided already.
        CapacityRace: ``rules.extension_overbooks`` — the added days would take GPUs another
            allocation has booked (a scheduled one, from its start date); nothing changes.
    """
    require(actor, OPS_ROLES, "decide extension requests")
    reason = check_length((reason or "").strip(), field="reason", kind="reason")
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    at = common.now()
    org = load_org()
    svc.ensure_capacity_rows(sessions, org.pools)
    with unit_of_work(sessions) as s:
        e = s.scalars(select(ExtensionRequestRow).where(ExtensionRequestRow.id == extension_id).with_for_update()).first()
        if e is None:
            raise NotFound("error.not_found", what="extension", id=extension_id)
        if e.requested_by == actor.id:
            raise PermissionDenied("error.permission_denied", action="decide extension requests", role=actor.role)
        row, alloc = _load_pair(s, e.request_id, lock=True)
        _may_act_on(actor, row, org, "decide extension requests")
        to = check_move(EXTENSION, e.status, "approved" if approve else "refused")
        e.status, e.decided_by, e.decided_at, e.decision_reason = to, actor.id, at, reason
        if approve:
            if alloc.status != "active" or alloc.ends_on is None:
                raise InvalidTransition(row.status, "extended")
            if row.status in ("active", "extended"):
                svc._move(s, row, "expiring", actor, "extension_requested", at=at)
            svc._move(s, row, "extended", actor, reason, at=at)
            # the added days must not take GPUs a scheduled allocation has booked from its start date
            svc.extend_booking(s, org, alloc, plus_days(alloc.ends_on, e.days))
            e.ends_on_after = alloc.ends_on
        common.audit(s, actor, f"extension.{to}", f"request:{row.id}", reason=reason,
                     before={"ends_on": common.iso(e.ends_on_before)},
                     after={"extension": e.id, "status": to, "ends_on": common.iso(alloc.ends_on)}, at=at)
        _notify_owner(s, row, dedup_key=f"extension:{e.id}:{to}", template="extension_decided",
                      params={"namespace": alloc.namespace or "", "decision": to,
                              "expires_on": common.iso(alloc.ends_on) or "", "reason": reason,
                              "request_id": row.id, "number": row.number or ""})
        s.flush()
        view = _ext_view(e)
    if approve:
        view["cluster"] = provisioning.refresh_after_extension(sessions=sessions, request_id=view["request_id"],
                                                              provisioner=provisioner)
    return view


# --------------------------------------------------------------------------- reclaim records


def _may_act_on(actor: Identity, row: RequestRow, org: Org, action: str) -> None:
    """Ops act only on requests they can see and that are in their scope (provincial ops: their
    province's); the system acts everywhere. Someone else's request stays hidden (NotFound)."""
    provisioning.check_scope(actor, row, org, action)


def _may_reclaim(actor: Identity, kind: str, row: RequestRow, org: Org) -> None:
    if kind == "return":
        if actor.id != row.created_by:
            raise PermissionDenied("error.permission_denied", action="return resources", role=actor.role)
    elif kind == "expiry":
        require(actor, SYSTEM_ROLES, "reclaim resources")
        _may_act_on(actor, row, org, "reclaim resources")
    else:
        require(actor, OPS_ROLES, "reclaim resources")
        _may_act_on(actor, row, org, "reclaim resources")


def _check_kind(s: Session, kind: str, row: RequestRow, alloc: AllocationRow, org: Org, today: date) -> None:
    """The allocation's state must give the reclaim its kind (planned, and again when executed):

    * ``expiry`` — running, its end date come, no extension waiting (the daily job reclaims
      those of the expiry-managed pools by itself; ops may reclaim any other that has ended);
    * ``candidate`` — an inference reclaim candidate of the allocation whose plan was agreed;
    * ``pool_review`` — an allocation of an L1 pool (the monthly pool review);
    * ``return`` (the owner) and ``forced`` (ops, with a second person's approval) — any
      allocation holding GPUs.

    Raises:
        InvalidTransition: the allocation holds no GPUs (released, or scheduled and not started:
            cancel the request instead).
        InputError: field ``kind`` — the state does not give this kind.
    """
    if alloc.status not in HOLDING_ALLOCATION:
        raise InvalidTransition(row.status, "returned" if kind == "return" else "reclaimed")
    policy = load_policy()
    pool = org.pools.get(alloc.pool_id)
    if kind == "expiry":
        expired = alloc.status == "active" and alloc.ends_on is not None and alloc.ends_on <= today
        if not expired:
            raise InputError("rules.reclaim_not_expired", field="kind", number=row.number or row.id,
                             ends_on=common.iso(alloc.ends_on) or "-", today=today.isoformat())
        if s.scalars(select(ExtensionRequestRow.id).where(ExtensionRequestRow.request_id == row.id,
                                                          ExtensionRequestRow.status == "pending")).first():
            raise InputError("rules.reclaim_extension_pending", field="kind", number=row.number or row.id)
    elif kind == "candidate":
        agreed = s.scalars(select(ReclaimCandidateRow.id).where(ReclaimCandidateRow.allocation_id == alloc.id,
                                                                ReclaimCandidateRow.status == "plan_agreed")).first()
        if agreed is None:
            raise InputError("rules.reclaim_no_candidate", field="kind", number=row.number or row.id)
    elif kind == "pool_review":
        if pool is None or pool.kind not in policy.l1_pool_kinds:
            raise InputError("rules.reclaim_not_review_pool", field="kind", pool=alloc.pool_id)


def _dry_run(provisioner: Provisioner, spec: Any, plan: str) -> tuple[list[ObjectRef], list[ObjectRef]]:
    """Exactly what the adapter would delete, in its order: what goes now, and the data (volumes,
    namespace) that goes only after the retention notice."""
    refs = list(provisioner.deprovision(spec, dry_run=True)) if plan != "scale_down" else []
    keep = load_policy().data_retention_days > 0
    return ([r for r in refs if not (keep and r.kind in DATA_KINDS)],
            [r for r in refs if keep and r.kind in DATA_KINDS])


def preview_return(*, sessions: sessionmaker[Session], actor: Identity, request_id: int,
                   provisioner: Provisioner | None = None) -> dict[str, Any]:
    """What returning an allocation would delete, before the owner confirms: ``planned`` (now),
    ``data_planned`` (after the retention notice, on ``data_due_on``), ``gpus``. Writes nothing;
    :func:`return_allocation` then executes exactly this plan.

    Raises:
        PermissionDenied: not the owner. NotFound: no such allocation, or not visible to ``actor``.
    """
    org = load_org()
    provisioner = provisioner or provisioning.backend_for(org)
    with unit_of_work(sessions) as s:
        row, alloc = _load_pair(s, request_id)
        if not svc._can_see(actor, row, org):
            raise NotFound("error.not_found", what="request", id=request_id)
        _may_reclaim(actor, "return", row, org)
        if alloc.status not in HOLDING_ALLOCATION:
            raise InvalidTransition(row.status, "returned")
        spec = _spec(row, alloc, org)
        gpus, namespace = alloc.gpus, alloc.namespace or spec.namespace
    now_refs, data_refs = _dry_run(provisioner, spec, "remove")
    retention = load_policy().data_retention_days
    return {"request_id": request_id, "namespace": namespace, "gpus": gpus,
            "planned": [_ref(r) for r in now_refs], "data_planned": [_ref(r) for r in data_refs],
            "data_due_on": common.iso(common.now().date() + timedelta(days=retention)) if data_refs else None}


def _new_record(s: Session, actor: Identity, row: RequestRow, alloc: AllocationRow, org: Org, *, kind: str,
                reason: str, plan: str, release_gpus: int, dedup_key: str, provisioner: Provisioner,
                today: date) -> ReclaimRecordRow:
    policy = load_policy()
    spec = _spec(row, alloc, org)
    now_refs, data_refs = _dry_run(provisioner, spec, plan)
    rec = ReclaimRecordRow(
        dedup_key=dedup_key, kind=kind, status="planned", request_id=row.id, allocation_id=alloc.id,
        namespace=alloc.namespace or spec.namespace, cluster=alloc.cluster or spec.cluster, pool_id=alloc.pool_id,
        gpus=alloc.gpus, gpu_model=alloc.gpu_model or org.pool(alloc.pool_id).gpu, owner=row.created_by,
        department=row.department, reason=reason, plan=plan, release_gpus=release_gpus,
        voluntary=kind == "return", forced=kind in FORCED_KINDS,
        approvals=([{"actor": actor.id, "at": common.iso(common.now()), "note": "policy:" + kind}]
                   if kind in ("expiry", "return") else []),
        planned=[_ref(r) for r in now_refs], deleted=[], data_planned=[_ref(r) for r in data_refs], data_deleted=[],
        data_due_on=(today + timedelta(days=policy.data_retention_days)) if data_refs else None,
        backend=getattr(provisioner, "name", type(provisioner).__name__), created_by=actor.id, created_at=common.now())
    s.add(rec)
    s.flush()
    common.audit(s, actor, "reclaim.planned", f"reclaim:{rec.id}", reason=reason,
                 after={"request": row.id, "kind": kind, "plan": plan, "planned": rec.planned,
                        "data_planned": rec.data_planned})
    return rec


def plan_reclaim(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, kind: str, reason: str,
                 plan: str = "remove", release_gpus: int | None = None, provisioner: Provisioner | None = None,
                 today: date | None = None) -> dict[str, Any]:
    """Record a reclaim plan from a dry run (nothing is deleted); returns the record.

    Args:
        kind: expiry | return | candidate | pool_review | forced.
        plan: remove (everything goes) | scale_down (``release_gpus`` GPUs back, nothing deleted) |
            move_smaller_gpu (the allocation goes; the owner reapplies on a smaller GPU).

    The kind must follow from the allocation's state (:func:`_check_kind`): an "expiry" reclaim
    of an allocation that has not expired is refused, whoever asks.

    Raises:
        PermissionDenied: returns only by the owner; other kinds only by ops (expiry: the system).
        InputError: unknown kind or plan, no reason, a scale-down outside 1..gpus-1, or a kind the
            allocation's state does not give (field ``kind``).
        NotFound: no such request or allocation.
        InvalidTransition: the allocation no longer holds GPUs.
    """
    if kind not in KINDS:
        raise InputError("error.choice", field="kind", value=kind, choices=", ".join(KINDS))
    if plan not in PLANS:
        raise InputError("error.choice", field="plan", value=plan, choices=", ".join(PLANS))
    reason = check_length((reason or "").strip(), field="reason", kind="reason")
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    org = load_org()
    provisioner = provisioner or provisioning.backend_for(org)
    today = today or common.now().date()
    with unit_of_work(sessions) as s:
        row, alloc = _load_pair(s, request_id, lock=True)
        if not svc._can_see(actor, row, org) and actor.role != "system":
            raise NotFound("error.not_found", what="request", id=request_id)
        _may_reclaim(actor, kind, row, org)
        _check_kind(s, kind, row, alloc, org, today)
        release = alloc.gpus
        if plan == "scale_down":
            if not isinstance(release_gpus, int) or not 1 <= release_gpus < alloc.gpus:
                raise InputError("error.out_of_range", field="release_gpus", value=release_gpus, low="1",
                                 high=str(max(alloc.gpus - 1, 1)))
            release = release_gpus
        key = f"{kind}:{alloc.id}:{common.now().timestamp():.6f}"
        rec = _new_record(s, actor, row, alloc, org, kind=kind, reason=reason, plan=plan, release_gpus=release,
                          dedup_key=key, provisioner=provisioner, today=today)
        return _record_view(rec)


def approve_reclaim(*, sessions: sessionmaker[Session], actor: Identity, record_id: int, note: str) -> dict[str, Any]:
    """Record an approval of a planned reclaim (required before a forced reclaim executes; the
    approver must not be the planner).

    Raises:
        PermissionDenied: not ops/admin, or the planner approving their own plan.
        InputError: no note.
        InvalidMove: the record is not planned any more.
    """
    require(actor, OPS_ROLES, "approve a reclaim")
    note = (note or "").strip()
    if not note:
        raise InputError("reclaim.note_required", field="note")
    with unit_of_work(sessions) as s:
        rec = _load_record(s, record_id, lock=True)
        if rec.status != "planned":
            raise InvalidMove(rec.status, "approved")
        if rec.created_by == actor.id:
            raise PermissionDenied("reclaim.own_plan", record=rec.id)
        row, _ = _load_pair(s, rec.request_id)
        _may_act_on(actor, row, load_org(), "approve a reclaim")
        rec.approvals = [*list(rec.approvals or []), {"actor": actor.id, "at": common.iso(common.now()), "note": note}]
        common.audit(s, actor, "reclaim.approved", f"reclaim:{rec.id}", reason=note)
        return _record_view(rec)


def _load_record(s: Session, record_id: int, *, lock: bool = False) -> ReclaimRecordRow:
    q = select(ReclaimRecordRow).where(ReclaimRecordRow.id == record_id)
    if lock:
        q = q.with_for_update()
    rec = s.scalars(q).first()
    if rec is None:
        raise NotFound("error.not_found", what="reclaim", id=record_id)
    return rec


def execute_reclaim(*, sessions: sessionmaker[Session], actor: Identity, record_id: int,
                    provisioner: Provisioner | None = None, today: date | None = None) -> dict[str, Any]:
    """Execute a planned reclaim exactly as planned (see the module docstring); returns the record.

    The allocation's state must still give the record its kind (``today``: the day that decides
    whether it has expired; default the clock's): an extension approved after an expiry plan
    was made stops the plan.

    Raises:
        PermissionDenied: not allowed for the kind (see :func:`plan_reclaim`).
        InputError: field ``kind`` — the allocation's state no longer gives the record's kind.
        ComputeLoopError ``reclaim.approval_required``: a forced reclaim without an approval.
        InvalidMove: the record is not planned.
        ClusterError: the cluster refused; nothing in the database changed, run it again.
    """
    org = load_org()
    provisioner = provisioner or provisioning.backend_for(org)
    today = today or common.now().date()
    with unit_of_work(sessions) as s:
        rec = _load_record(s, record_id)
        if rec.status != "planned":
            raise InvalidMove(rec.status, "executed")
        row, alloc = _load_pair(s, rec.request_id)
        _may_reclaim(actor, rec.kind, row, org)
        _check_kind(s, rec.kind, row, alloc, org, today)
        if rec.forced and not any(a.get("actor") != rec.created_by for a in rec.approvals or []):
            raise ComputeLoopError("reclaim.approval_required", record=rec.id)
        spec = _spec(row, alloc, org)
        planned = [_objref(d) for d in rec.planned or []]
        whole = not rec.data_planned and rec.plan != "scale_down"
    # the cluster first, outside any transaction (idempotent: a rerun finishes a partial run)
    if whole and planned:
        deleted = list(provisioner.deprovision(spec, dry_run=False))
    else:
        deleted = _delete_refs(provisioner, spec, planned)
    return _finish(sessions, actor, record_id, deleted, org)


def _finish(sessions: sessionmaker[Session], actor: Identity, record_id: int, deleted: list[ObjectRef],
            org: Org) -> dict[str, Any]:
    at = common.now()
    with unit_of_work(sessions) as s:
        rec = _load_record(s, record_id, lock=True)
        if rec.status != "planned":
            raise InvalidMove(rec.status, "executed")
        row, alloc = _load_pair(s, rec.request_id, lock=True)
        if alloc.status not in HOLDING_ALLOCATION:
            raise InvalidTransition(row.status, "reclaimed")
        before = {"allocation": alloc.id, "status": alloc.status, "gpus": alloc.gpus, "pool": alloc.pool_id}
        if rec.plan == "scale_down":
            svc._release(s, alloc.pool_id, rec.release_gpus)
            alloc.gpus -= rec.release_gpus
            row.approved_gpus = alloc.gpus
        else:
            svc.release_allocation(s, alloc, at)
            svc._move(s, row, "returned" if rec.kind == "return" else "reclaimed", actor, f"reclaim:{rec.kind}", at=at)
            _notify_owner(s, row, dedup_key=f"reclaim:{rec.id}:done", template="reclaim_done",
                          params={"namespace": rec.namespace, "gpus": rec.gpus, "gpu_model": rec.gpu_model,
                                  "request_id": row.id, "number": row.number or ""})
        rec.deleted = [_ref(r) for r in deleted]
        rec.status = "data_pending" if rec.data_planned else "completed"
        rec.executed_by, rec.executed_at = actor.id, at
        if not rec.data_planned:
            rec.completed_at = at
        common.audit(s, actor, "reclaim.executed", f"reclaim:{rec.id}", reason=rec.reason, before=before,
                     after={"released_gpus": rec.release_gpus, "deleted": rec.deleted, "status": rec.status}, at=at)
        common.audit(s, actor, "allocation.reclaimed", f"request:{row.id}", reason=rec.kind, before=before,
                     after={"record": rec.id, "released_gpus": rec.release_gpus}, at=at)
        return _record_view(rec)


def return_allocation(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, reason: str,
                      provisioner: Provisioner | None = None, today: date | None = None) -> dict[str, Any]:
    """The owner returns (退订) an allocation at any time: planned and executed at once; the record
    is ``voluntary`` (counted in the owner's favour on the board). Errors as :func:`plan_reclaim`."""
    org = load_org()
    provisioner = provisioner or provisioning.backend_for(org)
    rec = plan_reclaim(sessions=sessions, actor=actor, request_id=request_id, kind="return", reason=reason,
                       provisioner=provisioner, today=today)
    return execute_reclaim(sessions=sessions, actor=actor, record_id=rec["id"], provisioner=provisioner)


def reclaim_expired(*, sessions: sessionmaker[Session], today: date, provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Reclaim every expiry-managed allocation whose end date has come. Idempotent: one record per
    allocation and end date (dedup key ``expiry:<allocation>:<ends_on>``); a record left planned by
    an interrupted run is executed by the next. An allocation whose owner asked for an extension
    that ops have not decided yet is held (listed under ``held``) until they do: the owner applied
    in time and must not lose the work to a slow decision."""
    policy = load_policy()
    org = load_org()
    provisioner = provisioner or provisioning.backend_for(org)
    with unit_of_work(sessions) as s:
        pending = set(s.scalars(select(ExtensionRequestRow.request_id).where(ExtensionRequestRow.status == "pending")))
        expired = [(a.id, a.request_id, a.ends_on) for a, _r in s.execute(_expiring_query(policy)) if a.ends_on <= today]
    due = [d for d in expired if d[1] not in pending]
    held = [{"allocation_id": a, "request_id": r} for a, r, _ in expired if r in pending]
    done, errors = [], []
    for alloc_id, request_id, ends_on in due:
        key = f"expiry:{alloc_id}:{ends_on.isoformat()}"
        try:
            with unit_of_work(sessions) as s:
                rec = s.scalars(select(ReclaimRecordRow).where(ReclaimRecordRow.dedup_key == key)).first()
                if rec is None:
                    row, alloc = _load_pair(s, request_id, lock=True)
                    rec = _new_record(s, common.SYSTEM, row, alloc, org, kind="expiry", reason="expired",
                                      plan="remove", release_gpus=alloc.gpus, dedup_key=key,
                                      provisioner=provisioner, today=today)
                record_id, status = rec.id, rec.status
            if status == "planned":
                done.append(execute_reclaim(sessions=sessions, actor=common.SYSTEM, record_id=record_id,
                                            provisioner=provisioner, today=today)["id"])
        except ComputeLoopError as exc:
            log.warning("expiry reclaim of allocation %s failed: %s", alloc_id, exc)
            errors.append({"allocation_id": alloc_id, "key": exc.key})
    return {"reclaimed": done, "errors": errors, "held": held}


def release_retained_data(*, sessions: sessionmaker[Session], today: date,
                          provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Delete the volumes and namespaces whose data-retention notice period has ended."""
    org = load_org()
    provisioner = provisioner or provisioning.backend_for(org)
    with unit_of_work(sessions) as s:
        due = [r.id for r in s.scalars(select(ReclaimRecordRow).where(ReclaimRecordRow.status == "data_pending",
                                                                       ReclaimRecordRow.data_due_on <= today))]
    released = []
    for record_id in due:
        with unit_of_work(sessions) as s:
            rec = _load_record(s, record_id)
            row, alloc = _load_pair(s, rec.request_id)
            spec = _spec(row, alloc, org)
        deleted = list(provisioner.deprovision(spec, dry_run=False))
        with unit_of_work(sessions) as s:
            rec = _load_record(s, record_id, lock=True)
            if rec.status != "data_pending":
                continue
            rec.data_deleted = [_ref(r) for r in deleted]
            rec.status, rec.completed_at = "completed", common.now()
            common.audit(s, common.SYSTEM, "reclaim.data_released", f"reclaim:{rec.id}", reason="retention_ended",
                         after={"deleted": rec.data_deleted})
            released.append(rec.id)
    return {"released": released}


def list_records(*, sessions: sessionmaker[Session], actor: Identity, month: str | None = None) -> list[dict[str, Any]]:
    """Reclaim records (回收清单) ``actor`` may see, newest first (``month``: created that month)."""
    require(actor, common.READ_ROLES, "read warnings and reclaim")
    org = load_org()
    with unit_of_work(sessions) as s:
        q = (select(ReclaimRecordRow)
             .where(common.department_scope(actor, org, ReclaimRecordRow.department, ReclaimRecordRow.owner))
             .order_by(ReclaimRecordRow.id.desc()))
        rows = [_record_view(r) for r in s.scalars(q)]
    if month:
        first, last = month_bounds(month)
        rows = [r for r in rows if first <= r["created_at"].date() <= last]
    return rows


# --------------------------------------------------------------------------- candidates


def _cand_view(c: ReclaimCandidateRow) -> dict[str, Any]:
    return {"id": c.id, "namespace": c.namespace, "month": c.month, "status": c.status, "request_id": c.request_id,
            "allocation_id": c.allocation_id, "owner": c.owner, "owner_source": c.owner_source,
            "department": c.department, "unit": c.unit, "pool": c.pool_id,
            "gpus": c.gpus, "days_counted": c.days_counted, "max_peak_util": c.max_peak_util,
            "max_peak_mem": c.max_peak_mem, "series": list(c.series or []), "plan": c.plan, "plan_gpus": c.plan_gpus,
            "notes": list(c.notes or []), "reclaim_record_id": c.reclaim_record_id, "next": sorted(CANDIDATE[c.status])}


def _load_candidate(s: Session, actor: Identity, candidate_id: int, *, lock: bool = False) -> ReclaimCandidateRow:
    """The candidate, if ``actor`` may see it (otherwise NotFound, as if it did not exist)."""
    q = select(ReclaimCandidateRow).where(ReclaimCandidateRow.id == candidate_id)
    c = s.scalars(q.with_for_update() if lock else q).first()
    if c is None or not common.may_see(actor, load_org(), c.department, c.owner, c.unit):
        raise NotFound("error.not_found", what="candidate", id=candidate_id)
    return c


def detect_candidates(*, sessions: sessionmaker[Session], actor: Identity, month: str) -> dict[str, Any]:
    """Detect the month's inference reclaim candidates (idempotent: one per namespace and month).

    Every namespace with usage in the month is judged (:func:`core.reclaim.judging.judge`): the
    rule applies to inference services whose GPUs are still held — those of an allocation in force
    in the month, and usage outside any allocation in an inference pool. A candidate carries its
    owner in the month (:mod:`core.reclaim.ownership`; "none" for legacy usage nobody owns).

    Returns ``{"month", "checked", "detected": [ids], "existing"}`` (``checked``: services the
    rule applied to).
    """
    require(actor, SYSTEM_ROLES, "detect reclaim candidates")
    policy = load_policy()
    first, last = month_bounds(month)
    at = common.now()
    with unit_of_work(sessions) as s:
        frame = read_days(s, first, last)
        judged = judge(s, frame, month, frame["namespace"].unique().to_list(), policy=policy)
        have = set(s.scalars(select(ReclaimCandidateRow.namespace).where(ReclaimCandidateRow.month == month)))
        detected, existing = [], 0
        for ns, j in sorted(judged.items()):
            if not j.candidate:
                continue
            if ns in have:
                existing += 1
                continue
            o, c = j.owned, j.check
            cand = ReclaimCandidateRow(namespace=ns, month=month, status="detected", request_id=o.request_id,
                                       allocation_id=o.allocation_id, owner_source=o.source, owner=o.owner,
                                       department=o.department, unit=o.unit, pool_id=o.pool_id, gpus=o.gpus,
                                       days_counted=c.days_counted, max_peak_util=c.max_peak_util,
                                       max_peak_mem=c.max_peak_mem, series=c.series, notes=[], created_at=at,
                                       updated_at=at)
            s.add(cand)
            s.flush()
            common.audit(s, actor, "candidate.detected", f"candidate:{cand.id}", reason=month,
                         after={"namespace": ns, "days": c.days_counted, **o.as_dict()}, at=at)
            detected.append(cand.id)
    return {"month": month, "checked": sum(1 for j in judged.values() if j.eligible), "detected": detected,
            "existing": existing}


def list_candidates(*, sessions: sessionmaker[Session], actor: Identity, month: str | None = None,
                    status: str | None = None) -> list[dict[str, Any]]:
    """Reclaim candidates ``actor`` may see (the warnings' scope rule: provincial ops their
    province's, owners their department's and their own), newest first."""
    require(actor, common.READ_ROLES, "read warnings and reclaim")
    if status is not None and status not in CANDIDATE_STATUSES:
        raise InputError("error.choice", field="status", value=status, choices=", ".join(CANDIDATE_STATUSES))
    org = load_org()
    with unit_of_work(sessions) as s:
        q = (select(ReclaimCandidateRow)
             .where(common.department_scope(actor, org, ReclaimCandidateRow.department, ReclaimCandidateRow.owner,
                                            ReclaimCandidateRow.unit))
             .order_by(ReclaimCandidateRow.month.desc(), ReclaimCandidateRow.id.desc()))
        if month:
            q = q.where(ReclaimCandidateRow.month == month)
        if status:
            q = q.where(ReclaimCandidateRow.status == status)
        return [_cand_view(c) for c in s.scalars(q)]


def move_candidate(*, sessions: sessionmaker[Session], actor: Identity, candidate_id: int, to: str, note: str,
                   plan: str | None = None, plan_gpus: int | None = None) -> dict[str, Any]:
    """Move a candidate along :data:`core.reclaim.states.CANDIDATE` with a note; ``plan_agreed``
    needs the agreed ``plan`` (and ``plan_gpus`` to release for scale_down). ``executed`` is set
    by :func:`execute_candidate`, not here.

    Raises:
        PermissionDenied: not ops/admin.
        InputError: no note, or a missing/unknown plan.
        InvalidMove: not allowed by the table.
    """
    require(actor, OPS_ROLES, "review reclaim candidates")
    note = (note or "").strip()
    if not note:
        raise InputError("reclaim.note_required", field="note")
    if to == "executed":
        raise InvalidMove("plan_agreed", "executed")
    if to == "plan_agreed" and plan not in PLANS:
        raise InputError("error.choice", field="plan", value=plan, choices=", ".join(PLANS))
    at = common.now()
    with unit_of_work(sessions) as s:
        c = _load_candidate(s, actor, candidate_id, lock=True)
        before = c.status
        check_move(CANDIDATE, before, to)
        c.status, c.updated_at = to, at
        if to == "plan_agreed":
            c.plan, c.plan_gpus = plan, plan_gpus
        c.notes = [*list(c.notes or []), {"at": common.iso(at), "actor": actor.id, "from": before, "to": to, "note": note}]
        common.audit(s, actor, "candidate.transition", f"candidate:{c.id}", reason=note, before={"status": before},
                     after={"status": to, "plan": c.plan}, at=at)
        return _cand_view(c)


def plan_candidate(*, sessions: sessionmaker[Session], actor: Identity, candidate_id: int,
                   provisioner: Provisioner | None = None) -> dict[str, Any]:
    """The reclaim record (dry run) of a candidate's agreed plan; executing it needs an approval
    by a second person (:func:`approve_reclaim`), then :func:`execute_reclaim`. NotFound when
    ``actor`` may not see the candidate (provincial ops: another province's); InputError for a
    candidate no portal allocation owns (legacy usage: the portal has nothing to deprovision; ops
    bring the namespace under an allocation or remove it by hand)."""
    require(actor, OPS_ROLES, "review reclaim candidates")
    with unit_of_work(sessions) as s:
        c = _load_candidate(s, actor, candidate_id)
        if c.status != "plan_agreed" or c.plan is None:
            raise InvalidMove(c.status, "executed")
        if c.request_id is None:
            raise InputError("reclaim.candidate_without_allocation", field="candidate", namespace=c.namespace)
        request_id, plan, gpus, month, existing = c.request_id, c.plan, c.plan_gpus, c.month, c.reclaim_record_id
    if existing:
        with unit_of_work(sessions) as s:
            return _record_view(_load_record(s, existing))
    rec = plan_reclaim(sessions=sessions, actor=actor, request_id=request_id, kind="candidate",
                       reason=f"candidate:{month}", plan=plan, release_gpus=gpus, provisioner=provisioner)
    with unit_of_work(sessions) as s:
        c = s.scalars(select(ReclaimCandidateRow).where(ReclaimCandidateRow.id == candidate_id).with_for_update()).first()
        c.reclaim_record_id = rec["id"]
    return rec


def execute_candidate(*, sessions: sessionmaker[Session], actor: Identity, candidate_id: int,
                      provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Execute a candidate's approved reclaim record and mark the candidate executed."""
    require(actor, OPS_ROLES, "review reclaim candidates")
    with unit_of_work(sessions) as s:
        c = _load_candidate(s, actor, candidate_id)
        if c.reclaim_record_id is None:
            raise NotFound("error.not_found", what="reclaim", id=candidate_id)
        check_move(CANDIDATE, c.status, "executed")
        record_id = c.reclaim_record_id
    rec = execute_reclaim(sessions=sessions, actor=actor, record_id=record_id, provisioner=provisioner)
    at = common.now()
    with unit_of_work(sessions) as s:
        c = s.scalars(select(ReclaimCandidateRow).where(ReclaimCandidateRow.id == candidate_id).with_for_update()).first()
        before = c.status
        c.status, c.updated_at = check_move(CANDIDATE, before, "executed"), at
        c.notes = [*list(c.notes or []), {"at": common.iso(at), "actor": actor.id, "from": before, "to": "executed",
                                          "note": f"reclaim:{record_id}"}]
        common.audit(s, actor, "candidate.transition", f"candidate:{c.id}", reason=f"reclaim:{record_id}",
                     before={"status": before}, after={"status": "executed"}, at=at)
    return rec


# --------------------------------------------------------------------------- L1 pool review


def pool_review(*, sessions: sessionmaker[Session], actor: Identity, month: str) -> list[dict[str, Any]]:
    """Per L1 model-family pool: allocations holding GPUs, allocated vs used GPU-hours of the month
    (from the rollups), and the month's notes and proposals. Provincial ops: their province's pools."""
    require(actor, OPS_ROLES, "review pools")
    policy = load_policy()
    org = load_org()
    first, last = month_bounds(month)
    pools = [p for p in org.pools.values() if p.kind in policy.l1_pool_kinds and provisioning.pool_in_scope(actor, org, p.id)]
    with unit_of_work(sessions) as s:
        frame = read_days(s, first, last)
        owners = common.by_namespace(s)
        entries = list(s.scalars(select(PoolReviewRow).where(PoolReviewRow.month == month).order_by(PoolReviewRow.id)))
        held = svc._held_by_pool(s)
    by_ns: dict[str, tuple[float, float]] = {}
    if frame.height:
        import polars as pl

        agg = frame.group_by("namespace").agg(pl.col("allocated_gpu_hours").sum(), pl.col("used_gpu_hours").sum())
        by_ns = {r["namespace"]: (r["allocated_gpu_hours"], r["used_gpu_hours"]) for r in agg.to_dicts()}
    out = []
    for p in pools:
        allocs = []
        for ns, (a, r) in owners.items():
            if a.pool_id != p.id:
                continue
            alloc_h, used_h = by_ns.get(ns, (0.0, 0.0))
            allocs.append({"request_id": r.id, "number": r.number, "namespace": ns, "project": r.project,
                           "owner": r.created_by, "gpus": a.gpus, "status": a.status,
                           "allocated_gpu_hours": alloc_h, "used_gpu_hours": used_h,
                           "use_ratio": (used_h / alloc_h) if alloc_h else None})
        alloc_total = sum(x["allocated_gpu_hours"] for x in allocs)
        used_total = sum(x["used_gpu_hours"] for x in allocs)
        out.append({"pool": p.id, "kind": p.kind, "gpus": p.gpus, "held": held.get(p.id, 0),
                    "allocated_gpu_hours": alloc_total, "used_gpu_hours": used_total,
                    "use_ratio": used_total / alloc_total if alloc_total else None, "allocations": allocs,
                    "entries": [{"id": e.id, "kind": e.kind, "request_id": e.request_id, "gpus": e.gpus,
                                 "target_pool": e.target_pool, "text": e.text, "actor": e.actor,
                                 "at": common.aware(e.at)} for e in entries if e.pool_id == p.id]})
    return out


def add_pool_review(*, sessions: sessionmaker[Session], actor: Identity, pool_id: str, month: str, kind: str,
                    text: str, request_id: int | None = None, gpus: int | None = None,
                    target_pool: str | None = None) -> dict[str, Any]:
    """Record a progress note, or a proposal of partial reclaim / transfer, in a pool's review.

    Raises:
        InputError: unknown kind or pool, no text, a proposal without a request and GPU count,
            a transfer without a known target pool.
        PermissionDenied: not ops/admin, or another province's pool (provincial ops).
    """
    require(actor, OPS_ROLES, "review pools")
    month_bounds(month)
    org = load_org()
    if pool_id not in org.pools:
        raise InputError("error.choice", field="pool", value=pool_id, choices=", ".join(org.pools))
    if not provisioning.pool_in_scope(actor, org, pool_id):
        raise PermissionDenied("error.permission_denied", action="review pools", role=actor.role)
    if kind not in REVIEW_KINDS:
        raise InputError("error.choice", field="kind", value=kind, choices=", ".join(REVIEW_KINDS))
    text = (text or "").strip()
    if not text:
        raise InputError("reclaim.note_required", field="note")
    if kind != "note" and (request_id is None or not gpus or gpus < 1):
        raise InputError("reclaim.proposal_incomplete", field="gpus")
    if kind == "transfer" and target_pool not in org.pools:
        raise InputError("error.choice", field="target_pool", value=target_pool, choices=", ".join(org.pools))
    at = common.now()
    with unit_of_work(sessions) as s:
        e = PoolReviewRow(pool_id=pool_id, month=month, kind=kind, request_id=request_id, gpus=gpus,
                          target_pool=target_pool if kind == "transfer" else None, text=text, actor=actor.id, at=at)
        s.add(e)
        s.flush()
        common.audit(s, actor, f"pool_review.{kind}", f"pool:{pool_id}", reason=text,
                     after={"month": month, "request": request_id, "gpus": gpus, "target_pool": target_pool}, at=at)
        return {"id": e.id, "pool": pool_id, "month": month, "kind": kind, "text": text}

