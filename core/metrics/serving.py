"""Service request samples: QPS and latency of inference services, from Prometheus or offline files.

The inference usage sheet (推理算力资源使用情况表) shows, per service namespace and month, the mean and
peak QPS and the mean and P99 end-to-end latency *when the service exports them*. Which metrics
count (vLLM's ``vllm:request_success_total`` and ``vllm:e2e_request_latency_seconds``, a generic
``http_requests_total`` / ``http_request_duration_seconds``) and which label carries the namespace
are in ``data/serving_metrics.yaml`` with their sources.

Offline layout (what :func:`write_demo_serving` writes; any exporter or converter can produce it)::

    <root>/day=YYYY-MM-DD/<name>.parquet | <name>.csv     rows whose ts falls on that UTC day

with ``<root>`` = ``<metrics dir>/serving`` by default. One row is one service (namespace, or one
pod of it) over one interval that **ends** at ``ts``:

==============  ========  ===============================================================
column          type      meaning
==============  ========  ===============================================================
ts              datetime  end of the interval, UTC (CSV: ISO 8601; naive ⇒ UTC)
cluster         str       cluster id (data/org.yaml)
namespace       str       the service's namespace
interval_s      float     length of the interval in seconds (> 0)
requests        float     requests completed in the interval (or give ``qps``: requests /
                          interval_s)
latency_sum_s   float     sum of their end-to-end latencies in seconds (or give
                          ``latency_mean_ms``); empty when not measured
latency_count   float     requests the latency covers (default: ``requests``)
le_<bound>      float     optional histogram: requests of the interval with latency ≤ bound
                          seconds (cumulative, e.g. ``le_0.5``, ``le_2.5``, ``le_+Inf``); when
                          any is given ``le_+Inf`` is required
==============  ========  ===============================================================

A counter scraped by Prometheus converts to these rows as consecutive differences
(``requests`` = c(t) − c(t − interval)), which is how the parity test builds them.

The question both sources answer (:data:`~core.metrics.schema.SERVING_STATS_SCHEMA`, per cluster ×
namespace, window ``[start, end)``):

* ``requests`` — completed requests in the window;
* ``covered_s`` — seconds with data (offline: the intervals of the distinct ``ts``; Prometheus: the
  ``step`` points at which the namespace has a rate × step); ``coverage`` = covered_s / window;
* ``qps_mean`` = requests / covered_s (the mean over the time the service reported);
* ``qps_peak`` — the highest namespace rate over one interval (offline: Σ requests / interval at
  one ``ts``; Prometheus: ``max_over_time(sum by (namespace) (irate(...))[window:step])``);
* ``latency_mean_ms`` = Σ latency_sum / Σ latency_count;
* ``latency_p99_ms`` — :func:`histogram_quantile` of the summed buckets (the same algorithm as
  PromQL's ``histogram_quantile``: linear interpolation inside the bucket, the highest finite
  bound when the rank falls in ``+Inf``).

On the same data (a counter per series sampled every ``step``, no reset) both give the same numbers
(``tests/integration/test_prometheus_source.py``). They differ where the data does: a counter reset
inside the window (Prometheus' ``max − min`` does not correct it) and a single missed scrape
(Prometheus' ``irate`` over two steps bridges it; offline the next row's interval does).

Daily rollups (:mod:`core.metrics.serving_rollup`) store the *additive parts* of a day's figures
(:data:`SERVING_PARTS_SCHEMA` plus the summed ``le_*`` buckets: :func:`parts_from_samples`,
:func:`prometheus_parts` — one query per server, :func:`parts_query`); :func:`stats_from_parts`
turns the parts of any set of days into the figures of their window, the P99 from the summed
buckets, so a month from rollups equals the month read live on the same data.

A malformed file raises :class:`InputError` naming the file (and the line, for a CSV value).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import math
import os
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl

from core.datafiles import load_yaml
from core.errors import InputError
from core.metrics.promql import ServingExporter
from core.metrics.schema import SERVING_SAMPLE_SCHEMA, SERVING_STATS_SCHEMA

SETTINGS_FILE = "serving_metrics.yaml"
BUCKET_PREFIX = "le_"
SERVING_SUBDIR = "serving"
_NUMBERS = ("interval_s", "requests", "latency_sum_s", "latency_count")
_POLARS_ERRORS = (pl.exceptions.PolarsError, OSError)
# The additive parts of a window's figures per cluster × namespace (plus one ``le_<bound>`` column
# per latency bucket: cumulative counts): what a daily rollup stores. Pieces of a window add up —
# requests, covered seconds, latency sum and count, bucket counts — and the peak is their maximum.
SERVING_PARTS_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.Utf8, "namespace": pl.Utf8, "requests": pl.Float64, "covered_s": pl.Float64,
    "qps_peak": pl.Float64, "latency_sum_s": pl.Float64, "latency_count": pl.Float64,
}


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ServingSettings:
    """``data/serving_metrics.yaml``."""

    exporters: tuple[ServingExporter, ...]
    namespace_labels: tuple[str, ...]
    peak_step_s: int
    quantile: float
    demo: dict
    query_piece_s: int = 86400


def load_settings() -> ServingSettings:
    """The serving metrics settings; :class:`InputError` naming the entry that is wrong."""
    raw = load_yaml(SETTINGS_FILE) or {}

    def bad(entry: str) -> InputError:
        return InputError("error.data_entry_invalid", field=SETTINGS_FILE, entry=entry)

    try:
        exporters = tuple(ServingExporter(str(e["id"]), str(e["requests"]), str(e["latency"]),
                                          tuple((str(k), str(v)) for k, v in (e.get("label_filters") or {}).items()))
                          for e in raw["exporters"])
        labels = tuple(str(x) for x in raw["namespace_labels"])
        step, q = int(raw["peak_step_s"]), float(raw["latency_quantile"])
        piece = int(raw["query_piece_s"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise bad("exporters / namespace_labels / peak_step_s / latency_quantile / query_piece_s") from None
    if not exporters:
        raise bad("exporters")
    if not labels or labels[-1] != "namespace":
        raise bad("namespace_labels")
    if step <= 0:
        raise bad("peak_step_s")
    if not 0 < q < 1:
        raise bad("latency_quantile")
    if piece < step or piece % step:
        raise bad("query_piece_s")
    return ServingSettings(exporters, labels, step, q, dict(raw.get("demo") or {}), piece)


# --------------------------------------------------------------------------- quantile


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """PromQL's ``histogram_quantile`` on cumulative bucket counts (``bounds`` ascending, the last
    ``inf``): None where PromQL answers NaN (fewer than two buckets, no ``+Inf`` bucket, no
    observation). Non-monotonic counts are made monotonic first, as Prometheus does."""
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if len(bounds) < 2 or not math.isinf(bounds[-1]):
        return None
    monotonic, top = [], 0.0
    for c in counts:
        top = max(top, float(c))
        monotonic.append(top)
    observations = monotonic[-1]
    if observations <= 0:
        return None
    rank = q * observations
    b = next(i for i, c in enumerate(monotonic) if c >= rank)
    if b == len(bounds) - 1:
        return float(bounds[-2])
    if b == 0 and bounds[0] <= 0:
        return float(bounds[0])
    start, end, count = 0.0, float(bounds[b]), monotonic[b]
    if b > 0:
        start = float(bounds[b - 1])
        count -= monotonic[b - 1]
        rank -= monotonic[b - 1]
    return start + (end - start) * (rank / count)


def bucket_bound(column: str) -> float | None:
    """The upper bound of a ``le_<bound>`` column (``inf`` for ``le_+Inf``), None for other columns."""
    if not column.startswith(BUCKET_PREFIX):
        return None
    text = column[len(BUCKET_PREFIX):]
    try:
        return math.inf if text in ("+Inf", "Inf", "inf", "+inf") else float(text)
    except ValueError:
        return None


def bucket_name(bound: float) -> str:
    """The column name of the bucket with upper bound ``bound``."""
    return BUCKET_PREFIX + ("+Inf" if math.isinf(bound) else repr(float(bound)))


def bucket_columns(columns: Sequence[str]) -> list[str]:
    found = [(bucket_bound(c), c) for c in columns if c.startswith(BUCKET_PREFIX)]
    return [c for b, c in sorted(found, key=lambda x: x[0]) if b is not None]


# --------------------------------------------------------------------------- reading files


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _check_columns(path: Path, columns: Sequence[str], where: str) -> None:
    missing = [c for c in ("ts", "cluster", "namespace", "interval_s") if c not in columns]
    if "requests" not in columns and "qps" not in columns:
        missing.append("requests")
    if missing:
        raise InputError("serving.missing_columns", field=where, columns=", ".join(missing))
    bad = [c for c in columns if c.startswith(BUCKET_PREFIX) and bucket_bound(c) is None]
    if bad:
        raise InputError("serving.bad_bucket", field=where, column=bad[0])
    if bucket_columns(columns) and not math.isinf(bucket_bound(bucket_columns(columns)[-1]) or 0):
        raise InputError("serving.no_inf_bucket", field=where)


def _derive(frame: pl.DataFrame) -> pl.DataFrame:
    """Fill ``requests`` from ``qps``, ``latency_count`` from ``requests`` and ``latency_sum_s``
    from ``latency_mean_ms`` when only those were given."""
    cols = frame.columns
    if "requests" not in cols:
        frame = frame.with_columns(requests=pl.col("qps") * pl.col("interval_s"))
    if "latency_count" not in cols:
        frame = frame.with_columns(latency_count=pl.when(
            (pl.col("latency_sum_s") if "latency_sum_s" in cols else pl.col("latency_mean_ms") if "latency_mean_ms" in cols
             else pl.lit(None)).is_not_null()).then(pl.col("requests")))
    if "latency_sum_s" not in cols:
        mean = pl.col("latency_mean_ms") if "latency_mean_ms" in cols else pl.lit(None, dtype=pl.Float64)
        frame = frame.with_columns(latency_sum_s=mean / 1000.0 * pl.col("latency_count"))
    buckets = bucket_columns(frame.columns)
    return frame.select([pl.col(c).cast(t) for c, t in SERVING_SAMPLE_SCHEMA.items()]
                        + [pl.col(c).cast(pl.Float64) for c in buckets])


def _check_values(frame: pl.DataFrame, where: Any) -> None:
    """Required numbers present, counts ≥ 0, intervals > 0; ``where(row)`` names the place."""
    checks = [("interval_s", pl.col("interval_s").is_null() | (pl.col("interval_s") <= 0)),
              ("requests", pl.col("requests").is_null() | (pl.col("requests") < 0)),
              ("namespace", pl.col("namespace").is_null() | (pl.col("namespace") == ""))]
    checks += [(c, pl.col(c) < 0) for c in ("latency_sum_s", "latency_count", *bucket_columns(frame.columns))]
    indexed = frame.with_row_index("__i")
    for column, bad in checks:
        hit = indexed.filter(bad)
        if hit.height:
            i = int(hit["__i"][0])
            raise InputError("serving.bad_value", field=where(i), column=column, value=str(frame[column][i]))


def read_file(path: Path | str) -> pl.DataFrame:
    """One service request sample file (Parquet or CSV) in :data:`SERVING_SAMPLE_SCHEMA` plus its
    ``le_*`` bucket columns (ascending); :class:`InputError` naming the file (and line) otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except _POLARS_ERRORS as exc:
            raise InputError("metrics.file_unreadable", field=str(path), reason=_reason(exc)) from None
        _check_columns(path, frame.columns, str(path))
        if not isinstance(frame.schema["ts"], pl.Datetime):
            raise InputError("metrics.bad_column_type", field=str(path), column="ts", dtype=str(frame.schema["ts"]),
                             expected="Datetime")
        if frame.schema["ts"].time_zone is None:
            frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
        for c in frame.columns:
            if c in ("ts", "cluster", "namespace"):
                continue
            if (c in _NUMBERS or c in ("qps", "latency_mean_ms") or c.startswith(BUCKET_PREFIX)) \
                    and not (frame.schema[c].is_numeric() or frame.schema[c] == pl.Null):
                raise InputError("metrics.bad_column_type", field=str(path), column=c, dtype=str(frame.schema[c]),
                                 expected="Float64")
        try:
            frame = _derive(frame)
        except _POLARS_ERRORS as exc:
            raise InputError("metrics.file_unreadable", field=str(path), reason=_reason(exc)) from None
        _check_values(frame, lambda i: f"{path} (row {i + 1})")
        return frame
    if suffix == ".csv":
        return _read_csv(path)
    raise InputError("metrics.file_kind", field=str(path))


