"""Services of dynamic adjustment (动态调整): the queue, preemption/defragmentation simulations,
autoscaling policies and the adjustment record. Ops and admins only.

Every function takes keyword-only ``sessions`` and ``actor``, checks permissions, runs in one
unit of work and returns plain values. Every change writes an adjustment record
(:func:`core.adjust.persistence.record_adjustment`) and an audit event in the same transaction.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Sequence

from sqlalchemy import and_, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from core.clock import aware as _aware, utc_now as _now
from core.adjust import autoscaling as scaling
from core.adjust import queue as q
from core.adjust import simulation as sim
from core.adjust.persistence import KINDS, AdjustmentRow, ScalingPolicyRow, record_adjustment
from core.db.models import AuditEventRow, EstimateRow
from core.db.session import unit_of_work
from core.errors import InputError, NotFound
from core.identity import OPS_ROLES, Identity, PermissionDenied, require
from core.lifecycle.allocations import COMMITTED, plus
from core.lifecycle.persistence import HOLDING_ALLOCATION, AllocationRow, RequestRow
from core.lifecycle.provisioning import pool_in_scope as _pool_in_scope
from core.org import Org, load_org

__all__ = ["record_adjustment", "list_adjustments", "queue", "simulate_preemption", "simulate_defragmentation",
           "apply_defragmentation", "list_policies", "save_policy", "replay_policy", "policy_manifests"]

ADJUST_ROLES = OPS_ROLES
_MAX_HOURS = 24 * 366 * 9000  # an estimate longer than this is past the calendar anyway


def _day_end(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


# --------------------------------------------------------------------------- scope


def simulation_pools(actor: Identity) -> list[str]:
    """The ordinary (not reserve) pools ``actor`` may simulate preemption and regrouping on:
    provincial ops their province's, HQ ops and admins every one."""
    org = load_org()
    return [p.id for p in org.pools.values() if not p.is_reserve and _pool_in_scope(actor, org, p.id)]


def _require_pool(actor: Identity, org: Org, pool_id: str, action: str) -> None:
    if not _pool_in_scope(actor, org, pool_id):
        raise PermissionDenied("error.permission_denied", action=action, role=actor.role)


def _namespaces_in_scope(s: Session, actor: Identity, org: Org) -> set[str] | None:
    """The namespaces of allocations on the actor's pools; None: every namespace (not provincial ops)."""
    if actor.role != "prov_ops":
        return None
    rows = s.execute(select(AllocationRow.namespace, AllocationRow.pool_id).where(AllocationRow.namespace.is_not(None)))
    return {ns for ns, pool in rows if _pool_in_scope(actor, org, pool)}


def _subjects_in_scope(s: Session, actor: Identity, org: Org) -> Callable[[str], bool]:
    """Whether an adjustment's subject (request:<id>, pool:<id>, deployment:<ns>/<name>) is in
    the actor's scope: provincial ops see their province's requests, pools and services."""
    namespaces = _namespaces_in_scope(s, actor, org)
    if namespaces is None:
        return lambda subject: True
    from core.lifecycle.services import _depts_of_unit

    depts = sorted(_depts_of_unit(actor.province, org)) or [""]
    requests = {f"request:{i}" for i in s.scalars(select(RequestRow.id).where(
        or_(RequestRow.unit == actor.province, RequestRow.department.in_(depts))))}
    pools = {f"pool:{p}" for p in org.pools if _pool_in_scope(actor, org, p)}
    deployments = {f"deployment:{ns}" for ns in namespaces}
    return lambda subject: subject in requests or subject in pools or subject.split("/")[0] in deployments


# --------------------------------------------------------------------------- adjustment record


def _adjustment_view(r: AdjustmentRow) -> dict[str, Any]:
    return {"id": r.id, "at": _aware(r.at), "actor": r.actor, "kind": r.kind, "subject": r.subject,
            "before": r.before, "after": r.after, "reason": r.reason, "automatic": bool(r.automatic)}


