"""The daily rollup of a 100,000-GPU fleet-day from files and from a metrics store (issue #13, point 4):
`python -m bench.fleet_100k [--from files,store] [--scale 100] [--shard-gpus 10000] [--runs 3]`.

The demo fleet at ``--scale`` 100 (100,800 GPUs) is generated for one day at 60 s steps — about
144 M samples — by :func:`core.metrics.fleet.write_samples` in shards of ``--shard-gpus`` GPUs (one
Parquet file each, with series ids), once, into ``var/bench/fleet-100k`` (generated, never
committed; about 2 minutes and 5 GB on this machine). Each run rolls the day up in a fresh child
process through :meth:`core.metrics.offline.OfflineSource.daily_gpu_stats` — what the rollup job
calls — which reads the shards one at a time; the child reports its wall time, CPU time and peak
memory (``VmHWM``: ``ru_maxrss`` would carry the parent's peak across the fork and exec). Targets:
under 60 s and under 4 GB.

``--from store``: the same samples in a single-node VictoriaMetrics (Debian's ``victoria-metrics``)
as one central store for every cluster — each series labelled ``cluster`` as a cluster's remote
write would label it, DCGM's metric and label names — imported once through the JSON-line import
API into ``var/bench/fleet-100k-victoria`` (kept, with a stamp, like the files). Each run is a fresh
child that reads the day through :class:`core.metrics.prometheus.PrometheusSource` exactly as the
rollup job would with ``COMPUTELOOP_PROMETHEUS_CLUSTER_LABEL=cluster`` (one query per cluster, 4 in
flight); its rows and samples are checked against the files' rollup. The store's own resident
memory is printed beside the child's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Iterator

from core.config import PROJECT_ROOT

ROOT = PROJECT_ROOT / "var" / "bench" / "fleet-100k"
STORE_ROOT = PROJECT_ROOT / "var" / "bench" / "fleet-100k-victoria"
# The sample columns as dcgm-exporter's metrics (core/metrics/promql.py reads these names).
STORE_METRICS = {"util": "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "fb_used_mib": "DCGM_FI_DEV_FB_USED",
                 "fb_free_mib": "DCGM_FI_DEV_FB_FREE", "energy_mj": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"}
# Query limits of a store that serves 100k GPUs: one day's query for the largest cluster selects
# ~60k series per metric and runs longer than VictoriaMetrics' default 30 s on this 2-core machine.
STORE_FLAGS = ("-search.maxQueryDuration=600s", "-search.maxUniqueTimeseries=2000000",
               "-search.maxSamplesPerQuery=2000000000")
SERIES_PER_POST = 2_000  # series (of one metric) per import request: about 60 MB of JSON
DAY = date(2026, 1, 1)
STEP = 60
VERSION = 1  # bump when the generated files change, so they are written again

# Both children report their peak memory as VmHWM (ru_maxrss would carry the parent's peak across fork and exec).
_PEAK = """
def PEAK_GB():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1e6
"""

CHILD = _PEAK + """
import json, sys, time
from datetime import date
from core.metrics.offline import OfflineSource
t0, c0 = time.perf_counter(), time.process_time()
out = OfflineSource(sys.argv[1]).daily_gpu_stats(date.fromisoformat(sys.argv[2]), step_s=int(sys.argv[3]))
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "rows": out.height,
                  "samples": int(out["samples"].sum()), "used_gpu_hours": float(out["used_gpu_hours"].sum()),
                  "energy_kwh": float(out["energy_kwh"].sum()),
                  "rss_gb": PEAK_GB()}))
