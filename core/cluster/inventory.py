"""GPU node inventory per cluster: typed records, a pure decoder, a live source and a fake.

The live source lists Nodes with the official client and keeps those that have allocatable
GPUs (``nvidia.com/gpu`` by default); the fake builds the same records from the pools of
``data/org.yaml`` so demo mode shows a plausible fleet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from core.cluster.manifests import ClusterSettings, load_cluster_settings


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


class Inventory(Protocol):
    """Where GPU nodes are read from."""

    def nodes(self, cluster_id: str) -> list[GpuNode]:
        """The GPU nodes of ``cluster_id``, by name."""


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


class LiveInventory:
    """Reads Nodes through the official client; ``client_for(cluster_id)`` gives an ``ApiClient``
    (e.g. :meth:`core.cluster.backends.LiveBackend.client`)."""

    def __init__(self, client_for: Callable[[str], Any], settings: ClusterSettings | None = None, *,
                 timeout_s: float | None = None) -> None:
        self._client_for = client_for
        self._settings = settings
        self._timeout_s = timeout_s

    def nodes(self, cluster_id: str) -> list[GpuNode]:
        """The GPU nodes of the cluster; raises :class:`~core.cluster.backends.ClusterError`."""
        from kubernetes import client as k8s

        from core.cluster.backends import translate_error

        step = f"NodeList/{cluster_id}"
        try:
            extra = {"_request_timeout": self._timeout_s} if self._timeout_s else {}
            response = k8s.CoreV1Api(self._client_for(cluster_id)).list_node(_preload_content=False, **extra)
            doc = json.loads(response.data)
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise translate_error(step, exc) from exc
        return decode_nodes(doc, cluster_id, self._settings or load_cluster_settings())


class FakeInventory:
    """Nodes made up from the pools of ``data/org.yaml`` (demo mode and tests)."""

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
