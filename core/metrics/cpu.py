"""CPU utilisation per namespace: cores used against cores requested, from Prometheus or offline files.

The monthly report's top list by CPU utilisation reads the ``cpu_daily_rollups`` table (one row
per UTC day × cluster × namespace), filled by ``jobs rollup`` beside the GPU rollup. Which metrics
count (cAdvisor's ``container_cpu_usage_seconds_total``, kube-state-metrics'
``kube_pod_container_resource_requests{resource="cpu"}``), which labels carry the namespace and
the step are in ``data/cpu_metrics.yaml`` with their sources.

Offline layout (what :func:`write_demo_cpu` writes; any exporter or converter can produce it)::

    <root>/day=YYYY-MM-DD/<name>.parquet | <name>.csv     rows whose ts falls on that UTC day

with ``<root>`` = ``<metrics dir>/cpu`` by default. One row is one namespace (or one pod or
container of it) over one interval that **ends** at ``ts``:

===============  ========  ==============================================================
column           type      meaning
===============  ========  ==============================================================
ts               datetime  end of the interval, UTC (CSV: ISO 8601; naive ⇒ UTC)
cluster          str       cluster id (data/org.yaml)
namespace        str       the workload's namespace
interval_s       float     length of the interval in seconds (> 0)
cpu_seconds      float     CPU time used in the interval, in core-seconds (or give
                           ``cores_used``: cpu_seconds / interval_s)
cores_requested  float     cores requested by the running pods at ``ts``; empty when not known
===============  ========  ==============================================================

A cAdvisor counter converts to these rows as consecutive differences (cpu_seconds = c(t) −
c(t − interval)), which is how the parity test builds them.

The additive parts of a window (:data:`CPU_PARTS_SCHEMA`, per cluster × namespace, ``[start, end)``):

* ``cpu_core_s`` — core-seconds used (offline: Σ cpu_seconds; Prometheus: Σ over the steps of the
  namespace's ``irate`` × step);
* ``covered_s`` — seconds with data (offline: the intervals of the distinct ``ts``; Prometheus:
  the steps at which the namespace had a rate and a fresh sample) — coverage = covered_s / window;
* ``cores_used_peak`` — the highest per-step cores used;
* ``requested_core_s`` — Σ over the covered steps of the cores requested × step (empty when no
  request is known: a namespace of BestEffort pods, or a file without requests).

Cores used (mean) = cpu_core_s / covered_s; cores requested (mean) = requested_core_s / covered_s;
CPU utilisation = cpu_core_s / requested_core_s. Pieces of a window add up, the peak is their
maximum, so a month from daily rollups equals the month read live.

A malformed file raises :class:`InputError` naming the file (and the line, for a CSV value).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl
from sqlalchemy import Date, DateTime, Float, Index, Integer, String, UniqueConstraint, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.clock import utc_now
from core.datafiles import load_yaml
from core.db.models import Base
from core.metrics.rollup import day_bounds
from core.errors import InputError
from core.metrics.serving import OfflineServingSource, _reason, _sum_if_any, _utc, read_csv_text

SETTINGS_FILE = "cpu_metrics.yaml"
CPU_SUBDIR = "cpu"
DAY_S = 86_400.0
CPU_SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"), "cluster": pl.Utf8, "namespace": pl.Utf8, "interval_s": pl.Float64,
    "cpu_seconds": pl.Float64, "cores_requested": pl.Float64,
}
CPU_PARTS_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.Utf8, "namespace": pl.Utf8, "cpu_core_s": pl.Float64, "covered_s": pl.Float64,
    "cores_used_peak": pl.Float64, "requested_core_s": pl.Float64,
}
_FIGURES = ("cpu_core_s", "covered_s", "cores_used_peak", "requested_core_s")
_NUMBERS = ("interval_s", "cpu_seconds", "cores_used", "cores_requested")
_POLARS_ERRORS = (pl.exceptions.PolarsError, OSError)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class CpuSettings:
    """``data/cpu_metrics.yaml``."""

    used_metric: str
    exclude_containers: tuple[str, ...]
    requests_metric: str
    resource: str
    phase_metric: str
    namespace_labels: tuple[str, ...]
    step_s: int
    demo: dict
    query_piece_s: int = 86400


def load_settings() -> CpuSettings:
    """The CPU metrics settings; :class:`InputError` naming the entry that is wrong."""
    raw = load_yaml(SETTINGS_FILE) or {}
    try:
        used, req = raw["used"], raw["requested"]
        out = CpuSettings(str(used["metric"]), tuple(str(c) for c in used.get("exclude_containers") or ()),
                          str(req["metric"]), str(req["resource"]), str(req["phase_metric"]),
                          tuple(str(x) for x in raw["namespace_labels"]), int(raw["step_s"]), dict(raw.get("demo") or {}),
                          int(raw["query_piece_s"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError("error.data_entry_invalid", field=SETTINGS_FILE,
                         entry="used / requested / namespace_labels / step_s / query_piece_s") from None
    if not out.namespace_labels or out.namespace_labels[-1] != "namespace":
        raise InputError("error.data_entry_invalid", field=SETTINGS_FILE, entry="namespace_labels")
    if out.step_s <= 0:
        raise InputError("error.data_entry_invalid", field=SETTINGS_FILE, entry="step_s")
    if out.query_piece_s < out.step_s or out.query_piece_s % out.step_s:
        raise InputError("error.data_entry_invalid", field=SETTINGS_FILE, entry="query_piece_s")
    return out


# --------------------------------------------------------------------------- reading files


def _check_columns(columns: Sequence[str], where: str) -> None:
    missing = [c for c in ("ts", "cluster", "namespace", "interval_s") if c not in columns]
    if "cpu_seconds" not in columns and "cores_used" not in columns:
        missing.append("cpu_seconds")
    if missing:
        raise InputError("cpu.missing_columns", field=where, columns=", ".join(missing))


def _derive(frame: pl.DataFrame) -> pl.DataFrame:
    if "cpu_seconds" not in frame.columns:
        frame = frame.with_columns(cpu_seconds=pl.col("cores_used") * pl.col("interval_s"))
    if "cores_requested" not in frame.columns:
        frame = frame.with_columns(cores_requested=pl.lit(None, dtype=pl.Float64))
    return frame.select([pl.col(c).cast(t) for c, t in CPU_SAMPLE_SCHEMA.items()])


def _check_values(frame: pl.DataFrame, where: Any) -> None:
    checks = [("interval_s", pl.col("interval_s").is_null() | (pl.col("interval_s") <= 0)),
              ("cpu_seconds", pl.col("cpu_seconds").is_null() | (pl.col("cpu_seconds") < 0)),
              ("cores_requested", pl.col("cores_requested") < 0),
              ("namespace", pl.col("namespace").is_null() | (pl.col("namespace") == ""))]
    indexed = frame.with_row_index("__i")
    for column, bad in checks:
        hit = indexed.filter(bad)
        if hit.height:
            i = int(hit["__i"][0])
            raise InputError("cpu.bad_value", field=where(i), column=column, value=str(frame[column][i]))


def read_file(path: Path | str) -> pl.DataFrame:
    """One CPU sample file (Parquet or CSV) in :data:`CPU_SAMPLE_SCHEMA`; :class:`InputError`
    naming the file (and line) otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except _POLARS_ERRORS as exc:
            raise InputError("metrics.file_unreadable", field=str(path), reason=_reason(exc)) from None
        _check_columns(frame.columns, str(path))
        if not isinstance(frame.schema["ts"], pl.Datetime):
            raise InputError("metrics.bad_column_type", field=str(path), column="ts", dtype=str(frame.schema["ts"]),
                             expected="Datetime")
        if frame.schema["ts"].time_zone is None:
            frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
        for c in _NUMBERS:
            if c in frame.columns and not (frame.schema[c].is_numeric() or frame.schema[c] == pl.Null):
                raise InputError("metrics.bad_column_type", field=str(path), column=c, dtype=str(frame.schema[c]),
                                 expected="Float64")
        frame = _derive(frame)
        _check_values(frame, lambda i: f"{path} (row {i + 1})")
        return frame
    if suffix == ".csv":
        return _read_csv(path)
    raise InputError("metrics.file_kind", field=str(path))