"""


def ensure_files(scale: float, shard_gpus: int) -> dict:
    """The generated day, written unless the same one is there."""
    from core.metrics.fleet import write_samples

    stamp = ROOT / "source.json"
    wanted = {"version": VERSION, "scale": scale, "shard_gpus": shard_gpus, "day": DAY.isoformat(), "step_s": STEP}
    known = json.loads(stamp.read_text()) if stamp.exists() else {}
    if known.get("wanted") == wanted:
        return known
    started = time.perf_counter()
    out = write_samples(ROOT, start=DAY, days=1, step_s=STEP, scale=scale, shard_gpus=shard_gpus)
    info = {"wanted": wanted, "gpus": out["gpus"], "rows": out["rows"], "files": len(out["files"]),
            "generated_s": round(time.perf_counter() - started, 1),
            "bytes": sum(Path(f).stat().st_size for f in out["files"])}
    stamp.write_text(json.dumps(info))
    return info


STORE_CHILD = _PEAK + """
import json, sys, time
from datetime import date
from core.metrics.prometheus import PrometheusSource
url, day, step, clusters = sys.argv[1], date.fromisoformat(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
src = PrometheusSource({c: url for c in clusters}, timeout=600, retries=0, left_open_ranges=True, cluster_label="cluster")
t0, c0 = time.perf_counter(), time.process_time()
out = src.daily_gpu_stats(day, step_s=step)
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "rows": out.height,
                  "samples": int(out["samples"].sum()), "queries": src.query_count,
                  "used_gpu_hours": float(out["used_gpu_hours"].sum()), "energy_kwh": float(out["energy_kwh"].sum()),
                  "rss_gb": PEAK_GB()}))
