"""Kubernetes manifests for one allocation, as plain dicts, in the order they are applied.

Pure functions: :func:`render` turns an :class:`AllocationSpec` and the
:class:`ClusterSettings` of ``data/cluster_settings.yaml`` into Namespace, ResourceQuota,
LimitRange, NetworkPolicy, PersistentVolumeClaims, the batch scheduler's LocalQueue (Kueue;
:mod:`core.cluster.scheduler_queues`), ServiceAccount, Role and RoleBinding;
:func:`kubeconfig` writes the user's kubeconfig. Nothing here talks to a cluster.

Names and label values come from ids, never display names, and are sanitised so any input
(Chinese, long, punctuation) gives a valid RFC 1123 name or label value; when sanitising
loses information a short hash of the original keeps distinct inputs distinct.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import yaml

from core.clock import utc_now
from core.datafiles import load_derived
from core.errors import InputError

MANAGED_BY = "computeloop"
NAME_MAX = 63
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# Verbs of the built-in "edit" ClusterRole, on the namespaced resources users work with.
_EDIT_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_READ_VERBS = ["get", "list", "watch"]
ROLE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["pods", "pods/log", "pods/exec", "pods/attach", "pods/portforward",
                                      "services", "endpoints", "configmaps", "secrets",
                                      "persistentvolumeclaims"], "verbs": _EDIT_VERBS},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "replicasets"], "verbs": _EDIT_VERBS},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _EDIT_VERBS},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _EDIT_VERBS},
    # Users see, but cannot change, what bounds them.
    {"apiGroups": [""], "resources": ["events", "resourcequotas", "limitranges"], "verbs": _READ_VERBS},
]


# --- settings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StorageType:
    """Storage class and access modes used for PVCs on pools of one storage type."""

    storage_class: str
    access_modes: tuple[str, ...]


@dataclass(frozen=True)
class ClusterSettings:
    """``data/cluster_settings.yaml``: labels, isolation, container defaults, storage, servers."""

    label_prefix: str
    pool_label: str
    gpu_resource: str
    gpu_product_label: str
    allow_from_namespaces: tuple[Mapping[str, str], ...]
    default_request: Mapping[str, str]
    default_limit: Mapping[str, str]
    storage: Mapping[str, StorageType]
    token_min_seconds: int
    token_max_seconds: int
    servers: Mapping[str, str]
    ca_data: Mapping[str, str] = field(default_factory=dict)
    gpu_resources_by_vendor: Mapping[str, str] = field(default_factory=dict)

    def label(self, name: str) -> str:
        """A label or annotation key under the project's prefix."""
        return f"{self.label_prefix}/{name}"