def _read_csv(path: Path) -> pl.DataFrame:
    parsed = read_csv_text(path, check_columns=lambda columns, where: _check_columns(path, columns, where),
                           is_number=lambda c: c in _NUMBERS or c in ("qps", "latency_mean_ms") or c.startswith(BUCKET_PREFIX))
    frame = _derive(parsed)
    _check_values(frame, lambda i: f"{path}:{i + 2}")
    return frame


def read_csv_text(path: Path, *, check_columns: Any, is_number: Any) -> pl.DataFrame:
    """A sample CSV read as text, then each column parsed, so a bad value is named by its line:
    ``ts`` (UTC), ``cluster``, ``namespace`` and the columns ``is_number`` picks (Float64), after
    ``check_columns(columns, "<path>:1")``. Shared by the other offline sample kinds."""
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except _POLARS_ERRORS as exc:
        raise InputError("metrics.file_unreadable", field=str(path), reason=_reason(exc)) from None
    check_columns(raw.columns, f"{path}:1")
    numbers = [c for c in raw.columns if is_number(c)]
    parsed = raw.select(
        pl.col("cluster").fill_null(""), pl.col("namespace").fill_null(""),
        pl.col("ts").str.strip_chars().str.to_datetime(time_zone="UTC", time_unit="us", strict=False).alias("ts"),
        *[pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(c) for c in numbers],
    )
    for name in ("ts", *numbers):
        given = raw[name].str.strip_chars().fill_null("") != ""
        bad = parsed.with_row_index("__i").filter((given & parsed[name].is_null()) | (name == "ts") & parsed[name].is_null())
        if bad.height:
            i = int(bad["__i"][0])
            raise InputError("metrics.bad_value", field=f"{path}:{i + 2}", column=name, value=str(raw[name][i] or ""))
    return parsed


