"""Daily rollup speed: a month of the demo fleet (1,008 GPUs × 30 days × 1-minute samples ≈ 43.5 M
samples, Parquet, one file per day) rolled up with polars, and the same rollup written with pandas
on the same days for comparison. Each measurement runs in a fresh child process so its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own; the child inherits the parent's CPU
affinity (all cores: the targets are for this 2-core machine).

The month is rolled up the way a backfill does it: :func:`core.metrics.rollup.rollup_range` over
the offline layout (:class:`core.metrics.offline.OfflineSource`, days in a thread pool, one worker
per CPU). The in-memory figure rolls up the same days already read, ``workers`` days at a time
concurrently; the single-day figure is the month rolled up one day after another. The pandas
comparison is the polars month path (``rollup_range``) against ``rollup_day_pandas`` on the same
days. Each child also reports its CPU seconds (all threads), a figure less sensitive than wall
time to other processes loading the machine.

Targets (issue #4): ≥ 40 M samples/s; ≥ 5× faster than pandas; the month in < 2 s and < 2 GB.
Rows are (name, value, target), lower is better, the unit in the name.

The month is generated once into ``var/bench/samples`` (about 20 s, 1.3 GB) and reused.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from core.config import PROJECT_ROOT

ROOT = PROJECT_ROOT / "var" / "bench" / "samples"
START, DAYS, STEP, SEED = date(2026, 1, 1), 30, 60, 7
PANDAS_DAYS = 3  # pandas takes ~1 s a day; the speed ratio is measured on the same 3 days


def ensure_month(root: Path = ROOT) -> Path:
    """Generate the benchmark month unless ``root`` already holds it; returns ``root``."""
    from core.metrics.fleet import write_samples

    manifest = root / "manifest.json"
    want = {"start": START.isoformat(), "days": DAYS, "step_s": STEP}
    if manifest.exists() and json.loads(manifest.read_text())["meta"] == want and \
            len(list(root.glob("day=*/part.parquet"))) >= DAYS:
        return root
    started = time.perf_counter()
    result = write_samples(root, start=START, days=DAYS, step_s=STEP, seed=SEED)
    print(f"generated {result['rows']:,} samples of {result['gpus']} GPUs in {time.perf_counter() - started:.1f} s "
          f"({(time.perf_counter() - started) / DAYS:.2f} s per day)", file=sys.stderr)
    return root


def _child(kind: str, root: str, days: int) -> dict:
    """Roll ``days`` days up with ``kind`` in this process: ``range`` (rollup_range over the offline
    layout, concurrent days), ``sequential`` (rollup_day of each day's Parquet scan, one after
    another), ``inmemory`` (a few days read first, then rolled up ``workers`` at a time; the read is not
    timed) or ``pandas``."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd
    import polars as pl

    from core.metrics.rollup import ROLLUP_INPUT_COLUMNS, _cpus, rollup_day, rollup_day_pandas, rollup_range

    last = START + timedelta(days=days - 1)
    paths = {START + timedelta(days=i): Path(root) / f"day={(START + timedelta(days=i)).isoformat()}" / "part.parquet"
             for i in range(days)}
    rows = out_rows = 0
    elapsed = cpu = 0.0
    if kind == "range":
        started, cpu0 = time.perf_counter(), time.process_time()
        out = rollup_range(root, START, last, step_s=STEP)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
        rows, out_rows = int(out["samples"].sum()), out.height
    elif kind == "inmemory":
        workers = _cpus()
        days_list = list(paths)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i in range(0, len(days_list), 3 * workers):  # a few days in memory at a time (~0.2 GB each)
                batch = days_list[i:i + 3 * workers]
                frames = [pl.read_parquet(paths[d], columns=list(ROLLUP_INPUT_COLUMNS)) for d in batch]
                started, cpu0 = time.perf_counter(), time.process_time()
                outs = list(pool.map(lambda fd: rollup_day(fd[0], fd[1], step_s=STEP), zip(frames, batch)))
                elapsed += time.perf_counter() - started
                cpu += time.process_time() - cpu0
                rows += sum(f.height for f in frames)
                out_rows += sum(o.height for o in outs)
                del frames, outs
    else:
        for day, path in paths.items():
            started, cpu0 = time.perf_counter(), time.process_time()
            if kind == "sequential":
                out = rollup_day(pl.scan_parquet(path), day, step_s=STEP)
                rows += int(out["samples"].sum())
            else:
                frame = pd.read_parquet(path, columns=list(ROLLUP_INPUT_COLUMNS))
                out = rollup_day_pandas(frame, day, step_s=STEP)
                rows += len(frame)
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - cpu0
            out_rows += len(out)
    return {"seconds": elapsed, "cpu_seconds": cpu, "samples": rows, "rollup_rows": out_rows,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _measure(kind: str, days: int, root: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.rollup", "--child", kind, str(root), str(days)],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run() -> list[tuple[str, float, float]]:
    """(name, value, target) rows; lower is better; also prints samples/s and peak memory."""
    root = ensure_month()
    _measure("range", DAYS, root)  # warm the page cache
    month = _measure("range", DAYS, root)
    inmem = _measure("inmemory", DAYS, root)
    seq = _measure("sequential", DAYS, root)
    few = _measure("range", PANDAS_DAYS, root)
    pandas = _measure("pandas", PANDAS_DAYS, root)
    rate = month["samples"] / month["seconds"]
    rate_inmem = inmem["samples"] / inmem["seconds"]
    ratio = pandas["seconds"] / few["seconds"]
    print(f"polars, month from Parquet: {month['samples']:,} samples in {month['seconds']:.2f} s = {rate / 1e6:.1f} M samples/s, "
          f"peak RSS {month['peak_mb']:.0f} MB, {month['rollup_rows']:,} rollup rows", file=sys.stderr)
    print(f"  CPU {month['cpu_seconds']:.2f} s (all threads) = {month['samples'] / month['cpu_seconds'] / 1e6:.1f} M samples per CPU-second",
          file=sys.stderr)
    print(f"polars, month in memory (read excluded): {rate_inmem / 1e6:.1f} M samples/s, "
          f"CPU {inmem['cpu_seconds']:.2f} s", file=sys.stderr)
    print(f"polars, one day from Parquet (month one day after another): {1000 * seq['seconds'] / DAYS:.0f} ms per day = "
          f"{seq['samples'] / seq['seconds'] / 1e6:.1f} M samples/s, CPU {1000 * seq['cpu_seconds'] / DAYS:.0f} ms per day",
          file=sys.stderr)
    print(f"pandas, {PANDAS_DAYS} days from Parquet: {pandas['samples'] / pandas['seconds'] / 1e6:.1f} M samples/s, "
          f"peak RSS {pandas['peak_mb']:.0f} MB; polars is {ratio:.1f}× faster", file=sys.stderr)
    return [
        ("rollup, month of 1,008 GPUs at 1 min from Parquet (s)", month["seconds"], 2.0),
        ("rollup, month from Parquet: peak RSS (MB)", month["peak_mb"], 2048.0),
        ("rollup from Parquet: ms per million samples (40 M/s = 25)", 1000 * month["seconds"] / (month["samples"] / 1e6), 25.0),
        ("rollup in memory: ms per million samples (40 M/s = 25)", 1000 * inmem["seconds"] / (inmem["samples"] / 1e6), 25.0),
        ("rollup: pandas time / polars time, inverted (≤ 0.2 = ≥ 5× faster)", 1.0 / ratio, 0.2),
    ]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        return 0
    failed = 0
    for name, value, target in run():
        ok = value <= target
        failed += not ok
        print(f"| {name} | {value:.3f} | ≤ {target:g} | {'ok' if ok else 'MISSED'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
