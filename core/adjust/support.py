"""Emergency resource support requests (紧急资源支援请求): the day-level step of the two-level
scale-out (总部与省两级协同扩容, seed chapter 4).

When a province's clusters are full and its own reserve is used up, its ops raise a request to HQ
(pool, GPU model, GPUs, window, reason, the service affected). HQ ops see every pool's headroom —
the capacity checks' own figure, :func:`core.lifecycle.capacity.free_by_pool` — with a suggested
donor (the same GPU model, an idle province first, most headroom), and approve a transfer of quota
from the donor pool to the requesting one for the window, or reject it with a reason.

The transfer is a row, not an edit of ``data/org.yaml``: while approved or active it counts in
its window (:func:`core.adjust.support_persistence.quota_shift`). The clusters hear of it through
the provisioning backend the settings choose: both pools' scheduler queues are re-sized
(:func:`core.adjust.scheduler.apply_scheduler_objects` with ``sizes``; the plan backend renders
them, the live backend applies them). A request becomes ``active`` only once that push succeeded;
a failed push is kept on the request and the daily job (:func:`run_transfers`) tries again. At the
window's end the daily job gives the quota back (``returned``; HQ ops may end it early). Every
change notifies both provinces' ops and writes an adjustment record (before/after, actor, reason).

The node-level step — provincial ops adding reserve nodes to a cluster by hand within the hour —
is recorded with its approval by :func:`record_node_addition`.

Every function takes keyword-only ``sessions`` and ``actor``, checks permissions and runs one
transaction per action (the daily job: one per request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from core.adjust import support_states as states
from core.adjust.persistence import record_adjustment
from core.adjust.support_persistence import SupportRequestRow, transfers
from core.clock import aware, utc_now, utc_today
from core.cluster.manifests import is_dns_label
from core.datafiles import load_derived
from core.db.models import AuditEventRow
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError, NotFound
from core.i18n import Msg
from core.identity import Identity, PermissionDenied, load_personas, notice_lang, require
from core.lifecycle import capacity as cap
from core.lifecycle import services as lifecycle
from core.lifecycle.allocations import plus_days
from core.lifecycle.provisioning import pool_in_scope
from core.notifications.outbox import enqueue
from core.org import Org, load_org

RAISE_ROLES = frozenset({"prov_ops", "hq_ops", "admin"})
READ_ROLES = RAISE_ROLES
DECIDE_ROLES = frozenset({"hq_ops", "admin"})
SYSTEM = Identity(id="system", name="ComputeLoop", email="", role="system")
_DEPLOYMENT = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_TEXT = 2000


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SupportSettings:
    """``data/support_requests.yaml``."""

    response_hours: int
    max_window_days: int
    not_suggested_kinds: frozenset[str]


def _build(raw: Any) -> SupportSettings:
    try:
        out = SupportSettings(int(raw["response_hours"]), int(raw["max_window_days"]),
                              frozenset(str(k) for k in raw.get("not_suggested_kinds") or ()))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("error.data_entry_invalid", field="support_requests.yaml", entry=str(exc)) from None
    if out.response_hours < 1 or out.max_window_days < 1:
        raise InputError("error.data_entry_invalid", field="support_requests.yaml",
                         entry="response_hours and max_window_days must be at least 1")
    return out


def load_settings() -> SupportSettings:
    """The settings (rebuilt when the file changes)."""
    return load_derived("support_requests.yaml", _build)


# --------------------------------------------------------------------------- scope and views


def _unit_of(org: Org, pool_id: str) -> str:
    return org.clusters[org.pools[pool_id].cluster].unit


def _in_scope(actor: Identity, row: SupportRequestRow) -> bool:
    """Provincial ops see their province's requests and those their province gives to; HQ ops all."""
    return actor.role != "prov_ops" or actor.province in (row.unit, row.donor_unit)


