"""The batch scheduler's view of each pool, read from the live clusters: how many workloads its
queue has admitted and how many wait, and the GPUs they hold — for the water level.

Kueue: the pool's ``ClusterQueue`` status (``admittedWorkloads``, ``pendingWorkloads``,
``reservingWorkloads``; ``flavorsUsage[].resources[]`` ``total``/``borrowed`` of the GPU resource).
Volcano: the pool's ``Queue`` status, which counts PodGroups by phase: admitted = ``inqueue`` (passed
the enqueue action, resources granted) + ``running`` + ``unknown`` (partly running), pending =
``pending``; GPUs held = ``allocated``. Field names follow the API references named in
:mod:`core.cluster.scheduler_queues`. A queue is matched to its pool by its ``computeloop.io/pool``
label (set by :mod:`core.cluster.scheduler_queues`), so queues the portal did not create are ignored.

:func:`read_pool_workloads` reads every cluster in parallel and never raises for a cluster that
fails: that cluster's pools come back with ``error`` set (and no figures), so the page can show the
rest with a banner naming it. :func:`live_reader` gives None in plan mode: there is no cluster to
read, and nothing is made up.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from core.cluster.manifests import MANAGED_BY, ClusterSettings, load_cluster_settings
from core.cluster.scheduler_queues import (
    CUSTOM_KINDS, SchedulerSettings, gpu_resource_of, load_scheduler_settings, queue_name,
)

# Queues listed per request; a cluster has one per pool, so one page is the usual case.
PAGE_SIZE = 500
_QUEUE_KIND = {"kueue": "ClusterQueue", "volcano": "Queue"}


@dataclass(frozen=True)
class PoolWorkloads:
    """One pool as its cluster's batch scheduler sees it (figures None when not read)."""

    pool: str
    cluster: str
    scheduler: str  # kueue | volcano
    queue: str  # the ClusterQueue (Kueue) or Queue (Volcano) name
    admitted: int | None = None  # workloads admitted and not finished (Volcano: PodGroups)
    pending: int | None = None  # workloads waiting for admission
    gpus_in_use: int | None = None  # GPUs the admitted workloads hold, borrowed ones included
    gpus_borrowed: int | None = None  # of those, borrowed from the cohort (Kueue only)
    found: bool = True  # False: the cluster answered but has no queue for the pool (not applied yet)
    error: Any = None  # the ClusterError of a cluster that could not be read

    def as_dict(self) -> dict[str, Any]:
        """Plain values (the error as its catalog key and parameters)."""
        out = {k: getattr(self, k) for k in ("pool", "cluster", "scheduler", "queue", "admitted", "pending",
                                             "gpus_in_use", "gpus_borrowed", "found")}
        out["error"] = ({"key": self.error.key, "params": {k: str(v) for k, v in self.error.params.items()}}
                        if self.error is not None else None)
        return out


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _gpus(quantity: Any) -> int:
    try:
        return int(str(quantity))
    except (TypeError, ValueError):
        return 0


def decode_queue(item: Mapping[str, Any], scheduler: str, gpu_resource: str) -> dict[str, int]:
    """The figures of one ClusterQueue (Kueue) or Queue (Volcano) document's ``status``; a queue the
    controller has not reconciled yet (no status) counts 0 everywhere."""
    status = item.get("status") or {}
    if scheduler == "kueue":
        used = [r for f in status.get("flavorsUsage") or [] for r in f.get("resources") or []
                if r.get("name") == gpu_resource]
        return {"admitted": _count(status.get("admittedWorkloads")), "pending": _count(status.get("pendingWorkloads")),
                "gpus_in_use": sum(_gpus(r.get("total", 0)) for r in used),
                "gpus_borrowed": sum(_gpus(r.get("borrowed", 0)) for r in used)}
    return {"admitted": sum(_count(status.get(k)) for k in ("inqueue", "running", "unknown")),
            "pending": _count(status.get("pending")),
            "gpus_in_use": _gpus((status.get("allocated") or {}).get(gpu_resource, 0)), "gpus_borrowed": None}


