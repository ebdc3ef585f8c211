"""The batch scheduler's queues on the clusters (队列与优先级调度 enforced by Kueue or Volcano): render
and apply each pool's objects, and read back what the scheduler admitted and keeps waiting.

:func:`apply_scheduler_objects` renders (:mod:`core.cluster.scheduler_queues`) the flavours, priority
classes and one queue per pool of every cluster, or of one pool's cluster, and hands them to the
backend the settings choose: the plan backend returns them as YAML for GitOps, the live backend
creates or patches them (idempotently; a run that stops is finished by running it again).
:func:`scheduler_workloads` is the water level's per-pool reading of admitted and pending workloads
(None in plan mode). Ops and admins only; provincial ops act on their province's clusters only.
Nothing is stored in the database: the objects derive from ``data/`` and the org at every run.
"""

from __future__ import annotations

from typing import Any, Mapping

from core.cluster.scheduler_queues import load_scheduler_settings, scheduler_objects
from core.cluster.scheduler_status import LiveSchedulerQueues, pool_workloads
from core.identity import OPS_ROLES, Identity, PermissionDenied, require
from core.org import Org, load_org

SCHEDULER_ROLES = OPS_ROLES | {"system"}


def _step(st: Any) -> dict[str, Any]:
    error = ({"key": st.error.key, "params": {k: str(v) for k, v in st.error.params.items()}}
             if st.error is not None else None)
    return {"step": st.step, "status": st.status, "error": error}


def _in_scope(actor: Identity, org: Org, cluster_id: str) -> bool:
    return actor.role != "prov_ops" or org.clusters[cluster_id].unit == actor.province


def apply_scheduler_objects(*, actor: Identity, pool: str | None = None, backend: Any = None, org: Org | None = None,
                            sizes: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Apply the scheduler objects of every cluster in the actor's scope (or of ``pool``'s cluster,
    that pool's queue only) through ``backend`` (default: the one the settings choose). ``sizes``
    overrides pool sizes (GPUs by pool id), e.g. for quota transferred between pools for a window.

    Returns ``{"backend", "scheduler", "clusters": [{"cluster", "ok", "failed_step", "steps",
    "manifests_yaml"}]}``; a cluster that fails is reported, the others are still applied.

    Raises:
        PermissionDenied: not ops or admin, or provincial ops naming another province's pool.
        InputError: an unknown pool (field ``pool``).
    """
    require(actor, SCHEDULER_ROLES, "apply the batch scheduler's queues")
    org = org or load_org()
    objects = scheduler_objects(org, pool=pool, sizes=sizes)
    if pool is not None and not _in_scope(actor, org, org.pool(pool).cluster):
        raise PermissionDenied("error.permission_denied", action="apply the batch scheduler's queues", role=actor.role)
    if backend is None:
        from core.lifecycle.provisioning import backend_for

        backend = backend_for(org)
    clusters = []
    for cluster_id, manifests in objects.items():
        if not manifests or not _in_scope(actor, org, cluster_id):
            continue
        result = backend.apply_cluster_objects(cluster_id, manifests)
        clusters.append({"cluster": cluster_id, "ok": result.ok, "failed_step": result.failed_step,
                         "steps": [_step(st) for st in result.steps], "manifests_yaml": result.manifests_yaml})
    return {"backend": backend.name, "scheduler": load_scheduler_settings().scheduler, "clusters": clusters}


def scheduler_workloads(*, actor: Identity, pool: str | None = None, org: Org | None = None,
                        source: LiveSchedulerQueues | None = None) -> dict[str, Any]:
    """Per pool in the actor's scope (or ``pool``): the scheduler's admitted and pending workloads and
    the GPUs they hold, read from the live clusters. ``{"scheduler", "live", "pools"}``; ``live`` is
    False and ``pools`` empty in plan mode (there is no cluster to read).

    Raises:
        PermissionDenied: not ops or admin, or provincial ops naming another province's pool.
        InputError: an unknown pool (field ``pool``).
    """
    require(actor, SCHEDULER_ROLES, "read the batch scheduler's queues")
    org = org or load_org()
    if pool is not None and not _in_scope(actor, org, org.pool(pool).cluster):
        raise PermissionDenied("error.permission_denied", action="read the batch scheduler's queues", role=actor.role)
    pools = [org.pool(pool).id] if pool is not None else [p for p in org.pools if _in_scope(actor, org, org.pools[p].cluster)]
    rows = pool_workloads(org, pools=pools, source=source)
    return {"scheduler": load_scheduler_settings().scheduler, "live": rows is not None,
            "pools": [r.as_dict() for r in rows or []]}


__all__ = ["SCHEDULER_ROLES", "apply_scheduler_objects", "scheduler_workloads"]
