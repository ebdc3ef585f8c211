"""Dual-threshold (双阈值) autoscaling policies of inference services: the policy, its rendering as
a Kubernetes HorizontalPodAutoscaler (``autoscaling/v2``) and as a KEDA ``ScaledObject``, and a
replay of what it would have done over a utilisation series — all pure functions.

**HPA and prometheus-adapter.** The HPA reads two *Pods* metrics that prometheus-adapter must
expose (names from ``data/autoscaling_defaults.yaml``):

* ``dcgm_gpu_utilization`` — per pod, ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (ratio 0–1; fall back to
  ``DCGM_FI_DEV_GPU_UTIL / 100``), e.g. adapter rule
  ``seriesQuery: 'DCGM_FI_PROF_GR_ENGINE_ACTIVE{exported_namespace!="",exported_pod!=""}'``,
  ``resources.overrides: {exported_namespace: {resource: namespace}, exported_pod: {resource: pod}}``,
  ``name.as: dcgm_gpu_utilization``, ``metricsQuery: 'avg(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'``;
* ``dcgm_gpu_memory_used_ratio`` — per pod, ``DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)``.

An HPA has one target per metric and scales proportionally to it; the target is the scale-out
threshold (80 %, memory 90 %), the scale-up stabilisation window is the sustain time (300 s) and
the scale-down window comes from the policy. The lower threshold (30 %) cannot be said in an HPA:
the proportional rule sheds a replica once ``ceil(n·u/0.8) < n``. The KEDA rendering and the
replay state the dual threshold explicitly.

**KEDA.** ``ScaledObject`` (``keda.sh/v1alpha1``) with two ``prometheus`` triggers carrying the
PromQL (namespace escaped by :mod:`core.metrics.promql`). KEDA is a CRD, so kubernetes-validate's
built-in schemas do not cover it; the tests check its structure.

**Replay** (:func:`replay`): load is conserved — the observed per-replica utilisation × observed
replicas is the service's load, spread over the simulated replicas (capped at 100 %); memory
occupancy per replica is taken as observed (model weights dominate it). Scale out by one replica
when utilisation > ``util_high`` or memory > ``mem_high`` has held for ``sustain_s``; scale in by
one when utilisation < ``util_low`` (and memory not high) has held for ``scale_down_window_s``;
never below ``min_replicas`` nor above ``max_replicas``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Sequence

from core.datafiles import load_derived
from core.errors import InputError
from core.metrics import promql

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class ScalingDefaults:
    """``data/autoscaling_defaults.yaml``."""

    util_high: float
    util_low: float
    mem_high: float
    sustain_s: int
    scale_up_window_s: int
    scale_down_window_s: int
    scale_step_pods: int
    scale_step_period_s: int
    replay_days: int
    replay_step_s: int
    min_replicas: int
    max_replicas: int
    gpus_per_replica: int
    keda_polling_interval_s: int
    keda_cooldown_period_s: int
    prometheus_server: str
    adapter_util_metric: str
    adapter_mem_metric: str


def _build(raw: Any) -> ScalingDefaults:
    try:
        return ScalingDefaults(**{f: raw[f] for f in ScalingDefaults.__dataclass_fields__})
    except (KeyError, TypeError) as exc:
        raise InputError("error.data_entry_invalid", field="autoscaling_defaults.yaml", entry=str(exc)) from None


def load_defaults() -> ScalingDefaults:
    """The autoscaling defaults (rebuilt when the file changes)."""
    return load_derived("autoscaling_defaults.yaml", _build)


def _from_data(name: str) -> Any:
    """A dataclass field whose default is ``name`` of ``data/autoscaling_defaults.yaml``, read when
    a policy is built (so the file is the only place the figure is written)."""
    return field(default_factory=lambda: getattr(load_defaults(), name))


@dataclass(frozen=True)
class ScalingPolicy:
    """One deployment's dual-threshold policy; every field left out takes its figure from
    ``data/autoscaling_defaults.yaml``."""

    namespace: str
    deployment: str
    min_replicas: int = _from_data("min_replicas")
    max_replicas: int = _from_data("max_replicas")
    util_high: float = _from_data("util_high")
    util_low: float = _from_data("util_low")
    mem_high: float = _from_data("mem_high")
    sustain_s: int = _from_data("sustain_s")
    scale_up_window_s: int = _from_data("scale_up_window_s")
    scale_down_window_s: int = _from_data("scale_down_window_s")
    gpus_per_replica: int = _from_data("gpus_per_replica")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict form."""
        return asdict(self)


def default_policy(namespace: str, deployment: str) -> ScalingPolicy:
    """A policy with the defaults of ``data/autoscaling_defaults.yaml``."""
    return ScalingPolicy(namespace, deployment)