def _build_settings(raw: Any) -> ClusterSettings:
    raw = raw or {}

    def bad(entry: str) -> InputError:
        return InputError("error.data_entry_invalid", field="cluster_settings.yaml", entry=entry)

    try:
        storage = {k: StorageType(v["storage_class"], tuple(v["access_modes"])) for k, v in raw["storage"].items()}
        clusters = raw.get("clusters") or {}
        settings = ClusterSettings(
            label_prefix=raw["label_prefix"],
            pool_label=raw["pool_label"],
            gpu_resource=raw["gpu_resource"],
            gpu_product_label=raw["gpu_product_label"],
            gpu_resources_by_vendor=dict(raw.get("gpu_resources_by_vendor") or {}),
            allow_from_namespaces=tuple(dict(s) for s in raw["network"]["allow_from_namespaces"]),
            default_request={k: str(v) for k, v in raw["limit_range"]["default_request"].items()},
            default_limit={k: str(v) for k, v in raw["limit_range"]["default_limit"].items()},
            storage=storage,
            token_min_seconds=int(raw["token"]["min_seconds"]),
            token_max_seconds=int(raw["token"]["max_seconds"]),
            servers={k: v["server"] for k, v in clusters.items()},
            ca_data={k: v["certificate_authority_data"] for k, v in clusters.items()
                     if v.get("certificate_authority_data")},
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise bad(str(exc)) from None
    if not _DNS_SUBDOMAIN.match(settings.label_prefix):
        raise bad(f"label_prefix = {settings.label_prefix}")
    return settings


def load_cluster_settings() -> ClusterSettings:
    """The settings from ``data/cluster_settings.yaml`` (rebuilt when the file changes)."""
    return load_derived("cluster_settings.yaml", _build_settings)


# --- names and labels ---------------------------------------------------------------------------

def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def dns_label(text: str, max_len: int = NAME_MAX) -> str:
    """``text`` as an RFC 1123 label (lowercase alphanumerics and '-', at most ``max_len``).

    Characters outside the alphabet become '-'; if that changed anything beyond case, or the
    result is too long or empty, a hash of the original is appended so distinct inputs stay
    distinct ("项目A" and "项目B" do not both become "a").
    """
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    exact = slug == text.lower() and 0 < len(slug) <= max_len
    if exact:
        return slug
    suffix = _digest(text)
    room = max_len - len(suffix) - 1
    head = slug[:room].strip("-")
    return f"{head}-{suffix}" if head else f"x{suffix}"


def label_value(text: str) -> str:
    """``text`` as a valid label value (≤ 63 chars, alphanumerics, '-', '_', '.'; ends alphanumeric)."""
    if len(text) <= NAME_MAX and _LABEL_VALUE.match(text):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    cleaned = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
    suffix = _digest(text)
    head = re.sub(r"[^A-Za-z0-9]+$", "", cleaned[: NAME_MAX - len(suffix) - 1])
    return f"{head}-{suffix}" if head else f"x{suffix}"


def is_dns_label(text: str) -> bool:
    """True if ``text`` is a valid RFC 1123 label (namespace names, most object names)."""
    return len(text) <= NAME_MAX and bool(_DNS_LABEL.match(text))


def is_label_value(text: str) -> bool:
    """True if ``text`` is a valid label value."""
    return len(text) <= NAME_MAX and bool(_LABEL_VALUE.match(text))


def namespace_name(allocation_id: str, project: str) -> str:
    """``cl-<allocation>-<project>`` as a valid namespace name; the allocation id is kept whole
    when it fits, the project part is what gets shortened."""
    alloc = dns_label(allocation_id, 40)
    room = NAME_MAX - len("cl-") - len(alloc) - 1
    return f"cl-{alloc}-{dns_label(project, room)}"


def _quantity_cpu(cores: float) -> str:
    if float(cores).is_integer():
        return str(int(cores))
    return f"{round(cores * 1000)}m"


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


# --- the allocation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PvcSpec:
    """One volume of an allocation; ``storage_class`` None means: the pool's storage type's class."""

    name: str
    size_gi: int
    storage_class: str | None = None


@dataclass(frozen=True)
class AllocationSpec:
    """What one allocation gets on its cluster. Use :func:`allocation_spec` to fill it from the org."""

    allocation_id: str
    department: str
    project: str
    unit: str
    pool: str
    cluster: str
    gpus: int
    cpu: float
    memory_gi: int
    expires_at: datetime
    user: str
    pvcs: tuple[PvcSpec, ...] = ()
    storage_type: str = ""
    jupyter_url: str | None = None
    gpu_resource: str | None = None  # None: the settings' default (nvidia.com/gpu)

    @property
    def namespace(self) -> str:
        """The namespace name derived from the allocation id and project id."""
        return namespace_name(self.allocation_id, self.project)

    @property
    def service_account(self) -> str:
        """Name of the ServiceAccount whose token goes into the user's kubeconfig."""
        return f"user-{dns_label(self.user, 40)}"


def allocation_spec(org: Any, *, allocation_id: str, project: str, pool: str, gpus: int, cpu: float,
                    memory_gi: int, expires_at: datetime, user: str,
                    pvcs: Sequence[PvcSpec | tuple] = (), jupyter_url: str | None = None) -> AllocationSpec:
    """An :class:`AllocationSpec` with department, unit, cluster and storage type looked up in ``org``.

    Raises :class:`InputError` for an unknown pool or project.
    """
    p = org.pool(pool)
    if project not in org.projects:
        raise InputError("error.choice", field="project", value=project, choices=", ".join(org.projects))
    dept = org.departments[org.projects[project].department]
    from core.estimation.catalog import load_catalog

    vendor = load_catalog().get(p.gpu).vendor
    resource = load_cluster_settings().gpu_resources_by_vendor.get(vendor)
    return AllocationSpec(
        allocation_id=allocation_id, department=dept.id, project=project, unit=dept.unit, pool=p.id,
        cluster=p.cluster, gpus=gpus, cpu=cpu, memory_gi=memory_gi, expires_at=expires_at, user=user,
        pvcs=tuple(v if isinstance(v, PvcSpec) else PvcSpec(*v) for v in pvcs),
        storage_type=p.storage, jupyter_url=jupyter_url, gpu_resource=resource)


# --- manifests -----------------------------------------------------------------------------------

def labels(spec: AllocationSpec, settings: ClusterSettings) -> dict[str, str]:
    """Labels every object of the allocation carries (ids only, sanitised)."""
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        settings.label("allocation"): label_value(spec.allocation_id),
        settings.label("unit"): label_value(spec.unit),
        settings.label("department"): label_value(spec.department),
        settings.label("project"): label_value(spec.project),
        settings.label("pool"): label_value(spec.pool),
        settings.label("expires"): _utc(spec.expires_at).strftime("%Y%m%dT%H%M%SZ"),
    }