def _view(row: SupportRequestRow, now: datetime | None = None) -> dict[str, Any]:
    raised = aware(row.raised_at)
    respond_by = raised + timedelta(hours=load_settings().response_hours)
    return {
        "id": row.id, "status": row.status, "unit": row.unit, "pool": row.pool_id, "gpu_model": row.gpu_model,
        "gpus": row.gpus, "starts_on": row.starts_on, "ends_on": row.ends_on, "reason": row.reason,
        "namespace": row.namespace, "deployment": row.deployment, "raised_by": row.raised_by, "raised_at": raised,
        "respond_by": respond_by, "overdue": row.status == "open" and (now or utc_now()) > respond_by,
        "donor_pool": row.donor_pool_id, "donor_unit": row.donor_unit, "decided_by": row.decided_by,
        "decided_at": aware(row.decided_at) if row.decided_at else None, "decision_reason": row.decision_reason,
        "activated_at": aware(row.activated_at) if row.activated_at else None,
        "returned_at": aware(row.returned_at) if row.returned_at else None, "returned_by": row.returned_by,
        "cluster": row.cluster_result,
    }


def _load(s: Session, actor: Identity, request_id: int, *, lock: bool = False) -> SupportRequestRow:
    query = select(SupportRequestRow).where(SupportRequestRow.id == int(request_id))
    row = s.scalars(query.with_for_update() if lock else query).first()
    if row is None or not _in_scope(actor, row):
        raise NotFound("error.not_found", what=Msg("support.what"), id=request_id)
    return row


# --------------------------------------------------------------------------- input checks


def _text(value: str | None, field: str, *, required: bool) -> str:
    text = (value or "").strip()
    if required and not text:
        raise InputError("lifecycle.reason_required", field=field)
    if len(text) > MAX_TEXT:
        raise InputError("error.out_of_range", field=field, value=len(text), low=0, high=MAX_TEXT)
    return text


def _pool(org: Org, pool_id: str | None, field: str) -> str:
    if not pool_id or pool_id not in org.pools:
        raise InputError("error.choice", field=field, value=pool_id or "", choices=", ".join(org.pools))
    return pool_id


def _window(starts_on: date | None, ends_on: date | None, today: date) -> tuple[date, date]:
    if not isinstance(starts_on, date) or starts_on < today:
        raise InputError("support.start_in_past", field="starts_on", today=today.isoformat())
    longest = load_settings().max_window_days
    if not isinstance(ends_on, date) or ends_on <= starts_on or (ends_on - starts_on).days > longest:
        raise InputError("support.bad_window", field="ends_on", days=longest)
    return starts_on, ends_on


def _same_model_pools(org: Org, pool_id: str) -> list[str]:
    model = org.pools[pool_id].gpu
    return [p.id for p in org.pools.values() if p.gpu == model and p.id != pool_id]


# --------------------------------------------------------------------------- raise, list, show


