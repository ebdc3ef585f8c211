"""Which metrics source the portal reads, and which GPU nodes it compares them against.

* :func:`metrics_source` — a :class:`~core.metrics.prometheus.PrometheusSource` when
  ``COMPUTELOOP_PROMETHEUS_URLS`` is set, else an :class:`~core.metrics.offline.OfflineSource`
  over ``COMPUTELOOP_METRICS_DIR`` (default ``var/metrics/samples``).
* :func:`read_inventory` — the GPU nodes the water level counts and where they came from: with
  ``COMPUTELOOP_CLUSTER_BACKEND=live`` the Nodes, GPU ResourceQuotas and unfinished GPU pods of
  every cluster of ``data/org.yaml``, read in parallel through the official client (one kubeconfig
  context per cluster, the file ``COMPUTELOOP_KUBECONFIG``; every list in chunks of
  ``data/inventory.yaml`` ``page_size``); a cluster that is unreachable, slow or answers with an
  error keeps its last good reading (nodes, quotas and pods together), marked stale with its age
  and the reason (as the Prometheus adapter's :func:`~core.metrics.prometheus.with_last_good`).
  Otherwise :func:`inventory_nodes` (no quotas or pods: demo mode has no cluster to read).
* :func:`workload_rows` — per cluster the GPUs under quota, used by quota and requested by running
  pods, each with where it comes from (in demo mode the quotas the portal's allocations stand for).
* :func:`inventory_nodes` — the demo fleet's nodes when the offline folder holds a fleet
  manifest, else the nodes :class:`~core.cluster.inventory.FakeInventory` makes up from
  ``data/org.yaml``.

Settings are read when called, never at import time.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, MutableMapping

from core import config
from core.clock import utc_now
from core.cluster.inventory import FakeInventory, GpuNode, GpuPod, GpuQuota, Inventory, LiveInventory
from core.config import PROJECT_ROOT
from core.datafiles import load_yaml
from core.errors import InputError
from core.i18n import Msg
from core.metrics.offline import OfflineSource
from core.metrics.prometheus import source_from_settings
from core.org import Org, load_org

METRICS_DIR_ENV = "COMPUTELOOP_METRICS_DIR"
DEFAULT_METRICS_DIR = PROJECT_ROOT / "var" / "metrics" / "samples"


def metrics_dir() -> Path:
    """The offline samples folder: ``COMPUTELOOP_METRICS_DIR`` or ``var/metrics/samples``."""
    raw = os.environ.get(METRICS_DIR_ENV, "").strip()
    return Path(raw) if raw else DEFAULT_METRICS_DIR


def metrics_source():
    """The configured :class:`~core.metrics.schema.MetricsSource` (Prometheus, else offline files)."""
    live = source_from_settings()
    return live if live is not None else OfflineSource(metrics_dir())


# The nodes of the last manifest read, under its path, modification time and size: a 100,800-GPU
# manifest takes about a second to read, and changes only when `jobs fleet` writes it again.
_FLEET_NODES: dict[tuple[str, int, int], tuple[GpuNode, ...]] = {}
_FLEET_NODES_LOCK = threading.Lock()


def fleet_nodes(root: Path | str) -> list[GpuNode] | None:
    """The demo fleet's nodes from ``<root>/manifest.json`` (one per hostname, with its pool and
    GPU count), or None when the folder holds no readable manifest. Read again only when the file
    has changed."""
    from core.errors import InputError
    from core.metrics.fleet import load_manifest

    path = Path(root) / "manifest.json"
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _FLEET_NODES_LOCK:
        known = _FLEET_NODES.get(key)
    if known is not None:
        return list(known)
    try:
        manifest = load_manifest(root)
    except InputError:
        return None
    nodes: dict[str, list] = {}
    for g in manifest.gpus:
        entry = nodes.setdefault(g.hostname, [g.cluster, g.pool, g.model, 0])
        entry[3] += 1
    found = tuple(sorted((GpuNode(c, name, pool, model, n) for name, (c, pool, model, n) in nodes.items()),
                         key=lambda n: (n.cluster, n.name)))
    with _FLEET_NODES_LOCK:
        _FLEET_NODES.clear()
        _FLEET_NODES[key] = found
    return list(found)


def inventory_nodes(source=None, org: Org | None = None) -> list[GpuNode]:
    """GPU nodes for the water level: the fleet manifest beside offline samples, else the nodes
    made up from the org's pools (every cluster). Never the live clusters (see :func:`read_inventory`)."""
    return offline_inventory(source, org).nodes


