"""The daily rollup of a 100,000-GPU fleet-day from files (issue #13, point 4):
`python -m bench.fleet_100k [--scale 100] [--shard-gpus 10000] [--runs 3]`.

The demo fleet at ``--scale`` 100 (100,800 GPUs) is generated for one day at 60 s steps — about
144 M samples — by :func:`core.metrics.fleet.write_samples` in shards of ``--shard-gpus`` GPUs (one
Parquet file each, with series ids), once, into ``var/bench/fleet-100k`` (generated, never
committed; about 2 minutes and 5 GB on this machine). Each run rolls the day up in a fresh child
process through :meth:`core.metrics.offline.OfflineSource.daily_gpu_stats` — what the rollup job
calls — which reads the shards one at a time; the child reports its wall time, CPU time and peak
memory (``VmHWM``: ``ru_maxrss`` would carry the parent's peak across the fork and exec). Targets:
under 60 s and under 4 GB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from core.config import PROJECT_ROOT

ROOT = PROJECT_ROOT / "var" / "bench" / "fleet-100k"
DAY = date(2026, 1, 1)
STEP = 60
VERSION = 1  # bump when the generated files change, so they are written again

CHILD = """
import json, sys, time
from datetime import date
from core.metrics.offline import OfflineSource
t0, c0 = time.perf_counter(), time.process_time()
out = OfflineSource(sys.argv[1]).daily_gpu_stats(date.fromisoformat(sys.argv[2]), step_s=int(sys.argv[3]))
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "rows": out.height,
                  "samples": int(out["samples"].sum()),
                  "rss_gb": next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1e6}))
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


def run_once() -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), DAY.isoformat(), str(STEP)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_100k", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=100.0, help="fleet scale (100: 100,800 GPUs)")
    parser.add_argument("--shard-gpus", type=int, default=10_000, help="GPUs per file")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    info = ensure_files(args.scale, args.shard_gpus)
    print(f"fleet-day: {info['gpus']:,} GPUs, {info['rows']:,} samples in {info['files']} files "
          f"({info['bytes'] / 1e9:.1f} GB), generated in {info['generated_s']} s", flush=True)
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
