"""Prometheus alert rules from the dual thresholds (双阈值) and the pools: one ``PrometheusRule``
(``monitoring.coreos.com/v1``) per cluster, or a plain rules file (``groups:``). Pure functions.

Seed chapter 4 runs the dual thresholds through Prometheus and Alertmanager as well as the
autoscaler, and alerts provincial ops when an inference service's replicas have filled its
cluster's GPU nodes. Per autoscaling policy (the policy's own thresholds, so the alert and the
HPA/KEDA act on the same figures):

* ``GpuScaleOutPressure`` — the service's mean GPU utilisation (:func:`core.adjust.autoscaling.util_query`:
  ``DCGM_FI_PROF_GR_ENGINE_ACTIVE``, else ``DCGM_FI_DEV_GPU_UTIL / 100``, both label styles) above
  ``util_high``, held for ``sustain_s`` (``for:``);
* ``GpuScaleInPressure`` — below ``util_low`` while memory is not above ``mem_high``, held for
  ``scale_down_window_s`` (the replay's scale-in rule);
* ``GpuMemoryPressure`` — memory occupancy ``FB_USED / (FB_USED + FB_FREE)``
  (:func:`~core.adjust.autoscaling.mem_query`) above ``mem_high``, held for ``sustain_s``.

Utilisation and memory are averaged over ``smoothing_s`` at each evaluation and the ``for:``
holds them for the policy's window: "持续高于 80% 5 分钟" is "above 80 % at every evaluation for
5 minutes", which is what ``for:`` means (a mean over the window would let one spike carry it).

Per pool, ``GpuPoolSaturated``: GPUs requested by *running* pods on the pool's nodes (the node
label ``pool_label`` of ``data/cluster_settings.yaml``, seen through kube-state-metrics'
``kube_node_labels``) reach ``ratio`` of the nodes' allocatable GPUs, held for ``for_s``. Completed
pods keep reporting requests, so requests are joined with ``kube_pod_status_phase{phase="Running"}``.
kube-state-metrics only exports the node label when allowed
(``--metric-labels-allowlist=nodes=[computeloop.io/pool]``; docs/deploy.md).

Every alert carries routing labels — ``severity``, ``team`` (``prov-ops`` for a province's
cluster, ``hq-ops`` for HQ's), ``province`` (the unit id), ``cluster``, ``pool`` and, for a
service, ``namespace`` and ``deployment`` — all ASCII ids, and ``summary``/``description``
annotations in Chinese (``summary_en``/``description_en`` in English) from the i18n catalogs.
Figures: ``data/alert_rules.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import yaml

from core.adjust import autoscaling
from core.adjust.autoscaling import ScalingPolicy
from core.cluster.manifests import MANAGED_BY, ClusterSettings, load_cluster_settings
from core.datafiles import load_derived
from core.errors import InputError
from core.i18n import translate
from core.metrics import promql

DATA_FILE = "alert_rules.yaml"
API_VERSION = "monitoring.coreos.com/v1"
KIND = "PrometheusRule"
KSM_NODE_LABELS = "kube_node_labels"

SCALE_OUT, SCALE_IN, MEMORY = "GpuScaleOutPressure", "GpuScaleInPressure", "GpuMemoryPressure"
POOL_SATURATED = "GpuPoolSaturated"
_SEVERITY_KEYS = ("scale_out", "scale_in", "memory", "pool_saturated")
# Alertmanager label values stay ASCII ids (no template braces, nothing to escape).
_ASCII_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# A template Prometheus fills in when the alert fires (the evaluated value as a percentage).
VALUE = "{{ $value | humanizePercentage }}"


@dataclass(frozen=True)
class AlertSettings:
    """``data/alert_rules.yaml``."""

    evaluation_interval_s: int
    smoothing_s: int
    saturation_ratio: float
    saturation_for_s: int
    severity: Mapping[str, str]
    teams: Mapping[str, str]
    rule_name: str
    rule_namespace: str
    rule_labels: Mapping[str, str]


def _build(raw: Any) -> AlertSettings:
    try:
        sat, rule = raw["pool_saturation"], raw["prometheus_rule"]
        settings = AlertSettings(
            evaluation_interval_s=int(raw["evaluation_interval_s"]), smoothing_s=int(raw["smoothing_s"]),
            saturation_ratio=float(sat["ratio"]), saturation_for_s=int(sat["for_s"]),
            severity={k: str(raw["severity"][k]) for k in _SEVERITY_KEYS},
            teams={str(k): str(v) for k, v in raw["teams"].items()},
            rule_name=str(rule["name"]), rule_namespace=str(rule["namespace"]),
            rule_labels={str(k): str(v) for k, v in (rule.get("labels") or {}).items()})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError("error.data_entry_invalid", field=DATA_FILE, entry=str(exc)) from None
    if settings.evaluation_interval_s <= 0 or settings.smoothing_s <= 0 or settings.saturation_for_s < 0:
        raise InputError("error.data_entry_invalid", field=DATA_FILE, entry="durations must be positive")
    for value in [*settings.severity.values(), *settings.teams.values()]:
        _ascii(value, "severity/teams")
    return settings


def load_alert_settings() -> AlertSettings:
    """The alert settings (rebuilt when the file changes)."""
    return load_derived(DATA_FILE, _build)


@dataclass(frozen=True)
class PlacedPolicy:
    """An autoscaling policy and the pool whose GPUs its namespace's allocation holds."""

    policy: ScalingPolicy
    pool: str