def _meta(spec: AllocationSpec, settings: ClusterSettings, name: str, *, namespaced: bool = True,
          annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespaced:
        meta["namespace"] = spec.namespace
    meta["labels"] = labels(spec, settings)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _storage_class(spec: AllocationSpec, pvc: PvcSpec, settings: ClusterSettings) -> tuple[str, list[str]]:
    kind = settings.storage.get(spec.storage_type)
    sc = pvc.storage_class or (kind.storage_class if kind else None)
    if not sc:
        raise InputError("cluster.storage_class_unknown", field="storage_class", pvc=pvc.name,
                         storage=spec.storage_type)
    modes = list(kind.access_modes) if kind else ["ReadWriteOnce"]
    return sc, modes


def render(spec: AllocationSpec, settings: ClusterSettings) -> list[dict[str, Any]]:
    """Every object of the allocation, in apply order (Namespace first, bindings last).

    Quota and LimitRange come before anything that creates pods or claims so they bind from the
    first object on; the RoleBinding comes last so the user gets access to a finished namespace.
    """
    ns = spec.namespace
    for pvc in spec.pvcs:
        if not is_dns_label(pvc.name):
            raise InputError("cluster.bad_name", field="pvc", name=pvc.name)
    expires_iso = _utc(spec.expires_at).isoformat().replace("+00:00", "Z")
    ns_annotations = {settings.label("allocation-id"): spec.allocation_id, settings.label("user"): spec.user,
                      settings.label("expires-at"): expires_iso}
    if spec.jupyter_url:
        ns_annotations[settings.label("jupyter-url")] = spec.jupyter_url
    storage_total = sum(p.size_gi for p in spec.pvcs)
    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": _meta(spec, settings, ns, namespaced=False, annotations=ns_annotations)},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta(spec, settings, "allocation"),
         "spec": {"hard": {
             f"requests.{spec.gpu_resource or settings.gpu_resource}": str(spec.gpus),
             "requests.cpu": _quantity_cpu(spec.cpu),
             "requests.memory": f"{spec.memory_gi}Gi",
             "persistentvolumeclaims": str(len(spec.pvcs)),
             "requests.storage": f"{storage_total}Gi",
         }}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": _meta(spec, settings, "container-defaults"),
         "spec": {"limits": [{"type": "Container",
                              "default": dict(settings.default_limit),
                              "defaultRequest": dict(settings.default_request)}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(spec, settings, "isolate"),
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {}}] + [
                      {"namespaceSelector": {"matchLabels": dict(sel)}} for sel in settings.allow_from_namespaces]}]}},
    ]
    for pvc in spec.pvcs:
        sc, modes = _storage_class(spec, pvc, settings)
        out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _meta(spec, settings, pvc.name),
                    "spec": {"accessModes": modes, "storageClassName": sc,
                             "resources": {"requests": {"storage": f"{pvc.size_gi}Gi"}}}})
    # the batch scheduler's queue of the namespace (Kueue LocalQueue), before users get access
    from core.cluster.scheduler_queues import namespace_objects  # imported here: it imports this module

    out += namespace_objects(spec, settings)
    sa = spec.service_account
    out += [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(spec, settings, sa)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(spec, settings, "workspace-edit"),
         "rules": [dict(r) for r in ROLE_RULES]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _meta(spec, settings, "workspace-edit"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "workspace-edit"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": spec.user},
                      {"kind": "ServiceAccount", "name": sa, "namespace": ns}]},
    ]
    return out


def step_name(manifest: Mapping[str, Any]) -> str:
    """The step that applies ``manifest``: ``Kind/name``."""
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


# libyaml's emitter where PyYAML was built with it (the wheels are): the same YAML as the pure-Python
# SafeDumper, several times faster — every grant renders its manifests.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(manifests: Sequence[Mapping[str, Any]]) -> str:
    """A multi-document YAML string (``kubectl apply -f`` / GitOps ready), in apply order."""
    return yaml.dump_all([dict(m) for m in manifests], Dumper=_DUMPER, sort_keys=False, allow_unicode=True)


TOKEN_PLACEHOLDER = "<token: kubectl -n {namespace} create token {service_account} --duration={seconds}s>"


def token_seconds(spec: AllocationSpec, settings: ClusterSettings, now: datetime) -> int:
    """Token lifetime: until the allocation expires, within the settings' bounds."""
    left = int((_utc(spec.expires_at) - _utc(now)).total_seconds())
    return max(settings.token_min_seconds, min(settings.token_max_seconds, left))


def kubeconfig(spec: AllocationSpec, settings: ClusterSettings, *, server: str | None = None,
               token: str | None = None, now: datetime | None = None) -> str:
    """The user's kubeconfig (YAML text) for the allocation's namespace.

    ``server`` defaults to the cluster's address in the settings; without ``token`` (plan mode)
    the token is a placeholder saying how to mint one.
    """
    server = server or settings.servers.get(spec.cluster) or f"https://{spec.cluster}.invalid:6443"
    if token is None:
        token = TOKEN_PLACEHOLDER.format(namespace=spec.namespace, service_account=spec.service_account,
                                         seconds=token_seconds(spec, settings, now or utc_now()))
    cluster: dict[str, Any] = {"server": server}
    if spec.cluster in settings.ca_data:
        cluster["certificate-authority-data"] = settings.ca_data[spec.cluster]
    name = f"{spec.cluster}-{spec.namespace}"
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": spec.cluster, "cluster": cluster}],
        "users": [{"name": spec.service_account, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": spec.cluster, "user": spec.service_account,
                                                "namespace": spec.namespace}}],
        "current-context": name,
    }
    return yaml.dump(doc, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)
