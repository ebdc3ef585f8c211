"""The batch scheduler's objects per GPU pool, as plain dicts: the queue the portal grants from is
enforced on the cluster.

Kueue (``data/batch_scheduler.yaml`` ``scheduler: kueue``, the default), API ``kueue.x-k8s.io/v1beta1``:

* a ``ResourceFlavor`` per GPU model, selecting the nodes labelled with the model
  (``flavor_node_label``);
* a ``ClusterQueue`` per pool: nominal quota of the pool's GPU resource (``nvidia.com/gpu``, or the
  vendor's) and of the CPU and memory that go with it (GPUs × the per-GPU shape of
  ``data/provisioning_defaults.yaml``), on the flavour of the pool's GPU model; cohort = the pool's
  unit (the province, or HQ), with borrowing and lending limits from the data file; it admits the
  namespaces labelled with the pool (``computeloop.io/pool``, which every allocation namespace carries);
* a ``LocalQueue`` (named ``default``) in every allocation namespace pointing at its pool's
  ClusterQueue — rendered with the allocation by :func:`core.cluster.manifests.render`;
* a ``WorkloadPriorityClass`` per portal priority (low, normal, high, critical = the green channel),
  valued by the weights of ``data/queue_policy.yaml``.

Volcano (``scheduler: volcano``): a ``scheduling.volcano.sh/v1beta1`` ``Queue`` per pool (weight =
the pool's GPUs, capability = quota + borrowing limit, deserved = quota, guarantee = the part it
does not lend, reclaimable) and ``scheduling.k8s.io/v1`` ``PriorityClass``es (only critical, the
green channel, preempts). Volcano has no cohort: queues share one cluster, and every cluster of
``data/org.yaml`` belongs to one unit, so "the province's pools" and "the cluster's queues" are the
same set.

References followed (the API version is the one named; the test schemas in
``tests/support/scheduler_schemas.py`` encode the same fields, types and required values):

* Kueue v1beta1 Go API types, kubernetes-sigs/kueue ``apis/kueue/v1beta1/clusterqueue_types.go``,
  ``localqueue_types.go``, ``resourceflavor_types.go``, ``workloadpriorityclass_types.go`` (kubebuilder
  markers: required fields, enums, MaxItems, DNS-subdomain name patterns; "borrowingLimit must be nil
  when cohort is empty"; "flavors must have the same number of resources as the coveredResources"),
  and the concept pages https://kueue.sigs.k8s.io/docs/concepts/cluster_queue/ and
  .../tasks/manage/enforce_job_management/setup_default_local_queue/. Kueue ≥ 0.15 also serves
  v1beta2 (``cohort`` renamed ``cohortName``); v1beta1 is still served and converted.
* Volcano ``Queue`` CRD, volcano-sh/volcano ``config/crd/volcano/bases/scheduling.volcano.sh_queues.yaml``
  (spec.weight int32, capability/deserved/guarantee.resource ResourceLists, reclaimable bool; status
  pending/running/inqueue/unknown/completed int32, allocated) and the admission webhook
  ``pkg/webhooks/admission/queues/validate/validate_queue.go`` ("queue weight must be a positive integer").
* Kubernetes ``PriorityClass`` (scheduling.k8s.io/v1), checked by kubernetes-validate.

Nothing here talks to a cluster: :mod:`core.cluster.backends` applies these objects (custom kinds
through ``CustomObjectsApi``, see :func:`custom_object_call`) and :mod:`core.cluster.scheduler_status`
reads the queues' admitted and pending workloads back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from core.cluster.manifests import (
    MANAGED_BY, ClusterSettings, _quantity_cpu, dns_label, is_dns_label, label_value, labels, load_cluster_settings,
)
from core.datafiles import load_derived
from core.errors import InputError

KUEUE_GROUP, KUEUE_VERSION = "kueue.x-k8s.io", "v1beta1"
VOLCANO_GROUP, VOLCANO_VERSION = "scheduling.volcano.sh", "v1beta1"
KUEUE_API = f"{KUEUE_GROUP}/{KUEUE_VERSION}"
VOLCANO_API = f"{VOLCANO_GROUP}/{VOLCANO_VERSION}"
PRIORITY_API = "scheduling.k8s.io/v1"
SCHEDULERS = ("kueue", "volcano")
# The green channel's priority: core/lifecycle/green_channel.py gives every emergency request priority critical.
GREEN_CHANNEL_PRIORITY = "critical"

# kind → (API group, version, plural, namespaced): the kinds applied through CustomObjectsApi.
CUSTOM_KINDS: dict[str, tuple[str, str, str, bool]] = {
    "ResourceFlavor": (KUEUE_GROUP, KUEUE_VERSION, "resourceflavors", False),
    "ClusterQueue": (KUEUE_GROUP, KUEUE_VERSION, "clusterqueues", False),
    "LocalQueue": (KUEUE_GROUP, KUEUE_VERSION, "localqueues", True),
    "WorkloadPriorityClass": (KUEUE_GROUP, KUEUE_VERSION, "workloadpriorityclasses", False),
    "Queue": (VOLCANO_GROUP, VOLCANO_VERSION, "queues", False),
}
# Fields the live backend keeps in line with the desired state when an object exists. A LocalQueue's
# spec.clusterQueue is immutable (Kueue: "field is immutable"), and so is a PriorityClass's value
# (Kubernetes API validation); a WorkloadPriorityClass's value may change (it applies to new workloads).
RECONCILED: dict[str, tuple[str, ...]] = {
    "ResourceFlavor": ("spec",),
    "ClusterQueue": ("spec",),
    "LocalQueue": (),
    "WorkloadPriorityClass": ("value", "description"),
    "Queue": ("spec",),
    "PriorityClass": ("description",),
}
_QUEUEING = ("StrictFIFO", "BestEffortFIFO")
_WITHIN_CQ = ("Never", "LowerPriority", "LowerOrNewerEqualPriority")
_RECLAIM = ("Never", "LowerPriority", "Any")
_LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


# --- settings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SchedulerSettings:
    """``data/batch_scheduler.yaml``."""

    scheduler: str
    flavor_node_label: str
    borrowing_percent: Mapping[str, float]
    lending_percent: Mapping[str, float]
    shape_by_pool_kind: Mapping[str, str]
    priority_class_prefix: str
    local_queue_name: str
    queueing_strategy: str
    within_cluster_queue: str
    reclaim_within_cohort: str
    reclaimable: bool

    def borrowing(self, pool_kind: str) -> float:
        """Percent of its quota a pool of ``pool_kind`` may borrow."""
        return self.borrowing_percent.get(pool_kind, self.borrowing_percent["default"])

    def lending(self, pool_kind: str) -> float | None:
        """Percent of its quota a pool of ``pool_kind`` may lend; None: no limit."""
        return self.lending_percent.get(pool_kind)

    def shape(self, pool_kind: str) -> str:
        """The per-GPU shape (``per_gpu`` key of data/provisioning_defaults.yaml) of the pool kind."""
        return self.shape_by_pool_kind.get(pool_kind, self.shape_by_pool_kind["default"])


def _build(raw: Any) -> SchedulerSettings:
    def bad(entry: str) -> InputError:
        return InputError("error.data_entry_invalid", field="batch_scheduler.yaml", entry=entry)

    try:
        kueue, volcano = raw["kueue"], raw["volcano"]
        s = SchedulerSettings(
            scheduler=str(raw["scheduler"]).strip().lower(),
            flavor_node_label=str(raw["flavor_node_label"]),
            borrowing_percent={str(k): float(v) for k, v in raw["borrowing_percent"].items()},
            lending_percent={str(k): float(v) for k, v in (raw.get("lending_percent") or {}).items()},
            shape_by_pool_kind={str(k): str(v) for k, v in raw["shape_by_pool_kind"].items()},
            priority_class_prefix=str(raw["priority_class_prefix"]),
            local_queue_name=str(kueue["local_queue_name"]),
            queueing_strategy=str(kueue["queueing_strategy"]),
            within_cluster_queue=str(kueue["preemption"]["within_cluster_queue"]),
            reclaim_within_cohort=str(kueue["preemption"]["reclaim_within_cohort"]),
            reclaimable=volcano["reclaimable"],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad(str(exc)) from None
    checks = [
        (s.scheduler in SCHEDULERS, f"scheduler = {s.scheduler} (kueue or volcano)"),
        ("default" in s.borrowing_percent, "borrowing_percent.default is required"),
        ("default" in s.shape_by_pool_kind, "shape_by_pool_kind.default is required"),
        (all(v >= 0 for v in s.borrowing_percent.values()), "borrowing_percent must not be negative"),
        (all(0 <= v <= 100 for v in s.lending_percent.values()), "lending_percent must be 0..100"),
        (s.queueing_strategy in _QUEUEING, f"kueue.queueing_strategy = {s.queueing_strategy}"),
        (s.within_cluster_queue in _WITHIN_CQ, f"kueue.preemption.within_cluster_queue = {s.within_cluster_queue}"),
        (s.reclaim_within_cohort in _RECLAIM, f"kueue.preemption.reclaim_within_cohort = {s.reclaim_within_cohort}"),
        (isinstance(s.reclaimable, bool), "volcano.reclaimable must be true or false"),
        (is_dns_label(s.local_queue_name), f"kueue.local_queue_name = {s.local_queue_name}"),
        (is_dns_label(f"{s.priority_class_prefix}-critical"), f"priority_class_prefix = {s.priority_class_prefix}"),
        (bool(re.match(_LABEL_KEY, s.flavor_node_label)), f"flavor_node_label = {s.flavor_node_label}"),
    ]
    for ok, entry in checks:
        if not ok:
            raise bad(entry)
    return s


def load_scheduler_settings() -> SchedulerSettings:
    """The settings from ``data/batch_scheduler.yaml`` (rebuilt when the file changes)."""
    return load_derived("batch_scheduler.yaml", _build)


# --- names -----------------------------------------------------------------------------------

def flavor_name(gpu_model: str) -> str:
    """The ResourceFlavor of a GPU model (catalog id, e.g. ``H800-SXM`` → ``h800-sxm``)."""
    return dns_label(gpu_model)


def queue_name(pool_id: str) -> str:
    """The ClusterQueue (Kueue) or Queue (Volcano) of a pool."""
    return dns_label(pool_id)


def cohort_name(unit_id: str) -> str:
    """The Kueue cohort of a unit's pools (``HQ`` → ``hq``, ``JS`` → ``js``)."""
    return dns_label(unit_id)