def list_adjustments(*, sessions: sessionmaker[Session], actor: Identity, kind: str | None = None,
                     subject: str | None = None, since: datetime | None = None, until: datetime | None = None,
                     automatic: bool | None = None, by: str | None = None, pool: str | None = None,
                     limit: int = 500) -> list[dict[str, Any]]:
    """Adjustment records, newest first, filtered by kind, subject, time range, automatic, who
    (``by``) and the pool they are about.

    Provincial ops see the adjustments of their province's requests, pools and services.

    Raises:
        InputError: unknown kind.
        PermissionDenied: ops and admins only.
    """
    require(actor, ADJUST_ROLES, "list adjustments")
    if kind is not None and kind not in KINDS:
        raise InputError("error.choice", field="kind", value=kind, choices=", ".join(KINDS))
    with unit_of_work(sessions) as s:
        query = select(AdjustmentRow).order_by(AdjustmentRow.at.desc(), AdjustmentRow.id.desc())
        if kind:
            query = query.where(AdjustmentRow.kind == kind)
        if subject:
            query = query.where(AdjustmentRow.subject == subject)
        if since is not None:
            query = query.where(AdjustmentRow.at >= since)
        if until is not None:
            query = query.where(AdjustmentRow.at < until)
        if automatic is not None:
            query = query.where(AdjustmentRow.automatic.is_(bool(automatic)))
        if by:
            query = query.where(AdjustmentRow.actor == by)
        if pool:
            query = query.where(AdjustmentRow.pool == pool)
        if actor.role != "prov_ops":
            return [_adjustment_view(r) for r in s.scalars(query.limit(limit))]
        mine = _subjects_in_scope(s, actor, load_org())
        return [_adjustment_view(r) for r in s.scalars(query) if mine(r.subject)][:limit]


# --------------------------------------------------------------------------- reading the queue


def _waiting(s: Session) -> list[q.Waiting]:
    rows = s.scalars(select(RequestRow).where(RequestRow.status == "queued").order_by(RequestRow.id))
    return [q.Waiting(r.id, r.number or f"#{r.id}", r.pool_id, r.approved_gpus or r.requested_gpus, r.priority,
                      _aware(r.queued_at or r.submitted_at or r.created_at), r.approved_days or r.duration_days,
                      r.project, r.department) for r in rows]


def _releases(s: Session, now: datetime) -> list[q.Release]:
    """GPUs coming back to each pool (held allocations' ends, or their jobs' estimated finish), and
    GPUs a scheduled allocation takes from its start date to its end (the queue must not count on
    GPUs booked from a start date ahead). Dates near the calendar's end stay there, never overflow."""
    a = AllocationRow
    # The columns it needs, not the ORM rows: loading every committed request with its form took
    # 60-140 ms on the demo data (186 allocations), the columns take 5 ms.
    rows = s.execute(select(a.pool_id, a.gpus, a.status, a.starts_on, a.ends_on, a.provisioned_at, RequestRow.number,
                            RequestRow.id.label("request_id"), EstimateRow.estimated_wall_clock_hours)
                     .join(RequestRow, RequestRow.id == a.request_id)
                     .outerjoin(EstimateRow, EstimateRow.id == RequestRow.estimate_id)
                     .where(a.status.in_(sorted(COMMITTED))))
    out = []
    for alloc in rows:
        wall_h = alloc.estimated_wall_clock_hours
        number = alloc.number or f"#{alloc.request_id}"
        ends = _day_end(alloc.ends_on) if alloc.ends_on else None
        if alloc.status == "scheduled":
            starts = _day_end(alloc.starts_on) if alloc.starts_on else now
            if starts > now:
                out.append(q.Release(alloc.pool_id, -alloc.gpus, starts, number, "scheduled"))
                if ends is not None:
                    out.append(q.Release(alloc.pool_id, alloc.gpus, max(ends, starts), number, "ends_on"))
                continue
        source = "ends_on"
        started = _aware(alloc.provisioned_at)
        if wall_h and started is not None and math.isfinite(float(wall_h)):
            finish = plus(started, timedelta(hours=min(float(wall_h), _MAX_HOURS)))
            if ends is None or finish < ends:
                ends, source = finish, "estimate"
        if ends is not None:
            out.append(q.Release(alloc.pool_id, alloc.gpus, max(ends, now), number, source))
    return out


