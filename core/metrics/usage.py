"""Usage sheets: the training usage sheet (训练算力资源使用情况表) of one training run and the
inference usage sheet (推理算力资源使用情况表) of one month.

Training: a run is a namespace over a time window. Its curves are the minute-level utilisation,
memory occupancy and power of every GPU (one :meth:`MetricsSource.series` call), and bottleneck
hints are computed from those samples with the thresholds of ``data/metrics_thresholds.yaml``
(section ``training_hints``, with the rationale of each figure):

* ``low_util_high_memory`` — the job's mean utilisation is below ``util_below`` while its mean
  memory occupancy is above ``memory_above`` (resident model, starved kernels).
* ``idle_gpus`` — in a job of two or more GPUs, some GPUs average below ``idle_below`` while
  others average at least ``busy_above``.
* ``input_bound`` — at least ``min_gpu_share`` of the GPUs spend ``min_share_each`` of their samples
  high (≥ ``high_above``) and as much near zero (≤ ``low_below``), switching between the two at
  least ``min_switches_per_hour`` times an hour.

Inference: one row per service namespace for a month from ``gpu_daily_rollups`` (summed per
namespace, cluster and model in the database, so the read does not grow with the fleet): mean
and peak utilisation and memory, GPU-hours allocated and used, energy, cost (allocated GPU-hours ×
the catalog price of the GPU model) and coverage. QPS and latency are not in the GPU samples: they
come from the services' own request metrics (:mod:`core.metrics.serving`) rolled up per day in
``serving_daily_rollups`` (:mod:`core.metrics.serving_rollup`, read with the GPU rollups), and for
the days without a rollup from the source passed as ``serving`` (one read per run of such days):
mean and peak QPS, mean and P99 latency (the quantile of the month's summed histogram buckets) and
the QPS coverage. A service that exports none keeps None there, and pages say "not exported" rather
than invent a figure.

Scope: every reader resolves what the actor may read from the database (:func:`usage_scope`, in
the reader's own transaction) — applicants and department heads the namespaces of their
department's allocations (and of the requests they filed), provincial ops those of their
province's requests and pools plus every namespace seen on their province's clusters, HQ ops and
admins everything; executives and the committee read only published material (PermissionDenied).
A namespace outside the scope is :class:`NotFound` (its existence is not revealed) and is left out
of the namespace list and the inference sheet. The scope is a database read: the number of
metrics-source queries stays one per sheet whatever the number of allocations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import utc_now
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError, NotFound
from core.i18n import Msg
from core.identity import Identity, require
from core.metrics.water_level import load_thresholds

# Who reads usage sheets (each within their scope, see usage_scope); executives and the committee
# read only published material.
USAGE_ROLES = frozenset({"applicant", "dept_head", "prov_ops", "hq_ops", "admin"})
MAX_WINDOW = timedelta(days=14)  # Prometheus keeps 15 days of raw samples by default
SERIES_COLUMNS = {"ts": pl.Datetime("us", "UTC"), "uuid": pl.Utf8, "hostname": pl.Utf8, "model": pl.Utf8,
                  "namespace": pl.Utf8, "util": pl.Float64, "mem": pl.Float64, "power_w": pl.Float64}
CURVE_SCHEMA = {"ts": pl.Datetime("us", "UTC"), "gpus": pl.Int64, "util": pl.Float64, "mem": pl.Float64,
                "power_w": pl.Float64}
GPU_SCHEMA = {"uuid": pl.Utf8, "hostname": pl.Utf8, "model": pl.Utf8, "samples": pl.Int64, "mean_util": pl.Float64,
              "peak_util": pl.Float64, "mean_mem": pl.Float64, "mean_power_w": pl.Float64}
INFERENCE_SCHEMA = {
    "namespace": pl.Utf8, "kind": pl.Utf8, "clusters": pl.Utf8, "models": pl.Utf8, "gpus": pl.Int64, "days": pl.Int64,
    "mean_util": pl.Float64, "peak_util": pl.Float64, "mean_mem": pl.Float64, "peak_mem": pl.Float64,
    "allocated_gpu_hours": pl.Float64, "used_gpu_hours": pl.Float64, "energy_kwh": pl.Float64, "cost": pl.Float64,
    "coverage": pl.Float64, "qps_mean": pl.Float64, "qps_peak": pl.Float64, "latency_p99_ms": pl.Float64,
    "latency_mean_ms": pl.Float64, "qps_coverage": pl.Float64, "requests": pl.Float64,
}
SERVING_COLUMNS = {"qps_mean": "qps_mean", "qps_peak": "qps_peak", "latency_p99_ms": "latency_p99_ms",
                   "latency_mean_ms": "latency_mean_ms", "coverage": "qps_coverage", "requests": "requests"}
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


# --------------------------------------------------------------------------- training: pure functions


def _normalise(series: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in SERIES_COLUMNS if c not in series.columns]
    for c in missing:
        series = series.with_columns(pl.lit(None, dtype=SERIES_COLUMNS[c]).alias(c))
    return series.select([pl.col(c).cast(t) for c, t in SERIES_COLUMNS.items()]).sort("uuid", "ts")


def job_curves(series: pl.DataFrame) -> pl.DataFrame:
    """Per instant: GPUs reporting, mean utilisation, mean memory occupancy, total power (W)."""
    if series.height == 0:
        return pl.DataFrame(schema=CURVE_SCHEMA)
    return (series.group_by("ts").agg(pl.col("uuid").n_unique().cast(pl.Int64).alias("gpus"), pl.col("util").mean(),
                                      pl.col("mem").mean(), pl.col("power_w").sum())
            .select(list(CURVE_SCHEMA)).sort("ts"))


def gpu_stats(series: pl.DataFrame) -> pl.DataFrame:
    """Per GPU: samples, mean and peak utilisation, mean memory occupancy, mean power."""
    if series.height == 0:
        return pl.DataFrame(schema=GPU_SCHEMA)
    return (series.group_by("uuid")
            .agg(pl.col("hostname").last(), pl.col("model").last(), pl.len().cast(pl.Int64).alias("samples"),
                 pl.col("util").mean().alias("mean_util"), pl.col("util").max().alias("peak_util"),
                 pl.col("mem").mean().alias("mean_mem"), pl.col("power_w").mean().alias("mean_power_w"))
            .select(list(GPU_SCHEMA)).sort("hostname", "uuid"))


def _switches_per_hour(util: np.ndarray, ts: np.ndarray, high: float, low: float) -> float:
    """High↔low changes per hour, ignoring samples in between."""
    states = np.where(util >= high, 1, np.where(util <= low, -1, 0))
    states = states[states != 0]
    changes = int(np.count_nonzero(np.diff(states))) if states.size > 1 else 0
    if ts.size < 2:
        return 0.0
    span_h = (ts[-1] - ts[0]).astype("timedelta64[s]").astype(float) / 3600.0
    step_h = span_h / (ts.size - 1)
    return changes / max(span_h + step_h, 1e-9)


def bottleneck_hints(series: pl.DataFrame, cfg: dict | None = None) -> list[Msg]:
    """The bottleneck hints that the samples of one run support (see the module docstring);
    ``cfg`` is the ``training_hints`` section (default: ``data/metrics_thresholds.yaml``)."""
    cfg = cfg or load_thresholds()["training_hints"]
    series = series.drop_nulls("util")
    if series.height == 0:
        return []
    per_gpu = gpu_stats(series).filter(pl.col("samples") >= int(cfg["min_samples"]))
    if per_gpu.height == 0:
        return []
    series = series.filter(pl.col("uuid").is_in(per_gpu["uuid"].implode()))
    hints: list[Msg] = []

    c = cfg["low_util_high_memory"]
    util, mem = series["util"].mean(), series["mem"].mean()
    if util is not None and mem is not None and util < c["util_below"] and mem > c["memory_above"]:
        hints.append(Msg("usage.hint.low_util_high_memory", {
            "util": round(util * 100, 1), "memory": round(mem * 100, 1),
            "util_below": round(c["util_below"] * 100), "memory_above": round(c["memory_above"] * 100)}))

    c = cfg["idle_gpus"]
    if per_gpu.height >= 2:
        idle = per_gpu.filter(pl.col("mean_util") < c["idle_below"])
        busy = per_gpu.filter(pl.col("mean_util") >= c["busy_above"])
        if idle.height and busy.height:
            which = ", ".join(f"{h}/{u[:12]}" for h, u in idle.select("hostname", "uuid").iter_rows())
            hints.append(Msg("usage.hint.idle_gpus", {
                "idle": idle.height, "gpus": per_gpu.height, "idle_below": round(c["idle_below"] * 100),
                "busy": busy.height, "busy_above": round(c["busy_above"] * 100), "which": which}))

    c = cfg["input_bound"]
    flagged, rates = 0, []
    for _, part in series.sort("uuid", "ts").group_by("uuid", maintain_order=True):
        u = part["util"].to_numpy()
        high, low = float(np.mean(u >= c["high_above"])), float(np.mean(u <= c["low_below"]))
        if high < c["min_share_each"] or low < c["min_share_each"]:
            continue
        rate = _switches_per_hour(u, part["ts"].dt.replace_time_zone(None).to_numpy(), c["high_above"], c["low_below"])
        if rate >= c["min_switches_per_hour"]:
            flagged += 1
            rates.append(rate)
    if flagged and flagged / per_gpu.height >= c["min_gpu_share"]:
        hints.append(Msg("usage.hint.input_bound", {
            "gpus": flagged, "of": per_gpu.height, "switches": round(float(np.median(rates)), 1),
            "high": round(c["high_above"] * 100), "low": round(c["low_below"] * 100)}))
    return hints


# --------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class UsageScope:
    """What one actor may read of the usage sheets.

    ``kind`` says whose data it is — "all" (HQ ops, admins), "province" (provincial ops: ``unit``
    is their province) or "department" (applicants, department heads: ``unit`` is the org
    department id). Outside "all", the readable namespaces are ``namespaces`` (of the allocations
    in scope) and any namespace of a rollup row on one of ``clusters`` (the province's clusters).
    """

    kind: str
    unit: str = ""
    namespaces: frozenset[str] = frozenset()
    clusters: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        """True when nothing is left out (HQ ops, admins)."""
        return self.kind == "all"

    def clause(self, table: Any) -> Any:
        """The SQL condition on ``table`` (a mapped class with ``namespace`` and ``cluster``
        columns) that keeps its rows in scope; None when nothing is left out."""
        from sqlalchemy import or_

        if self.everything:
            return None
        return or_(table.namespace.in_(sorted(self.namespaces)), table.cluster.in_(sorted(self.clusters)))


def _scope(s: Session, actor: Identity) -> UsageScope:
    """:class:`UsageScope` of ``actor`` read in the caller's transaction (one query; none for
    HQ ops and admins). PermissionDenied for roles that read no usage sheets."""
    from sqlalchemy import or_

    from core.lifecycle import services as svc
    from core.lifecycle.persistence import AllocationRow, RequestRow
    from core.lifecycle.provisioning import pool_in_scope
    from core.org import load_org

    require(actor, USAGE_ROLES, "read usage sheets")
    if actor.role in ("hq_ops", "admin"):
        return UsageScope("all")
    org = load_org()
    query = (select(AllocationRow.namespace)
             .join(RequestRow, RequestRow.id == AllocationRow.request_id)
             .where(AllocationRow.namespace.is_not(None), AllocationRow.namespace != ""))
    if actor.role == "prov_ops":
        depts = sorted(svc._depts_of_unit(actor.province, org)) or [""]
        pools = sorted(p for p in org.pools if pool_in_scope(actor, org, p)) or [""]
        query = query.where(or_(RequestRow.created_by == actor.id, RequestRow.unit == actor.province,
                                RequestRow.department.in_(depts), AllocationRow.pool_id.in_(pools)))
        clusters = frozenset(c.id for c in org.clusters.values() if c.unit == actor.province)
        return UsageScope("province", actor.province, frozenset(s.scalars(query)), clusters)
    dept = svc._dept_of(actor, org)
    query = query.where(or_(RequestRow.created_by == actor.id, RequestRow.department == dept))
    return UsageScope("department", dept, frozenset(s.scalars(query)))


def usage_scope(*, sessions: sessionmaker[Session], actor: Identity) -> UsageScope:
    """What ``actor`` may read of the usage sheets (see the module docstring); PermissionDenied
    for executives, the committee and unknown roles."""
    with unit_of_work(sessions) as s:
        return _scope(s, actor)


def _hidden(namespace: str) -> NotFound:
    return NotFound("usagescope.not_found", namespace=namespace)


def _admits(s: Session, scope: UsageScope, namespace: str) -> bool:
    """True when ``namespace`` is in ``scope``: everything, one of its allocations' namespaces, or
    a namespace with rollup rows on one of its clusters (one indexed read, only in that case)."""
    from core.metrics.persistence import GpuDailyRollupRow as R

    if scope.everything or namespace in scope.namespaces:
        return True
    if not scope.clusters:
        return False
    hit = s.execute(select(R.id).where(R.namespace == namespace, R.cluster.in_(sorted(scope.clusters))).limit(1))
    return hit.first() is not None


# --------------------------------------------------------------------------- training: service


@dataclass(frozen=True)
class TrainingSheet:
    """The training usage sheet of one namespace over one window."""

    namespace: str
    start: datetime
    end: datetime
    step_s: int
    series: pl.DataFrame
    curves: pl.DataFrame
    gpus: pl.DataFrame
    hints: list[Msg] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def check_namespace(namespace: str) -> str:
    """``namespace`` stripped, or :class:`InputError` (field "namespace") unless it is a Kubernetes
    namespace name (lower-case letters, digits and '-', at most 63 characters)."""
    value = (namespace or "").strip()
    if not _NAMESPACE.match(value):
        raise InputError("usage.bad_namespace", field="namespace", value=value[:80])
    return value


def _aware(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def training_sheet(*, sessions: sessionmaker[Session], actor: Identity, source: Any, namespace: str,
                   start: datetime, end: datetime, step_s: int = 60) -> TrainingSheet:
    """The training usage sheet: the actor's scope is checked in the database, then one
    ``source.series(...)`` call for the namespace, then curves, per-GPU figures and bottleneck hints.

    Raises PermissionDenied for executives and the committee; :class:`InputError` for a bad
    namespace (field "namespace") or a window that is empty or longer than 14 days (field "window");
    :class:`NotFound` for a namespace outside the actor's scope (nothing is read from the source);
    whatever the source raises (MetricsUnavailable, InputError naming a file).
    """
    require(actor, USAGE_ROLES, "read usage sheets")
    namespace = check_namespace(namespace)
    start, end = _aware(start), _aware(end)
    if not start < end or end - start > MAX_WINDOW:
        raise InputError("usage.bad_window", field="window", start=start.strftime("%Y-%m-%d %H:%M"),
                         end=end.strftime("%Y-%m-%d %H:%M"), days=MAX_WINDOW.days)
    with unit_of_work(sessions) as s:
        if not _admits(s, _scope(s, actor), namespace):
            raise _hidden(namespace)
    series = _normalise(source.series(start, end, step_s=step_s, namespace=namespace))
    gpus = gpu_stats(series)
    summary = {
        "gpus": gpus.height, "samples": series.height,
        "mean_util": series["util"].mean() if series.height else None,
        "mean_mem": series["mem"].mean() if series.height else None,
        "peak_power_w": job_curves(series)["power_w"].max() if series.height else None,
        "gpu_hours": round(gpus["samples"].sum() * step_s / 3600.0, 3) if gpus.height else 0.0,
    }
    return TrainingSheet(namespace, start, end, step_s, series, job_curves(series), gpus,
                         bottleneck_hints(series), summary)


# --------------------------------------------------------------------------- namespaces and kinds


def namespace_kinds(*, sessions: sessionmaker[Session], source: Any = None) -> dict[str, str]:
    """Namespace → "training" or "inference": from allocations (their request's demand type) and,
    beside offline samples, from the demo fleet manifest (training/burst vs services)."""
    from core.lifecycle.persistence import AllocationRow, RequestRow

    kinds: dict[str, str] = {}
    root = getattr(source, "root", None)
    if root is not None:
        from core.metrics.fleet import load_manifest

        try:
            for ns, kind in load_manifest(root).namespaces().items():
                kinds[ns] = "inference" if kind in ("inference", "idle_service") else "training"
        except InputError:
            pass
    with unit_of_work(sessions) as s:
        rows = s.execute(select(AllocationRow.namespace, RequestRow.demand_type)
                         .join(RequestRow, RequestRow.id == AllocationRow.request_id)
                         .where(AllocationRow.namespace.is_not(None))).all()
    for ns, demand in rows:
        if ns and demand in ("training", "inference"):
            kinds[ns] = demand
    return kinds


def _rollup_rows(scope: UsageScope, first: date, last: date, *columns: Any) -> Any:
    """``SELECT columns FROM gpu_daily_rollups`` of the days ``first``..``last``, namespaced rows in
    ``scope`` only (the grouping is the caller's)."""
    from core.metrics.persistence import GpuDailyRollupRow as R

    query = select(*columns).where(R.day.between(first, last), R.namespace != "")
    clause = scope.clause(R)
    return query if clause is None else query.where(clause)


def namespaces_seen(*, sessions: sessionmaker[Session], actor: Identity, first: date, last: date) -> pl.DataFrame:
    """Namespaces with rollup rows between ``first`` and ``last``: namespace, gpus, first_day,
    last_day, allocated_gpu_hours (most GPU-hours first) — what the training sheet's picker offers;
    only the namespaces in the actor's scope (PermissionDenied for executives and the committee).
    Aggregated in the database: one row per namespace leaves it, whatever the size of the fleet."""
    from core.metrics.persistence import GpuDailyRollupRow as R

    require(actor, USAGE_ROLES, "read usage sheets")
    schema = {"namespace": pl.Utf8, "gpus": pl.Int64, "first_day": pl.Date, "last_day": pl.Date,
              "allocated_gpu_hours": pl.Float64}
    with unit_of_work(sessions) as s:
        query = _rollup_rows(_scope(s, actor), first, last, R.namespace, func.count(distinct(R.uuid)), func.min(R.day),
                             func.max(R.day), func.sum(R.allocated_gpu_hours)).group_by(R.namespace)
        rows = [tuple(r) for r in s.execute(query)]
    return (pl.DataFrame(rows, schema=schema, orient="row")
            .sort(["allocated_gpu_hours", "namespace"], descending=[True, False]))


# --------------------------------------------------------------------------- inference


def month_bounds(month: date) -> tuple[date, date]:
    """First and last day of ``month``'s calendar month."""
    first = month.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt - timedelta(days=1)


def _price(model: str) -> float | None:
    from core.estimation.catalog import load_catalog

    try:
        return float(load_catalog().get(model).price_cny_per_gpu_hour)
    except Exception:  # noqa: BLE001 - an unknown model has no price; the cost is then left empty
        return None


# One row per (namespace, cluster, model) of a month's GPU rollups: what the inference sheet is
# finished from (:func:`_finish_inference`), summed in the database by :func:`inference_sheet` and
# in polars by :func:`inference_rows`; days are counted per namespace apart (a namespace on two
# clusters may run on the same days on both).
PARTIAL_SCHEMA = {
    "namespace": pl.Utf8, "cluster": pl.Utf8, "model": pl.Utf8, "gpus": pl.Int64, "util_weighted": pl.Float64,
    "util_samples": pl.Int64, "mem_weighted": pl.Float64, "mem_samples": pl.Int64, "peak_util": pl.Float64,
    "peak_mem": pl.Float64, "allocated_gpu_hours": pl.Float64, "used_gpu_hours": pl.Float64, "energy_kwh": pl.Float64,
    "coverage_sum": pl.Float64, "rows": pl.Int64,
}
DAYS_SCHEMA = {"namespace": pl.Utf8, "days": pl.Int64}


def _partials(rollups: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:data:`PARTIAL_SCHEMA` and :data:`DAYS_SCHEMA` rows of daily rollup rows (namespaced rows only)."""
    rows = rollups.filter(pl.col("namespace") != "")
    util_n = pl.when(pl.col("mean_util").is_not_null()).then(pl.col("samples")).otherwise(0)
    mem_n = pl.when(pl.col("mean_mem").is_not_null()).then(pl.col("samples")).otherwise(0)
    partials = rows.group_by("namespace", "cluster", "model").agg(
        pl.col("uuid").n_unique().alias("gpus"),
        (pl.col("mean_util").fill_null(0.0) * util_n).sum().alias("util_weighted"), util_n.sum().alias("util_samples"),
        (pl.col("mean_mem").fill_null(0.0) * mem_n).sum().alias("mem_weighted"), mem_n.sum().alias("mem_samples"),
        pl.col("peak_util").max(), pl.col("peak_mem").max(), pl.col("allocated_gpu_hours").sum(),
        pl.col("used_gpu_hours").sum(), pl.col("energy_kwh").sum(), pl.col("coverage").sum().alias("coverage_sum"),
        pl.len().alias("rows"))
    days = rows.group_by("namespace").agg(pl.col("day").n_unique().alias("days"))
    return (partials.select([pl.col(c).cast(t) for c, t in PARTIAL_SCHEMA.items()]),
            days.select([pl.col(c).cast(t) for c, t in DAYS_SCHEMA.items()]))


def _partials_sql(s: Session, scope: UsageScope, first: date, last: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`_partials` of the stored rollups of ``first``..``last`` in ``scope``, summed in the
    database (two grouped queries; a few hundred rows leave it whatever the size of the fleet)."""
    from core.metrics.persistence import GpuDailyRollupRow as R

    util_n = case((R.mean_util.is_not(None), R.samples), else_=0)
    mem_n = case((R.mean_mem.is_not(None), R.samples), else_=0)
    query = _rollup_rows(scope, first, last, R.namespace, R.cluster, R.model, func.count(distinct(R.uuid)),
                         func.sum(func.coalesce(R.mean_util, 0.0) * util_n), func.sum(util_n),
                         func.sum(func.coalesce(R.mean_mem, 0.0) * mem_n), func.sum(mem_n),
                         func.max(R.peak_util), func.max(R.peak_mem), func.sum(R.allocated_gpu_hours),
                         func.sum(R.used_gpu_hours), func.sum(R.energy_kwh), func.sum(R.coverage),
                         func.count()).group_by(R.namespace, R.cluster, R.model)
    partials = pl.DataFrame([tuple(r) for r in s.execute(query)], schema=PARTIAL_SCHEMA, orient="row")
    days = _rollup_rows(scope, first, last, R.namespace, func.count(distinct(R.day))).group_by(R.namespace)
    return partials, pl.DataFrame([tuple(r) for r in s.execute(days)], schema=DAYS_SCHEMA, orient="row")


def _finish_inference(partials: pl.DataFrame, days: pl.DataFrame, kinds: dict[str, str] | None,
                      serving: pl.DataFrame | None) -> pl.DataFrame:
    """The inference usage sheet (:data:`INFERENCE_SCHEMA`) from :func:`_partials` rows: training
    namespaces left out, means weighted by samples, cost at the catalog price (None when a model
    has none), QPS and latency from ``serving``."""
    kinds = kinds or {}
    rows = partials.filter(~pl.col("namespace").is_in([ns for ns, k in kinds.items() if k == "training"]))
    if rows.height == 0:
        return pl.DataFrame(schema=INFERENCE_SCHEMA)
    prices = {m: _price(m) for m in rows["model"].unique().to_list()}
    rows = rows.with_columns(_price=pl.col("model").replace_strict(prices, default=None, return_dtype=pl.Float64))
    out = (rows.group_by("namespace").agg(
        pl.col("cluster").unique().sort().str.join(", ").alias("clusters"),
        pl.col("model").unique().sort().str.join(", ").alias("models"),
        pl.col("gpus").sum(),
        (pl.col("util_weighted").sum() / pl.col("util_samples").sum()).alias("mean_util"), pl.col("peak_util").max(),
        (pl.col("mem_weighted").sum() / pl.col("mem_samples").sum()).alias("mean_mem"), pl.col("peak_mem").max(),
        pl.col("allocated_gpu_hours").sum(), pl.col("used_gpu_hours").sum(), pl.col("energy_kwh").sum(),
        pl.when(pl.col("_price").is_null().any()).then(None)
          .otherwise((pl.col("allocated_gpu_hours") * pl.col("_price")).sum()).alias("cost"),
        (pl.col("coverage_sum").sum() / pl.col("rows").sum()).alias("coverage"),
    ).join(days, on="namespace", how="left").with_columns(
        kind=pl.col("namespace").replace_strict(kinds, default="unknown", return_dtype=pl.Utf8),
    ))
    if serving is not None and serving.height:
        out = out.join(serving.select("namespace", *[pl.col(c).alias(a) for c, a in SERVING_COLUMNS.items()]),
                       on="namespace", how="left")
    else:
        out = out.with_columns(*[pl.lit(None, dtype=pl.Float64).alias(a) for a in SERVING_COLUMNS.values()])
    return out.select([pl.col(c).cast(t) for c, t in INFERENCE_SCHEMA.items()]).sort("namespace")


def inference_rows(rollups: pl.DataFrame, kinds: dict[str, str] | None = None,
                   serving: pl.DataFrame | None = None) -> pl.DataFrame:
    """The inference usage sheet from daily rollup rows (:data:`INFERENCE_SCHEMA`): one row per
    namespace whose kind is "inference" or unknown (training namespaces and idle GPUs are left out).
    ``serving`` (:func:`core.metrics.serving.per_namespace` rows) fills QPS and latency of the
    namespaces it has; the others keep None ("not exported")."""
    return _finish_inference(*_partials(rollups), kinds, serving)


@dataclass(frozen=True)
class InferenceSheet:
    """The inference usage sheet of one month."""

    first: date
    last: date
    rows: pl.DataFrame
    qps_exported: bool = False
    serving_error: Msg | None = None  # why QPS and latency could not be read (params hold "field" for bad input)
    serving_basis: Any = None  # core.metrics.serving_rollup.ServingBasis: days from rollups, days read live


def inference_sheet(*, sessions: sessionmaker[Session], actor: Identity, month: date,
                    kinds: dict[str, str] | None = None, serving: Any = None,
                    now: datetime | None = None) -> InferenceSheet:
    """The inference usage sheet of ``month`` (one read of the GPU and service rollups); ``kinds``
    (see :func:`namespace_kinds`) keeps training namespaces out. QPS and latency come from the
    service rollups of the days that have them and, for the days without (the running day, days
    not rolled up yet), from ``serving`` (a source, see
    :func:`core.metrics.serving.serving_source`; one read per run of such days), cut at ``now`` for
    the running month; ``serving_basis`` says which. When the live read fails (server unreachable,
    malformed file) the sheet keeps its GPU figures and the rollups' and carries the message in
    ``serving_error``. Only the services in the actor's scope are in the sheet (the scope is read
    in the same transaction); PermissionDenied for executives and the committee."""
    from core.metrics.serving import load_settings, per_namespace, stats_from_parts
    from core.metrics.serving_rollup import month_parts, read_serving_days

    require(actor, USAGE_ROLES, "read usage sheets")
    first, last = month_bounds(month)
    with unit_of_work(sessions) as s:
        partials = _partials_sql(s, _scope(s, actor), first, last)
        stored = read_serving_days(s, first, last)
    stats, error, basis = None, None, None
    start = datetime.combine(first, datetime.min.time(), tzinfo=timezone.utc)
    end = min(datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc),
              _aware(now or utc_now()))
    if start < end:
        try:
            quantile = load_settings().quantile
            try:
                parts, basis = month_parts(stored, start, end, live=serving)
            except ComputeLoopError as exc:  # the live days are missing; the rolled-up days still count
                error = Msg(exc.key, dict(exc.params))
                parts, basis = month_parts(stored, start, end)
            stats = per_namespace(stats_from_parts(parts, (end - start).total_seconds(), quantile=quantile))
        except ComputeLoopError as exc:  # data/serving_metrics.yaml itself is wrong
            error = Msg(exc.key, dict(exc.params))
    rows = _finish_inference(*partials, kinds, stats)
    return InferenceSheet(first, last, rows, bool(rows["qps_mean"].is_not_null().any()), error, basis)