def priority_class_name(priority: str, settings: SchedulerSettings | None = None) -> str:
    """The (Workload)PriorityClass of a portal priority, e.g. ``computeloop-critical``."""
    return f"{(settings or load_scheduler_settings()).priority_class_prefix}-{priority}"


def priority_values() -> dict[str, int]:
    """Priority value per portal priority: the weights of ``data/queue_policy.yaml`` (whole numbers,
    so the scheduler orders work as the portal does before aging)."""
    from core.adjust.queue import PRIORITIES, load_policy

    weights = load_policy().weights
    values = {p: int(round(weights[p])) for p in PRIORITIES}
    if any(values[a] >= values[b] for a, b in zip(PRIORITIES, PRIORITIES[1:])) or max(values.values()) > 10**9:
        raise InputError("error.data_entry_invalid", field="queue_policy.yaml",
                         entry="weights must be increasing whole numbers up to 1e9 to serve as scheduler priorities")
    return values


# --- quotas ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolQuota:
    """What a pool's queue holds: its GPUs (as ``resource``) and the CPU and memory that go with them."""

    pool: str
    unit: str
    kind: str
    gpu_model: str
    resource: str
    gpus: int
    cpu: float
    memory_gi: int


def gpu_resource_of(gpu_model: str, cluster_settings: ClusterSettings) -> str:
    """The extended resource a GPU model is published as (its vendor's, else the default)."""
    from core.estimation.catalog import load_catalog

    vendor = load_catalog().get(gpu_model).vendor
    return cluster_settings.gpu_resources_by_vendor.get(vendor) or cluster_settings.gpu_resource