def offline_inventory(source=None, org: Org | None = None, now: datetime | None = None) -> "InventoryReading":
    """The :func:`inventory_nodes` as a reading: origin ``fleet`` (the manifest's folder) or
    ``demo`` (``data/org.yaml``), one entry per cluster."""
    org = org or load_org()
    nodes = fleet_nodes(source.root) if isinstance(source, OfflineSource) else None
    origin, where = (FLEET, str(source.root)) if nodes is not None else (DEMO, "data/org.yaml")
    if nodes is None:
        fake = FakeInventory(org)
        nodes = [n for cluster in org.clusters for n in fake.nodes(cluster)]
    by_cluster: dict[str, list[GpuNode]] = {c: [] for c in sorted(org.clusters)}
    for n in nodes:
        by_cluster.setdefault(n.cluster, []).append(n)
    now = now or utc_now()
    return InventoryReading(origin, tuple(ClusterNodes(c, tuple(ns), now) for c, ns in by_cluster.items()), now, where)


# --------------------------------------------------------------------------- live inventory

LIVE, FLEET, DEMO = "live", "fleet", "demo"

# Last good reading per kubeconfig and cluster (nodes, quotas and pods, when read).
_LAST_GOOD_NODES: dict[str, "ClusterNodes"] = {}
_BACKENDS: dict[tuple[str, int, int], Any] = {}
_BACKENDS_LOCK = threading.Lock()


def inventory_settings() -> dict[str, Any]:
    """``data/inventory.yaml``: ``request_timeout_s`` (> 0), ``retries`` (≥ 0) and ``page_size``
    (≥ 1), checked."""
    raw = load_yaml("inventory.yaml") or {}
    timeout, retries, page = raw.get("request_timeout_s"), raw.get("retries"), raw.get("page_size")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise InputError("error.data_entry_invalid", field="inventory.yaml", entry="request_timeout_s")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InputError("error.data_entry_invalid", field="inventory.yaml", entry="retries")
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise InputError("error.data_entry_invalid", field="inventory.yaml", entry="page_size")
    return {"request_timeout_s": float(timeout), "retries": int(retries), "page_size": int(page)}