def _ascii(value: str, where: str, file: str = DATA_FILE) -> str:
    if not _ASCII_ID.match(value or ""):
        raise InputError("error.data_entry_invalid", field=file, entry=f"{where} = {value!r}")
    return value


def duration(seconds: int) -> str:
    """``seconds`` as a Prometheus duration: 300 → ``5m``, 90 → ``1m30s``, 0 → ``0s``."""
    if seconds < 0:
        raise ValueError("a duration is not negative")
    out, rest = "", int(seconds)
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out or "0s"


def _num(value: float) -> str:
    return repr(float(value))


# --------------------------------------------------------------------------- expressions


def scale_out_expr(policy: ScalingPolicy, smoothing_s: int) -> str:
    """True (the utilisation) while the service's mean GPU utilisation is above ``util_high``."""
    return f"({autoscaling.util_query(policy.namespace, smoothing_s)}) > {_num(policy.util_high)}"


def memory_expr(policy: ScalingPolicy, smoothing_s: int) -> str:
    """True (the occupancy) while the service's GPU memory occupancy is above ``mem_high``."""
    return f"({autoscaling.mem_query(policy.namespace, smoothing_s)}) > {_num(policy.mem_high)}"


def scale_in_expr(policy: ScalingPolicy, smoothing_s: int) -> str:
    """True (the utilisation) while utilisation is below ``util_low`` and memory not above ``mem_high``."""
    util = autoscaling.util_query(policy.namespace, smoothing_s)
    return f"(({util}) < {_num(policy.util_low)}) unless ({memory_expr(policy, smoothing_s)})"


def ksm_name(name: str) -> str:
    """A Kubernetes label key or resource name as kube-state-metrics writes it in a label
    (``computeloop.io/pool`` → ``computeloop_io_pool``, ``nvidia.com/gpu`` → ``nvidia_com_gpu``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def pool_saturation_expr(pool_id: str, gpu_resource: str, pool_label: str, ratio: float) -> str:
    """True (requested / allocatable) while running pods on the pool's nodes request at least
    ``ratio`` of the nodes' allocatable ``gpu_resource``."""
    resource = promql.matcher("resource", ksm_name(gpu_resource))
    node_label = promql.matcher("label_" + ksm_name(pool_label), pool_id)
    in_pool = f"max by (node) ({promql.selector(KSM_NODE_LABELS, node_label)})"
    requests = promql.normalise(promql.selector(promql.KSM_REQUESTS, resource))
    phase = promql.normalise(promql.selector(promql.KSM_PHASE, promql.matcher("phase", "Running")))
    running = f"max by (namespace, pod) ({phase} == 1)"
    used = f"sum({requests} * on (namespace, pod) group_left () {running} * on (node) group_left () {in_pool})"
    allocatable = f"sum({promql.selector(promql.KSM_ALLOCATABLE, resource)} * on (node) group_left () {in_pool})"
    return f"({used} / {allocatable}) >= {_num(ratio)}"


# --------------------------------------------------------------------------- rules