def _granted():
    return func.coalesce(AllocationRow.provisioned_at, AllocationRow.created_at)


def _last_empty_moment(pools: Sequence[str]):
    """Per pool, the last time nothing was held (a subquery: pool, t). At that moment every node is
    free, so allocations released at or before it cannot change today's layout.

    A sweep over grant (+1) and release (−1) events in time order (releases first at equal times,
    as :func:`core.adjust.simulation.layout`); the running count is 0 right after the pool empties."""
    a, granted = AllocationRow, _granted()
    timed = a.released_at > granted  # a release without a time, or not after the grant, placed nothing
    released = a.status == "released"
    grants = select(a.pool_id.label("pool"), granted.label("t"), literal(1).label("delta"), a.id.label("aid")).where(
        a.pool_id.in_(pools), a.status != "scheduled", or_(~released, timed))
    releases = select(a.pool_id, a.released_at, literal(-1), a.id).where(a.pool_id.in_(pools), released, timed)
    events = union_all(grants, releases).subquery()
    running = select(events.c.pool, events.c.t, func.sum(events.c.delta).over(
        partition_by=events.c.pool, order_by=(events.c.t, events.c.delta, events.c.aid), rows=(None, 0)).label("held")
    ).subquery()
    return select(running.c.pool, func.max(running.c.t).label("t")).where(running.c.held == 0).group_by(
        running.c.pool).subquery()


def _placed_by_pool(s: Session, pool_ids: Sequence[str]) -> dict[str, list[sim.Placed]]:
    """The allocations that shape each pool's node layout today, in one query for all pools: every
    holder, and the released ones whose release came after the pool was last empty (the holes
    they left are the fragmentation); older releases are left out (see :func:`_last_empty_moment`)."""
    pools = sorted(set(pool_ids))
    out: dict[str, list[sim.Placed]] = {p: [] for p in pools}
    if not pools:
        return out
    a, granted = AllocationRow, _granted()
    empty = _last_empty_moment(pools)
    released = a.status == "released"
    rows = s.execute(
        select(a, RequestRow.number).join(RequestRow, RequestRow.id == a.request_id)
        .outerjoin(empty, empty.c.pool == a.pool_id)
        .where(a.pool_id.in_(pools), a.status != "scheduled",  # nothing of a scheduled one is on a node yet
               or_(~released, and_(a.released_at > granted, or_(empty.c.t.is_(None), a.released_at > empty.c.t))))
        .order_by(a.pool_id, a.id))
    for alloc, number in rows:
        out[alloc.pool_id].append(sim.Placed(
            alloc.id, number or f"#{alloc.request_id}", alloc.gpus, _aware(alloc.provisioned_at or alloc.created_at),
            _aware(alloc.released_at) if alloc.status == "released" else None, alloc.priority))
    return out


def _free_per_node(s: Session, org: Org, pool_ids: Sequence[str]) -> dict[str, list[int]]:
    placed = _placed_by_pool(s, pool_ids)
    out = {}
    for pid in pool_ids:
        pool = org.pool(pid)
        free, _ = sim.layout(sim.node_sizes(pool.gpus, pool.gpus_per_node), placed[pid], pool.gpus_per_node)
        out[pid] = free
    return out


