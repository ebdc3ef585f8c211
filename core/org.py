"""The organisation (``data/org.yaml``): units (HQ, provinces), departments, projects, clusters
and GPU pools. Every reference is checked when loading, so a typo names its entry."""

from __future__ import annotations

from dataclasses import dataclass

from core.datafiles import load_derived
from core.errors import InputError
from core.estimation.catalog import load_catalog

POOL_KINDS = (
    "training_language", "training_multimodal", "training_science", "training_finetune",
    "inference", "strategic_reserve", "dynamic_reserve", "provincial",
)
RESERVE_KINDS = frozenset({"strategic_reserve", "dynamic_reserve"})


@dataclass(frozen=True)
class Unit:
    """HQ or a provincial company."""

    id: str
    name_zh: str
    name_en: str
    level: str  # hq | province


@dataclass(frozen=True)
class Department:
    """A department of a unit."""

    id: str
    unit: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Project:
    """A project of a department; ``stage`` is exploration, core or production."""

    id: str
    department: str
    name_zh: str
    name_en: str
    stage: str


@dataclass(frozen=True)
class Cluster:
    """A Kubernetes cluster (one kubeconfig context) and its network domain and driver."""

    id: str
    unit: str
    kube_context: str
    network_domain: str
    driver: str
    driver_cuda_max: str


@dataclass(frozen=True)
class Pool:
    """A GPU pool on one cluster: one GPU model, a size, a storage type."""

    id: str
    kind: str
    cluster: str
    gpu: str
    gpus: int
    storage: str
    gpus_per_node: int = 8

    @property
    def nodes(self) -> int:
        """Number of nodes (the last may be partly filled)."""
        return -(-self.gpus // self.gpus_per_node)

    @property
    def is_reserve(self) -> bool:
        """True for the strategic and dynamic reserves."""
        return self.kind in RESERVE_KINDS


@dataclass(frozen=True)
class Org:
    """Everything of ``data/org.yaml`` with lookups by id."""

    units: dict[str, Unit]
    departments: dict[str, Department]
    projects: dict[str, Project]
    clusters: dict[str, Cluster]
    pools: dict[str, Pool]

    def pool(self, pool_id: str) -> Pool:
        """The pool ``pool_id``; :class:`InputError` (field "pool") if unknown."""
        if pool_id not in self.pools:
            raise InputError("error.choice", field="pool", value=pool_id, choices=", ".join(self.pools))
        return self.pools[pool_id]

    def department_id(self, name_or_id: str) -> str:
        """The department id for an id or a zh/en display name (personas carry the name)."""
        for d in self.departments.values():
            if name_or_id in (d.id, d.name_zh, d.name_en):
                return d.id
        return name_or_id

    def cluster_of(self, pool_id: str) -> Cluster:
        """The cluster a pool lives on."""
        return self.clusters[self.pool(pool_id).cluster]


def _build(raw: dict | None) -> Org:
    raw = raw or {}

    def table(name: str, cls: type) -> dict:
        out = {}
        for i, entry in enumerate(raw.get(name) or []):
            try:
                item = cls(**entry)
            except TypeError as exc:
                raise InputError("error.data_entry_invalid", field="org.yaml",
                                 entry=f"{name}[{i}] {entry.get('id', '')}") from exc
            out[item.id] = item
        return out

    org = Org(table("units", Unit), table("departments", Department), table("projects", Project),
              table("clusters", Cluster), table("pools", Pool))
    catalog = load_catalog()
    refs = [(f"departments.{d.id}.unit", d.unit, org.units) for d in org.departments.values()]
    refs += [(f"projects.{p.id}.department", p.department, org.departments) for p in org.projects.values()]
    refs += [(f"clusters.{c.id}.unit", c.unit, org.units) for c in org.clusters.values()]
    refs += [(f"pools.{p.id}.cluster", p.cluster, org.clusters) for p in org.pools.values()]
    for where, value, table_ in refs:
        if value not in table_:
            raise InputError("error.data_entry_invalid", field="org.yaml", entry=f"{where} = {value}")
    for p in org.pools.values():
        if p.kind not in POOL_KINDS:
            raise InputError("error.data_entry_invalid", field="org.yaml", entry=f"pools.{p.id}.kind = {p.kind}")
        catalog.get(p.gpu)
    return org


def load_org() -> Org:
    """The organisation from ``data/org.yaml`` (rebuilt when the file changes)."""
    return load_derived("org.yaml", _build)