def validate(policy: ScalingPolicy) -> ScalingPolicy:
    """``policy`` if consistent, else :class:`InputError` naming the field."""
    for name in ("namespace", "deployment"):
        value = getattr(policy, name)
        if not value or len(value) > 63 or not _DNS1123.match(value):
            raise InputError("scaling.bad_name", field=name, value=value)
    for name in ("min_replicas", "max_replicas", "gpus_per_replica", "sustain_s", "scale_up_window_s",
                 "scale_down_window_s"):
        value = getattr(policy, name)
        low = 0 if name.endswith("_s") else 1
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 3600 * 24:
            raise InputError("error.out_of_range", field=name, value=value, low=str(low), high="86400")
    if policy.max_replicas < policy.min_replicas:
        raise InputError("scaling.max_below_min", field="max_replicas", min=policy.min_replicas, max=policy.max_replicas)
    for name in ("util_high", "util_low", "mem_high"):
        value = getattr(policy, name)
        if not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise InputError("error.out_of_range", field=name, value=value, low="0", high="1")
    if policy.util_low >= policy.util_high:
        raise InputError("scaling.low_above_high", field="util_low", low=policy.util_low, high=policy.util_high)
    return policy


def _milli(ratio: float) -> str:
    return f"{int(round(ratio * 1000))}m"


def render_hpa(policy: ScalingPolicy, defaults: ScalingDefaults | None = None) -> dict[str, Any]:
    """The ``autoscaling/v2`` HorizontalPodAutoscaler of ``policy`` (Pods metrics from prometheus-adapter)."""
    d = defaults or load_defaults()
    p = validate(policy)

    def pods(metric: str, target: float) -> dict[str, Any]:
        return {"type": "Pods", "pods": {"metric": {"name": metric},
                                         "target": {"type": "AverageValue", "averageValue": _milli(target)}}}

    step = [{"type": "Pods", "value": d.scale_step_pods, "periodSeconds": d.scale_step_period_s}]
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": p.deployment, "namespace": p.namespace,
                     "labels": {"app.kubernetes.io/managed-by": "computeloop"},
                     "annotations": {"computeloop.io/scale-in-below": str(p.util_low)}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": p.deployment},
            "minReplicas": p.min_replicas, "maxReplicas": p.max_replicas,
            "metrics": [pods(d.adapter_util_metric, p.util_high), pods(d.adapter_mem_metric, p.mem_high)],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": p.scale_up_window_s, "selectPolicy": "Max",
                            "policies": step},
                "scaleDown": {"stabilizationWindowSeconds": p.scale_down_window_s, "selectPolicy": "Min",
                              "policies": step},
            },
        },
    }


def util_query(namespace: str, window_s: int) -> str:
    """Mean GPU utilisation (ratio) of the namespace's GPUs over the window (PROF, else DEV / 100)."""
    rng = f"{window_s}s"
    prof = " or ".join(f"avg_over_time({s}[{rng}])" for s in promql.namespace_selectors(promql.PROF_UTIL, namespace))
    dev = " or ".join(f"avg_over_time({s}[{rng}])" for s in promql.namespace_selectors(promql.DEV_UTIL, namespace))
    return f"avg({prof}) or (avg({dev}) / 100)"


def mem_query(namespace: str, window_s: int) -> str:
    """Mean GPU memory occupancy FB_USED / (FB_USED + FB_FREE) of the namespace's GPUs over the window."""
    rng = f"{window_s}s"
    used = " or ".join(f"sum_over_time({s}[{rng}])" for s in promql.namespace_selectors(promql.FB_USED, namespace))
    free = " or ".join(f"sum_over_time({s}[{rng}])" for s in promql.namespace_selectors(promql.FB_FREE, namespace))
    return f"sum({used}) / (sum({used}) + sum({free}))"


def render_keda(policy: ScalingPolicy, defaults: ScalingDefaults | None = None) -> dict[str, Any]:
    """The KEDA ``ScaledObject`` of ``policy``: two prometheus triggers (utilisation, memory)."""
    d = defaults or load_defaults()
    p = validate(policy)

    def trigger(name: str, query: str, threshold: float) -> dict[str, Any]:
        return {"type": "prometheus", "name": name,
                "metadata": {"serverAddress": d.prometheus_server, "query": query,
                             "threshold": f"{threshold:g}", "activationThreshold": "0"}}

    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": p.deployment, "namespace": p.namespace,
                     "labels": {"app.kubernetes.io/managed-by": "computeloop"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": p.deployment},
            "minReplicaCount": p.min_replicas, "maxReplicaCount": p.max_replicas,
            "pollingInterval": d.keda_polling_interval_s, "cooldownPeriod": d.keda_cooldown_period_s,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleUp": {"stabilizationWindowSeconds": p.scale_up_window_s},
                "scaleDown": {"stabilizationWindowSeconds": p.scale_down_window_s}}}},
            "triggers": [trigger("gpu-utilization", util_query(p.namespace, p.sustain_s), p.util_high),
                         trigger("gpu-memory", mem_query(p.namespace, p.sustain_s), p.mem_high)],
        },
    }


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Point:
    """One step of a utilisation series: mean per-replica utilisation and memory, observed replicas."""

    ts: datetime
    util: float
    mem: float
    replicas: int