def queue(*, sessions: sessionmaker[Session], actor: Identity, now: datetime | None = None) -> dict[str, Any]:
    """The waiting requests in queue order with position, effective priority, ETA, blocked reason and hint.

    Returns ``{"entries": [...], "policy": {...}, "pools": {pool: {"free", "free_per_node"}}}``;
    provincial ops get their province's pools only.

    Raises:
        PermissionDenied: ops and admins only.
    """
    require(actor, ADJUST_ROLES | {"system"}, "read the queue")  # the system: jobs queue-snapshot
    now = now or _now()
    org = load_org()
    policy = q.load_policy()
    with unit_of_work(sessions) as s:
        waiting = [w for w in _waiting(s) if w.pool in org.pools and _pool_in_scope(actor, org, w.pool)]
        from core.lifecycle.services import _free_by_pool

        free = _free_by_pool(s, org)
        pools = sorted({w.pool for w in waiting})
        per_node = _free_per_node(s, org, pools)
        releases = _releases(s, now)
    entries = q.plan(q.order(waiting, now, policy), releases, free, per_node,
                     {p: org.pool(p).gpus_per_node for p in pools}, now, waiting)
    return {"entries": [e.as_dict() for e in entries],
            "policy": {"weights": dict(policy.weights), "aging_rate_per_hour": policy.aging_rate_per_hour,
                       "max_aging_hours": policy.max_aging_hours,
                       "normal_overtakes_high_h": policy.overtake_hours("normal", "high"),
                       "low_overtakes_normal_h": policy.overtake_hours("low", "normal")},
            "pools": {p: {"free": free[p], "free_per_node": per_node[p]} for p in pools}}


# --------------------------------------------------------------------------- simulations


def _pool_inputs(s: Session, org: Org, pool_id: str, now: datetime) -> tuple[Any, list[int], list[sim.Placed], list[q.Waiting]]:
    pool = org.pool(pool_id)
    sizes = sim.node_sizes(pool.gpus, pool.gpus_per_node)
    waiting = [w for w in _waiting(s) if w.pool == pool_id]
    ordered = {e.request_id: e.position for e in q.order(waiting, now, q.load_policy())}
    waiting.sort(key=lambda w: ordered[w.request_id])
    return pool, sizes, _placed_by_pool(s, [pool_id])[pool_id], waiting


def simulate_preemption(*, sessions: sessionmaker[Session], actor: Identity, pool: str,
                        allocation_ids: Sequence[int]) -> dict[str, Any]:
    """Free GPUs per node before/after stopping ``allocation_ids`` of ``pool`` and which waiting requests then fit.

    Writes nothing. Raises InputError (an allocation not running in the pool), PermissionDenied
    (not ops, or another province's pool).
    """
    require(actor, ADJUST_ROLES, "simulate a preemption")
    org = load_org()
    _require_pool(actor, org, pool, "simulate a preemption")
    with unit_of_work(sessions) as s:
        p, sizes, placed, waiting = _pool_inputs(s, org, pool, _now())
        holding = {a.allocation_id for a in placed if a.released_at is None}
        for aid in allocation_ids:
            if aid not in holding:
                raise InputError("adjq.not_running", field="allocation_ids", id=aid, pool=pool)
        return sim.simulate_preemption(pool, sizes, p.gpus_per_node, placed, list(allocation_ids), waiting)


def simulate_defragmentation(*, sessions: sessionmaker[Session], actor: Identity, pool: str) -> dict[str, Any]:
    """The regrouping plan of ``pool``: before/after free GPUs per node, moves, waiting requests that then fit."""
    require(actor, ADJUST_ROLES, "simulate a defragmentation")
    org = load_org()
    _require_pool(actor, org, pool, "simulate a defragmentation")
    with unit_of_work(sessions) as s:
        p, sizes, placed, waiting = _pool_inputs(s, org, pool, _now())
        return sim.simulate_defragmentation(pool, sizes, p.gpus_per_node, placed, waiting)