def _pct(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def _window(seconds: int, lang: str) -> str:
    if seconds % 60 == 0:
        return translate("alerts.minutes", lang, n=seconds // 60)
    return translate("alerts.seconds", lang, n=seconds)


def _annotations(kind: str, **params: Any) -> dict[str, str]:
    """``summary``/``description`` in Chinese, ``summary_en``/``description_en`` in English."""
    out: dict[str, str] = {}
    for lang, suffix in (("zh-CN", ""), ("en", "_en")):
        values = {k: (_window(v, lang) if k == "window" else v) for k, v in params.items()}
        out[f"summary{suffix}"] = translate(f"alerts.{kind}.summary", lang, **values)
        out[f"description{suffix}"] = translate(f"alerts.{kind}.description", lang, **values, value=VALUE)
    return out


def routing_labels(org: Any, pool_id: str, severity: str, settings: AlertSettings) -> dict[str, str]:
    """``severity``, ``team``, ``province``, ``cluster`` and ``pool`` of an alert about ``pool_id``."""
    pool = org.pool(pool_id)
    cluster = org.clusters[pool.cluster]
    level = org.units[cluster.unit].level
    if level not in settings.teams:
        raise InputError("error.data_entry_invalid", field=DATA_FILE, entry=f"teams.{level}: missing")
    return {"severity": severity, "team": settings.teams[level],
            "province": _ascii(cluster.unit, "units.id", "org.yaml"),
            "cluster": _ascii(cluster.id, "clusters.id", "org.yaml"), "pool": _ascii(pool.id, "pools.id", "org.yaml")}


def policy_rules(placed: PlacedPolicy, org: Any, settings: AlertSettings) -> list[dict[str, Any]]:
    """The three dual-threshold alerts of one policy."""
    p = autoscaling.validate(placed.policy)
    where = {"namespace": p.namespace, "deployment": p.deployment, "pool": placed.pool,
             "cluster": org.pool(placed.pool).cluster}
    smooth = settings.smoothing_s

    def rule(name: str, key: str, expr: str, hold_s: int, threshold: float) -> dict[str, Any]:
        labels = {**routing_labels(org, placed.pool, settings.severity[key], settings),
                  "namespace": p.namespace, "deployment": p.deployment}
        return {"alert": name, "expr": expr, "for": duration(hold_s), "labels": labels,
                "annotations": _annotations(key, **where, threshold=_pct(threshold), window=hold_s)}

    return [rule(SCALE_OUT, "scale_out", scale_out_expr(p, smooth), p.sustain_s, p.util_high),
            rule(MEMORY, "memory", memory_expr(p, smooth), p.sustain_s, p.mem_high),
            rule(SCALE_IN, "scale_in", scale_in_expr(p, smooth), p.scale_down_window_s, p.util_low)]


def pool_rule(pool_id: str, org: Any, settings: AlertSettings, cluster_settings: ClusterSettings) -> dict[str, Any]:
    """The saturation alert of one pool."""
    from core.estimation.catalog import load_catalog

    pool = org.pool(pool_id)
    vendor = load_catalog().get(pool.gpu).vendor
    resource = cluster_settings.gpu_resources_by_vendor.get(vendor) or cluster_settings.gpu_resource
    expr = pool_saturation_expr(pool.id, resource, cluster_settings.pool_label, settings.saturation_ratio)
    # provincial ops add reserve nodes; HQ ops move capacity across the network (seed, 两级协同扩容)
    hq = org.units[org.clusters[pool.cluster].unit].level == "hq"
    return {"alert": POOL_SATURATED, "expr": expr, "for": duration(settings.saturation_for_s),
            "labels": routing_labels(org, pool.id, settings.severity["pool_saturated"], settings),
            "annotations": _annotations("pool_saturated_hq" if hq else "pool_saturated", pool=pool.id,
                                        cluster=pool.cluster, gpus=pool.gpus, gpu=pool.gpu,
                                        threshold=_pct(settings.saturation_ratio), window=settings.saturation_for_s)}


def groups(cluster_id: str, placed: Iterable[PlacedPolicy], *, org: Any = None, settings: AlertSettings | None = None,
           cluster_settings: ClusterSettings | None = None) -> list[dict[str, Any]]:
    """The rule groups of ``cluster_id``: its services' scaling alerts (of the ``placed`` policies
    whose pool is on the cluster) and its pools' saturation alerts; empty groups are left out."""
    from core.org import load_org

    org = org or load_org()
    s = settings or load_alert_settings()
    cs = cluster_settings or load_cluster_settings()
    if cluster_id not in org.clusters:
        raise InputError("error.choice", field="cluster", value=cluster_id, choices=", ".join(org.clusters))
    mine = sorted((x for x in placed if org.pool(x.pool).cluster == cluster_id),
                  key=lambda x: (x.policy.namespace, x.policy.deployment))
    interval = duration(s.evaluation_interval_s)
    scaling = [r for x in mine for r in policy_rules(x, org, s)]
    pools = [pool_rule(p.id, org, s, cs) for p in org.pools.values() if p.cluster == cluster_id]
    out = []
    for kind, rules in (("scaling", scaling), ("pools", pools)):
        if rules:
            out.append({"name": f"computeloop-gpu-{kind}-{cluster_id}", "interval": interval, "rules": rules})
    return out


def rules_file(cluster_ids: Sequence[str], placed: Sequence[PlacedPolicy], **kw: Any) -> dict[str, Any]:
    """A plain Prometheus rules file (``groups:``) with the groups of every cluster in ``cluster_ids``."""
    return {"groups": [g for c in cluster_ids for g in groups(c, placed, **kw)]}


def prometheus_rule(cluster_id: str, placed: Sequence[PlacedPolicy], **kw: Any) -> dict[str, Any]:
    """The ``PrometheusRule`` of ``cluster_id`` (applied on that cluster, next to its Prometheus)."""
    s = kw.get("settings") or load_alert_settings()
    return {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": s.rule_name, "namespace": s.rule_namespace,
                     "labels": {**s.rule_labels, "app.kubernetes.io/managed-by": MANAGED_BY}},
        "spec": {"groups": groups(cluster_id, placed, **{**kw, "settings": s})},
    }


def dump(docs: Sequence[Mapping[str, Any]], header: Sequence[str] = ()) -> str:
    """YAML of ``docs`` (several documents: ``---`` between them), ``header`` lines as comments first."""
    comments = "".join(f"# {line}\n" for line in header)
    return comments + yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False, allow_unicode=True, width=10**6)


__all__: Sequence[str] = (
    "AlertSettings", "PlacedPolicy", "dump", "duration", "groups", "load_alert_settings", "memory_expr",
    "pool_rule", "pool_saturation_expr", "policy_rules", "prometheus_rule", "routing_labels", "rules_file",
    "scale_in_expr", "scale_out_expr",
)