def raise_request(*, sessions: sessionmaker[Session], actor: Identity, pool: str, gpus: int, starts_on: date,
                  ends_on: date, reason: str, namespace: str, deployment: str = "",
                  gpu_model: str | None = None) -> dict[str, Any]:
    """Raise a support request for ``pool`` (one transaction); HQ ops are notified.

    Raises:
        PermissionDenied: not ops, or provincial ops naming another province's pool.
        InputError: naming the field (pool, gpu_model, gpus, starts_on, ends_on, reason, namespace,
            deployment).
    """
    require(actor, RAISE_ROLES, "raise a support request")
    org = load_org()
    pool = _pool(org, pool, "pool")
    if not pool_in_scope(actor, org, pool):
        raise PermissionDenied("error.permission_denied", action="raise a support request", role=actor.role)
    model = org.pools[pool].gpu
    if gpu_model not in (None, "", model):
        raise InputError("support.model_mismatch", field="gpu_model", value=gpu_model, pool=pool, model=model)
    donors = _same_model_pools(org, pool)
    if not donors:
        raise InputError("support.no_other_pool", field="pool", pool=pool, model=model)
    most = sum(org.pools[p].gpus for p in donors)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 1 <= gpus <= most:
        raise InputError("error.out_of_range", field="gpus", value=gpus, low=1, high=most)
    today = utc_today()
    starts_on, ends_on = _window(starts_on, ends_on, today)
    reason = _text(reason, "reason", required=True)
    namespace = (namespace or "").strip()
    if not is_dns_label(namespace):
        raise InputError("support.bad_name", field="namespace", value=namespace)
    deployment = (deployment or "").strip()
    if deployment and (len(deployment) > 253 or not _DEPLOYMENT.match(deployment)):
        raise InputError("support.bad_name", field="deployment", value=deployment)
    now = utc_now()
    with unit_of_work(sessions) as s:
        row = SupportRequestRow(status="open", unit=_unit_of(org, pool), pool_id=pool, gpu_model=model, gpus=gpus,
                                starts_on=starts_on, ends_on=ends_on, reason=reason, namespace=namespace,
                                deployment=deployment, raised_by=actor.id, raised_at=now, decision_reason="")
        s.add(row)
        s.flush()
        s.add(AuditEventRow(at=now, actor=actor.id, action="support.raised", subject=f"support:{row.id}",
                            reason=reason, before=None, after={"pool": pool, "gpus": gpus}))
        _notify(s, row, "support_raised", _deciders())
        return _view(row, now)


def list_requests(*, sessions: sessionmaker[Session], actor: Identity,
                  status: str | None = None) -> list[dict[str, Any]]:
    """Support requests in the actor's scope, newest first (``status`` filters).

    Raises:
        PermissionDenied: not ops.
        InputError: an unknown status (field ``status``).
    """
    require(actor, READ_ROLES, "read support requests")
    if status is not None and status not in states.STATUSES:
        raise InputError("error.choice", field="status", value=status, choices=", ".join(states.STATUSES))
    with unit_of_work(sessions) as s:
        query = select(SupportRequestRow).order_by(SupportRequestRow.id.desc())
        if status:
            query = query.where(SupportRequestRow.status == status)
        if actor.role == "prov_ops":
            query = query.where(or_(SupportRequestRow.unit == actor.province,
                                    SupportRequestRow.donor_unit == actor.province))
        now = utc_now()
        return [_view(r, now) for r in s.scalars(query)]


