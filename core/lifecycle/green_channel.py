"""The green channel (绿色通道): emergency requests, the dynamic reserve (动态预留池) and
preemptive scheduling (抢占式调度).

An emergency request names a category from the closed set of ``data/green_channel.yaml`` and a
justification; it is flagged, has priority critical and goes straight to the emergency approver
(HQ ops acting as 总部运营总监). :func:`plan_emergency` shows — without changing anything — where
its GPUs would come from: the dynamic reserve first (same GPU model, then family, preferred);
when that is short, the free GPUs of its own pool plus a preemption plan chosen by
:func:`choose_preemptions` (a pure function: low before normal, never high/critical, then the
fewest allocations, the most recently started, the smallest overshoot).
:func:`decide_emergency` approves (or rejects); approving grants race-safely and, when the plan
needs it and ``execute_preemption`` is set, preempts: the preempted allocations are released
(GPUs back to their pool), their requests requeued (active → queued, reason ``preempted``, with
a new ops step to take them up again), their owners notified once each, and a post-emergency
review is scheduled (``review_due``, listed by :func:`reviews_due`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations, product
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core.adjust.persistence import record_adjustment
from core.datafiles import load_derived
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError, NotFound
from core.estimation.catalog import load_catalog
from core.identity import OPS_ROLES, Identity, PermissionDenied, notice_lang, require
from core.lifecycle import provisioning
from core.lifecycle import services as svc
from core.lifecycle.allocations import end_of
from core.lifecycle.forms import IntakeForm, consistency_errors
from core.lifecycle.persistence import AllocationRow, ApprovalStepRow, RequestRow
from core.lifecycle.rules import add_working_days, check_compliance, facts, missing_fields, ops_role_for, request_number
from core.lifecycle.states import OPEN, PREEMPTIBLE, InvalidTransition
from core.notifications.outbox import enqueue
from core.org import Org, Pool, load_org
from core.text import check_length

TIER = "green_channel"
FLAG = {"id": "green_channel", "key": "green.flag", "params": {}, "block": False}


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Category:
    """One kind of emergency that may use the green channel."""

    id: str
    zh: str
    en: str


@dataclass(frozen=True)
class GreenChannelSettings:
    """``data/green_channel.yaml``."""

    categories: Mapping[str, Category]
    approver_role: str
    justification_min_chars: int
    decision_minutes: int
    review_working_days: int
    preemptible_priorities: tuple[str, ...]
    max_combinations: int


def _build(raw: Any) -> GreenChannelSettings:
    try:
        cats = {c["id"]: Category(c["id"], c["zh"], c["en"]) for c in raw["categories"]}
        settings = GreenChannelSettings(
            categories=cats, approver_role=str(raw["approver_role"]),
            justification_min_chars=int(raw["justification_min_chars"]), decision_minutes=int(raw["decision_minutes"]),
            review_working_days=int(raw["review_working_days"]),
            preemptible_priorities=tuple(raw["preemptible_priorities"]), max_combinations=int(raw["max_combinations"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("error.data_entry_invalid", field="green_channel.yaml", entry=str(exc)) from None
    if {"high", "critical"} & set(settings.preemptible_priorities):
        raise InputError("error.data_entry_invalid", field="green_channel.yaml",
                         entry="preemptible_priorities may not name high or critical")
    return settings


def load_settings() -> GreenChannelSettings:
    """The green-channel settings (rebuilt when the file changes)."""
    return load_derived("green_channel.yaml", _build)


# --------------------------------------------------------------------------- the pure chooser


@dataclass(frozen=True)
class Candidate:
    """A running allocation that could be preempted."""

    allocation_id: int
    request_id: int
    gpus: int
    priority: str
    started_at: datetime
    owner: str = ""
    number: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"allocation_id": self.allocation_id, "request_id": self.request_id, "number": self.number,
                "gpus": self.gpus, "priority": self.priority, "owner": self.owner,
                "started_at": self.started_at.isoformat()}


@dataclass(frozen=True)
class PreemptionChoice:
    """What :func:`choose_preemptions` chose: enough or not, which allocations, GPUs freed."""

    enough: bool
    needed: int
    chosen: tuple[Candidate, ...]
    available: int  # GPUs all preemptible allocations together would free
    exact: bool = True  # False when the search space was too large and a greedy choice was made

    @property
    def freed(self) -> int:
        """GPUs the chosen allocations free."""
        return sum(c.gpus for c in self.chosen)

    @property
    def overshoot(self) -> int:
        """GPUs freed beyond the need."""
        return max(0, self.freed - self.needed)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"enough": self.enough, "needed": self.needed, "freed": self.freed, "overshoot": self.overshoot,
                "available": self.available, "exact": self.exact, "preempt": [c.as_dict() for c in self.chosen]}


def _top(items: Sequence[Candidate], n: int) -> int:
    return sum(sorted((c.gpus for c in items), reverse=True)[:n])


def _disruption(chosen: Iterable[Candidate], needed: int) -> tuple:
    chosen = list(chosen)
    # most recently started first: the oldest start of the set as late as possible, then the next…
    recency = tuple(-c.started_at.timestamp() for c in sorted(chosen, key=lambda c: c.started_at))
    overshoot = sum(c.gpus for c in chosen) - needed
    return recency, overshoot, tuple(sorted(c.allocation_id for c in chosen))


def choose_preemptions(candidates: Sequence[Candidate], needed: int, *,
                       preemptible: Sequence[str] = ("low", "normal"),
                       max_combinations: int = 200_000) -> PreemptionChoice:
    """The least disruptive set of allocations whose GPUs cover ``needed``.

    Rules, in order: only priorities in ``preemptible`` (never high or critical); lower
    priorities first — as few allocations of a higher priority as possible; then the fewest
    allocations; then the most recently started (least work lost); then the smallest
    overshoot. When all preemptible allocations together do not cover the need, ``enough`` is
    False and nothing is chosen.
    """
    if needed <= 0:
        return PreemptionChoice(True, max(needed, 0), (), 0)
    rank = {p: i for i, p in enumerate(preemptible) if p not in ("high", "critical")}
    eligible = [c for c in candidates if c.priority in rank and c.gpus > 0]
    available = sum(c.gpus for c in eligible)
    if available < needed:
        return PreemptionChoice(False, needed, (), available)
    for tier in sorted(set(rank.values())):
        top = [c for c in eligible if rank[c.priority] == tier]
        low = [c for c in eligible if rank[c.priority] < tier]
        if not top or _top(top, len(top)) + _top(low, len(low)) < needed:
            continue
        # the fewest allocations of this (highest used) priority, then the fewest in all
        for m in range(1, len(top) + 1):
            for k in range(0, len(low) + 1):
                if _top(top, m) + _top(low, k) < needed:
                    continue
                size = math.comb(len(top), m) * math.comb(len(low), k)
                if size > max_combinations:
                    greedy = (sorted(top, key=lambda c: (-c.gpus, -c.started_at.timestamp()))[:m]
                              + sorted(low, key=lambda c: (-c.gpus, -c.started_at.timestamp()))[:k])
                    return PreemptionChoice(True, needed, tuple(greedy), available, exact=False)
                best = min((a + b for a, b in product(combinations(top, m), combinations(low, k))
                            if sum(c.gpus for c in a + b) >= needed), key=lambda s: _disruption(s, needed))
                return PreemptionChoice(True, needed, tuple(sorted(best, key=lambda c: c.started_at, reverse=True)),
                                        available)
    raise AssertionError("unreachable: available >= needed")  # pragma: no cover


# --------------------------------------------------------------------------- planning


def _reserve_options(org: Org, free: Mapping[str, int], gpu: str) -> list[dict[str, Any]]:
    catalog = load_catalog()
    family = catalog.get(gpu).family

    def match(p: Pool) -> str:
        if p.gpu == gpu:
            return "model"
        return "family" if catalog.get(p.gpu).family == family else "other"

    order = {"model": 0, "family": 1, "other": 2}
    pools = [p for p in org.pools.values() if p.kind == "dynamic_reserve"]
    pools.sort(key=lambda p: (order[match(p)], -free.get(p.id, p.gpus), p.id))
    return [{"pool": p.id, "gpu": p.gpu, "cluster": p.cluster, "free": max(0, free.get(p.id, p.gpus)),
             "match": match(p)} for p in pools]


def _candidates(s: Session, pool_id: str) -> list[Candidate]:
    rows = s.execute(select(AllocationRow, RequestRow).join(RequestRow, RequestRow.id == AllocationRow.request_id)
                     .where(AllocationRow.pool_id == pool_id, AllocationRow.status == "active",
                            RequestRow.status.in_(sorted(PREEMPTIBLE))))
    return [Candidate(allocation_id=a.id, request_id=r.id, gpus=a.gpus, priority=a.priority,
                      started_at=svc._aware(a.provisioned_at or a.created_at), owner=r.created_by,
                      number=r.number or "") for a, r in rows]


def _plan(s: Session, row: RequestRow, org: Org, settings: GreenChannelSettings) -> dict[str, Any]:
    """Where the GPUs of emergency ``row`` would come from (reads only)."""
    gpus = row.requested_gpus
    home = org.pool(row.form.get("pool") or row.pool_id)
    # an emergency starts on the day it is approved: the GPUs must be free every day of its window
    today = svc.utc_today()
    free = svc._free_by_pool(s, org, today, end_of(today, row.duration_days))
    reserve = _reserve_options(org, free, home.gpu)
    plan: dict[str, Any] = {"request_id": row.id, "number": row.number, "gpus": gpus, "gpu": home.gpu,
                            "reserve": reserve, "home_pool": {"pool": home.id, "gpu": home.gpu,
                                                              "free": max(0, free[home.id])},
                            "source": "none", "pool": None, "enough": False, "needed": 0, "preempt": [],
                            "freed": 0, "overshoot": 0, "available": 0, "exact": True}
    fit = next((o for o in reserve if o["free"] >= gpus), None)
    if fit is not None:
        plan.update(source="dynamic_reserve", pool=fit["pool"], enough=True)
    elif not home.is_reserve and free[home.id] >= gpus:
        plan.update(source="pool", pool=home.id, enough=True)
    elif not home.is_reserve:
        choice = choose_preemptions(_candidates(s, home.id), gpus - max(0, free[home.id]),
                                    preemptible=settings.preemptible_priorities,
                                    max_combinations=settings.max_combinations)
        plan.update(source="preemption", pool=home.id, **choice.as_dict())
    plan["message"] = {"key": f"green.plan.{plan['source']}" + ("" if plan["enough"] else "_short"),
                       "params": {"gpus": gpus, "pool": plan["pool"] or home.id, "count": len(plan["preempt"]),
                                  "freed": plan["freed"], "needed": plan["needed"],
                                  "reserve_free": max((o["free"] for o in reserve), default=0)}}
    return plan


# --------------------------------------------------------------------------- services


def _load_emergency(s: Session, request_id: int, *, lock: bool = False) -> RequestRow:
    row = svc._load(s, request_id, lock=lock)
    if row.emergency_category is None:
        raise NotFound("error.not_found", what="emergency request", id=request_id)
    return row


def submit_emergency(*, sessions: sessionmaker[Session], actor: Identity, form: IntakeForm | dict,
                     justification: str, category: str) -> dict[str, Any]:
    """Submit an emergency request through the green channel.

    The request is flagged ``green_channel``, gets priority critical and one approval step for
    the emergency approver (``approver_role`` of data/green_channel.yaml, HQ ops); its pool may
    be the dynamic reserve. Compliance flags are stored but do not block: the approver decides.

    Args:
        form: the intake form (complete, as for :func:`core.lifecycle.services.submit`).
        justification: why this is an emergency (at least ``justification_min_chars`` characters).
        category: grid_safety_incident | national_strategic_task | production_model_outage.

    Raises:
        InputError: short justification, unknown category, incomplete or inconsistent form.
        PermissionDenied: executives and the committee do not apply.
    """
    require(actor, svc.APPLY_ROLES, "submit an emergency request")
    settings = load_settings()
    justification = check_length((justification or "").strip(), field="justification", kind="background")
    if len(justification) < settings.justification_min_chars:
        raise InputError("green.justification_too_short", field="justification",
                         min=settings.justification_min_chars, length=len(justification))
    if category not in settings.categories:
        raise InputError("error.choice", field="category", value=category, choices=", ".join(settings.categories))
    form = dataclasses.replace(svc._as_form(form), priority="critical")
    missing = missing_fields(form)
    if missing:
        raise InputError("lifecycle.incomplete", field=missing[0], missing=", ".join(missing))
    consistency_errors(form)
    org = load_org()
    svc._check_refs(form, actor, org, allow_dynamic_reserve=True)
    svc.ensure_capacity_rows(sessions, org.pools)
    now = svc._now()
    with unit_of_work(sessions) as s:
        flags = [FLAG] + [fl.as_dict() for fl in check_compliance(facts(form, org))]
        row = svc._submitted_row(s, actor, form, org, None, now)
        row.flags = flags
        row.tier = TIER
        row.tier_message = {"key": "green.tier", "params": {"category": category}}
        row.expected_review_working_days = 0
        row.emergency_category, row.justification = category, justification
        row.steps.append(ApprovalStepRow(seq=1, role=settings.approver_role, status="pending"))
        svc._move(s, row, "submitted", actor, "submitted", at=now)
        row.number = request_number(now.year, row.id)
        row.claim_deadline = now + timedelta(minutes=settings.decision_minutes)
        svc._audit(s, actor, "request.emergency", row, reason=justification,
                   after={"category": category, "gpus": row.requested_gpus, "pool": row.pool_id}, at=now)
        svc._notify_applicant(s, row, "submitted", "request_submitted", expected_review_working_days=0,
                              claim_deadline=svc._iso(row.claim_deadline), tier_key="green.tier",
                              flags=[f["id"] for f in flags])
        s.flush()
        svc._notify_reviewers(s, row, row.steps[0], org)
        s.flush()
        return svc._view(row)


def _may_plan(actor: Identity, settings: GreenChannelSettings) -> None:
    require(actor, {settings.approver_role, "admin"}, "plan an emergency")


def plan_emergency(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> dict[str, Any]:
    """Where an emergency's GPUs would come from, shown before anything happens (writes nothing).

    Returns ``source`` (dynamic_reserve | pool | preemption | none), ``pool`` (where the grant
    goes), ``enough``, the reserve pools considered (``reserve``), and for preemption ``needed``,
    ``preempt`` (allocations to stop), ``freed``, ``overshoot``, ``exact``; ``message`` is a
    key with parameters summarising it.

    Raises:
        PermissionDenied: only the emergency approver (HQ ops) and admins plan.
        NotFound: no such emergency request.
    """
    settings = load_settings()
    _may_plan(actor, settings)
    org = load_org()
    with unit_of_work(sessions) as s:
        row = _load_emergency(s, request_id)
        return _plan(s, row, org, settings)


def _preempt(s: Session, emergency: RequestRow, cand: dict[str, Any], org: Org, actor: Identity,
             now: datetime) -> None:
    alloc = s.execute(select(AllocationRow).where(AllocationRow.id == cand["allocation_id"]).with_for_update()
                      .execution_options(populate_existing=True)).scalar_one()
    victim = svc._load(s, alloc.request_id, lock=True)
    if alloc.status != "active" or victim.status not in PREEMPTIBLE:
        raise ComputeLoopError("green.plan_changed", id=emergency.id)
    svc.release_allocation(s, alloc, now)
    alloc.preempted_by = emergency.id
    svc._move(s, victim, "queued", actor, "preempted", at=now)
    form = IntakeForm.from_dict(victim.form)
    seq = max((st.seq for st in victim.steps), default=0) + 1
    victim.steps.append(ApprovalStepRow(seq=seq, role=ops_role_for(facts(form, org)), status="pending"))
    svc._audit(s, actor, "allocation.preempted", victim, reason=f"emergency:{emergency.number or emergency.id}",
               before={"allocation": alloc.id, "status": "active", "gpus": alloc.gpus, "pool": alloc.pool_id},
               after={"allocation": alloc.id, "status": "released", "requeued": True,
                      "emergency_request": emergency.id}, at=now)
    record_adjustment(s, actor=actor.id, kind="preemption", subject=f"request:{victim.id}",
                      reason=f"emergency:{emergency.number or emergency.id}",
                      before={"allocation": alloc.id, "status": "active", "gpus": alloc.gpus, "pool": alloc.pool_id},
                      after={"allocation": alloc.id, "status": "released", "requeued": True,
                             "emergency_request": emergency.id}, at=now)
    email = svc._applicant_email(victim)
    if "@" in (email or ""):
        enqueue(s, dedup_key=f"request:{victim.id}:preempted:{emergency.id}", recipient_id=victim.created_by,
                recipient_email=email, lang=notice_lang(victim.created_by), template="preempted",
                params={"request_id": victim.id, "number": victim.number or "", "title": svc._title(victim),
                        "namespace": alloc.namespace or "", "gpus": alloc.gpus,
                        "gpu_model": alloc.gpu_model or org.pool(alloc.pool_id).gpu,
                        "emergency": emergency.number or str(emergency.id)})


def decide_emergency(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, approve: bool,
                     reason: str, execute_preemption: bool = False) -> dict[str, Any]:
    """The emergency approver's decision; approving grants the GPUs (and preempts if needed).

    The plan is recomputed inside the decision's transaction. From the dynamic reserve (or the
    own pool's free GPUs) the grant is race-safe like any approval. When the plan needs
    preemption, ``execute_preemption`` must be True: the chosen allocations are released, their
    requests requeued (reason ``preempted``, a new ops step), each owner gets one ``preempted``
    notice and an ``allocation.preempted`` audit event is written per requeue. Approving sets
    ``review_due`` (post-emergency review) and then provisions automatically.

    Raises:
        InputError: no reason; preemption needed but not confirmed (``green.preemption_not_confirmed``).
        ComputeLoopError: ``green.not_enough`` — not even preemption frees enough (nothing changes);
            ``green.plan_changed`` — an allocation of the plan changed meanwhile (decide again).
        PermissionDenied: not the emergency approver, or their own request.
        InvalidTransition: the request waits for no decision.
        CapacityRace: the GPUs went to a concurrent approval.
    """
    settings = load_settings()
    reason = check_length((reason or "").strip(), field="reason", kind="reason")
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    if actor.role != settings.approver_role:
        raise PermissionDenied("error.permission_denied", action="decide an emergency request", role=actor.role)
    org = load_org()
    svc.ensure_capacity_rows(sessions, org.pools)
    try:
        with unit_of_work(sessions) as s:
            row = _load_emergency(s, request_id, lock=True)
            if row.created_by == actor.id:
                raise PermissionDenied("lifecycle.own_request", number=row.number or row.id)
            step = svc._current_step(row) if row.status in OPEN else None
            if step is None:
                raise InvalidTransition(row.status, "approved" if approve else "rejected")
            now = svc._now()
            if row.status != "in_review":
                svc._move(s, row, "in_review", actor, "claimed", at=now)
                row.claimed_by = row.claimed_by or actor.id
            step.decided_by, step.decided_at, step.reason = actor.id, now, reason
            step.status = "approved" if approve else "rejected"
            row.decision, row.decision_reason = ("approve" if approve else "reject"), reason
            svc._audit(s, actor, "request.step_decided", row, reason=reason,
                       before={"step": step.seq, "status": "pending"},
                       after={"step": step.seq, "role": step.role, "status": step.status}, at=now)
            if not approve:
                svc._move(s, row, "rejected", actor, reason, at=now)
                svc._notify_applicant(s, row, "rejected", "request_rejected", reason=reason)
                s.flush()
                return svc._view(row)
            plan = _plan(s, row, org, settings)
            if not plan["enough"]:
                raise ComputeLoopError("green.not_enough", gpus=plan["gpus"], pool=plan["home_pool"]["pool"],
                                       available=plan["available"] + plan["home_pool"]["free"])
            if plan["preempt"] and not execute_preemption:
                raise InputError("green.preemption_not_confirmed", field="execute_preemption",
                                 count=len(plan["preempt"]), freed=plan["freed"])
            preempted = [cand["request_id"] for cand in plan["preempt"]]
            for cand in plan["preempt"]:
                _preempt(s, row, cand, org, actor, now)
            s.flush()
            row.pool_id = plan["pool"]
            row.unit = org.clusters[org.pool(plan["pool"]).cluster].unit
            row.emergency_plan = plan
            row.review_due = add_working_days(now, settings.review_working_days).date()
            row.start_date = now.date()  # an emergency runs from its approval, whatever date the form said
            svc._grant(s, row, org, actor, reason=reason, final="approved")
            s.flush()
            view = svc._view(row)
    except StaleDataError:
        raise ComputeLoopError("lifecycle.concurrent_update", id=request_id) from None
    # the preempted work stops on its cluster before the emergency's namespace is created there
    stopped = [provisioning.stop_after_preemption(sessions=sessions, request_id=rid) for rid in preempted]
    return {**svc._after_approval(sessions, view), "stopped": stopped}


def reviews_due(*, sessions: sessionmaker[Session], actor: Identity) -> list[dict[str, Any]]:
    """Approved emergencies whose post-emergency review is not done, soonest due first.

    Each row: the request view plus ``overdue`` (due date passed). Provincial ops see their
    province's emergencies only.

    Raises:
        PermissionDenied: ops and admins only.
    """
    require(actor, OPS_ROLES, "list post-emergency reviews")
    today = svc._now().date()
    org = load_org()
    with unit_of_work(sessions) as s:
        rows = s.scalars(select(RequestRow).where(RequestRow.review_due.is_not(None), RequestRow.reviewed_at.is_(None))
                         .order_by(RequestRow.review_due, RequestRow.id))
        return [{**svc._view(r), "overdue": r.review_due < today} for r in rows if svc._can_see(actor, r, org)]


def complete_review(*, sessions: sessionmaker[Session], actor: Identity, request_id: int,
                    notes: str) -> dict[str, Any]:
    """Record the post-emergency review of an emergency (notes required); it leaves :func:`reviews_due`.

    Raises:
        InputError: no notes.
        PermissionDenied: ops and admins only, in their scope (provincial ops: their province's);
            nobody reviews their own emergency.
        NotFound: no such emergency (or not visible to ``actor``), or no review scheduled.
    """
    require(actor, OPS_ROLES, "review an emergency")
    notes = (notes or "").strip()
    if not notes:
        raise InputError("lifecycle.reason_required", field="notes")
    org = load_org()
    with unit_of_work(sessions) as s:
        row = _load_emergency(s, request_id, lock=True)
        provisioning.check_scope(actor, row, org, "review an emergency")
        if row.created_by == actor.id:
            raise PermissionDenied("lifecycle.own_request", number=row.number or row.id)
        if row.review_due is None:
            raise NotFound("error.not_found", what="review", id=request_id)
        row.reviewed_at = svc._now()
        svc._audit(s, actor, "request.emergency_reviewed", row, reason=notes,
                   after={"review_due": row.review_due.isoformat()})
        return svc._view(row)