def apply_defragmentation(*, sessions: sessionmaker[Session], actor: Identity, pool: str, reason: str) -> dict[str, Any]:
    """Record the agreed regrouping plan of ``pool`` for the ops team (the portal cannot move running work).

    Writes a ``defragmentation`` adjustment (before/after per node, moves) and an audit event.

    Raises:
        InputError: no reason, or nothing to regroup.
        PermissionDenied: ops and admins only.
    """
    require(actor, ADJUST_ROLES, "record a defragmentation plan")
    reason = (reason or "").strip()
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    org = load_org()
    _require_pool(actor, org, pool, "record a defragmentation plan")
    now = _now()
    with unit_of_work(sessions) as s:
        p, sizes, placed, waiting = _pool_inputs(s, org, pool, now)
        result = sim.simulate_defragmentation(pool, sizes, p.gpus_per_node, placed, waiting)
        if not result["moves"]:
            raise InputError("adjq.nothing_to_regroup", field="pool", pool=pool)
        subject = f"pool:{pool}"
        record_adjustment(s, actor=actor.id, kind="defragmentation", subject=subject, reason=reason,
                          before=result["before"], after={**result["after"], "moves": result["moves"],
                                                          "fits_after": result["fits_after"]}, at=now)
        s.add(AuditEventRow(at=now, actor=actor.id, action="adjust.defragmentation_planned", subject=subject,
                            reason=reason, before=result["before"], after=result["after"]))
        return result


# --------------------------------------------------------------------------- autoscaling policies


_POLICY_FIELDS = ("min_replicas", "max_replicas", "gpus_per_replica", "util_high", "util_low", "mem_high", "sustain_s",
                  "scale_up_window_s", "scale_down_window_s")


def _policy_of(row: ScalingPolicyRow) -> scaling.ScalingPolicy:
    return scaling.ScalingPolicy(row.namespace, row.deployment, **{f: getattr(row, f) for f in _POLICY_FIELDS})


def _policy_view(row: ScalingPolicyRow) -> dict[str, Any]:
    return {"id": row.id, **_policy_of(row).as_dict(), "updated_by": row.updated_by, "updated_at": _aware(row.updated_at)}


def running_allocations(*, sessions: sessionmaker[Session], actor: Identity, pool: str) -> list[dict[str, Any]]:
    """Allocations holding GPUs of ``pool`` (the choices of a preemption simulation), newest first."""
    require(actor, ADJUST_ROLES, "simulate a preemption")
    _require_pool(actor, load_org(), pool, "simulate a preemption")
    with unit_of_work(sessions) as s:
        rows = s.execute(select(AllocationRow, RequestRow.number).join(RequestRow, RequestRow.id == AllocationRow.request_id)
                         .where(AllocationRow.pool_id == pool, AllocationRow.status.in_(HOLDING_ALLOCATION))
                         .order_by(AllocationRow.id.desc()))
        return [{"allocation_id": a.id, "number": number or f"#{a.request_id}", "gpus": a.gpus, "priority": a.priority,
                 "ends_on": a.ends_on.isoformat() if a.ends_on else None} for a, number in rows]


def list_policies(*, sessions: sessionmaker[Session], actor: Identity) -> list[dict[str, Any]]:
    """Every autoscaling policy, by namespace and deployment (provincial ops: their province's services)."""
    require(actor, ADJUST_ROLES, "list autoscaling policies")
    with unit_of_work(sessions) as s:
        rows = s.scalars(select(ScalingPolicyRow).order_by(ScalingPolicyRow.namespace, ScalingPolicyRow.deployment))
        mine = _namespaces_in_scope(s, actor, load_org())
        return [_policy_view(r) for r in rows if mine is None or r.namespace in mine]


