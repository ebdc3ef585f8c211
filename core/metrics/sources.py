"""Which metrics source the portal reads, and which GPU nodes it compares them against.

* :func:`metrics_source` — a :class:`~core.metrics.prometheus.PrometheusSource` when
  ``COMPUTELOOP_PROMETHEUS_URLS`` is set, else an :class:`~core.metrics.offline.OfflineSource`
  over ``COMPUTELOOP_METRICS_DIR`` (default ``var/metrics/samples``).
* :func:`read_inventory` — the GPU nodes the water level counts and where they came from: with
  ``COMPUTELOOP_CLUSTER_BACKEND=live`` the Nodes of every cluster of ``data/org.yaml``, read in
  parallel through the official client (one kubeconfig context per cluster, the file
  ``COMPUTELOOP_KUBECONFIG``); a cluster that is unreachable, slow or answers with an error keeps
  its last good node list, marked stale with its age and the reason (as the Prometheus adapter's
  :func:`~core.metrics.prometheus.with_last_good`). Otherwise :func:`inventory_nodes`.
* :func:`inventory_nodes` — the demo fleet's nodes when the offline folder holds a fleet
  manifest, else the nodes :class:`~core.cluster.inventory.FakeInventory` makes up from
  ``data/org.yaml``.

Settings are read when called, never at import time.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, MutableMapping

from core import config
from core.cluster.inventory import FakeInventory, GpuNode, Inventory, LiveInventory
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


def fleet_nodes(root: Path | str) -> list[GpuNode] | None:
    """The demo fleet's nodes from ``<root>/manifest.json`` (one per hostname, with its pool and
    GPU count), or None when the folder holds no readable manifest."""
    from core.errors import InputError
    from core.metrics.fleet import load_manifest

    try:
        manifest = load_manifest(root)
    except InputError:
        return None
    nodes: dict[str, list] = {}
    for g in manifest.gpus:
        entry = nodes.setdefault(g.hostname, [g.cluster, g.pool, g.model, 0])
        entry[3] += 1
    return sorted((GpuNode(c, name, pool, model, n) for name, (c, pool, model, n) in nodes.items()),
                  key=lambda n: (n.cluster, n.name))


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
    now = now or _now()
    return InventoryReading(origin, tuple(ClusterNodes(c, tuple(ns), now) for c, ns in by_cluster.items()), now, where)


# --------------------------------------------------------------------------- live inventory

LIVE, FLEET, DEMO = "live", "fleet", "demo"

# Last good node list per kubeconfig and cluster: (nodes, when read).
_LAST_GOOD_NODES: dict[str, tuple[tuple[GpuNode, ...], datetime]] = {}
_BACKENDS: dict[tuple[str, int, int], Any] = {}
_BACKENDS_LOCK = threading.Lock()


def inventory_settings() -> dict[str, Any]:
    """``data/inventory.yaml``: ``request_timeout_s`` (> 0) and ``retries`` (≥ 0), checked."""
    raw = load_yaml("inventory.yaml") or {}
    timeout, retries = raw.get("request_timeout_s"), raw.get("retries")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise InputError("error.data_entry_invalid", field="inventory.yaml", entry="request_timeout_s")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InputError("error.data_entry_invalid", field="inventory.yaml", entry="retries")
    return {"request_timeout_s": float(timeout), "retries": int(retries)}


@dataclass(frozen=True)
class ClusterNodes:
    """The GPU nodes of one cluster and how fresh they are: ``stale`` when the last read failed
    (the nodes are then the last good list, or none when the cluster was never read)."""

    cluster: str
    nodes: tuple[GpuNode, ...]
    read_at: datetime | None
    stale: bool = False
    reason: str = ""

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


def _now() -> datetime:
    return datetime.now(timezone.utc)


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
    return LiveInventory(backend.client, timeout_s=opts["request_timeout_s"])


def _read_cluster(inventory: Inventory, cluster: str) -> list[GpuNode]:
    from core.cluster.backends import translate_error

    try:
        return inventory.nodes(cluster)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a stale cluster, never a crash
        raise translate_error(f"NodeList/{cluster}", exc) from exc


def read_live(inventory: Inventory, clusters: list[str], *, key: str = "default", now: datetime | None = None,
              cache: MutableMapping[str, tuple[tuple[GpuNode, ...], datetime]] | None = None,
              where: str = "") -> InventoryReading:
    """Read every cluster's nodes in parallel; a cluster that fails keeps its last good list from
    ``cache`` (key ``<key>|<cluster>``), marked stale with the reason — or none when never read."""
    cache = _LAST_GOOD_NODES if cache is None else cache
    now = now or _now()
    if not clusters:
        return InventoryReading(LIVE, (), now, where)

    def one(cluster: str) -> ClusterNodes:
        slot = f"{key}|{cluster}"
        try:
            nodes = tuple(_read_cluster(inventory, cluster))
        except Exception as exc:  # noqa: BLE001 - translated above; shown as a banner
            last = cache.get(slot)
            if last is None:
                return ClusterNodes(cluster, (), None, True, _reason(exc))
            return ClusterNodes(cluster, last[0], last[1], True, _reason(exc))
        cache[slot] = (nodes, now)
        return ClusterNodes(cluster, nodes, now)

    with ThreadPoolExecutor(max_workers=min(8, len(clusters)), thread_name_prefix="inventory") as pool:
        return InventoryReading(LIVE, tuple(pool.map(one, clusters)), now, where)


def read_inventory(source: Any = None, *, org: Org | None = None, inventory: Inventory | None = None,
                   now: datetime | None = None,
                   cache: MutableMapping[str, tuple[tuple[GpuNode, ...], datetime]] | None = None) -> InventoryReading:
    """The water level's nodes and their origin: live clusters when ``COMPUTELOOP_CLUSTER_BACKEND``
    is ``live`` (or ``inventory`` is given), else the fleet manifest beside offline samples, else
    the demo fleet from ``data/org.yaml``. Never raises for a cluster that fails (see :func:`read_live`);
    a malformed ``data/inventory.yaml`` raises :class:`InputError` naming the entry."""
    cfg = config.load()
    org = org or load_org()
    now = now or _now()
    if inventory is not None or cfg.cluster_backend == LIVE:
        where = cfg.kubeconfig or "~/.kube/config"
        inventory = inventory or live_inventory(cfg, org)
        return read_live(inventory, sorted(org.clusters), key=where, now=now, cache=cache, where=where)
    return offline_inventory(source, org, now)
