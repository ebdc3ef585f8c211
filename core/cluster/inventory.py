"""GPU inventory per cluster: typed records, pure decoders, a live source and a fake.

The live source lists, with the official client, the Nodes that have allocatable GPUs
(``nvidia.com/gpu`` by default, and every vendor resource of ``data/cluster_settings.yaml``), the
ResourceQuotas that limit GPU requests (``requests.<gpu resource>``: ``status.hard`` and
``status.used``), and the pods that request GPUs and have not finished (phase neither Succeeded nor
Failed — the pods ``kubectl describe node`` counts under "Allocated resources"). Every list is
read in chunks (``limit``/``continue``) so a big cluster never comes back in one response.
The fake builds nodes from the pools of ``data/org.yaml`` so demo mode shows a plausible fleet;
it has no quotas or pods (demo mode says so instead of inventing them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from core.cluster.manifests import ClusterSettings, load_cluster_settings

FINISHED_PHASES = ("Succeeded", "Failed")
# The server-side filter of pods that still hold (or wait for) their GPUs, as kubectl describe node.
UNFINISHED_PODS = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True)
class GpuNode:
    """One node with GPUs: its pool (from the pool label), GPU product and allocatable count."""

    cluster: str
    name: str
    pool: str | None
    gpu_product: str | None
    gpus: int
    ready: bool = True
    resource: str | None = None  # the extended resource the GPUs are published as (live nodes)


@dataclass(frozen=True)
class GpuQuota:
    """The GPU part of one ResourceQuota: the ``requests.<resource>`` hard limit and use, from its status."""

    cluster: str
    namespace: str
    name: str
    resource: str
    hard: int
    used: int


@dataclass(frozen=True)
class GpuPod:
    """One pod that requests GPUs and has not finished: where it runs (``node`` is None while it
    is not scheduled), its effective GPU request and phase."""

    cluster: str
    namespace: str
    name: str
    node: str | None
    gpus: int
    phase: str
    resource: str


class Inventory(Protocol):
    """Where GPU nodes, GPU quotas and GPU pods are read from."""

    def nodes(self, cluster_id: str) -> list[GpuNode]:
        """The GPU nodes of ``cluster_id``, by name."""

    def quotas(self, cluster_id: str) -> list[GpuQuota]:
        """The GPU quotas of ``cluster_id``, by namespace and name."""

    def pods(self, cluster_id: str) -> list[GpuPod]:
        """The unfinished pods of ``cluster_id`` that request GPUs, by namespace and name."""


def _int(quantity: Any) -> int:
    try:
        return int(str(quantity))
    except (TypeError, ValueError):
        return 0


def gpu_resources(settings: ClusterSettings) -> tuple[str, ...]:
    """The extended resources that count as GPUs: the default (``nvidia.com/gpu``) first, then
    every vendor's of ``gpu_resources_by_vendor`` (e.g. ``huawei.com/Ascend910``)."""
    return tuple(dict.fromkeys([settings.gpu_resource, *settings.gpu_resources_by_vendor.values()]))


def decode_nodes(node_list: Mapping[str, Any], cluster_id: str, settings: ClusterSettings) -> list[GpuNode]:
    """The GPU nodes of a ``NodeList`` document (nodes without allocatable GPUs of any
    :func:`gpu_resources` are left out)."""
    out = []
    resources = gpu_resources(settings)
    for item in node_list.get("items") or []:
        meta = item.get("metadata") or {}
        status = item.get("status") or {}
        allocatable = status.get("allocatable") or {}
        resource = next((r for r in resources if _int(allocatable.get(r)) > 0), None)
        if resource is None:
            continue
        node_labels = meta.get("labels") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        out.append(GpuNode(cluster_id, meta.get("name", ""), node_labels.get(settings.pool_label),
                           node_labels.get(settings.gpu_product_label), _int(allocatable[resource]), ready, resource))
    return sorted(out, key=lambda n: n.name)


def decode_quotas(quota_list: Mapping[str, Any], cluster_id: str, settings: ClusterSettings) -> list[GpuQuota]:
    """The GPU entries of a ``ResourceQuotaList``: one per quota and GPU resource whose
    ``requests.<resource>`` is in ``status.hard`` (or in ``spec.hard`` before the quota controller
    has written the status; used is then 0). Quotas without a GPU entry are left out."""
    out = []
    resources = gpu_resources(settings)
    for item in quota_list.get("items") or []:
        meta = item.get("metadata") or {}
        status = item.get("status") or {}
        hard = status.get("hard") or (item.get("spec") or {}).get("hard") or {}
        used = status.get("used") or {}
        for r in resources:
            key = f"requests.{r}"
            if key in hard:
                out.append(GpuQuota(cluster_id, meta.get("namespace", ""), meta.get("name", ""), r,
                                    _int(hard[key]), _int(used.get(key))))
    return sorted(out, key=lambda q: (q.namespace, q.name, q.resource))


def _container_gpus(container: Mapping[str, Any], resource: str) -> int:
    """A container's GPU request: ``requests`` or, when absent, ``limits`` (for extended resources
    Kubernetes sets the request to the limit)."""
    res = container.get("resources") or {}
    value = (res.get("requests") or {}).get(resource)
    return _int(value if value is not None else (res.get("limits") or {}).get(resource))