def pool_quota(org: Any, pool_id: str, *, gpus: int | None = None, settings: SchedulerSettings | None = None,
               cluster_settings: ClusterSettings | None = None) -> PoolQuota:
    """The quota of pool ``pool_id``: its size from ``data/org.yaml`` unless ``gpus`` overrides it (e.g. a
    transfer of quota between pools for a window); CPU and memory = GPUs × the pool kind's shape."""
    from core.lifecycle.provisioning import load_provisioning_defaults

    settings = settings or load_scheduler_settings()
    cluster_settings = cluster_settings or load_cluster_settings()
    pool = org.pool(pool_id)
    size = pool.gpus if gpus is None else int(gpus)
    if size < 0:
        raise InputError("error.data_entry_invalid", field="gpus", entry=f"{pool_id} = {size}")
    per_gpu = load_provisioning_defaults().per_gpu
    shape = settings.shape(pool.kind)
    if shape not in per_gpu:
        raise InputError("error.data_entry_invalid", field="batch_scheduler.yaml",
                         entry=f"shape_by_pool_kind.{pool.kind} = {shape} (not in provisioning_defaults.yaml per_gpu)")
    return PoolQuota(pool.id, org.clusters[pool.cluster].unit, pool.kind, pool.gpu,
                     gpu_resource_of(pool.gpu, cluster_settings), size, size * per_gpu[shape].cpu,
                     size * per_gpu[shape].memory_gi)


