"""Which metrics source the portal reads, and which GPU nodes it compares them against.

* :func:`metrics_source` — a :class:`~core.metrics.prometheus.PrometheusSource` when
  ``COMPUTELOOP_PROMETHEUS_URLS`` is set, else an :class:`~core.metrics.offline.OfflineSource`
  over ``COMPUTELOOP_METRICS_DIR`` (default ``var/metrics/samples``).
* :func:`inventory_nodes` — the GPU nodes (with their pool) the water level counts: the demo
  fleet's nodes when the offline folder holds a fleet manifest, else the nodes
  :class:`~core.cluster.inventory.FakeInventory` makes up from ``data/org.yaml``; a live
  inventory is passed in by the caller instead.

Settings are read when called, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.cluster.inventory import FakeInventory, GpuNode
from core.config import PROJECT_ROOT
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
    made up from the org's pools (every cluster)."""
    if isinstance(source, OfflineSource):
        found = fleet_nodes(source.root)
        if found is not None:
            return found
    org = org or load_org()
    fake = FakeInventory(org)
    return [n for cluster in org.clusters for n in fake.nodes(cluster)]