def pod_gpus(pod: Mapping[str, Any], settings: ClusterSettings) -> tuple[str, int] | None:
    """The GPU resource and effective request of a pod (the scheduler's rule: the larger of the sum
    over its containers and its largest init container), or None when it requests no GPU."""
    spec = pod.get("spec") or {}
    for r in gpu_resources(settings):
        main = sum(_container_gpus(c, r) for c in spec.get("containers") or [])
        init = max((_container_gpus(c, r) for c in spec.get("initContainers") or []), default=0)
        if max(main, init) > 0:
            return r, max(main, init)
    return None


def decode_pods(pod_list: Mapping[str, Any], cluster_id: str, settings: ClusterSettings) -> list[GpuPod]:
    """The pods of a ``PodList`` that request GPUs and have not finished (Succeeded/Failed left out)."""
    out = []
    for item in pod_list.get("items") or []:
        phase = (item.get("status") or {}).get("phase") or "Unknown"
        if phase in FINISHED_PHASES:
            continue
        gpus = pod_gpus(item, settings)
        if gpus is None:
            continue
        meta = item.get("metadata") or {}
        out.append(GpuPod(cluster_id, meta.get("namespace", ""), meta.get("name", ""),
                          (item.get("spec") or {}).get("nodeName") or None, gpus[1], phase, gpus[0]))
    return sorted(out, key=lambda p: (p.namespace, p.name))


class LiveInventory:
    """Reads Nodes, ResourceQuotas and Pods through the official client; ``client_for(cluster_id)``
    gives an ``ApiClient`` (e.g. :meth:`core.cluster.backends.LiveBackend.client`). Every list comes
    in chunks of ``page_size`` items, one request each, each cut at ``timeout_s``."""

    def __init__(self, client_for: Callable[[str], Any], settings: ClusterSettings | None = None, *,
                 timeout_s: float | None = None, page_size: int = 500) -> None:
        self._client_for = client_for
        self._settings = settings
        self._timeout_s = timeout_s
        self._page_size = page_size

    def _paged(self, step: str, cluster_id: str, method: str, **query: Any) -> dict[str, Any]:
        """Every item of a chunked ``CoreV1Api`` list call (``limit``/``_continue``), as one list document;
        raises :class:`~core.cluster.backends.ClusterError` naming ``<step>/<cluster>``."""
        from kubernetes import client as k8s

        from core.cluster.backends import translate_error

        items: list[Any] = []
        token: str | None = None
        try:
            call = getattr(k8s.CoreV1Api(self._client_for(cluster_id)), method)
            while True:
                kwargs: dict[str, Any] = {"limit": self._page_size, "_preload_content": False, **query}
                if self._timeout_s:
                    kwargs["_request_timeout"] = self._timeout_s
                if token:
                    kwargs["_continue"] = token
                doc = json.loads(call(**kwargs).data)
                items.extend(doc.get("items") or [])
                token = (doc.get("metadata") or {}).get("continue")
                if not token:
                    return {"items": items}
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise translate_error(f"{step}/{cluster_id}", exc) from exc

    def _cluster_settings(self) -> ClusterSettings:
        return self._settings or load_cluster_settings()

    def nodes(self, cluster_id: str) -> list[GpuNode]:
        """The GPU nodes of the cluster; raises :class:`~core.cluster.backends.ClusterError`."""
        return decode_nodes(self._paged("NodeList", cluster_id, "list_node"), cluster_id, self._cluster_settings())

    def quotas(self, cluster_id: str) -> list[GpuQuota]:
        """The GPU quotas of every namespace; raises :class:`~core.cluster.backends.ClusterError`."""
        doc = self._paged("ResourceQuotaList", cluster_id, "list_resource_quota_for_all_namespaces")
        return decode_quotas(doc, cluster_id, self._cluster_settings())

    def pods(self, cluster_id: str) -> list[GpuPod]:
        """The unfinished GPU pods of every namespace; raises :class:`~core.cluster.backends.ClusterError`."""
        doc = self._paged("PodList", cluster_id, "list_pod_for_all_namespaces", field_selector=UNFINISHED_PODS)
        return decode_pods(doc, cluster_id, self._cluster_settings())


class FakeInventory:
    """Nodes made up from the pools of ``data/org.yaml`` (demo mode and tests); no quotas or pods."""

    def __init__(self, org: Any) -> None:
        self._org = org

    def nodes(self, cluster_id: str) -> list[GpuNode]:
        """``pool.nodes`` nodes per pool on the cluster; the last one holds the remainder."""
        out = []
        for pool in self._org.pools.values():
            if pool.cluster != cluster_id:
                continue
            left = pool.gpus
            for i in range(pool.nodes):
                n = min(pool.gpus_per_node, left)
                left -= n
                out.append(GpuNode(cluster_id, f"{pool.id}-gpu-{i + 1:03d}", pool.id, pool.gpu, n))
        return sorted(out, key=lambda n: n.name)

    def quotas(self, cluster_id: str) -> list[GpuQuota]:
        """None: there is no cluster to read quotas from (demo mode shows the portal's allocations)."""
        return []

    def pods(self, cluster_id: str) -> list[GpuPod]:
        """None: there is no cluster to read pods from (demo mode says so)."""
        return []
