"""Provisioning an approved request onto its cluster (精准配置与交付) and the allocation sheet
(算力资源分配清单).

:func:`provision` takes an approved/adjusted request to ``provisioning`` (audited), builds the
:class:`~core.cluster.manifests.AllocationSpec` from the org and the form (CPU, memory and
volumes from ``data/provisioning_defaults.yaml``), runs the backend chosen by the settings
(``COMPUTELOOP_CLUSTER_BACKEND``: plan by default, live with ``COMPUTELOOP_KUBECONFIG``)
*outside* any database transaction, then records the outcome in a second transaction:
``active`` with namespace, manifests, kubeconfig and per-step results on the allocation and an
``allocation_ready`` notice to the applicant; or ``provisioning_failed`` with the failed step and
its error. :func:`retry` reruns a failed provisioning — the backends are idempotent, so nothing
is created twice. The GPUs stay held throughout: a failure never undoes the approval.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Mapping

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from core import config
from core.cluster.backends import ClusterError, ProvisionResult, Provisioner, StepResult, plan_or_live
from core.cluster.manifests import (
    AllocationSpec, PvcSpec, allocation_spec, load_cluster_settings, render, to_yaml,
)
from core.datafiles import load_derived
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError, NotFound
from core.identity import OPS_ROLES, Identity, PermissionDenied, notice_lang, require
from core.lifecycle import services as svc
from core.lifecycle.forms import IntakeForm
from core.lifecycle.allocations import STATUSES as ALLOCATION_STATUSES, move as move_allocation
from core.lifecycle.persistence import AllocationRow, RequestRow
from core.lifecycle.states import InvalidTransition
from core.notifications.outbox import enqueue
from core.org import Org, load_org

log = logging.getLogger(__name__)

PROVISION_ROLES = OPS_ROLES | {"system"}
SPEC_STEP = "AllocationSpec"  # the step named when the spec itself cannot be built
BACKEND_STEP = "backend"  # the step named when a backend raised instead of reporting a step
INTERRUPTED_STEP = "interrupted"  # the step named when a run died before recording its outcome
_GIB = 2**30


# --------------------------------------------------------------------------- defaults


@dataclass(frozen=True)
class PerGpu:
    """CPU cores and memory (GiB) granted per GPU."""

    cpu: float
    memory_gi: int


@dataclass(frozen=True)
class ProvisioningDefaults:
    """``data/provisioning_defaults.yaml``."""

    per_gpu: Mapping[str, PerGpu]
    workspace_gi: int
    data_headroom: float
    data_min_gi: int
    data_max_gi: int
    data_default_gi: int
    checkpoint_bytes_per_parameter: float
    checkpoint_min_gi: int
    jupyter_url_template: str
    rules_of_use_url: str
    user_manual_url: str
    stalled_after_minutes: int


def _build_defaults(raw: Any) -> ProvisioningDefaults:
    try:
        v = raw["volumes"]
        return ProvisioningDefaults(
            per_gpu={k: PerGpu(float(e["cpu"]), int(e["memory_gi"])) for k, e in raw["per_gpu"].items()},
            workspace_gi=int(v["workspace_gi"]), data_headroom=float(v["data_headroom"]),
            data_min_gi=int(v["data_min_gi"]), data_max_gi=int(v["data_max_gi"]),
            data_default_gi=int(v["data_default_gi"]),
            checkpoint_bytes_per_parameter=float(v["checkpoint_bytes_per_parameter"]),
            checkpoint_min_gi=int(v["checkpoint_min_gi"]),
            jupyter_url_template=str(raw.get("jupyter_url_template") or ""),
            rules_of_use_url=str(raw.get("rules_of_use_url") or ""),
            user_manual_url=str(raw.get("user_manual_url") or ""),
            stalled_after_minutes=int(raw["stalled_after_minutes"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError("error.data_entry_invalid", field="provisioning_defaults.yaml", entry=str(exc)) from None


def load_provisioning_defaults() -> ProvisioningDefaults:
    """The defaults from ``data/provisioning_defaults.yaml`` (rebuilt when the file changes)."""
    return load_derived("provisioning_defaults.yaml", _build_defaults)


def resources_for(form: IntakeForm, gpus: int, defaults: ProvisioningDefaults) -> tuple[float, int, list[PvcSpec]]:
    """CPU cores, memory (GiB) and volumes of an allocation of ``gpus`` GPUs for ``form``.

    The data volume follows the form's ``data_size_gb`` (decimal GB → GiB, times the headroom,
    within bounds); training with a parameter count gets a checkpoint volume.
    """
    kind = "inference" if form.demand_type == "inference" else "training"
    per = defaults.per_gpu.get(kind) or next(iter(defaults.per_gpu.values()))
    cpu, memory = per.cpu * gpus, per.memory_gi * gpus
    if form.data_size_gb:
        data = math.ceil(form.data_size_gb * 1e9 / _GIB * defaults.data_headroom)
        data = min(max(data, defaults.data_min_gi), defaults.data_max_gi)
    else:
        data = defaults.data_default_gi
    pvcs = [PvcSpec("workspace", defaults.workspace_gi), PvcSpec("data", data)]
    if form.demand_type != "inference" and form.parameters:
        ckpt = math.ceil(form.parameters * defaults.checkpoint_bytes_per_parameter / _GIB)
        pvcs.append(PvcSpec("checkpoints", min(max(ckpt, defaults.checkpoint_min_gi), defaults.data_max_gi)))
    return cpu, memory, pvcs


def jupyter_url(cluster: str, namespace: str, defaults: ProvisioningDefaults) -> str | None:
    """The JupyterLab link of a namespace, or None when no template is configured."""
    if not defaults.jupyter_url_template:
        return None
    return defaults.jupyter_url_template.format(cluster=cluster, namespace=namespace)


def backend_for(org: Org) -> Provisioner:
    """The backend the settings choose: plan (default) or live with the configured kubeconfig."""
    cfg = config.load()
    if cfg.cluster_backend == "live":
        return plan_or_live("live", org, kubeconfig_file=cfg.kubeconfig or None)
    return plan_or_live("plan", org)


# --------------------------------------------------------------------------- helpers


def _error_dict(exc: ComputeLoopError | None) -> dict[str, Any] | None:
    if exc is None:
        return None
    return {"key": exc.key, "params": {k: v if isinstance(v, (int, float, bool)) or v is None else str(v)
                                       for k, v in exc.params.items()}}


def _steps_json(steps: tuple[StepResult, ...]) -> list[dict[str, Any]]:
    return [{"step": st.step, "status": st.status, "error": _error_dict(st.error)} for st in steps]


def _allocation(s: Session, request_id: int, *, lock: bool = False) -> AllocationRow | None:
    query = select(AllocationRow).where(AllocationRow.request_id == request_id)
    if lock:
        query = query.with_for_update()
    return s.scalars(query).first()


def _expires_at(ends_on: date) -> datetime:
    return datetime.combine(ends_on, time(0, 0), tzinfo=timezone.utc)


def _spec(row: RequestRow, alloc: AllocationRow, org: Org, defaults: ProvisioningDefaults) -> AllocationSpec:
    form = IntakeForm.from_dict(row.form)
    cpu, memory, pvcs = resources_for(form, alloc.gpus, defaults)
    allocation_id = row.number or f"R-{row.id}"
    pool = org.pool(alloc.pool_id)
    probe = allocation_spec(org, allocation_id=allocation_id, project=row.project, pool=alloc.pool_id, gpus=alloc.gpus,
                            cpu=cpu, memory_gi=memory, expires_at=_expires_at(alloc.ends_on),
                            user=row.created_by_email or row.created_by, pvcs=pvcs)
    url = jupyter_url(pool.cluster, probe.namespace, defaults)
    if url is None:
        return probe
    return allocation_spec(org, allocation_id=allocation_id, project=row.project, pool=alloc.pool_id, gpus=alloc.gpus,
                           cpu=cpu, memory_gi=memory, expires_at=_expires_at(alloc.ends_on),
                           user=row.created_by_email or row.created_by, pvcs=pvcs, jupyter_url=url)


def _iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return svc._aware(value).isoformat()
    return value.isoformat()


def _sheet(row: RequestRow, alloc: AllocationRow, org: Org) -> dict[str, Any]:
    """The allocation sheet (算力资源分配清单) as a plain dict."""
    defaults = load_provisioning_defaults()
    pool = org.pools.get(alloc.pool_id)
    return {
        "request_id": row.id, "number": row.number, "status": row.status, "project": row.project,
        "department": row.department, "created_by": row.created_by, "priority": alloc.priority,
        "emergency": row.emergency_category is not None,
        "allocation_id": alloc.id, "allocation_status": alloc.status,
        "pool": alloc.pool_id, "cluster": alloc.cluster or (pool.cluster if pool else None),
        "namespace": alloc.namespace, "backend": alloc.backend,
        "quota": {"gpus": alloc.gpus, "gpu_model": alloc.gpu_model or (pool.gpu if pool else None),
                  "cpu": alloc.cpu, "memory_gi": alloc.memory_gi, "storage_gi": alloc.storage_gi,
                  "volumes": list(alloc.pvcs or [])},
        "window": {"start": _iso(alloc.starts_on), "end": _iso(alloc.ends_on)},
        "access": {"kubeconfig": alloc.kubeconfig, "jupyter_url": alloc.jupyter_url},
        "rules": {"key": "allocation.rules_of_use",
                  "params": {"rules_url": defaults.rules_of_use_url, "manual_url": defaults.user_manual_url}},
        "provisioning": {"status": row.status, "attempts": alloc.attempts or 0,
                         "provisioned_at": _iso(alloc.provisioned_at), "failed_step": alloc.failed_step,
                         "error": alloc.error, "steps": list(alloc.steps or [])},
        "released_at": _iso(alloc.released_at), "preempted_by": alloc.preempted_by,
    }


# --------------------------------------------------------------------------- provisioning


def check_scope(actor: Identity, row: RequestRow, org: Org, action: str) -> None:
    """Ops act only on requests they can see and that are in their scope (provincial ops: their
    province's); the system acts everywhere. A request the actor cannot see stays hidden (NotFound)."""
    if actor.role == "system":
        return
    if not svc._can_see(actor, row, org):
        raise NotFound("error.not_found", what="request", id=row.id)
    if not svc._in_scope(actor, row, org):
        raise PermissionDenied("error.permission_denied", action=action, role=actor.role)


def pool_in_scope(actor: Identity, org: Org, pool_id: str) -> bool:
    """Provincial ops work on the pools of their province's clusters only; other ops everywhere."""
    pool = org.pools.get(pool_id)
    return actor.role != "prov_ops" or (pool is not None and org.clusters[pool.cluster].unit == actor.province)


def _run(sessions: sessionmaker[Session], actor: Identity, request_id: int, provisioner: Provisioner | None, *,
         from_statuses: tuple[str, ...], reason: str) -> dict[str, Any]:
    require(actor, PROVISION_ROLES, "provision an allocation")
    org = load_org()
    defaults = load_provisioning_defaults()
    spec: AllocationSpec | None = None
    failure: tuple[str, ComputeLoopError] | None = None
    # 1: claim the request for provisioning (a concurrent run finds it in "provisioning" and stops)
    with unit_of_work(sessions) as s:
        row = svc._load(s, request_id, lock=True)
        check_scope(actor, row, org, "provision this request")
        if row.status not in from_statuses:
            raise InvalidTransition(row.status, "provisioning")
        alloc = _allocation(s, row.id, lock=True)
        if alloc is None or alloc.status == "released":
            raise NotFound("error.not_found", what="allocation", id=request_id)
        if alloc.status == "scheduled":
            # nothing goes on the cluster before the start date: the daily job provisions it then
            raise ComputeLoopError("rules.not_before_start", number=row.number or row.id,
                                   starts_on=_iso(alloc.starts_on) or "")
        svc._move(s, row, "provisioning", actor, reason)
        if alloc.starts_on is None:
            alloc.starts_on = svc._now().date()
        if alloc.ends_on is None:
            alloc.ends_on = alloc.starts_on + timedelta(days=row.approved_days or row.duration_days or 1)
        move_allocation(alloc, "provisioning")
        alloc.attempts = (alloc.attempts or 0) + 1
        attempt = alloc.attempts
        try:
            spec = _spec(row, alloc, org, defaults)
        except ComputeLoopError as exc:
            failure = (SPEC_STEP, exc)
    # 2: the cluster, outside any transaction
    result: ProvisionResult | None = None
    backend_name = ""
    if spec is not None:
        backend = provisioner or backend_for(org)
        backend_name = getattr(backend, "name", type(backend).__name__)
        try:
            result = backend.provision(spec)
        except ClusterError as exc:
            failure = (exc.step or BACKEND_STEP, exc)
        except Exception as exc:  # noqa: BLE001 - a broken backend must leave a visible failure, not a stuck request
            log.exception("provisioning backend failed for request %s", request_id)
            failure = (BACKEND_STEP, ClusterError("cluster.unreachable", step=BACKEND_STEP,
                                                  reason=f"{type(exc).__name__}: {exc}"))
        if result is not None and not result.ok:
            failure = (result.failed_step or BACKEND_STEP, result.error or ClusterError(
                "cluster.unreachable", step=result.failed_step or BACKEND_STEP, reason="failed"))
    # 3: record the outcome
    return _record(sessions, request_id, attempt, org, spec, result, failure, backend_name)


def _record(sessions: sessionmaker[Session], request_id: int, attempt: int, org: Org, spec: AllocationSpec | None,
            result: ProvisionResult | None, failure: tuple[str, ComputeLoopError] | None,
            backend_name: str) -> dict[str, Any]:
    now = svc._now()
    with unit_of_work(sessions) as s:
        row = svc._load(s, request_id, lock=True)
        alloc = _allocation(s, request_id, lock=True)
        if row.status != "provisioning" or alloc is None or alloc.attempts != attempt:
            raise ComputeLoopError("lifecycle.concurrent_update", id=request_id)
        pool = org.pool(alloc.pool_id)
        alloc.backend = backend_name or alloc.backend
        alloc.gpu_model = pool.gpu
        if spec is not None:
            alloc.namespace, alloc.cluster = spec.namespace, spec.cluster
            alloc.cpu, alloc.memory_gi = spec.cpu, spec.memory_gi
            alloc.pvcs = [{"name": p.name, "size_gi": p.size_gi} for p in spec.pvcs]
            alloc.storage_gi = sum(p.size_gi for p in spec.pvcs)
            alloc.jupyter_url = spec.jupyter_url
            alloc.manifests_yaml = (result.manifests_yaml if result is not None and result.manifests_yaml
                                    else to_yaml(render(spec, load_cluster_settings())))
        steps = _steps_json(result.steps) if result is not None else []
        if failure is not None:
            step, exc = failure
            if not any(st["status"] == "failed" for st in steps):
                steps.append({"step": step, "status": "failed", "error": _error_dict(exc)})
            alloc.steps, alloc.failed_step, alloc.error = steps, step, _error_dict(exc)
            move_allocation(alloc, "failed")
            svc._move(s, row, "provisioning_failed", svc.SYSTEM, "provisioning_failed", at=now)
            svc._audit(s, svc.SYSTEM, "allocation.provision_failed", row, reason=step,
                       after={"step": step, "error": _error_dict(exc), "attempt": attempt}, at=now)
        else:
            assert result is not None
            alloc.steps, alloc.failed_step, alloc.error = steps, None, None
            alloc.kubeconfig = result.kubeconfig
            move_allocation(alloc, "active")
            alloc.provisioned_at = now
            svc._move(s, row, "active", svc.SYSTEM, "provisioned", at=now)
            svc._audit(s, svc.SYSTEM, "allocation.provisioned", row, reason=alloc.backend or "",
                       after={"namespace": alloc.namespace, "cluster": alloc.cluster, "attempt": attempt}, at=now)
            _notify_ready(s, row, alloc)
        s.flush()
        return _sheet(row, alloc, org)


def _notify_ready(s: Session, row: RequestRow, alloc: AllocationRow) -> None:
    email = svc._applicant_email(row)
    if "@" not in (email or ""):
        log.warning("request %s: applicant %s has no e-mail address; no allocation_ready notice", row.id,
                    row.created_by)
        return
    defaults = load_provisioning_defaults()
    enqueue(s, dedup_key=f"request:{row.id}:allocation_ready:{alloc.attempts}", recipient_id=row.created_by,
            recipient_email=email, lang=notice_lang(row.created_by), template="allocation_ready",
            params={"request_id": row.id, "number": row.number or "", "title": svc._title(row),
                    "namespace": alloc.namespace or "", "gpus": alloc.gpus, "gpu_model": alloc.gpu_model or "",
                    "cluster": alloc.cluster or "", "starts_on": _iso(alloc.starts_on) or "",
                    "expires_on": _iso(alloc.ends_on) or "", "jupyter_url": alloc.jupyter_url or "",
                    "rules_url": defaults.rules_of_use_url, "manual_url": defaults.user_manual_url})


def provision(*, sessions: sessionmaker[Session], actor: Identity, request_id: int,
              provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Put an approved (or adjusted) request onto its cluster; returns its allocation sheet.

    Args:
        actor: ops (provincial ops only in their province) or admin; the system after an approval.
        provisioner: the backend to use; default: the one the settings choose (:func:`backend_for`).

    Returns the allocation sheet: ``status`` is ``active`` or ``provisioning_failed`` (then
    ``provisioning.failed_step`` and ``provisioning.error`` say where and why).

    Raises:
        PermissionDenied: not ops/admin, or another province's request.
        NotFound: no such request (or not visible to the actor), or it has no allocation.
        InvalidTransition: the request is not approved/adjusted (e.g. already provisioning).
    """
    return _run(sessions, actor, request_id, provisioner, from_statuses=("approved", "adjusted"), reason="provision")


def retry(*, sessions: sessionmaker[Session], actor: Identity, request_id: int,
          provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Rerun a failed provisioning (provisioning_failed → provisioning → active/failed again).

    The backends are idempotent: objects that exist are left alone (or reconciled), so a retry
    never creates duplicates. Same arguments, result and errors as :func:`provision`.
    """
    return _run(sessions, actor, request_id, provisioner, from_statuses=("provisioning_failed",), reason="retry")


def provision_after_approval(*, sessions: sessionmaker[Session], request_id: int,
                             provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Provision as the system right after an approval committed; never raises.

    Returns ``{"status", "failed_step", "namespace"}``; on an unexpected error the request stays
    where it was (approved, or provisioning_failed) and ``error`` says why — the approval stands.
    An allocation whose start date is ahead is not provisioned: ``{"status": "scheduled",
    "starts_on"}`` (the daily job provisions it on that day, :func:`start_scheduled`).
    """
    with unit_of_work(sessions) as s:
        alloc = _allocation(s, request_id)
        if alloc is not None and alloc.status == "scheduled":
            return {"status": "scheduled", "starts_on": _iso(alloc.starts_on), "failed_step": None, "namespace": None}
    try:
        sheet = provision(sessions=sessions, actor=svc.SYSTEM, request_id=request_id, provisioner=provisioner)
        return {"status": sheet["status"], "failed_step": sheet["provisioning"]["failed_step"],
                "namespace": sheet["namespace"]}
    except Exception as exc:  # noqa: BLE001 - the approval has committed; report, do not undo
        log.exception("automatic provisioning of request %s failed", request_id)
        return {"status": None, "failed_step": None, "namespace": None,
                "error": {"key": getattr(exc, "key", "error.unexpected"), "detail": f"{type(exc).__name__}: {exc}"}}


# --------------------------------------------------------------------------- scheduled allocations


def start_scheduled(*, sessions: sessionmaker[Session], today: date,
                    provisioner: Provisioner | None = None) -> dict[str, Any]:
    """The daily job's step: scheduled allocations whose start date has come are started
    (scheduled → approved, audited) and provisioned like any approval.

    One whose pool is over-booked today (an allocation past its end is still held, e.g. while an
    extension waits for a decision) stays scheduled and is listed under ``waiting``; the next run
    tries again. Returns ``{"started": [{"request_id", "status", ...}], "waiting": [request ids]}``.
    """
    from core.lifecycle.allocations import load_on
    from core.lifecycle.capacity import bookings

    org = load_org()
    with unit_of_work(sessions) as s:
        due = list(s.scalars(select(AllocationRow.request_id).where(AllocationRow.status == "scheduled",
                                                                    AllocationRow.starts_on <= today)
                            .order_by(AllocationRow.starts_on, AllocationRow.id)))
    started, waiting = [], []
    for request_id in due:
        with unit_of_work(sessions) as s:
            row = svc._load(s, request_id, lock=True)
            alloc = _allocation(s, request_id, lock=True)
            if alloc is None or alloc.status != "scheduled" or alloc.starts_on is None or alloc.starts_on > today:
                continue  # cancelled or started meanwhile
            pool = org.pools.get(alloc.pool_id)
            if pool is not None and load_on(bookings(s, today=today, pools=[alloc.pool_id]), alloc.pool_id,
                                            today) > pool.gpus:
                waiting.append(request_id)
                continue
            move_allocation(alloc, "approved")
            svc._audit(s, svc.SYSTEM, "allocation.started", row, reason="start_date",
                       before={"allocation": alloc.id, "status": "scheduled"},
                       after={"allocation": alloc.id, "status": "approved", "starts_on": _iso(alloc.starts_on)})
        started.append({"request_id": request_id,
                        **provision_after_approval(sessions=sessions, request_id=request_id, provisioner=provisioner)})
    return {"started": started, "waiting": waiting}


# --------------------------------------------------------------------------- preempted work


def _stop(sessions: sessionmaker[Session], actor: Identity, request_id: int,
          provisioner: Provisioner | None) -> dict[str, Any]:
    org = load_org()
    with unit_of_work(sessions) as s:
        row = svc._load(s, request_id)
        check_scope(actor, row, org, "stop preempted work on the cluster")
        alloc = _allocation(s, request_id)
        if alloc is None or alloc.preempted_by is None or alloc.status != "released" or not alloc.namespace:
            raise ComputeLoopError("allocation.not_preempted", number=row.number or row.id)
        spec = _spec(row, alloc, org, load_provisioning_defaults())
    backend = provisioner or backend_for(org)
    name = getattr(backend, "name", type(backend).__name__)
    error: dict[str, Any] | None = None
    actions: list[dict[str, str]] = []
    try:
        actions = [a.as_dict() for a in backend.suspend(spec, dry_run=False)]
    except ClusterError as exc:
        error = _error_dict(exc)
    with unit_of_work(sessions) as s:
        row = svc._load(s, request_id)
        svc._audit(s, actor, "allocation.suspend_failed" if error else "allocation.suspended", row,
                   reason=name, after={"namespace": spec.namespace, "cluster": spec.cluster, "backend": name,
                                       "actions": actions, "error": error})
    return {"request_id": request_id, "number": row.number, "namespace": spec.namespace, "cluster": spec.cluster,
            "backend": name, "actions": actions, "error": error}


def stop_preempted(*, sessions: sessionmaker[Session], actor: Identity, request_id: int,
                   provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Stop a preempted allocation's GPU work on its cluster (again, after a failure).

    The quota of its namespace goes to 0 GPUs and its GPU pods are deleted (live backend), or
    the same is planned for the operator (plan backend); the namespace, volumes and access stay,
    so a re-grant resumes it. Each run writes an ``allocation.suspended`` (or ``suspend_failed``)
    audit event with what was done. Returns ``{"actions", "error", "namespace", …}``.

    Raises:
        PermissionDenied: not ops/admin (the system runs it right after a preemption), or another
            province's allocation (provincial ops).
        NotFound: no such request, or not visible to ``actor``.
        ComputeLoopError ``allocation.not_preempted``: the allocation was not preempted.
    """
    require(actor, PROVISION_ROLES, "stop preempted work on the cluster")
    return _stop(sessions, actor, request_id, provisioner)


def stop_after_preemption(*, sessions: sessionmaker[Session], request_id: int) -> dict[str, Any]:
    """:func:`stop_preempted` as the system right after a preemption committed; never raises
    (the emergency grant stands; a failure is recorded and ops can run it again)."""
    try:
        return _stop(sessions, svc.SYSTEM, request_id, None)
    except Exception as exc:  # noqa: BLE001 - the preemption has committed; report, do not undo
        log.exception("stopping preempted request %s on its cluster failed", request_id)
        return {"request_id": request_id, "actions": [],
                "error": {"key": getattr(exc, "key", "error.unexpected"), "params": {}}}


def refresh_after_extension(*, sessions: sessionmaker[Session], request_id: int,
                            provisioner: Provisioner | None = None) -> dict[str, Any]:
    """Carry a new end date to the cluster: the idempotent provision run relabels the namespace
    (expiry label and annotation) and mints the user a kubeconfig whose token lasts to the new end;
    the request's status does not change. Never raises (the extension stands): the outcome is an
    ``allocation.refreshed`` or ``allocation.refresh_failed`` audit event and the return value."""
    org = load_org()
    try:
        with unit_of_work(sessions) as s:
            row = svc._load(s, request_id)
            alloc = _allocation(s, request_id)
            if alloc is None or alloc.status != "active":
                return {"request_id": request_id, "status": "skipped"}
            spec = _spec(row, alloc, org, load_provisioning_defaults())
        backend = provisioner or backend_for(org)
        result = backend.provision(spec)
        with unit_of_work(sessions) as s:
            row = svc._load(s, request_id)
            alloc = _allocation(s, request_id, lock=True)
            if result.ok:
                alloc.kubeconfig = result.kubeconfig or alloc.kubeconfig
                alloc.manifests_yaml = result.manifests_yaml or alloc.manifests_yaml
            svc._audit(s, svc.SYSTEM, "allocation.refreshed" if result.ok else "allocation.refresh_failed", row,
                       reason=getattr(backend, "name", ""),
                       after={"expires_on": _iso(alloc.ends_on), "steps": _steps_json(result.steps)})
        return {"request_id": request_id, "status": "refreshed" if result.ok else "failed",
                "failed_step": result.failed_step}
    except Exception as exc:  # noqa: BLE001 - the extension has committed; report, do not undo
        log.exception("refreshing request %s on its cluster after an extension failed", request_id)
        return {"request_id": request_id, "status": "failed", "error": getattr(exc, "key", type(exc).__name__)}


# --------------------------------------------------------------------------- stalled runs


def stalled(*, sessions: sessionmaker[Session], now: datetime | None = None) -> list[int]:
    """Requests in ``provisioning`` for longer than ``stalled_after_minutes`` (the run that took
    them died between claiming and recording)."""
    now = now or svc._now()
    limit = now - timedelta(minutes=load_provisioning_defaults().stalled_after_minutes)
    with unit_of_work(sessions) as s:
        rows = s.scalars(select(RequestRow.id).where(RequestRow.status == "provisioning",
                                                     RequestRow.provisioning_at < limit).order_by(RequestRow.id))
        return list(rows)


def recover_stalled(*, sessions: sessionmaker[Session], actor: Identity, now: datetime | None = None) -> list[int]:
    """Mark stalled provisioning runs as failed (step ``interrupted``) so Retry can finish them.

    The backends are idempotent, so the retry completes whatever the dead run left half done.
    Safe to run from cron: a run still inside the time limit is left alone, and a dead run that
    wakes up later finds the request no longer in its attempt and records nothing.
    Returns the request ids it marked; provincial ops mark only their province's.

    Raises:
        PermissionDenied: not ops/admin/the system.
    """
    require(actor, PROVISION_ROLES, "recover stalled provisioning")
    now = now or svc._now()
    org = load_org()
    marked = []
    for request_id in stalled(sessions=sessions, now=now):
        with unit_of_work(sessions) as s:
            row = svc._load(s, request_id, lock=True)
            alloc = _allocation(s, request_id, lock=True)
            if row.status != "provisioning" or alloc is None:
                continue  # finished meanwhile
            if actor.role != "system" and not (svc._can_see(actor, row, org) and svc._in_scope(actor, row, org)):
                continue  # another province's run
            error = {"key": "provisioning.interrupted",
                     "params": {"since": _iso(svc._aware(row.provisioning_at)) or ""}}
            alloc.steps = [*(alloc.steps or []), {"step": INTERRUPTED_STEP, "status": "failed", "error": error}]
            alloc.failed_step, alloc.error = INTERRUPTED_STEP, error
            move_allocation(alloc, "failed")
            svc._move(s, row, "provisioning_failed", actor, "provisioning_interrupted", at=now)
            marked.append(request_id)
    return marked


# --------------------------------------------------------------------------- reading


def allocation_sheet(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> dict[str, Any]:
    """The allocation sheet (算力资源分配清单) of a request.

    Quota (GPUs, GPU model, CPU, memory, storage and volumes), start and end, access (kubeconfig
    text, JupyterLab link when configured), the rules of use (a message key with links), the
    namespace and cluster, provisioning status, attempts and per-step results.

    Visible to the applicant's department and to ops (provincial ops: their province).

    Raises:
        NotFound: no such request, not visible to ``actor``, or not granted (no allocation).
    """
    org = load_org()
    with unit_of_work(sessions) as s:
        row = svc._load_visible(s, actor, request_id, org)
        alloc = _allocation(s, row.id)
        if alloc is None:
            raise NotFound("error.not_found", what="allocation", id=request_id)
        sheet = _sheet(row, alloc, org)
        if not may_hold_credentials(actor, row):
            # The kubeconfig carries a live token: only its owner and ops get it, not colleagues or approvers.
            sheet["access"] = {**sheet["access"], "kubeconfig": None, "kubeconfig_withheld": True}
        return sheet


def may_hold_credentials(actor: Identity, row: RequestRow) -> bool:
    """True for the applicant and for ops/admins: the only people who receive a namespace's kubeconfig."""
    return actor.id == row.created_by or actor.role in OPS_ROLES or actor.role == "system"


def manifests(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> str:
    """The stored Kubernetes manifests (multi-document YAML, apply order) of a provisioned request.

    Raises:
        NotFound: no such request, not visible, or not provisioned yet.
    """
    org = load_org()
    with unit_of_work(sessions) as s:
        row = svc._load_visible(s, actor, request_id, org)
        alloc = _allocation(s, row.id)
        if alloc is None or not alloc.manifests_yaml:
            raise NotFound("error.not_found", what="manifests", id=request_id)
        return alloc.manifests_yaml


def list_allocations(*, sessions: sessionmaker[Session], actor: Identity,
                     status: str | None = None) -> list[dict[str, Any]]:
    """Allocations ``actor`` may see, newest first, as compact rows (no kubeconfig).

    Args:
        status: only allocations in this status (scheduled, approved, provisioning, failed, active,
            released).

    Raises:
        InputError: unknown status.
        PermissionDenied: executives and the committee read only published material.
    """
    require(actor, svc.APPLY_ROLES, "list allocations")
    if status is not None and status not in ALLOCATION_STATUSES:
        raise InputError("error.choice", field="status", value=status, choices=", ".join(ALLOCATION_STATUSES))
    org = load_org()
    with unit_of_work(sessions) as s:
        query = (select(AllocationRow, RequestRow).join(RequestRow, RequestRow.id == AllocationRow.request_id)
                 .order_by(AllocationRow.id.desc()))
        if status:
            query = query.where(AllocationRow.status == status)
        if actor.role == "prov_ops":
            query = query.where(or_(RequestRow.created_by == actor.id, RequestRow.unit == actor.province,
                                    RequestRow.department.in_(sorted(svc._depts_of_unit(actor.province, org)) or [""])))
        elif actor.role in ("applicant", "dept_head"):
            query = query.where(or_(RequestRow.created_by == actor.id,
                                    RequestRow.department == svc._dept_of(actor, org)))
        out = []
        for alloc, row in s.execute(query):
            pool = org.pools.get(alloc.pool_id)
            out.append({
                "request_id": row.id, "number": row.number, "status": row.status, "allocation_id": alloc.id,
                "allocation_status": alloc.status, "pool": alloc.pool_id, "gpus": alloc.gpus,
                "gpu_model": alloc.gpu_model or (pool.gpu if pool else None), "priority": alloc.priority,
                "namespace": alloc.namespace, "cluster": alloc.cluster, "backend": alloc.backend,
                "start": _iso(alloc.starts_on), "end": _iso(alloc.ends_on), "department": row.department,
                "project": row.project, "created_by": row.created_by, "failed_step": alloc.failed_step,
                "provisioned_at": _iso(alloc.provisioned_at), "emergency": row.emergency_category is not None,
                "preempted_by": alloc.preempted_by,
            })
        return out