def replay(policy: ScalingPolicy, series: Sequence[Point], *, start_replicas: int | None = None) -> dict[str, Any]:
    """What ``policy`` would have done over ``series`` (see the module docstring).

    Returns ``timeline`` (ts, load, util, mem, replicas per step), ``events`` (ts, from, to,
    reason: util_high | mem_high | util_low), ``gpu_hours``, ``fixed_max_gpu_hours`` and
    ``saved_gpu_hours`` (vs running ``max_replicas`` throughout), ``observed_gpu_hours``.
    """
    p = policy
    points = sorted(series, key=lambda x: x.ts)
    replicas = min(max(start_replicas or p.min_replicas, p.min_replicas), p.max_replicas)
    out_since: datetime | None = None
    in_since: datetime | None = None
    timeline, events = [], []
    gpu_h = fixed_h = observed_h = 0.0
    for i, pt in enumerate(points):
        load = pt.util * max(pt.replicas, 0)
        util = min(1.0, load / replicas) if replicas else 0.0
        high_mem = pt.mem > p.mem_high
        out = util > p.util_high or high_mem
        low = util < p.util_low and not high_mem
        out_since = (out_since or pt.ts) if out else None
        in_since = (in_since or pt.ts) if low else None
        if out and replicas < p.max_replicas and (pt.ts - out_since).total_seconds() >= p.sustain_s:
            reason = "util_high" if util > p.util_high else "mem_high"
            events.append({"ts": pt.ts, "from": replicas, "to": replicas + 1, "reason": reason,
                           "util": round(util, 4), "mem": round(pt.mem, 4)})
            replicas += 1
            out_since = pt.ts
            util = min(1.0, load / replicas)
        elif low and replicas > p.min_replicas and (pt.ts - in_since).total_seconds() >= p.scale_down_window_s:
            events.append({"ts": pt.ts, "from": replicas, "to": replicas - 1, "reason": "util_low",
                           "util": round(util, 4), "mem": round(pt.mem, 4)})
            replicas -= 1
            in_since = pt.ts
            util = min(1.0, load / replicas)
        timeline.append({"ts": pt.ts, "load": round(load, 4), "util": round(util, 4), "mem": round(pt.mem, 4),
                         "replicas": replicas, "observed_replicas": pt.replicas})
        if i + 1 < len(points):
            hours = (points[i + 1].ts - pt.ts).total_seconds() / 3600
            gpu_h += replicas * p.gpus_per_replica * hours
            fixed_h += p.max_replicas * p.gpus_per_replica * hours
            observed_h += pt.replicas * p.gpus_per_replica * hours
    return {"timeline": timeline, "events": events, "gpu_hours": round(gpu_h, 4),
            "fixed_max_gpu_hours": round(fixed_h, 4), "saved_gpu_hours": round(fixed_h - gpu_h, 4),
            "observed_gpu_hours": round(observed_h, 4)}


def series_points(frame: Any, gpus_per_replica: int = 1) -> list[Point]:
    """:class:`Point` per timestamp from a :meth:`MetricsSource.series` frame (ts, uuid, util, mem, ...):
    mean utilisation and memory over the namespace's GPUs, replicas = GPUs / ``gpus_per_replica``."""
    import polars as pl

    if frame is None or frame.height == 0:
        return []
    grouped = (frame.group_by("ts").agg(pl.col("util").mean().alias("util"), pl.col("mem").mean().alias("mem"),
                                        pl.col("uuid").n_unique().alias("gpus")).sort("ts"))
    return [Point(r["ts"], float(r["util"] or 0.0), float(r["mem"] or 0.0),
                  max(1, math.ceil(int(r["gpus"]) / max(1, gpus_per_replica))))
            for r in grouped.iter_rows(named=True)]


def with_changes(policy: ScalingPolicy, **changes: Any) -> ScalingPolicy:
    """``policy`` with fields replaced."""
    return replace(policy, **changes)