def get_request(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> dict[str, Any]:
    """One support request (NotFound outside the actor's scope)."""
    require(actor, READ_ROLES, "read support requests")
    with unit_of_work(sessions) as s:
        return _view(_load(s, actor, request_id))


# --------------------------------------------------------------------------- headroom and the donor


def _headroom(s: Session, org: Org, start: date, end: date) -> dict[str, int]:
    """The capacity checks' own figure: GPUs free on every day of the window, per pool."""
    return cap.free_by_pool(s, org, start=start, end=end)


def _rank(org: Org, row: SupportRequestRow, free: Mapping[str, int]) -> list[dict[str, Any]]:
    """The pools that could give: same GPU model, not the receiver; idle provinces first, then the
    most headroom. ``suggestible`` is False for reserve kinds and pools short of the GPUs asked."""
    settings = load_settings()
    rows = []
    for pool_id in _same_model_pools(org, row.pool_id):
        p, unit = org.pools[pool_id], _unit_of(org, pool_id)
        headroom = int(free.get(pool_id, 0))
        rows.append({"pool": pool_id, "unit": unit, "kind": p.kind, "gpu_model": p.gpu, "size": p.gpus,
                     "headroom": headroom,
                     "suggestible": p.kind not in settings.not_suggested_kinds and headroom >= row.gpus})
    province = {u.id for u in org.units.values() if u.level == "province"}
    rows.sort(key=lambda r: (not r["suggestible"], r["unit"] not in province, -r["headroom"], r["pool"]))
    return rows


def pool_headroom(*, sessions: sessionmaker[Session], actor: Identity, starts_on: date | None = None,
                  ends_on: date | None = None) -> list[dict[str, Any]]:
    """Every pool in the actor's scope with its headroom over the window (default: today): pool,
    unit, kind, GPU model, size, headroom."""
    require(actor, READ_ROLES, "read support requests")
    org = load_org()
    start = starts_on or utc_today()
    end = ends_on if ends_on and ends_on > start else plus_days(start, 1)
    with unit_of_work(sessions) as s:
        free = _headroom(s, org, start, end)
    return [{"pool": p.id, "unit": _unit_of(org, p.id), "kind": p.kind, "gpu_model": p.gpu, "size": p.gpus,
             "headroom": int(free.get(p.id, 0))}
            for p in org.pools.values() if pool_in_scope(actor, org, p.id)]


def donor_options(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> dict[str, Any]:
    """For HQ ops deciding: the pools that could give over the request's window, ranked, and the
    suggested donor (None when no suggestible pool has the GPUs)."""
    require(actor, DECIDE_ROLES, "decide a support request")
    org = load_org()
    with unit_of_work(sessions) as s:
        row = _load(s, actor, request_id)
        ranked = _rank(org, row, _headroom(s, org, row.starts_on, row.ends_on))
    suggested = next((r["pool"] for r in ranked if r["suggestible"]), None)
    return {"request": request_id, "pools": ranked, "suggested": suggested}


# --------------------------------------------------------------------------- decisions


def approve(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, donor_pool: str,
            starts_on: date | None = None, ends_on: date | None = None, reason: str = "",
            backend: Any = None) -> dict[str, Any]:
    """Approve a transfer from ``donor_pool`` for the request's window (or the one given), in one
    transaction; when the window has started the scheduler queues are re-sized at once. The donor's
    headroom is read under its capacity-row lock (:func:`core.lifecycle.services.lock_pool`), so
    grants on the donor and other approvals drawing on it can never over-commit it together.

    Raises:
        PermissionDenied: not HQ ops (or admin).
        NotFound: no such request.
        InvalidSupportTransition: the request is not open.
        InputError: donor_pool (unknown, the receiver itself, another GPU model, not enough
            headroom), starts_on, ends_on, reason.
    """
    require(actor, DECIDE_ROLES, "decide a support request")
    org = load_org()
    donor = _pool(org, donor_pool, "donor_pool")
    reason = _text(reason, "reason", required=False)
    now, today = utc_now(), utc_today()
    lifecycle.ensure_capacity_rows(sessions, [donor])
    with unit_of_work(sessions) as s:
        row = _load(s, actor, request_id, lock=True)
        if row.raised_by == actor.id:  # four eyes: whoever raised it does not approve it
            raise PermissionDenied("support.own_request", id=row.id)
        if donor == row.pool_id or org.pools[donor].gpu != row.gpu_model:
            raise InputError("support.donor_mismatch", field="donor_pool", value=donor, model=row.gpu_model)
        start, end = _window(starts_on or row.starts_on, ends_on or row.ends_on, today)
        # the donor's headroom is checked and taken in one step under its capacity-row lock, like a
        # grant on it: concurrent grants and other transfers out of the pool take turns with this one
        lifecycle.lock_pool(s, donor)
        free = int(_headroom(s, org, start, end).get(donor, 0))
        if free < row.gpus:
            raise InputError("support.donor_short", field="donor_pool", value=donor, free=max(free, 0), gpus=row.gpus)
        states.move(row, "approved")
        row.donor_pool_id, row.donor_unit = donor, _unit_of(org, donor)
        row.starts_on, row.ends_on = start, end
        row.decided_by, row.decided_at, row.decision_reason = actor.id, now, reason
        s.add(AuditEventRow(at=now, actor=actor.id, action="support.approved", subject=f"support:{row.id}",
                            reason=reason, before={"status": "open"},
                            after={"status": "approved", "donor": donor, "starts_on": start.isoformat(),
                                   "ends_on": end.isoformat()}))
        _notify(s, row, "support_approved", _parties(row))
        if start <= today:
            _activate(s, org, row, actor, backend, now, today)
        return _view(row, now)


def reject(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, reason: str) -> dict[str, Any]:
    """Reject an open request with a reason (one transaction); the requesting province is notified."""
    require(actor, DECIDE_ROLES, "decide a support request")
    reason = _text(reason, "reason", required=True)
    now = utc_now()
    with unit_of_work(sessions) as s:
        row = _load(s, actor, request_id, lock=True)
        states.move(row, "rejected")
        row.decided_by, row.decided_at, row.decision_reason = actor.id, now, reason
        s.add(AuditEventRow(at=now, actor=actor.id, action="support.rejected", subject=f"support:{row.id}",
                            reason=reason, before={"status": "open"}, after={"status": "rejected"}))
        _notify(s, row, "support_rejected", _parties(row))
        return _view(row, now)


def return_transfer(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, reason: str,
                    backend: Any = None) -> dict[str, Any]:
    """HQ ops end a transfer before its window ends: the quota goes back (one transaction). When the
    clusters cannot be re-sized the request stays as it was, with the failure shown, and the daily
    job tries again once the window has ended.

    Refused (``support.return_overbooked``) while the receiving pool has allocations booked in the
    rest of the window that only fit with the transferred GPUs: they are checked under the
    receiver's capacity-row lock, so a grant on it cannot slip in between."""
    require(actor, DECIDE_ROLES, "return a support transfer")
    reason = _text(reason, "reason", required=True)
    org = load_org()
    now, today = utc_now(), utc_today()
    lifecycle.ensure_capacity_rows(sessions, org.pools)  # the receiver's row, locked below, must exist
    with unit_of_work(sessions) as s:
        row = _load(s, actor, request_id, lock=True)
        if not states.allowed(row.status, "returned"):
            raise states.InvalidSupportTransition(row.status, "returned")
        _check_receiver_keeps_its_bookings(s, org, row, today)
        _give_back(s, org, row, actor, backend, now, today, reason)
        return _view(row, now)


def _check_receiver_keeps_its_bookings(s: Session, org: Org, row: SupportRequestRow, today: date) -> None:
    """Refuse to end ``row``'s transfer early when the receiving pool's bookings over the rest of
    its window need the transferred GPUs (under the receiver's capacity-row lock)."""
    start = max(today, row.starts_on)
    if row.ends_on <= start or row.pool_id not in org.pools:
        return
    lifecycle.lock_pool(s, row.pool_id)
    free = int(cap.free_by_pool(s, org, start=start, end=row.ends_on, exclude_transfer=row.id).get(row.pool_id, 0))
    if free < 0:
        raise InputError("support.return_overbooked", field="support_request", value=row.id, pool=row.pool_id,
                         short=-free, end=row.ends_on.isoformat())


def run_transfers(*, sessions: sessionmaker[Session], today: date | None = None,
                  backend: Any = None) -> dict[str, Any]:
    """The daily step: start the approved transfers whose window has come (or whose push failed),
    and give back every transfer whose window has ended. One transaction per request; running it
    again changes nothing. Returns ``{"activated": [ids], "returned": [ids], "failed": [ids]}``."""
    today = today or utc_today()
    org = load_org()
    with unit_of_work(sessions) as s:
        due = s.execute(select(SupportRequestRow.id, SupportRequestRow.status, SupportRequestRow.starts_on,
                               SupportRequestRow.ends_on)
                        .where(SupportRequestRow.status.in_(sorted(states.TRANSFERRING)))
                        .order_by(SupportRequestRow.id)).all()
    out: dict[str, list[int]] = {"activated": [], "returned": [], "failed": []}
    for request_id, status, start, end in due:
        if end <= today:
            action = "returned"
        elif status == "approved" and start <= today:
            action = "activated"
        else:
            continue
        now = utc_now()
        with unit_of_work(sessions) as s:
            row = _load(s, SYSTEM, request_id, lock=True)
            if row.status not in states.TRANSFERRING:
                continue  # another run got there first
            if action == "returned":
                done = _give_back(s, org, row, SYSTEM, backend, now, today, "window_ended")
            else:
                done = _activate(s, org, row, SYSTEM, backend, now, today)
        out[action if done else "failed"].append(request_id)
    return out


# --------------------------------------------------------------------------- the clusters' side


def _sizes(org: Org, s: Session, today: date, pools: list[str], *, exclude: int | None = None) -> dict[str, int]:
    base = {p: org.pools[p].gpus for p in pools}
    return states.sizes_on(base, transfers(s, exclude=exclude), today)


def _push(org: Org, actor: Identity, sizes: Mapping[str, int], backend: Any) -> dict[str, Any]:
    """Re-size the pools' scheduler queues through the backend (plan: rendered; live: applied)."""
    from core.adjust.scheduler import apply_scheduler_objects

    actor = actor if actor.role != "prov_ops" else SYSTEM
    clusters, name = [], None
    for pool_id, size in sizes.items():
        try:
            out = apply_scheduler_objects(actor=actor, pool=pool_id, backend=backend, org=org, sizes={pool_id: size})
        except ComputeLoopError as exc:
            clusters.append({"cluster": org.pools[pool_id].cluster, "pool": pool_id, "ok": False,
                             "error": {"key": exc.key, "params": {k: str(v) for k, v in exc.params.items()}}})
            continue
        name = out["backend"]
        clusters += [{**c, "pool": pool_id} for c in out["clusters"]]
    return {"backend": name, "ok": bool(clusters) and all(c["ok"] for c in clusters), "sizes": dict(sizes),
            "clusters": clusters}


def _record(s: Session, org: Org, row: SupportRequestRow, actor: Identity, now: datetime, before: Mapping[str, int],
            after: Mapping[str, int], reason: str) -> None:
    """One adjustment record per pool whose quota changed (each province sees its own)."""
    for pool_id, other in ((row.donor_pool_id, row.pool_id), (row.pool_id, row.donor_pool_id)):
        record_adjustment(s, actor=actor.id, kind="support_transfer", subject=f"pool:{pool_id}", reason=reason,
                          before={"pool": pool_id, "quota": before[pool_id]},
                          after={"pool": pool_id, "quota": after[pool_id], "support_request": row.id,
                                 "other_pool": other, "gpus": row.gpus, "starts_on": row.starts_on.isoformat(),
                                 "ends_on": row.ends_on.isoformat()},
                          automatic=actor.id == SYSTEM.id, at=now)


def _activate(s: Session, org: Org, row: SupportRequestRow, actor: Identity, backend: Any, now: datetime,
              today: date) -> bool:
    pools = [row.donor_pool_id, row.pool_id]
    after = _sizes(org, s, today, pools)
    before = _sizes(org, s, today, pools, exclude=row.id)
    row.cluster_result = _push(org, actor, after, backend)
    if not row.cluster_result["ok"]:
        return False
    states.move(row, "active")
    row.activated_at = now
    _record(s, org, row, actor, now, before, after, row.decision_reason or row.reason)
    return True


def _give_back(s: Session, org: Org, row: SupportRequestRow, actor: Identity, backend: Any, now: datetime,
               today: date, reason: str) -> bool:
    pools = [row.donor_pool_id, row.pool_id]
    was_active = row.status == "active"
    # the quota it ran with: on its last day when the window is over
    before = _sizes(org, s, max(min(today, plus_days(row.ends_on, -1)), row.starts_on), pools)
    after = _sizes(org, s, today, pools, exclude=row.id)
    if was_active or row.cluster_result is not None:
        row.cluster_result = _push(org, actor, after, backend)
        if not row.cluster_result["ok"]:
            return False
    status_before = states.move(row, "returned")
    row.returned_at, row.returned_by = now, actor.id
    if was_active:
        _record(s, org, row, actor, now, before, after, reason)
    s.add(AuditEventRow(at=now, actor=actor.id, action="support.returned", subject=f"support:{row.id}",
                        reason=reason, before={"status": status_before}, after={"status": "returned"}))
    _notify(s, row, "support_returned", _parties(row))
    return True


# --------------------------------------------------------------------------- the node-level step


def record_node_addition(*, sessions: sessionmaker[Session], actor: Identity, pool: str, nodes: int, gpus: int,
                         approved_by: str, reason: str, support_request: int | None = None) -> dict[str, Any]:
    """Record reserve nodes added to a pool's cluster by hand (小时级节点间扩容) with who approved it:
    an adjustment record (kind ``node_addition``), one transaction. Nobody approves their own.

    Raises:
        PermissionDenied: not ops, or provincial ops naming another province's pool.
        InputError: pool, nodes, gpus, approved_by, reason, support_request.
    """
    require(actor, RAISE_ROLES, "record a node addition")
    org = load_org()
    pool = _pool(org, pool, "pool")
    if not pool_in_scope(actor, org, pool):
        raise PermissionDenied("error.permission_denied", action="record a node addition", role=actor.role)
    for field, value in (("nodes", nodes), ("gpus", gpus)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
            raise InputError("error.out_of_range", field=field, value=value, low=1, high=100_000)
    approver = (approved_by or "").strip()
    if not approver or approver == actor.id:
        raise InputError("support.approver_required", field="approved_by")
    reason = _text(reason, "reason", required=True)
    now = utc_now()
    with unit_of_work(sessions) as s:
        if support_request is not None:
            _load(s, actor, support_request)
        rec = record_adjustment(s, actor=actor.id, kind="node_addition", subject=f"pool:{pool}", reason=reason,
                                before={"pool": pool, "nodes_added": 0},
                                after={"pool": pool, "nodes_added": nodes, "gpus_added": gpus,
                                       "cluster": org.pools[pool].cluster, "approved_by": approver,
                                       "support_request": support_request}, at=now)
        s.flush()
        return {"id": rec.id, "pool": pool, "nodes": nodes, "gpus": gpus, "approved_by": approver, "at": now}


# --------------------------------------------------------------------------- notices


def _deciders() -> list[Identity]:
    return [p for p in load_personas() if p.role in DECIDE_ROLES]


def _parties(row: SupportRequestRow) -> list[Identity]:
    """The ops of both provinces (HQ ops for an HQ pool) and the person who raised it."""
    units = {row.unit, row.donor_unit}
    return [p for p in load_personas()
            if p.id == row.raised_by or (p.role == "prov_ops" and p.province in units)
            or (p.role == "hq_ops" and "HQ" in units)]


def _notify(s: Session, row: SupportRequestRow, template: str, people: list[Identity]) -> None:
    params = {"support_id": row.id, "pool": row.pool_id, "donor": row.donor_pool_id or "-", "gpus": row.gpus,
              "gpu_model": row.gpu_model, "starts_on": row.starts_on.isoformat(), "ends_on": row.ends_on.isoformat(),
              "reason": row.decision_reason or row.reason}
    for p in {p.id: p for p in people}.values():
        if "@" in (p.email or ""):
            enqueue(s, dedup_key=f"support:{row.id}:{template}:{p.id}", recipient_id=p.id, recipient_email=p.email,
                    lang=notice_lang(p.id), template=template, params=params)


__all__ = ["approve", "donor_options", "get_request", "list_requests", "load_settings", "pool_headroom",
           "raise_request", "record_node_addition", "reject", "return_transfer", "run_transfers"]
