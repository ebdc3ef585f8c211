"""Prometheus queries per page and per rollup day, at 100 and at 1,000 allocations, against a REAL
Prometheus (Debian's ``prometheus`` + ``promtool``, started by
:class:`tests.support.prometheus_server.PrometheusServer` on a loopback port).

For each size N (100, 1,000) the benchmark generates an OpenMetrics fixture of N namespaces, one
GPU each (dcgm-exporter metrics in the plain label style: PROF util, DEV util, FB used/free, power,
energy counter), placed on the slots of the nodes :class:`core.cluster.inventory.FakeInventory`
makes up from ``data/org.yaml`` (so the water level's heat map joins them); **1 hour at 60 s** on
yesterday 10:00–11:00 UTC (inside the server's retention). It backfills it with promtool (the
time is printed), starts the server, and creates a SQLite database with N active allocations (one
per namespace; inserted directly — this is fixture data, not a user action). Then it counts, with
:attr:`PrometheusSource.query_count`, the queries sent by:

* **water level** — what ``ui/pools_view`` calls: :func:`core.metrics.water_level.snapshot` (at
  the fixture's last minute, with ``inventory_nodes(source)``) and :func:`~core.metrics.water_level.trend`;
* **usage sheet** — :func:`core.metrics.usage.training_sheet` of one namespace over the hour
  (what ``ui/usage_view`` calls for the training sheet), read by an applicant of the allocations'
  department so that the scope check over the N allocations is part of it;
* **rollup day** — :meth:`PrometheusSource.daily_gpu_stats` of yesterday at 60 s.

One server, configured as cluster ``hq-beijing-1`` (with K servers every count is × K).
Target (issue #4): the count at 1,000 equals the count at 100 — rows are ``count(1,000) −
count(100)`` with target 0 (lower is better); the raw counts and wall times go to stderr and are
in :data:`LAST`. When ``prometheus``/``promtool`` are missing the rows are reported missed
(infinity) with a message: no figure is ever made up.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from core.clock import utc_now, utc_today
from core.config import PROJECT_ROOT

ROOT = PROJECT_ROOT / "var" / "bench" / "prometheus"
SIZES = (100, 1000)
STEP_S = 60
MINUTES = 60
CLUSTER = "hq-beijing-1"
REPEAT = 3
PARTS = ("water level (snapshot + trend)", "usage sheet (training, 1 namespace)", "rollup day (daily_gpu_stats)")
LAST: dict = {}  # raw figures of the last run, for the report


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _gpu_slots(n: int) -> list[tuple[str, str, str, str, int]]:
    """(cluster, pool, hostname, model, slot) of the first ``n`` GPU slots of the org's made-up nodes."""
    from core.metrics.sources import inventory_nodes

    slots = [(node.cluster, node.pool, node.name, node.gpu_product or "", i) for node in inventory_nodes() for i in range(node.gpus)]
    if len(slots) < n:
        raise RuntimeError(f"the org has only {len(slots)} GPU slots, fewer than {n}")
    return slots[:n]