def save_policy(*, sessions: sessionmaker[Session], actor: Identity, policy: scaling.ScalingPolicy | dict,
                reason: str) -> dict[str, Any]:
    """Create or change the policy of ``policy.namespace/deployment``; the change is recorded
    (``scale_policy_change`` adjustment with before/after, and an audit event).

    Raises:
        InputError: an inconsistent policy (names the field) or no reason.
        PermissionDenied: ops and admins only; provincial ops only for a namespace of their province.
    """
    require(actor, ADJUST_ROLES, "change an autoscaling policy")
    if isinstance(policy, dict):
        try:
            policy = scaling.ScalingPolicy(**policy)
        except TypeError as exc:
            raise InputError("error.data_entry_invalid", field="policy", entry=str(exc)) from None
    policy = scaling.validate(policy)
    reason = (reason or "").strip()
    if not reason:
        raise InputError("lifecycle.reason_required", field="reason")
    now = _now()
    with unit_of_work(sessions) as s:
        mine = _namespaces_in_scope(s, actor, load_org())
        if mine is not None and policy.namespace not in mine:
            raise PermissionDenied("error.permission_denied", action="change an autoscaling policy", role=actor.role)
        row = s.scalars(select(ScalingPolicyRow).where(ScalingPolicyRow.namespace == policy.namespace,
                                                       ScalingPolicyRow.deployment == policy.deployment)
                        .with_for_update()).first()
        before = _policy_of(row).as_dict() if row is not None else None
        if row is None:
            row = ScalingPolicyRow(namespace=policy.namespace, deployment=policy.deployment)
            s.add(row)
        for f in _POLICY_FIELDS:
            setattr(row, f, getattr(policy, f))
        row.updated_by, row.updated_at = actor.id, now
        s.flush()
        after = policy.as_dict()
        subject = f"deployment:{policy.namespace}/{policy.deployment}"
        record_adjustment(s, actor=actor.id, kind="scale_policy_change", subject=subject, reason=reason,
                          before=before, after=after, at=now)
        s.add(AuditEventRow(at=now, actor=actor.id, action="adjust.scaling_policy_saved", subject=subject,
                            reason=reason, before=before, after=after))
        return _policy_view(row)


def policy_manifests(policy: scaling.ScalingPolicy | dict) -> dict[str, Any]:
    """The HPA and the KEDA ScaledObject of ``policy`` (pure; no permission needed to render)."""
    if isinstance(policy, dict):
        policy = scaling.ScalingPolicy(**{k: v for k, v in policy.items() if k in scaling.ScalingPolicy.__dataclass_fields__})
    return {"hpa": scaling.render_hpa(policy), "keda": scaling.render_keda(policy)}


def replay_policy(*, actor: Identity, policy: scaling.ScalingPolicy | dict, source: Any, days: int | None = None,
                  end: datetime | None = None, step_s: int | None = None) -> dict[str, Any]:
    """Replay ``policy`` over the last ``days`` of its namespace's utilisation from ``source``
    (a :class:`core.metrics.schema.MetricsSource`) at ``step_s`` points; both default to
    ``replay_days``/``replay_step_s`` of data/autoscaling_defaults.yaml. An empty series gives an
    empty replay.

    Raises:
        PermissionDenied: ops and admins only.
    """
    require(actor, ADJUST_ROLES, "replay an autoscaling policy")
    if isinstance(policy, dict):
        policy = scaling.ScalingPolicy(**{k: v for k, v in policy.items() if k in scaling.ScalingPolicy.__dataclass_fields__})
    policy = scaling.validate(policy)
    defaults = scaling.load_defaults()
    days = days or defaults.replay_days
    step_s = step_s or defaults.replay_step_s
    if end is None:
        # offline samples end where the files end; a live source ends now
        have = source.days() if hasattr(source, "days") else []
        end = _day_end(have[-1]) + timedelta(days=1) if have else _now()
    frame = source.series(end - timedelta(days=days), end, step_s=step_s, namespace=policy.namespace)
    points = scaling.series_points(frame, policy.gpus_per_replica)
    return {"points": len(points), **scaling.replay(policy, points)}


def get_policy(*, sessions: sessionmaker[Session], actor: Identity, policy_id: int) -> dict[str, Any]:
    """One policy by id (NotFound otherwise)."""
    require(actor, ADJUST_ROLES, "list autoscaling policies")
    with unit_of_work(sessions) as s:
        row = s.get(ScalingPolicyRow, policy_id)
        mine = _namespaces_in_scope(s, actor, load_org())
        if row is None or (mine is not None and row.namespace not in mine):
            raise NotFound("error.not_found", what="scaling policy", id=policy_id)
        return _policy_view(row)
