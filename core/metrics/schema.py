"""The documented DCGM-like sample schema and the interface every metrics source implements.

One raw sample is one GPU at one instant (what dcgm-exporter exposes per scrape, after label
normalisation: ``exported_namespace`` → ``namespace``, ``Hostname`` → ``hostname``):

=================  =========  ==========================================================
column             type       meaning
=================  =========  ==========================================================
ts                 datetime   sample time, UTC (Datetime("us", "UTC"))
cluster            str        cluster id (data/org.yaml)
hostname           str        node name
gpu                str        GPU index on the node as a string ("0".."7"), label ``gpu``
uuid               str        GPU UUID, label ``UUID`` — the stable identity of a GPU
model              str        catalog GPU id (label ``modelName`` mapped through the catalog)
namespace          str        workload namespace, "" when the GPU is idle/unassigned
pod                str        workload pod, "" when idle
util               float      graphics-engine active ratio 0–1 (DCGM_FI_PROF_GR_ENGINE_ACTIVE;
                              DCGM_FI_DEV_GPU_UTIL / 100 when only that exists)
fb_used_mib        float      DCGM_FI_DEV_FB_USED (MiB)
fb_free_mib        float      DCGM_FI_DEV_FB_FREE (MiB)
power_w            float      DCGM_FI_DEV_POWER_USAGE (W)
energy_mj          float      DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (mJ counter since boot)
=================  =========  ==========================================================

Memory occupancy is ``fb_used / (fb_used + fb_free)`` — never MEM_COPY_UTIL (bandwidth).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

import polars as pl

SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "cluster": pl.Utf8,
    "hostname": pl.Utf8,
    "gpu": pl.Utf8,
    "uuid": pl.Utf8,
    "model": pl.Utf8,
    "namespace": pl.Utf8,
    "pod": pl.Utf8,
    "util": pl.Float64,
    "fb_used_mib": pl.Float64,
    "fb_free_mib": pl.Float64,
    "power_w": pl.Float64,
    "energy_mj": pl.Float64,
}


def largest_value(column: str) -> float:
    """The largest value a sample file may hold in the number column ``column`` (data/cli_limits.yaml
    ``sample_values``; infinity when it names none): a larger one is not a measurement."""
    from core.datafiles import load_yaml

    value = ((load_yaml("cli_limits.yaml") or {}).get("sample_values") or {}).get(column)
    return float(value) if value is not None else float("inf")


def measured(column: str) -> pl.Expr:
    """True where the number column ``column`` holds a measurement: finite, not negative, at most its
    largest value (two memory values of 9e307 overflowed to infinity in the rollup's sum)."""
    col = pl.col(column)
    return col.is_finite() & (col >= 0) & (col <= largest_value(column))


# Columns of a daily rollup row (one per GPU × namespace × day) — what monthly boards and reclaim read.
ROLLUP_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Date,
    "cluster": pl.Utf8,
    "hostname": pl.Utf8,
    "uuid": pl.Utf8,
    "model": pl.Utf8,
    "namespace": pl.Utf8,
    "mean_util": pl.Float64,
    "peak_util": pl.Float64,
    "mean_mem": pl.Float64,
    "peak_mem": pl.Float64,
    "allocated_gpu_hours": pl.Float64,
    "used_gpu_hours": pl.Float64,
    "energy_kwh": pl.Float64,
    "samples": pl.Int64,
    "expected_samples": pl.Int64,
    "coverage": pl.Float64,
}


class MetricsSource(Protocol):
    """What the portal asks of a metrics backend (Prometheus-compatible server or offline files).

    Every method aggregates on the source's side and returns one frame whatever the number of
    GPUs or allocations (one query per question, never one per allocation).
    """

    def daily_gpu_stats(self, day: date, *, step_s: int = 60) -> pl.DataFrame:
        """Rows of :data:`ROLLUP_SCHEMA` for ``day`` (UTC), one per GPU × namespace."""

    def latest(self, at: datetime | None = None) -> pl.DataFrame:
        """The last sample per GPU at or before ``at``: columns of :data:`SAMPLE_SCHEMA` minus energy."""

    def series(self, start: datetime, end: datetime, *, step_s: int, namespace: str | None = None) -> pl.DataFrame:
        """Per-GPU samples (ts, uuid, hostname, model, namespace, util, mem, power_w) between ``start`` and
        ``end`` at ``step_s`` resolution, optionally for one namespace (escaped before any query)."""


# Service request samples (QPS and latency of inference services): the documented columns of the
# offline files, one row per service namespace (or pod) and interval — see core/metrics/serving.py.
SERVING_SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "cluster": pl.Utf8,
    "namespace": pl.Utf8,
    "interval_s": pl.Float64,
    "requests": pl.Float64,
    "latency_sum_s": pl.Float64,
    "latency_count": pl.Float64,
}

# A window's request figures per cluster × namespace — what both sources answer for the same question.
SERVING_STATS_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.Utf8,
    "namespace": pl.Utf8,
    "requests": pl.Float64,
    "covered_s": pl.Float64,
    "qps_mean": pl.Float64,
    "qps_peak": pl.Float64,
    "latency_mean_ms": pl.Float64,
    "latency_p99_ms": pl.Float64,
    "coverage": pl.Float64,
}