class LiveSchedulerQueues:
    """Lists a cluster's queues (ClusterQueues or Volcano Queues) through ``CustomObjectsApi``;
    ``client_for(cluster_id)`` gives an ``ApiClient`` (e.g. :meth:`core.cluster.backends.LiveBackend.client`)."""

    def __init__(self, client_for: Callable[[str], Any], *, timeout_s: float | None = None) -> None:
        self._client_for = client_for
        self._timeout_s = timeout_s

    def queues(self, cluster_id: str, scheduler: str) -> list[dict[str, Any]]:
        """Every queue document the portal manages on the cluster; raises :class:`~core.cluster.backends.ClusterError`."""
        from kubernetes import client as k8s

        from core.cluster.backends import translate_error

        kind = _QUEUE_KIND[scheduler]
        group, version, plural, _ = CUSTOM_KINDS[kind]
        items: list[Any] = []
        token: str | None = None
        try:
            api = k8s.CustomObjectsApi(self._client_for(cluster_id))
            while True:
                kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "label_selector": f"app.kubernetes.io/managed-by={MANAGED_BY}",
                                          "_preload_content": False}
                if self._timeout_s:
                    kwargs["_request_timeout"] = self._timeout_s
                if token:
                    kwargs["_continue"] = token
                doc = json.loads(api.list_cluster_custom_object(group, version, plural, **kwargs).data)
                items.extend(doc.get("items") or [])
                token = (doc.get("metadata") or {}).get("continue")
                if not token:
                    return items
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise translate_error(f"{kind}List/{cluster_id}", exc) from exc


def read_pool_workloads(org: Any, source: LiveSchedulerQueues, *, pools: Sequence[str] | None = None,
                        settings: SchedulerSettings | None = None,
                        cluster_settings: ClusterSettings | None = None) -> list[PoolWorkloads]:
    """Per pool (all of ``org``, or ``pools``), by pool id: what its cluster's scheduler reports.

    One list request per cluster, clusters in parallel; a cluster that fails gives its pools
    ``error`` and no figures, it never raises. A pool whose queue is missing on a cluster that
    answered comes back with ``found`` False and no figures.
    """
    settings = settings or load_scheduler_settings()
    cluster_settings = cluster_settings or load_cluster_settings()
    chosen = [org.pool(p) for p in pools] if pools is not None else list(org.pools.values())
    by_cluster: dict[str, list[Any]] = {}
    for p in chosen:
        by_cluster.setdefault(p.cluster, []).append(p)
    pool_label = cluster_settings.label("pool")

    def one(cluster_id: str) -> list[PoolWorkloads]:
        base = {"cluster": cluster_id, "scheduler": settings.scheduler}
        try:
            items = source.queues(cluster_id, settings.scheduler)
        except Exception as exc:  # noqa: BLE001 - a ClusterError from the source, shown as a banner
            return [PoolWorkloads(p.id, queue=queue_name(p.id), error=exc, **base) for p in by_cluster[cluster_id]]
        mine = {((i.get("metadata") or {}).get("labels") or {}).get(pool_label): i for i in items}
        out = []
        for p in by_cluster[cluster_id]:
            item = mine.get(p.id)
            if item is None:
                out.append(PoolWorkloads(p.id, queue=queue_name(p.id), found=False, **base))
                continue
            figures = decode_queue(item, settings.scheduler, gpu_resource_of(p.gpu, cluster_settings))
            out.append(PoolWorkloads(p.id, queue=(item.get("metadata") or {}).get("name", ""), **base, **figures))
        return out

    if not by_cluster:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(by_cluster)), thread_name_prefix="scheduler") as ex:
        rows = [r for chunk in ex.map(one, sorted(by_cluster)) for r in chunk]
    return sorted(rows, key=lambda r: r.pool)


def live_reader(org: Any) -> LiveSchedulerQueues | None:
    """The live queue source when the settings choose the live cluster backend, else None (plan mode).
    Clients come from each cluster's kubeconfig context, with the timeout of ``data/inventory.yaml``."""
    from core import config
    from core.cluster.backends import LiveBackend
    from core.datafiles import load_yaml

    cfg = config.load()
    if cfg.cluster_backend != "live":
        return None
    timeout = float((load_yaml("inventory.yaml") or {}).get("request_timeout_s") or 0) or None
    return LiveSchedulerQueues(LiveBackend(org, kubeconfig_file=cfg.kubeconfig or None).client, timeout_s=timeout)


def pool_workloads(org: Any = None, *, pools: Sequence[str] | None = None,
                   source: LiveSchedulerQueues | None = None) -> list[PoolWorkloads] | None:
    """What the water level shows per pool from the batch scheduler: None in plan mode (no cluster to
    read; ``source`` forces a reading), else :func:`read_pool_workloads`."""
    from core.org import load_org

    org = org or load_org()
    source = source or live_reader(org)
    if source is None:
        return None
    return read_pool_workloads(org, source, pools=pools)


__all__ = ("LiveSchedulerQueues", "PoolWorkloads", "decode_queue", "live_reader", "pool_workloads",
           "read_pool_workloads")