def _share(q: PoolQuota, percent: float) -> tuple[int, float, int]:
    """``percent`` of the quota's GPUs, CPU and memory, rounded down (GPUs and GiB whole, CPU to 1m)."""
    f = percent / 100
    return math.floor(q.gpus * f), math.floor(q.cpu * f * 1000) / 1000, math.floor(q.memory_gi * f)


def _amounts(q: PoolQuota, gpus: int, cpu: float, memory_gi: int) -> dict[str, str]:
    return {q.resource: str(gpus), "cpu": _quantity_cpu(cpu), "memory": f"{memory_gi}Gi"}


# --- manifests -------------------------------------------------------------------------------

def _meta(name: str, cluster_settings: ClusterSettings, **extra: str) -> dict[str, Any]:
    lab = {"app.kubernetes.io/managed-by": MANAGED_BY}
    lab |= {cluster_settings.label(k): label_value(v) for k, v in extra.items()}
    return {"name": name, "labels": lab}


def resource_flavor(gpu_model: str, settings: SchedulerSettings, cluster_settings: ClusterSettings) -> dict[str, Any]:
    """The Kueue ResourceFlavor of a GPU model."""
    return {"apiVersion": KUEUE_API, "kind": "ResourceFlavor",
            "metadata": _meta(flavor_name(gpu_model), cluster_settings, **{"gpu-model": gpu_model}),
            "spec": {"nodeLabels": {settings.flavor_node_label: label_value(gpu_model)}}}


def cluster_queue(q: PoolQuota, settings: SchedulerSettings, cluster_settings: ClusterSettings) -> dict[str, Any]:
    """The Kueue ClusterQueue of a pool: its quota on its GPU model's flavour, in its unit's cohort."""
    nominal = _amounts(q, q.gpus, q.cpu, q.memory_gi)
    borrow = _amounts(q, *_share(q, settings.borrowing(q.kind)))
    lend_pct = settings.lending(q.kind)
    lend = _amounts(q, *_share(q, lend_pct)) if lend_pct is not None else None
    resources = []
    for name in (q.resource, "cpu", "memory"):
        entry = {"name": name, "nominalQuota": nominal[name], "borrowingLimit": borrow[name]}
        if lend is not None:
            entry["lendingLimit"] = lend[name]
        resources.append(entry)
    return {"apiVersion": KUEUE_API, "kind": "ClusterQueue",
            "metadata": _meta(queue_name(q.pool), cluster_settings, pool=q.pool, unit=q.unit),
            "spec": {
                "namespaceSelector": {"matchLabels": {cluster_settings.label("pool"): label_value(q.pool)}},
                "cohort": cohort_name(q.unit),
                "queueingStrategy": settings.queueing_strategy,
                "preemption": {"withinClusterQueue": settings.within_cluster_queue,
                               "reclaimWithinCohort": settings.reclaim_within_cohort},
                "resourceGroups": [{"coveredResources": [q.resource, "cpu", "memory"],
                                    "flavors": [{"name": flavor_name(q.gpu_model), "resources": resources}]}],
            }}


def volcano_queue(q: PoolQuota, settings: SchedulerSettings, cluster_settings: ClusterSettings) -> dict[str, Any]:
    """The Volcano Queue of a pool: weight by size, capped at quota + borrowing, reclaimable."""
    bg, bc, bm = _share(q, settings.borrowing(q.kind))
    spec: dict[str, Any] = {
        "weight": max(1, q.gpus),  # the webhook rejects a weight that is not a positive integer
        "reclaimable": settings.reclaimable,
        "capability": _amounts(q, q.gpus + bg, q.cpu + bc, q.memory_gi + bm),
        "deserved": _amounts(q, q.gpus, q.cpu, q.memory_gi),
    }
    lend_pct = settings.lending(q.kind)
    if lend_pct is not None:  # what it does not lend is reserved for it alone
        lg, lc, lm = _share(q, lend_pct)
        spec["guarantee"] = {"resource": _amounts(q, q.gpus - lg, q.cpu - lc, q.memory_gi - lm)}
    return {"apiVersion": VOLCANO_API, "kind": "Queue",
            "metadata": _meta(queue_name(q.pool), cluster_settings, pool=q.pool, unit=q.unit), "spec": spec}