# --------------------------------------------------------------------------- the question


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SERVING_STATS_SCHEMA)


def _finish(frame: pl.DataFrame, window_s: float) -> pl.DataFrame:
    """Mean QPS, mean latency and coverage from requests, covered seconds and latency sums."""
    return frame.with_columns(
        qps_mean=pl.when(pl.col("covered_s") > 0).then(pl.col("requests") / pl.col("covered_s")),
        latency_mean_ms=pl.when(pl.col("latency_count") > 0).then(pl.col("latency_sum_s") / pl.col("latency_count") * 1000.0),
        coverage=pl.min_horizontal(pl.col("covered_s") / window_s, pl.lit(1.0)),
    ).select([pl.col(c).cast(t) for c, t in SERVING_STATS_SCHEMA.items()]).sort("cluster", "namespace")


def _sum_if_any(column: str) -> pl.Expr:
    """The column's sum, or None when every value is empty (not measured is not zero)."""
    return pl.when(pl.col(column).is_not_null().any()).then(pl.col(column).sum()).alias(column)


def _empty_parts(buckets: Sequence[str] = ()) -> pl.DataFrame:
    return pl.DataFrame(schema=SERVING_PARTS_SCHEMA | {c: pl.Float64 for c in buckets})


def parts_from_samples(samples: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """The additive parts of the window ``[start, end)``'s figures per cluster × namespace from
    offline rows (:data:`SERVING_PARTS_SCHEMA` plus the summed ``le_*`` bucket columns): what a
    daily rollup stores and what :func:`stats_from_parts` turns into QPS and latency."""
    start, end = _utc(start), _utc(end)
    rows = samples.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    buckets = bucket_columns(rows.columns)
    if rows.height == 0:
        return _empty_parts(buckets)
    keys = ["cluster", "namespace"]
    per_ts = (rows.group_by(*keys, "ts").agg(pl.col("requests").sum(), pl.col("interval_s").max())
              .group_by(keys).agg(covered_s=pl.col("interval_s").sum(),
                                  qps_peak=(pl.col("requests") / pl.col("interval_s")).max()))
    totals = rows.group_by(keys).agg(pl.col("requests").sum(), _sum_if_any("latency_sum_s"),
                                     _sum_if_any("latency_count"), *[_sum_if_any(c) for c in buckets])
    return (totals.join(per_ts, on=keys)
            .select([pl.col(c).cast(t) for c, t in SERVING_PARTS_SCHEMA.items()] + buckets).sort(keys))


def stats_from_parts(parts: pl.DataFrame, window_s: float, *, quantile: float = 0.99) -> pl.DataFrame:
    """:data:`SERVING_STATS_SCHEMA` rows from the parts of one or more (non-overlapping) pieces of a
    window of ``window_s`` seconds — e.g. the daily rollups of a month: requests, covered seconds,
    latency sums and **bucket counts** add up, the peak is the highest one, and the quantile is
    taken of the summed buckets (never an average of daily quantiles)."""
    if parts.height == 0:
        return _empty()
    buckets = bucket_columns(parts.columns)
    totals = merge_parts([parts])
    bounds = [bucket_bound(c) for c in buckets]
    p99 = []
    for row in (totals.select(buckets).iter_rows() if buckets else [()] * totals.height):
        have = [(b, c) for b, c in zip(bounds, row) if c is not None]
        value = histogram_quantile(quantile, [b for b, _ in have], [c for _, c in have]) if have else None
        p99.append(None if value is None else value * 1000.0)
    return _finish(totals.with_columns(pl.Series("latency_p99_ms", p99, dtype=pl.Float64)), window_s)


def stats_from_samples(samples: pl.DataFrame, start: datetime, end: datetime, *, quantile: float = 0.99) -> pl.DataFrame:
    """The window ``[start, end)``'s figures per cluster × namespace from offline rows (see the
    module docstring); rows outside the window are ignored."""
    start, end = _utc(start), _utc(end)
    return stats_from_parts(parts_from_samples(samples, start, end), (end - start).total_seconds(), quantile=quantile)


def stats_from_prometheus(parts: dict[tuple[str, str], dict[str, float | None]], *, step_s: int,
                          window_s: float) -> pl.DataFrame:
    """The same figures from the decoded answer of :func:`core.metrics.promql.serving_stats`:
    ``{(cluster, namespace): {stat: value}}`` (NaN already None)."""
    if not parts:
        return _empty()
    rows = []
    for (cluster, ns), v in sorted(parts.items()):
        if v.get("requests") is None:
            continue  # a stat without its counter (e.g. only a histogram): the service exports no request count
        q = v.get("latency_q_s")
        rows.append({"cluster": cluster, "namespace": ns, "requests": v["requests"],
                     "covered_s": (v.get("points") or 0.0) * step_s, "qps_peak": v.get("qps_peak"),
                     "latency_sum_s": v.get("latency_sum_s"), "latency_count": v.get("latency_count"),
                     "latency_p99_ms": None if q is None else q * 1000.0})
    if not rows:
        return _empty()
    schema = {"cluster": pl.Utf8, "namespace": pl.Utf8, "requests": pl.Float64, "covered_s": pl.Float64,
              "qps_peak": pl.Float64, "latency_sum_s": pl.Float64, "latency_count": pl.Float64,
              "latency_p99_ms": pl.Float64}
    return _finish(pl.DataFrame(rows, schema=schema), window_s)


BUCKET_STAT = "bucket"


def parts_query(window: Any, settings: ServingSettings) -> str:
    """The query behind :func:`prometheus_parts`: :func:`core.metrics.promql.serving_stats`'s figures
    plus, tagged ``stat="bucket"`` with their ``le`` label, the latency buckets' increases over the
    window ``sum by (namespace, le)`` (each namespace from the first exporter it exports, as the
    other figures) — one query per server, whatever the number of services."""
    from core.metrics import promql

    crng = f"{window.counter_range_ms}ms"

    def total(metric: str, keys: str) -> str:
        return f"sum by ({keys}) ({promql.normalise_namespace(promql._increase(metric, crng), settings.namespace_labels)})"

    presence = [total(e.selector(e.requests), "namespace") for e in settings.exporters]
    buckets = promql._first_exporter([total(e.selector(e.latency + "_bucket"), "namespace, le")
                                      for e in settings.exporters], presence)
    base = promql.serving_stats(window, settings.exporters, namespace_labels=settings.namespace_labels,
                                quantile=settings.quantile)
    return base + "\n  or " + promql.combine([(BUCKET_STAT, buckets)])


def parts_from_prometheus(result: Sequence[dict], *, cluster: str, step_s: int) -> pl.DataFrame:
    """:data:`SERVING_PARTS_SCHEMA` rows (plus ``le_*`` columns) from the answer to
    :func:`parts_query`: covered seconds = points × ``step_s``; a namespace without its request
    counter is left out (as in :func:`stats_from_prometheus`)."""
    from core.metrics.prometheus import _float, decode_serving

    buckets: dict[str, dict[float, float]] = {}
    for item in result:
        labels = item.get("metric", {})
        if labels.get("stat") != BUCKET_STAT:
            continue
        bound = bucket_bound(BUCKET_PREFIX + labels.get("le", ""))
        value = _float((item.get("value") or [None, None])[1])
        if bound is not None and value is not None:
            per = buckets.setdefault(labels.get("namespace", ""), {})
            per[bound] = per.get(bound, 0.0) + value  # "1" and "1.0" are the same bound
    stats = {ns: v for (_, ns), v in decode_serving([i for i in result if i.get("metric", {}).get("stat") != BUCKET_STAT],
                                                    cluster=cluster).items()}
    bounds = sorted({b for per in buckets.values() for b in per})
    rows = []
    for ns, v in sorted(stats.items()):
        if v.get("requests") is None:
            continue
        rows.append({"cluster": cluster, "namespace": ns, "requests": v["requests"],
                     "covered_s": (v.get("points") or 0.0) * step_s, "qps_peak": v.get("qps_peak"),
                     "latency_sum_s": v.get("latency_sum_s"), "latency_count": v.get("latency_count"),
                     **{bucket_name(b): buckets.get(ns, {}).get(b) for b in bounds}})
    schema = SERVING_PARTS_SCHEMA | {bucket_name(b): pl.Float64 for b in bounds}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def merge_parts(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """The parts of adjoining pieces of a window as the window's own (one row per cluster ×
    namespace): requests, covered seconds, latency sums and bucket counts add up, the peak is the
    highest; a figure no piece measured stays empty."""
    frames = [f for f in frames if f.height]
    if not frames:
        return _empty_parts()
    parts = pl.concat(frames, how="diagonal_relaxed")
    buckets = bucket_columns(parts.columns)
    keys = ["cluster", "namespace"]
    merged = parts.group_by(keys).agg(
        pl.col("requests").sum(), pl.col("covered_s").sum(), pl.col("qps_peak").max(),
        _sum_if_any("latency_sum_s"), _sum_if_any("latency_count"), *[_sum_if_any(c) for c in buckets])
    return merged.select([pl.col(c).cast(t) for c, t in SERVING_PARTS_SCHEMA.items()] + buckets).sort(keys)


def pieces(start: datetime, end: datetime, piece_s: int) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into adjoining pieces of at most ``piece_s`` seconds."""
    out, at = [], start
    while at < end:
        out.append((at, min(end, at + timedelta(seconds=piece_s))))
        at = out[-1][1]
    return out


def piecewise_parts(source: Any, start: datetime, end: datetime, *, piece_s: int, step_s: int,
                    query: Callable[[Any], str], decode: Callable[..., pl.DataFrame],
                    merge: Callable[[Sequence[pl.DataFrame]], pl.DataFrame]) -> pl.DataFrame:
    """The additive parts of ``[start, end)`` from a :class:`~core.metrics.prometheus.PrometheusSource`,
    asked per server in pieces of at most ``piece_s`` (:func:`pieces`): ``query(window)`` is the
    instant query of one piece, ``decode(result, cluster=, step_s=)`` its parts, ``merge`` the
    pieces' parts as the window's. The count of queries is constant in the number of services;
    MetricsUnavailable names a failing server."""
    from core.metrics import promql

    left_open = bool(getattr(source, "left_open_ranges", False))
    asks = []
    for lo, hi in pieces(_utc(start), _utc(end), piece_s):
        window = promql.serving_window(lo, hi, step_s, left_open=left_open)
        asks += [(cluster, query(window), window.eval_time) for cluster in source.servers]

    def ask(item: tuple[str, str, datetime]) -> pl.DataFrame:
        cluster, text, at = item
        return decode(source.instant(cluster, text, at=at), cluster=cluster, step_s=step_s)

    # Clusters and pieces are independent: asked concurrently, bounded by the source's setting;
    # map keeps their order, so the merge sees the same frames as one after another.
    workers = max(1, min(int(getattr(source, "concurrency", 1)), len(asks)))
    if workers == 1:
        return merge([ask(item) for item in asks])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return merge(list(pool.map(ask, asks)))


def prometheus_parts(source: Any, start: datetime, end: datetime) -> pl.DataFrame:
    """The request parts of ``[start, end)`` from Prometheus (:func:`parts_query` per piece of
    ``query_piece_s``, merged with :func:`merge_parts`)."""
    cfg = load_settings()
    return piecewise_parts(source, start, end, piece_s=cfg.query_piece_s, step_s=cfg.peak_step_s,
                           query=lambda window: parts_query(window, cfg), decode=parts_from_prometheus,
                           merge=merge_parts)


def window_parts(source: Any, start: datetime, end: datetime) -> pl.DataFrame:
    """The parts of ``[start, end)`` from either source (see :func:`serving_source`)."""
    if isinstance(source, OfflineServingSource):
        return source.serving_parts(start, end)
    return prometheus_parts(source, start, end)


def source_kind(source: Any) -> str:
    """"offline" or "prometheus": where :func:`window_parts` reads."""
    return "offline" if isinstance(source, OfflineServingSource) else "prometheus"


def per_namespace(stats: pl.DataFrame) -> pl.DataFrame:
    """One row per namespace (the sheet's rows): a namespace served from several clusters sums its
    requests and peaks (an upper bound: the peaks need not coincide)
    and takes the longest covered time and the highest P99 (quantiles do not add); mean latency is
    weighted by requests."""
    if stats.height == 0:
        return stats.drop("cluster")
    w = pl.col("requests")
    return (stats.group_by("namespace").agg(
        pl.col("requests").sum(), pl.col("covered_s").max(), pl.col("qps_peak").sum(),
        pl.when(w.filter(pl.col("latency_mean_ms").is_not_null()).sum() > 0)
        .then((pl.col("latency_mean_ms") * w).sum() / w.filter(pl.col("latency_mean_ms").is_not_null()).sum())
        .alias("latency_mean_ms"),
        pl.col("latency_p99_ms").max(), pl.col("coverage").max())
        .with_columns(qps_mean=pl.when(pl.col("covered_s") > 0).then(pl.col("requests") / pl.col("covered_s")))
        .select([c for c in SERVING_STATS_SCHEMA if c != "cluster"]).sort("namespace"))


# --------------------------------------------------------------------------- offline source


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class OfflineServingSource:
    """Service request samples in ``<root>/day=YYYY-MM-DD/*.parquet|*.csv`` (see the module docstring)."""

    _read_file = staticmethod(read_file)  # one file; other sample kinds of the same layout override both
    _schema = SERVING_SAMPLE_SCHEMA

    def __init__(self, root: Path | str) -> None:
        from core.metrics.offline import OfflineSource

        self.root = Path(root)
        self._layout = OfflineSource(self.root)  # the same day=YYYY-MM-DD partition layout

    def days(self) -> list[date]:
        """The days that have a partition folder, oldest first."""
        return self._layout.days()

    def files(self, day: date) -> list[Path]:
        """The sample files of ``day`` (Parquet and CSV, sorted by name)."""
        return self._layout.files(day)

    def read(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Every row of the files of the days ``[start, end)`` touches (bucket layouts may differ
        between files: missing buckets are empty)."""
        start, end = _utc(start), _utc(end)
        frames, d = [], start.date()
        while d <= (end - timedelta(microseconds=1)).date():
            frames += [self._read_file(p) for p in self.files(d)]
            d += timedelta(days=1)
        if not frames:
            return pl.DataFrame(schema=self._schema)
        return pl.concat(frames, how="diagonal_relaxed")

    def serving_parts(self, start: datetime, end: datetime) -> pl.DataFrame:
        """The additive parts of the window (see :func:`parts_from_samples`)."""
        return parts_from_samples(self.read(start, end), start, end)

    def serving_stats(self, start: datetime, end: datetime) -> pl.DataFrame:
        """:data:`SERVING_STATS_SCHEMA` rows of the window (see :func:`stats_from_samples`)."""
        return stats_from_samples(self.read(start, end), start, end, quantile=load_settings().quantile)


def serving_source(root: Path | str | None = None):
    """Where QPS and latency come from: the Prometheus servers when configured, else the offline
    folder ``<root>/serving`` (``root``: the GPU samples folder, default ``COMPUTELOOP_METRICS_DIR``)."""
    from core.metrics.prometheus import source_from_settings
    from core.metrics.sources import metrics_dir

    live = source_from_settings()
    return live if live is not None else OfflineServingSource(Path(root or metrics_dir()) / SERVING_SUBDIR)


# --------------------------------------------------------------------------- demo services


def _ns_rng(seed: int, namespace: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(namespace.encode("utf-8"))])


def demo_profiles(namespaces: dict[str, str], *, seed: int = 7) -> dict[str, dict]:
    """Per demo service namespace (kind "inference" or "idle_service"): whether it exports request
    metrics, the QPS one GPU serves at full utilisation and the latency base — fixed for a namespace
    and seed (``data/serving_metrics.yaml`` section ``demo``)."""
    d = load_settings().demo
    out = {}
    for ns, kind in sorted(namespaces.items()):
        if kind not in ("inference", "idle_service"):
            continue
        rng = _ns_rng(seed, ns)
        out[ns] = {"kind": kind, "exports": bool(rng.random() < float(d["exporting_share"])),
                   "qps_per_gpu": float(rng.uniform(*d["qps_per_gpu_at_full_util"])),
                   "latency_base_s": float(rng.uniform(*d["latency_base_s"]))}
    return out


def demo_day(gpu_samples: pl.LazyFrame | pl.DataFrame, profiles: dict[str, dict], day: date, *, step_s: int,
             seed: int = 7) -> pl.DataFrame:
    """One day of demo service rows from that day's GPU samples: per exporting service and sample
    instant, QPS = GPUs reporting × mean utilisation × the service's QPS per GPU (idle services: the
    ``idle_qps_per_gpu`` trickle), requests ~ Poisson(QPS × step); latency log-logistic with a
    median that grows with load; the ``le_*`` buckets are its CDF × requests."""
    d = load_settings().demo
    exporting = [ns for ns, p in profiles.items() if p["exports"]]
    lf = gpu_samples.lazy() if isinstance(gpu_samples, pl.DataFrame) else gpu_samples
    agg = (lf.filter(pl.col("namespace").is_in(exporting)).group_by("ts", "cluster", "namespace")
           .agg(gpus=pl.len(), util=pl.col("util").mean())
           .sort("namespace", "ts", "cluster").collect())
    bounds = [float(b) for b in d["buckets_s"]] + [math.inf]
    if agg.height == 0:
        return pl.DataFrame(schema=SERVING_SAMPLE_SCHEMA | {bucket_name(b): pl.Float64 for b in bounds})
    ns = agg["namespace"].to_list()
    idle = np.array([profiles[n]["kind"] == "idle_service" for n in ns])
    per_gpu = np.array([profiles[n]["qps_per_gpu"] for n in ns])
    base = np.array([profiles[n]["latency_base_s"] for n in ns])
    util = np.round(agg["util"].to_numpy(), 9)  # a parallel mean may differ in the last bit from run to run
    gpus = agg["gpus"].to_numpy().astype(float)
    qps = np.where(idle, float(d["idle_qps_per_gpu"]) * gpus, per_gpu * gpus * util)
    rng = np.random.default_rng([seed, day.toordinal(), 4])
    requests = rng.poisson(qps * step_s).astype(float)
    alpha = base * (1.0 + float(d["load_slope"]) * np.where(idle, 0.0, util) ** 2)  # median
    beta = float(d["latency_shape"])
    mean = alpha * (math.pi / beta) / math.sin(math.pi / beta)  # log-logistic mean (beta > 1)
    columns = {bucket_name(b): (requests if math.isinf(b) else
                                np.rint(requests / (1.0 + (b / alpha) ** -beta))) for b in bounds}
    return agg.select("ts", "cluster", "namespace").with_columns(
        pl.lit(float(step_s)).alias("interval_s"), pl.Series("requests", requests),
        pl.Series("latency_sum_s", np.where(requests > 0, requests * mean, 0.0)), pl.Series("latency_count", requests),
        *[pl.Series(k, v) for k, v in columns.items()])


def write_demo_serving(gpu_root: Path | str, *, root: Path | str | None = None) -> dict:
    """Service rows for every day of the demo GPU samples in ``gpu_root`` that has none yet, into
    ``root`` (default ``<gpu_root>/serving``), from the fleet manifest's services. Deterministic
    for the manifest's seed. Returns ``{"root", "days", "rows"}``."""
    from core.metrics.fleet import load_manifest
    from core.metrics.offline import OfflineSource

    gpu_root = Path(gpu_root)
    root = Path(root) if root is not None else gpu_root / SERVING_SUBDIR
    manifest = load_manifest(gpu_root)
    step_s = int(manifest.meta.get("step_s", 60))
    profiles = demo_profiles(manifest.namespaces(), seed=manifest.seed)
    gpu = OfflineSource(gpu_root)
    serving = OfflineServingSource(root)
    done, days, rows = set(serving.days()), 0, 0
    for day in gpu.days():
        if day in done and serving.files(day):
            continue
        frame = demo_day(gpu.scan(day).select("ts", "cluster", "namespace", "util"), profiles, day, step_s=step_s,
                         seed=manifest.seed)
        folder = root / f"day={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".part.parquet.tmp"
        frame.write_parquet(tmp, compression="zstd")  # bucket columns compress well: ~a third of lz4's size
        os.replace(tmp, folder / "part.parquet")
        days += 1
        rows += frame.height
    return {"root": str(root), "days": days, "rows": rows}