def _read_csv(path: Path) -> pl.DataFrame:
    frame = _derive(read_csv_text(path, check_columns=_check_columns, is_number=lambda c: c in _NUMBERS))
    _check_values(frame, lambda i: f"{path}:{i + 2}")
    return frame


# --------------------------------------------------------------------------- the parts of a window


def _empty_parts() -> pl.DataFrame:
    return pl.DataFrame(schema=CPU_PARTS_SCHEMA)


def parts_from_samples(samples: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """The additive parts of ``[start, end)`` per cluster × namespace from offline rows."""
    start, end = _utc(start), _utc(end)
    rows = samples.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    if rows.height == 0:
        return _empty_parts()
    keys = ["cluster", "namespace"]
    per_ts = rows.group_by(*keys, "ts").agg(
        pl.col("cpu_seconds").sum(), pl.col("interval_s").max(),
        _sum_if_any("cores_requested").alias("req"))
    # summed in (cluster, namespace, ts) order: a rerun gives the same bits (group_by's row order is not fixed)
    return (per_ts.sort(*keys, "ts").group_by(keys, maintain_order=True).agg(
        cpu_core_s=pl.col("cpu_seconds").sum(), covered_s=pl.col("interval_s").sum(),
        cores_used_peak=(pl.col("cpu_seconds") / pl.col("interval_s")).max(),
        requested_core_s=pl.when(pl.col("req").is_not_null().any()).then((pl.col("req") * pl.col("interval_s")).sum()))
        .select([pl.col(c).cast(t) for c, t in CPU_PARTS_SCHEMA.items()]).sort(keys))


def parts_query(window: Any, settings: CpuSettings) -> str:
    """One instant query (per server) for a window's parts, ``by (namespace)`` — constant in the
    number of namespaces. ``window``: a :func:`core.metrics.promql.serving_window`."""
    from core.metrics import promql

    step = window.step_s
    used_sel = promql.selector(settings.used_metric,
                               *(f"container!={promql.quote(c)}" for c in settings.exclude_containers))

    def ns(expr: str) -> str:
        return promql.normalise_namespace(expr, settings.namespace_labels)

    def ksm(expr: str) -> str:  # KSM scraped with honor_labels false also renames the pod
        return f'label_replace({ns(expr)}, "pod", "$1", "exported_pod", "(.+)")'

    used = f"sum by (namespace) ({ns(f'irate({used_sel}[{2 * step}s])')})"
    fresh = f"sum by (namespace) ({ns(f'count_over_time({used_sel}[{step * 1000 - 1}ms])')})"
    inner = f"({used}) and on (namespace) ({fresh})"
    req_sel = promql.selector(settings.requests_metric, promql.matcher("resource", settings.resource))
    running = (f"max by (namespace, pod) "
               f"({ksm(promql.selector(settings.phase_metric, promql.matcher('phase', 'Running')))} == 1)")
    requested = f"sum by (namespace) ({ksm(req_sel)} * on (namespace, pod) group_left () {running})"
    sub = f"[{window.peak_range_ms}ms:{step}s]"
    return promql.combine([
        ("cpu_sum", f"sum_over_time(({inner}){sub})"),
        ("points", f"count_over_time(({inner}){sub})"),
        ("peak", f"max_over_time(({inner}){sub})"),
        ("requested_sum", f"sum_over_time((({requested}) and on (namespace) ({inner})){sub})"),
    ])


def parts_from_prometheus(result: Sequence[dict], *, cluster: str, step_s: int) -> pl.DataFrame:
    """:data:`CPU_PARTS_SCHEMA` rows from the answer to :func:`parts_query`."""
    from core.metrics.prometheus import _float

    per: dict[str, dict[str, float | None]] = {}
    for item in result:
        labels = item.get("metric", {})
        per.setdefault(labels.get("namespace", ""), {})[labels.get("stat", "")] = \
            _float((item.get("value") or [None, None])[1])
    rows = []
    for namespace, v in sorted(per.items()):
        if not namespace or not v.get("points"):
            continue
        req = v.get("requested_sum")
        rows.append({"cluster": cluster, "namespace": namespace, "cpu_core_s": (v.get("cpu_sum") or 0.0) * step_s,
                     "covered_s": v["points"] * step_s, "cores_used_peak": v.get("peak"),
                     "requested_core_s": None if req is None else req * step_s})
    return pl.DataFrame(rows, schema=CPU_PARTS_SCHEMA) if rows else _empty_parts()


def merge_parts(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """The parts of adjoining pieces of a window as the window's own: core-seconds, covered and
    requested seconds add up (requested stays empty when no piece knew it), the peak is the highest."""
    frames = [f for f in frames if f.height]
    if not frames:
        return _empty_parts()
    keys = ["cluster", "namespace"]
    return (pl.concat(frames).group_by(keys).agg(
        pl.col("cpu_core_s").sum(), pl.col("covered_s").sum(), pl.col("cores_used_peak").max(),
        _sum_if_any("requested_core_s"))
        .select([pl.col(c).cast(t) for c, t in CPU_PARTS_SCHEMA.items()]).sort(keys))


def prometheus_parts(source: Any, start: datetime, end: datetime) -> pl.DataFrame:
    """The CPU parts of ``[start, end)`` from Prometheus (:func:`parts_query` per piece of
    ``query_piece_s``, merged with :func:`merge_parts`), as the service requests are read."""
    from core.metrics.serving import piecewise_parts

    cfg = load_settings()
    return piecewise_parts(source, start, end, piece_s=cfg.query_piece_s, step_s=cfg.step_s,
                           query=lambda window: parts_query(window, cfg), decode=parts_from_prometheus,
                           merge=merge_parts)


class OfflineCpuSource(OfflineServingSource):
    """CPU samples in ``<root>/day=YYYY-MM-DD/*.parquet|*.csv`` (see the module docstring): the
    layout and reading of the service request samples, with this module's file reader."""

    _read_file = staticmethod(read_file)
    _schema = CPU_SAMPLE_SCHEMA

    def cpu_parts(self, start: datetime, end: datetime) -> pl.DataFrame:
        return parts_from_samples(self.read(start, end), start, end)


def window_parts(source: Any, start: datetime, end: datetime) -> pl.DataFrame:
    """The parts of ``[start, end)`` from either source (see :func:`cpu_source`)."""
    if isinstance(source, OfflineCpuSource):
        return source.cpu_parts(start, end)
    return prometheus_parts(source, start, end)


def source_kind(source: Any) -> str:
    return "offline" if isinstance(source, OfflineCpuSource) else "prometheus"


def cpu_source(root: Path | str | None = None):
    """The Prometheus servers when configured, else the offline folder ``<root>/cpu``."""
    from core.metrics.prometheus import source_from_settings
    from core.metrics.sources import metrics_dir

    live = source_from_settings()
    return live if live is not None else OfflineCpuSource(Path(root or metrics_dir()) / CPU_SUBDIR)


def day_parts(source: Any, day: date) -> pl.DataFrame:
    """The parts of one UTC day (offline files, or Prometheus: one query per server)."""
    return window_parts(source, *day_bounds(day))


# --------------------------------------------------------------------------- the rollup table


class CpuDailyRollupRow(Base):
    """One cluster × namespace × UTC day of CPU figures (see the module docstring)."""

    __tablename__ = "cpu_daily_rollups"
    __table_args__ = (
        UniqueConstraint("day", "cluster", "namespace", name="uq_cpu_daily_rollups_day_cluster_namespace"),
        Index("ix_cpu_daily_rollups_namespace_day", "namespace", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    cluster: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(63))
    source: Mapped[str] = mapped_column(String(16))
    cpu_core_s: Mapped[float] = mapped_column(Float)
    covered_s: Mapped[float] = mapped_column(Float)
    window_s: Mapped[float] = mapped_column(Float)
    coverage: Mapped[float] = mapped_column(Float)
    cores_used_peak: Mapped[float | None] = mapped_column(Float, nullable=True)
    requested_core_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def replace_cpu_day(session: Session, day: date, parts: pl.DataFrame, *, source: str,
                    now: datetime | None = None) -> dict:
    """Replace ``day``'s rows with ``parts`` in ``session``'s transaction: ``{"deleted", "inserted"}``."""
    now = now or utc_now()
    deleted = session.execute(delete(CpuDailyRollupRow).where(CpuDailyRollupRow.day == day)).rowcount or 0
    records = [{"day": day, "source": source, **{k: r[k] for k in ("cluster", "namespace", *_FIGURES)},
                "window_s": DAY_S, "coverage": min((r["covered_s"] or 0.0) / DAY_S, 1.0), "computed_at": now}
               for r in parts.iter_rows(named=True)]
    if records:
        session.execute(insert(CpuDailyRollupRow), records)
    return {"deleted": int(deleted), "inserted": len(records)}


def read_cpu_days(session: Session, first: date, last: date) -> pl.DataFrame:
    """Stored rows with ``first <= day <= last``: ``day``, ``source`` and the parts, in one query."""
    t = CpuDailyRollupRow
    result = session.execute(select(t.day, t.source, t.cluster, t.namespace, *[getattr(t, c) for c in _FIGURES])
                             .where(t.day.between(first, last)).order_by(t.day, t.cluster, t.namespace)).all()
    schema = {"day": pl.Date, "source": pl.Utf8} | CPU_PARTS_SCHEMA
    return pl.DataFrame([tuple(r) for r in result], schema=schema, orient="row")


def stored_cpu_days(session: Session) -> list[date]:
    return sorted(session.execute(select(CpuDailyRollupRow.day).distinct()).scalars())


def summary(day: date, parts: pl.DataFrame, source: str, counts: dict) -> dict:
    """What the job reports of one day's CPU rollup."""
    return {"day": day.isoformat(), "source": source, "namespaces": parts.height,
            "cpu_core_hours": round(float(parts["cpu_core_s"].sum()) / 3600.0, 3) if parts.height else 0.0,
            "coverage": round(float(parts["covered_s"].mean()) / DAY_S, 6) if parts.height else None, **counts}


def ensure_cpu_rollups(sessions: sessionmaker[Session], source: Any, days: list[date]) -> dict:
    """Roll up each of ``days`` without a stored CPU rollup, in one transaction; zero on a second call."""
    from core.db.session import unit_of_work

    with unit_of_work(sessions) as s:
        done = set(stored_cpu_days(s))
    todo = {day: day_parts(source, day) for day in days if day not in done}
    todo = {day: parts for day, parts in todo.items() if parts.height}
    kind, rows = source_kind(source), 0
    with unit_of_work(sessions) as s:
        for day, parts in todo.items():
            rows += replace_cpu_day(s, day, parts, source=kind)["inserted"]
    return {"days": len(todo), "rows": rows}


# --------------------------------------------------------------------------- demo CPU samples


def _ns_rng(seed: int, namespace: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(namespace.encode("utf-8")), 5])


def demo_profiles(namespaces: dict[str, str], *, seed: int = 7) -> dict[str, dict]:
    """Per demo namespace: cores requested per GPU and the share of its request it keeps busy."""
    d = load_settings().demo
    per_gpu, shares = d["cores_per_gpu"], {k: d[f"{'idle' if k == 'idle_service' else k}_used_share"]
                                          for k in ("training", "inference", "idle_service", "burst")}
    out = {}
    for ns, kind in sorted(namespaces.items()):
        if kind not in shares:
            continue
        out[ns] = {"kind": kind, "cores_per_gpu": float(per_gpu[kind]),
                   "share": float(_ns_rng(seed, ns).uniform(*shares[kind]))}
    return out


def demo_day(gpu_samples: pl.LazyFrame | pl.DataFrame, profiles: dict[str, dict], day: date, *, step_s: int,
             seed: int = 7) -> pl.DataFrame:
    """One day of demo CPU rows from that day's GPU samples: per namespace and instant, cores
    requested = GPUs × cores per GPU; cores used = request × the namespace's share × a load factor
    (training: 0.85 + 0.15 × GPU utilisation; services and burst: 0.3 + 0.7 × utilisation; idle
    services: their share alone), with ±5 % noise, never above the request."""
    lf = gpu_samples.lazy() if isinstance(gpu_samples, pl.DataFrame) else gpu_samples
    agg = (lf.filter(pl.col("namespace").is_in(sorted(profiles))).group_by("ts", "cluster", "namespace")
           .agg(gpus=pl.len(), util=pl.col("util").mean()).sort("namespace", "ts", "cluster").collect())
    if agg.height == 0:
        return pl.DataFrame(schema=CPU_SAMPLE_SCHEMA)
    ns = agg["namespace"].to_list()
    kind = [profiles[n]["kind"] for n in ns]
    share = np.array([profiles[n]["share"] for n in ns])
    requested = agg["gpus"].to_numpy().astype(float) * np.array([profiles[n]["cores_per_gpu"] for n in ns])
    util = np.round(agg["util"].to_numpy(), 9)  # a parallel mean may differ in the last bit from run to run
    load = np.where(np.array([k == "training" for k in kind]), 0.85 + 0.15 * util,
                    np.where(np.array([k == "idle_service" for k in kind]), 1.0, 0.3 + 0.7 * util))
    noise = np.random.default_rng([seed, day.toordinal(), 5]).uniform(0.95, 1.05, agg.height)
    cores = np.minimum(requested * share * load * noise, requested)
    return agg.select("ts", "cluster", "namespace").with_columns(
        pl.lit(float(step_s)).alias("interval_s"), pl.Series("cpu_seconds", np.round(cores * step_s, 3)),
        pl.Series("cores_requested", requested)).select([pl.col(c).cast(t) for c, t in CPU_SAMPLE_SCHEMA.items()])


def write_demo_cpu(gpu_root: Path | str, *, root: Path | str | None = None) -> dict:
    """CPU rows for every day of the demo GPU samples in ``gpu_root`` that has none yet, into
    ``root`` (default ``<gpu_root>/cpu``). Deterministic for the manifest's seed."""
    from core.metrics.fleet import load_manifest
    from core.metrics.offline import OfflineSource

    gpu_root = Path(gpu_root)
    root = Path(root) if root is not None else gpu_root / CPU_SUBDIR
    manifest = load_manifest(gpu_root)
    step_s = int(manifest.meta.get("step_s", 60))
    profiles = demo_profiles(manifest.namespaces(), seed=manifest.seed)
    gpu, cpu = OfflineSource(gpu_root), OfflineCpuSource(root)
    done, days, rows = set(cpu.days()), 0, 0
    for day in gpu.days():
        if day in done and cpu.files(day):
            continue
        frame = demo_day(gpu.scan(day).select("ts", "cluster", "namespace", "util"), profiles, day, step_s=step_s,
                         seed=manifest.seed)
        folder = root / f"day={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".part.parquet.tmp"
        frame.write_parquet(tmp, compression="zstd")
        os.replace(tmp, folder / "part.parquet")
        days += 1
        rows += frame.height
    return {"root": str(root), "days": days, "rows": rows}