@dataclass(frozen=True)
class ClusterNodes:
    """The GPU nodes, GPU quotas and unfinished GPU pods of one cluster and how fresh they are:
    ``stale`` when the last read failed (everything is then the last good reading, or empty when
    the cluster was never read). ``workload`` is False when quotas and pods were not read at all
    (demo mode, or a live cluster never read)."""

    cluster: str
    nodes: tuple[GpuNode, ...]
    read_at: datetime | None
    stale: bool = False
    reason: str = ""
    quotas: tuple[GpuQuota, ...] = ()
    pods: tuple[GpuPod, ...] = ()
    workload: bool = False

    def requested_by_node(self) -> dict[str, int]:
        """GPUs requested by the unfinished pods bound to each node (what the scheduler has given out)."""
        out: dict[str, int] = {}
        for p in self.pods:
            if p.node:
                out[p.node] = out.get(p.node, 0) + p.gpus
        return out

    def banner(self, now: datetime) -> Msg | None:
        """The warning naming the cluster, or None when the list is fresh."""
        if not self.stale:
            return None
        if self.read_at is None:
            return Msg("inventory.never_read", {"cluster": self.cluster, "reason": self.reason})
        return Msg("inventory.stale", {"cluster": self.cluster, "reason": self.reason,
                                       "as_of": self.read_at.strftime("%Y-%m-%d %H:%M UTC"),
                                       "minutes": int((now - self.read_at).total_seconds() // 60)})


@dataclass(frozen=True)
class InventoryReading:
    """Where the water level's nodes came from (``origin``: live | fleet | demo) and, per
    cluster, its nodes and freshness."""

    origin: str
    clusters: tuple[ClusterNodes, ...]
    read_at: datetime
    where: str = ""

    @property
    def nodes(self) -> list[GpuNode]:
        """Every cluster's nodes (the last good ones of a stale cluster)."""
        return [n for c in self.clusters for n in c.nodes]

    @property
    def stale(self) -> bool:
        """True when at least one cluster could not be read."""
        return any(c.stale for c in self.clusters)

    def banners(self) -> list[Msg]:
        """One warning per cluster that could not be read."""
        return [b for c in self.clusters if (b := c.banner(self.read_at)) is not None]

    def origin_message(self) -> Msg:
        """Where the node list came from, for the page's caption."""
        at = self.read_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        if self.origin == LIVE:
            fresh = [c.cluster for c in self.clusters if not c.stale]
            return Msg("inventory.origin.live", {"clusters": ", ".join(fresh) or "-", "answering": len(fresh),
                                                 "total": len(self.clusters), "at": at, "kubeconfig": self.where})
        if self.origin == FLEET:
            return Msg("inventory.origin.fleet", {"folder": self.where})
        return Msg("inventory.origin.demo", {})

    def cluster(self, cluster: str) -> ClusterNodes | None:
        """One cluster's reading, or None when it is not part of this reading."""
        return next((c for c in self.clusters if c.cluster == cluster), None)

    def summary(self) -> list[dict[str, Any]]:
        """Per cluster: nodes, GPUs, ready nodes, GPU products, when read and whether stale."""
        out = []
        for c in self.clusters:
            out.append({"cluster": c.cluster, "nodes": len(c.nodes), "gpus": sum(n.gpus for n in c.nodes),
                        "ready": sum(1 for n in c.nodes if n.ready),
                        "products": ", ".join(sorted({n.gpu_product or "?" for n in c.nodes})),
                        "read_at": c.read_at, "stale": c.stale})
        return out


def _reason(exc: BaseException) -> str:
    """A short reason for the banner: ``HTTP <status>: <reason>`` for an API error, else the
    network error under urllib3's retry wrapper without the connection pool's address prefix."""
    status = getattr(exc, "status", "")
    if status:
        return f"HTTP {status}: {' '.join(str(getattr(exc, 'reason', '') or exc).split())[:200]}"
    chain, todo = [], [exc]
    while todo and len(chain) < 10:  # causes can form a cycle
        e = todo.pop(0)
        if any(e is c for c in chain):
            continue
        chain.append(e)
        todo += [x for x in (e.__cause__, e.__context__, getattr(e, "reason", None)) if isinstance(x, BaseException)]
    wrappers = ("ClusterError", "MaxRetryError", "ProtocolError")
    inner = next((e for e in chain if type(e).__name__ not in wrappers), None)
    text = " ".join(str(inner if inner is not None else getattr(exc, "reason", "") or exc).split())
    return (text.split("): ", 1)[1] if "): " in text else text)[:200]


def live_inventory(cfg: config.Config | None = None, org: Org | None = None) -> Inventory:
    """A :class:`LiveInventory` whose clients come from the kubeconfig context of each cluster of
    ``org`` (through :class:`~core.cluster.backends.LiveBackend`, which translates every failure
    to connect), with the timeout and retries of ``data/inventory.yaml``. The clients are kept
    until the kubeconfig file changes."""
    from kubernetes import client as k8s
    from kubernetes.config import new_client_from_config

    from core.cluster.backends import LiveBackend

    cfg = cfg or config.load()
    org = org or load_org()
    opts = inventory_settings()
    path = cfg.kubeconfig or None
    try:
        stamp = Path(path).stat().st_mtime_ns if path else 0
    except OSError:
        stamp = -1

    def build(cluster_id: str) -> Any:
        conf = k8s.Configuration()
        conf.retries = opts["retries"]
        return new_client_from_config(config_file=path, context=org.clusters[cluster_id].kube_context,
                                      client_configuration=conf, persist_config=False)

    key = (path or "", stamp, opts["retries"])
    with _BACKENDS_LOCK:
        backend = _BACKENDS.get(key)
        if backend is None:
            _BACKENDS.clear()
            backend = _BACKENDS[key] = LiveBackend(org, client_factory=build)
    return LiveInventory(backend.client, timeout_s=opts["request_timeout_s"], page_size=opts["page_size"])


def _read_cluster(inventory: Inventory, cluster: str, now: datetime) -> ClusterNodes:
    """Nodes, then GPU quotas, then GPU pods of one cluster (the first failure ends the read)."""
    from core.cluster.backends import translate_error

    step = f"NodeList/{cluster}"
    try:
        nodes = tuple(inventory.nodes(cluster))
        step = f"ResourceQuotaList/{cluster}"
        quotas = tuple(inventory.quotas(cluster))
        step = f"PodList/{cluster}"
        pods = tuple(inventory.pods(cluster))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a stale cluster, never a crash
        raise translate_error(step, exc) from exc
    return ClusterNodes(cluster, nodes, now, quotas=quotas, pods=pods, workload=True)


def read_live(inventory: Inventory, clusters: list[str], *, key: str = "default", now: datetime | None = None,
              cache: MutableMapping[str, ClusterNodes] | None = None, where: str = "") -> InventoryReading:
    """Read every cluster's nodes, GPU quotas and GPU pods in parallel (one thread per cluster); a
    cluster that fails keeps its last good reading from ``cache`` (key ``<key>|<cluster>``), marked
    stale with the reason — or an empty one when never read."""
    cache = _LAST_GOOD_NODES if cache is None else cache
    now = now or utc_now()
    if not clusters:
        return InventoryReading(LIVE, (), now, where)

    def one(cluster: str) -> ClusterNodes:
        slot = f"{key}|{cluster}"
        try:
            fresh = _read_cluster(inventory, cluster, now)
        except Exception as exc:  # noqa: BLE001 - translated above; shown as a banner
            last = cache.get(slot)
            if last is None:
                return ClusterNodes(cluster, (), None, True, _reason(exc))
            return replace(last, stale=True, reason=_reason(exc))
        cache[slot] = fresh
        return fresh

    with ThreadPoolExecutor(max_workers=min(8, len(clusters)), thread_name_prefix="inventory") as pool:
        return InventoryReading(LIVE, tuple(pool.map(one, clusters)), now, where)


def read_inventory(source: Any = None, *, org: Org | None = None, inventory: Inventory | None = None,
                   now: datetime | None = None,
                   cache: MutableMapping[str, ClusterNodes] | None = None) -> InventoryReading:
    """The water level's nodes and their origin: live clusters when ``COMPUTELOOP_CLUSTER_BACKEND``
    is ``live`` (or ``inventory`` is given), else the fleet manifest beside offline samples, else
    the demo fleet from ``data/org.yaml``. Never raises for a cluster that fails (see :func:`read_live`);
    a malformed ``data/inventory.yaml`` raises :class:`InputError` naming the entry."""
    cfg = config.load()
    org = org or load_org()
    now = now or utc_now()
    if inventory is not None or cfg.cluster_backend == LIVE:
        where = cfg.kubeconfig or "~/.kube/config"
        inventory = inventory or live_inventory(cfg, org)
        return read_live(inventory, sorted(org.clusters), key=where, now=now, cache=cache, where=where)
    return offline_inventory(source, org, now)


# --------------------------------------------------------------------------- quotas and GPU pods


def workload_rows(reading: InventoryReading, allocated_by_cluster: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Per cluster: ``quota_hard`` (GPUs under quota), ``quota_used`` (GPUs used, as the quotas
    count them), ``pods_running`` (GPUs requested by pods in phase Running), ``pods`` (how many) and
    ``source`` (a :class:`Msg` saying where the figures come from).

    Live clusters that were read: every figure from the cluster (stale ones from the last good
    reading). A live cluster never read: no figure. Demo and fleet modes: ``quota_hard`` is what the
    portal's allocations hold on the cluster (``allocated_by_cluster``: the quotas the portal writes,
    one per allocation), used and pods are None — there is no cluster to read them from."""
    allocated_by_cluster = allocated_by_cluster or {}
    out = []
    for c in reading.clusters:
        row: dict[str, Any] = {"cluster": c.cluster, "quota_hard": None, "quota_used": None,
                               "pods_running": None, "pods": None}
        if c.workload:
            running = [p for p in c.pods if p.phase == "Running"]
            row |= {"quota_hard": sum(q.hard for q in c.quotas), "quota_used": sum(q.used for q in c.quotas),
                    "pods_running": sum(p.gpus for p in running), "pods": len(running),
                    "source": Msg("inventory.source.live_stale" if c.stale else "inventory.source.live",
                                  {"quotas": len(c.quotas)})}
        elif reading.origin == LIVE:
            row["source"] = Msg("inventory.source.never_read", {})
        else:
            row |= {"quota_hard": int(allocated_by_cluster.get(c.cluster, 0)), "source": Msg("inventory.source.demo", {})}
        out.append(row)
    return out