def openmetrics(n: int, start: datetime) -> str:
    """OpenMetrics text: ``n`` namespaces × one GPU, :data:`MINUTES` samples at :data:`STEP_S`."""
    import random

    rng = random.Random(n)
    times = [int((start + timedelta(seconds=i * STEP_S)).timestamp()) for i in range(MINUTES)]
    families = {m: [] for m in ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED",
                                "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")}
    for i, (_, _, host, model, slot) in enumerate(_gpu_slots(n)):
        labels = (f'{{gpu="{slot}",UUID="GPU-bench-{i:06d}",device="nvidia{slot}",modelName="NVIDIA {model}",'
                  f'hostname="{host}",namespace="bench-ns-{i:04d}",pod="bench-ns-{i:04d}-0",container="main",'
                  f'job="dcgm-exporter"}}')
        level = rng.uniform(0.05, 0.95)
        energy = rng.uniform(1e11, 5e11)
        for t in times:
            util = min(1.0, max(0.0, level + rng.uniform(-0.05, 0.05)))
            used = round(20000 + 60000 * util)
            power = 80 + 500 * util
            energy += power * STEP_S * 1000.0
            families["DCGM_FI_PROF_GR_ENGINE_ACTIVE"].append(f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{labels} {util:.4f} {t}")
            families["DCGM_FI_DEV_GPU_UTIL"].append(f"DCGM_FI_DEV_GPU_UTIL{labels} {round(util * 100)} {t}")
            families["DCGM_FI_DEV_FB_USED"].append(f"DCGM_FI_DEV_FB_USED{labels} {used} {t}")
            families["DCGM_FI_DEV_FB_FREE"].append(f"DCGM_FI_DEV_FB_FREE{labels} {81920 - used} {t}")
            families["DCGM_FI_DEV_POWER_USAGE"].append(f"DCGM_FI_DEV_POWER_USAGE{labels} {power:.3f} {t}")
            families["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"].append(
                f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{labels} {energy:.1f} {t}")
    lines: list[str] = []
    for metric, samples in families.items():
        lines.append(f"# TYPE {metric} gauge")
        lines.extend(samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _database(folder: Path, n: int):
    """A migrated SQLite database with ``n`` active allocations, one per fixture namespace."""
    from core.context import build
    from core.db.migrate import upgrade
    from core.db.session import make_engine, unit_of_work
    from core.lifecycle.persistence import AllocationRow, RequestRow

    url = f"sqlite:///{folder / 'app.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    ctx = build(url)
    now = utc_now()
    with unit_of_work(ctx.sessions) as s:
        for i, (cluster, pool, _, model, _) in enumerate(_gpu_slots(n)):
            req = RequestRow(number=f"BENCH-{i:05d}", status="approved", created_by="bench", department="digital",
                             unit="HQ", project="P-BENCH", demand_type="training", demand_subtype="l2_finetune",
                             pool_id=pool, requested_gpus=1, duration_days=30, start_date=now.date(), form={},
                             flags=[], created_at=now, updated_at=now)
            s.add(req)
            s.flush()
            s.add(AllocationRow(request_id=req.id, pool_id=pool, gpus=1, status="active", priority="normal",
                                starts_on=now.date() - timedelta(days=1), ends_on=now.date() + timedelta(days=29),
                                created_at=now, namespace=f"bench-ns-{i:04d}", cluster=cluster, gpu_model=model))
    return ctx


def _measure(source, fn) -> tuple[int, float, object]:
    """(queries sent by ``fn``, median wall ms of :data:`REPEAT` calls after a warm-up, last result)."""
    fn()  # warm-up: model mapper, HTTP session, Prometheus' caches
    counts, times = [], []
    result = None
    for _ in range(REPEAT):
        source.reset_query_count()
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
        counts.append(source.query_count)
    if len(set(counts)) != 1:
        _log(f"  query count varied between calls: {counts}")
    return max(counts), statistics.median(times), result


def measure(n: int, folder: Path, binaries: tuple[str, str]) -> dict:
    """Backfill, start Prometheus, count and time each part at ``n`` namespaces/allocations."""
    import polars as pl

    from core.identity import load_personas
    from core.metrics import usage
    from core.metrics import water_level as wl
    from core.metrics.prometheus import PrometheusSource
    from core.metrics.sources import inventory_nodes
    from tests.support.prometheus_server import PrometheusServer

    day = utc_today() - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=timezone.utc)
    end = start + timedelta(seconds=(MINUTES - 1) * STEP_S)
    t0 = time.perf_counter()
    text = openmetrics(n, start)
    gen_s = time.perf_counter() - t0
    server = PrometheusServer(folder / "prom", *binaries)
    server.workdir.mkdir(parents=True)
    server.backfill(text)
    server.start()
    out = {"namespaces": n, "openmetrics_mb": len(text) / 1e6, "series": 6 * n, "samples": 6 * n * MINUTES,
           "generate_s": gen_s, "backfill_s": server.timings["backfill_s"], "start_s": server.timings["start_s"]}
    ctx = None
    source = PrometheusSource({CLUSTER: server.url}, timeout=60)
    try:
        ctx = _database(folder, n)
        admin = next(p for p in load_personas() if p.role == "admin")
        applicant = next(p for p in load_personas() if p.id == "zhang.wei")  # 数字化部 = the fixture's "digital"
        nodes = inventory_nodes(source)

        def water_level():
            snap = wl.snapshot(sessions=ctx.sessions, actor=admin, source=source, nodes=nodes, at=end, cache={})
            trend = wl.trend(sessions=ctx.sessions, actor=admin, nodes=nodes, first=day - timedelta(days=30), last=day)
            return snap, trend

        def usage_sheet():
            return usage.training_sheet(sessions=ctx.sessions, actor=applicant, source=source,
                                        namespace="bench-ns-0000", start=start, end=end, step_s=STEP_S)

        def rollup_day():
            return source.daily_gpu_stats(day, step_s=STEP_S)

        for part, fn in zip(PARTS, (water_level, usage_sheet, rollup_day)):
            count, ms, result = _measure(source, fn)
            out[part] = {"queries": count, "ms": ms}
            if part.startswith("water"):
                out[part]["check"] = (f"{result[0].heat.filter(pl.col('status').is_in(['busy', 'idle'])).height} "
                                      f"allocated GPUs on the heat map, {result[0].totals['allocated']:,} allocated GPUs")
            elif part.startswith("rollup"):
                out[part]["check"] = f"{result.height} rollup rows, {result['namespace'].n_unique()} namespaces"
            else:
                out[part]["check"] = f"{result.series.height} samples of {result.gpus.height} GPU(s)"
    finally:
        source.close()
        server.stop()
        if ctx is not None:
            ctx.engine.dispose()
    return out


def run() -> list[tuple[str, float, float]]:
    """Rows ``queries at 1,000 − queries at 100`` (target 0) per part, plus wall ms at 1,000 for reference."""
    from tests.support.prometheus_server import find_binaries

    binaries = find_binaries()
    if binaries is None:
        _log("prometheus benchmark: `prometheus` and/or `promtool` not on PATH (Debian package `prometheus`); "
             "NOT MEASURED — rows reported as missed")
        return [(f"Prometheus queries at 1,000 − at 100 allocations, {part}: NOT MEASURED (no prometheus)",
                 float("inf"), 0.0) for part in PARTS]
    ROOT.mkdir(parents=True, exist_ok=True)
    results = {}
    for n in SIZES:
        folder = Path(tempfile.mkdtemp(prefix=f"n{n}-", dir=ROOT))
        try:
            results[n] = measure(n, folder, binaries)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        r = results[n]
        _log(f"[prometheus] {n:,} namespaces/allocations: {r['series']:,} series, {r['samples']:,} samples "
             f"({r['openmetrics_mb']:.1f} MB OpenMetrics, generated in {r['generate_s']:.1f} s); "
             f"promtool backfill {r['backfill_s']:.1f} s; server ready in {r['start_s']:.1f} s")
        for part in PARTS:
            _log(f"  {part}: {r[part]['queries']} queries, {r[part]['ms']:.0f} ms (median of {REPEAT}) — {r[part]['check']}")
    LAST.clear()
    LAST.update(results)
    small, big = results[SIZES[0]], results[SIZES[1]]
    rows = []
    for part in PARTS:
        rows.append((f"Prometheus queries at 1,000 − at 100 allocations, {part} "
                     f"({small[part]['queries']} vs {big[part]['queries']})",
                     float(big[part]["queries"] - small[part]["queries"]), 0.0))
    return rows


def main() -> int:
    failed = 0
    for name, value, target in run():
        ok = value <= target
        failed += not ok
        print(f"| {name} | {value:.3f} | ≤ {target:g} | {'ok' if ok else 'MISSED'} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