def priority_classes(settings: SchedulerSettings, cluster_settings: ClusterSettings) -> list[dict[str, Any]]:
    """One (Workload)PriorityClass per portal priority, lowest first."""
    out = []
    for priority, value in priority_values().items():
        description = (f"ComputeLoop priority {priority} (data/queue_policy.yaml weight {value})"
                       + ("; the green channel (绿色通道): emergencies approved by HQ ops"
                          if priority == GREEN_CHANNEL_PRIORITY else ""))
        meta = _meta(priority_class_name(priority, settings), cluster_settings, priority=priority)
        if settings.scheduler == "kueue":
            out.append({"apiVersion": KUEUE_API, "kind": "WorkloadPriorityClass", "metadata": meta,
                        "value": value, "description": description})
        else:
            out.append({"apiVersion": PRIORITY_API, "kind": "PriorityClass", "metadata": meta, "value": value,
                        "globalDefault": False, "description": description,
                        # only the green channel preempts; everything else waits its turn
                        "preemptionPolicy": "PreemptLowerPriority" if priority == GREEN_CHANNEL_PRIORITY else "Never"})
    return out


def cluster_objects(org: Any, cluster_id: str, *, pool: str | None = None, sizes: Mapping[str, int] | None = None,
                    settings: SchedulerSettings | None = None,
                    cluster_settings: ClusterSettings | None = None) -> list[dict[str, Any]]:
    """The scheduler objects of one cluster, in apply order: flavours (Kueue), priority classes, then
    one queue per pool of the cluster (only ``pool`` when given). ``sizes`` overrides pool sizes."""
    settings = settings or load_scheduler_settings()
    cluster_settings = cluster_settings or load_cluster_settings()
    pools = [p for p in org.pools.values() if p.cluster == cluster_id and pool in (None, p.id)]
    quotas = [pool_quota(org, p.id, gpus=(sizes or {}).get(p.id), settings=settings,
                         cluster_settings=cluster_settings) for p in sorted(pools, key=lambda p: p.id)]
    if not quotas:
        return []
    out: list[dict[str, Any]] = []
    if settings.scheduler == "kueue":
        out += [resource_flavor(m, settings, cluster_settings) for m in sorted({q.gpu_model for q in quotas})]
    out += priority_classes(settings, cluster_settings)
    queue = cluster_queue if settings.scheduler == "kueue" else volcano_queue
    out += [queue(q, settings, cluster_settings) for q in quotas]
    return out


def scheduler_objects(org: Any, *, pool: str | None = None, sizes: Mapping[str, int] | None = None,
                      settings: SchedulerSettings | None = None,
                      cluster_settings: ClusterSettings | None = None) -> dict[str, list[dict[str, Any]]]:
    """Cluster id → its scheduler objects (:func:`cluster_objects`), for every cluster with pools, or
    only the cluster of ``pool`` (:class:`InputError` naming ``pool`` if unknown)."""
    clusters = [org.pool(pool).cluster] if pool is not None else sorted({p.cluster for p in org.pools.values()})
    return {c: cluster_objects(org, c, pool=pool, sizes=sizes, settings=settings, cluster_settings=cluster_settings)
            for c in clusters}


def namespace_objects(spec: Any, cluster_settings: ClusterSettings,
                      settings: SchedulerSettings | None = None) -> list[dict[str, Any]]:
    """The scheduler objects of one allocation namespace: with Kueue its LocalQueue pointing at the
    pool's ClusterQueue (labelled like every object of the allocation); with Volcano none (jobs name
    the pool's Queue themselves)."""
    settings = settings or load_scheduler_settings()
    if settings.scheduler != "kueue":
        return []
    return [{"apiVersion": KUEUE_API, "kind": "LocalQueue",
             "metadata": {"name": settings.local_queue_name, "namespace": spec.namespace,
                          "labels": labels(spec, cluster_settings)},
             "spec": {"clusterQueue": queue_name(spec.pool)}}]


# --- the client call -------------------------------------------------------------------------

def custom_object_call(api: Any, kind: str, verb: str, namespace: str | None, **kwargs: Any) -> Any:
    """``verb`` (create, read, patch, delete) on a custom ``kind`` through a ``CustomObjectsApi``,
    unread (``_preload_content=False``)."""
    group, version, plural, namespaced = CUSTOM_KINDS[kind]
    method = f"{'get' if verb == 'read' else verb}_{'namespaced' if namespaced else 'cluster'}_custom_object"
    if namespaced:
        kwargs["namespace"] = namespace
    return getattr(api, method)(group=group, version=version, plural=plural, _preload_content=False, **kwargs)


__all__ = (
    "CUSTOM_KINDS", "RECONCILED", "SCHEDULERS", "PoolQuota", "SchedulerSettings", "cluster_objects",
    "cluster_queue", "cohort_name", "custom_object_call", "flavor_name", "gpu_resource_of", "load_scheduler_settings",
    "namespace_objects", "pool_quota", "priority_class_name", "priority_classes", "priority_values", "queue_name",
    "resource_flavor", "scheduler_objects", "volcano_queue",
)