"""


def run_once(child: str = CHILD, *args: str) -> dict:
    args = args or (str(ROOT), DAY.isoformat(), str(STEP))
    done = subprocess.run([sys.executable, "-c", child, *args], cwd=PROJECT_ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the rollup child failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def import_requests(frame) -> Iterator[bytes]:
    """VictoriaMetrics JSON-line import bodies for a frame of samples: one line per series and
    metric (``{"metric": labels, "values": [...], "timestamps": [ms ...]}``), :data:`SERIES_PER_POST`
    series a body. Labels as dcgm-exporter's (``UUID``, ``modelName``, ``hostname``; ``namespace`` and
    ``pod`` only on a GPU running a workload) plus ``cluster``, as remote write adds it."""
    import polars as pl

    series = (frame.with_columns(ts=pl.col("ts").dt.epoch("ms"))
              .group_by("cluster", "hostname", "gpu", "uuid", "model", "namespace", "pod", maintain_order=True)
              .agg("ts", *STORE_METRICS))
    for column, name in STORE_METRICS.items():
        for start in range(0, series.height, SERIES_PER_POST):
            part = series.slice(start, SERIES_PER_POST)
            workload = part.filter(pl.col("namespace") != "")
            idle = part.filter(pl.col("namespace") == "")
            base = dict(__name__=pl.lit(name), cluster="cluster", hostname="hostname", gpu="gpu", UUID="uuid",
                        modelName="model")
            for rows, labels in ((workload, base | {"namespace": "namespace", "pod": "pod"}), (idle, base)):
                if rows.height:
                    yield rows.select(metric=pl.struct(**{k: (v if isinstance(v, pl.Expr) else pl.col(v))
                                                          for k, v in labels.items()}),
                                      values=pl.col(column).cast(pl.List(pl.Float64)),
                                      timestamps="ts").write_ndjson().encode()


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as resp:
        if resp.status not in (200, 204):
            raise SystemExit(f"import answered {resp.status}")


def _rss_gb(pid: int) -> float:
    """Resident memory of process ``pid`` now, GB."""
    return next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")) / 1e6


def store_server(files_info: dict):
    """A VictoriaMetrics on :data:`STORE_ROOT` holding the generated day (imported unless it already is)."""
    from core.metrics.offline import OfflineSource, scan_file
    from tests.support.victoria_server import VictoriaMetricsServer, find_binary

    binary = find_binary()
    if binary is None:
        raise SystemExit("--from store needs Debian's victoria-metrics (apt-get install victoria-metrics)")
    STORE_ROOT.mkdir(parents=True, exist_ok=True)
    stamp = STORE_ROOT / "source.json"
    wanted = {"files": files_info["wanted"], "metrics": STORE_METRICS}
    known = json.loads(stamp.read_text()) if stamp.exists() else {}
    server = VictoriaMetricsServer(STORE_ROOT, binary, extra_args=STORE_FLAGS)
    if known.get("wanted") != wanted:
        stamp.unlink(missing_ok=True)
        shutil.rmtree(STORE_ROOT / "data", ignore_errors=True)
    server.start()
    if known.get("wanted") == wanted:
        return server, known
    started, sent = time.perf_counter(), 0
    for path in OfflineSource(ROOT).files(DAY):
        for body in import_requests(scan_file(path).collect()):
            _post(f"{server.url}/api/v1/import", body)
            sent += len(body)
        print(f"  imported {path.name} ({time.perf_counter() - started:.0f} s)", flush=True)
    with urllib.request.urlopen(f"{server.url}/internal/force_flush", timeout=600):
        pass
    known = {"wanted": wanted, "imported_s": round(time.perf_counter() - started, 1), "json_bytes": sent,
             "samples": files_info["rows"] * len(STORE_METRICS)}
    stamp.write_text(json.dumps(known))
    return server, known


def clusters_of_day() -> list[str]:
    from core.metrics.fleet import load_manifest

    return sorted({g.cluster for g in load_manifest(ROOT).gpus})


def run_store(info: dict, runs: int) -> None:
    """``--from store``: import once, then ``runs`` rollups through the Prometheus API."""
    server, known = store_server(info)
    try:
        print(f"store: VictoriaMetrics, {known['samples']:,} samples ({len(STORE_METRICS)} metrics), imported in "
              f"{known['imported_s']} s ({known['json_bytes'] / 1e9:.1f} GB of JSON lines)", flush=True)
        files = run_once()
        clusters = json.dumps(clusters_of_day())
        results = []
        for _ in range(runs):
            r = run_once(STORE_CHILD, server.url, DAY.isoformat(), str(STEP), clusters)
            r["store_rss_gb"] = _rss_gb(server.process.pid)
            results.append(r)
            print(f"  rollup from the store: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU (portal), peak "
                  f"{r['rss_gb']:.2f} GB (portal), store resident {r['store_rss_gb']:.2f} GB, {r['queries']} queries, "
                  f"{r['rows']:,} rows", flush=True)
        same = all(r["rows"] == files["rows"] and r["samples"] == files["samples"]
                   and abs(r["used_gpu_hours"] / files["used_gpu_hours"] - 1) < 1e-9 for r in results)
        print(f"  same rows, samples and used GPU-hours as the files' rollup ({files['rows']:,} rows, "
              f"{files['samples']:,} samples, {files['used_gpu_hours']:,.1f} GPU-h): {'yes' if same else 'NO'}; energy "
              f"{results[0]['energy_kwh']:,.1f} vs {files['energy_kwh']:,.1f} kWh (the store's max - min per series "
              f"corrects no counter reset and misses the interval at a namespace change: core/metrics/promql.py)", flush=True)
        wall = statistics.median(r["wall_s"] for r in results)
        rss = max(r["rss_gb"] for r in results)
        print(f"| 100k-GPU day from the store, wall s (median of {runs}) | {wall:.1f} | < 60 | {'met' if wall < 60 else 'MISSED'} |")
        print(f"| 100k-GPU day from the store, portal peak memory GB (worst) | {rss:.2f} | < 4 | {'met' if rss < 4 else 'MISSED'} |")
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_100k", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=100.0, help="fleet scale (100: 100,800 GPUs)")
    parser.add_argument("--shard-gpus", type=int, default=10_000, help="GPUs per file")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--from", dest="sources", default="files",
                        help="files, store or files,store (default files)")
    args = parser.parse_args(argv)
    sources = {s.strip() for s in args.sources.split(",") if s.strip()}
    if not sources or sources - {"files", "store"}:
        parser.error("--from takes files, store or both, comma-separated")
    info = ensure_files(args.scale, args.shard_gpus)
    print(f"fleet-day: {info['gpus']:,} GPUs, {info['rows']:,} samples in {info['files']} files "
          f"({info['bytes'] / 1e9:.1f} GB), generated in {info['generated_s']} s", flush=True)
    if "store" in sources:
        run_store(info, args.runs)
    if "files" not in sources:
        return
    runs = [run_once() for _ in range(args.runs)]
    for r in runs:
        print(f"  rollup: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak {r['rss_gb']:.2f} GB, "
              f"{r['rows']:,} rows, {r['samples'] / r['wall_s'] / 1e6:.1f} M samples/s", flush=True)
    wall = statistics.median(r["wall_s"] for r in runs)
    rss = max(r["rss_gb"] for r in runs)
    print(f"| 100k-GPU day from files, wall s (median of {len(runs)}) | {wall:.1f} | < 60 | {'met' if wall < 60 else 'MISSED'} |")
    print(f"| 100k-GPU day from files, peak memory GB (worst) | {rss:.2f} | < 4 | {'met' if rss < 4 else 'MISSED'} |")


if __name__ == "__main__":
    main()
