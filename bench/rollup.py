"""Daily rollup speed: a month of the demo fleet (1,008 GPUs × 30 days × 1-minute samples ≈ 43.5 M
samples, Parquet, one file per day) rolled up with polars, and the same rollup written with pandas
on the same days for comparison. Each measurement runs in a fresh child process so its peak RSS
(``VmHWM`` of ``/proc/self/status``) is its own; the child inherits the parent's CPU affinity (all
cores: the targets are for this 2-core machine).

The month is rolled up the way a backfill does it: :func:`core.metrics.rollup.rollup_range` over
the offline layout (:class:`core.metrics.offline.OfflineSource`, days in a thread pool, one worker
per CPU). The files are what :func:`core.metrics.fleet.write_samples` writes (series ids, integer
MiB, no codec: :func:`core.metrics.offline.write_day_file`); the same month is also kept in the plain
layout (label strings, Float64 MiB, lz4 — what the writer wrote before, and what an imported file
looks like) and rolled up the same way, so the figure for imported files is measured too. The
in-memory figures roll up the same days already read (series ids, and label strings), ``workers``
days at a time concurrently; the single-day figure is the month rolled up one day after another.
The pandas comparison is the polars month path (``rollup_range``) against ``rollup_day_pandas`` on
the same days. Each child also reports its CPU seconds (all threads), a figure less sensitive than
wall time to other processes loading the machine; the load average is printed with the figures.

``python -m bench.rollup --layouts`` compares file layouts on one day (size, read and rollup CPU).

After the month, :func:`run` compares our rollup with DuckDB's group-by on one fleet-day of a plain
exporter's file (3,000 GPUs, label strings, snappy Parquet from pandas; :mod:`bench.rollup_duckdb`,
also runnable alone as ``python -m bench.rollup_duckdb``): both throughputs, the ratio, and a
failure if their figures differ.

Targets (issue #4): ≥ 40 M samples/s; ≥ 5× faster than pandas; the month in < 2 s and < 2 GB.
Rows are (name, value, target), lower is better, the unit in the name.

The month is generated once into ``var/bench/samples`` (about 20 s, 1.3 GB) and copied to the
plain layout in ``var/bench/samples-plain`` (about 15 s, 1.2 GB); both are reused.
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
PLAIN = PROJECT_ROOT / "var" / "bench" / "samples-plain"
START, DAYS, STEP, SEED = date(2026, 1, 1), 30, 60, 7
PANDAS_DAYS = 3  # pandas takes ~1 s a day; the speed ratio is measured on the same 3 days


def ensure_month(root: Path = ROOT) -> Path:
    """Generate the benchmark month unless ``root`` already holds it in the current layout; returns ``root``."""
    import polars as pl

    from core.metrics.fleet import write_samples
    from core.metrics.offline import SERIES_METADATA

    manifest = root / "manifest.json"
    want = {"start": START.isoformat(), "days": DAYS, "step_s": STEP}
    files = sorted(root.glob("day=*/part.parquet"))
    if manifest.exists() and json.loads(manifest.read_text())["meta"] == want and len(files) >= DAYS and \
            SERIES_METADATA in pl.read_parquet_metadata(files[0]):
        return root
    started = time.perf_counter()
    result = write_samples(root, start=START, days=DAYS, step_s=STEP, seed=SEED)
    print(f"generated {result['rows']:,} samples of {result['gpus']} GPUs in {time.perf_counter() - started:.1f} s "
          f"({(time.perf_counter() - started) / DAYS:.2f} s per day)", file=sys.stderr)
    return root


def ensure_plain(root: Path = ROOT, plain: Path = PLAIN) -> Path:
    """The month of ``root`` in the plain layout (label strings, Float64 MiB, lz4, one row group per
    day: the writer's layout before series ids) under ``plain``; returns ``plain``."""

    from core.metrics.offline import scan_file

    stamp = plain / "source.json"
    want = {"manifest_mtime": (root / "manifest.json").stat().st_mtime, "days": DAYS}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return plain
    for i in range(DAYS):
        name = f"day={(START + timedelta(days=i)).isoformat()}"
        frame = scan_file(root / name / "part.parquet").collect()
        (plain / name).mkdir(parents=True, exist_ok=True)
        frame.write_parquet(plain / name / "part.parquet", compression="lz4", statistics=True, row_group_size=frame.height)
    stamp.write_text(json.dumps(want))
    return plain


def _child(kind: str, root: str, days: int) -> dict:
    """Roll ``days`` days up with ``kind`` in this process: ``range`` (rollup_range over the offline
    layout under ``root``, concurrent days), ``sequential`` (OfflineSource.daily_gpu_stats of each
    day, one after another), ``inmemory`` / ``inmemory-strings`` (a few days read first — series ids,
    or the label columns — then rolled up ``workers`` at a time; the read is not timed) or
    ``pandas``."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd
    import polars as pl

    from core.metrics.offline import SERIES_INPUT_COLUMNS, OfflineSource, series_labels
    from core.metrics.rollup import ROLLUP_INPUT_COLUMNS, _cpus, rollup_day, rollup_day_pandas, rollup_day_series, rollup_range

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
    elif kind.startswith("inmemory"):
        workers = _cpus()
        days_list = list(paths)
        series = kind == "inmemory"

        def read(d: date):
            if series:
                return pl.read_parquet(paths[d], columns=list(SERIES_INPUT_COLUMNS)), series_labels(paths[d])[0]
            return pl.read_parquet(paths[d], columns=list(ROLLUP_INPUT_COLUMNS)), None

        def roll(item):
            (frame, labels), d = item
            return rollup_day_series(frame, labels, d, step_s=STEP) if series else rollup_day(frame, d, step_s=STEP)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i in range(0, len(days_list), 3 * workers):  # a few days in memory at a time (~0.1-0.2 GB each)
                batch = days_list[i:i + 3 * workers]
                frames = [read(d) for d in batch]
                started, cpu0 = time.perf_counter(), time.process_time()
                outs = list(pool.map(roll, zip(frames, batch)))
                elapsed += time.perf_counter() - started
                cpu += time.process_time() - cpu0
                rows += sum(f.height for f, _ in frames)
                out_rows += sum(o.height for o in outs)
                del frames, outs
    else:
        source = OfflineSource(root)
        for day, path in paths.items():
            started, cpu0 = time.perf_counter(), time.process_time()
            if kind == "sequential":
                out = source.daily_gpu_stats(day, step_s=STEP)
                rows += int(out["samples"].sum())
            else:
                frame = pd.read_parquet(path, columns=list(ROLLUP_INPUT_COLUMNS))
                out = rollup_day_pandas(frame, day, step_s=STEP)
                rows += len(frame)
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - cpu0
            out_rows += len(out)
    return {"seconds": elapsed, "cpu_seconds": cpu, "samples": rows, "rollup_rows": out_rows, "peak_mb": _peak_mb()}


def _peak_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM`` (this program's own), else ``ru_maxrss`` (which on Linux
    starts at the parent's RSS at fork time)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(kind: str, days: int, root: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.rollup", "--child", kind, str(root), str(days)],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run() -> list[tuple[str, float, float]]:
    """(name, value, target) rows; lower is better; also prints samples/s, CPU and peak memory."""
    root = ensure_month()
    plain = ensure_plain(root)
    _measure("range", DAYS, root)  # warm the page cache
    _measure("range", DAYS, plain)
    load = os.getloadavg()[0]
    month = _measure("range", DAYS, root)
    month_plain = _measure("range", DAYS, plain)
    inmem = _measure("inmemory", DAYS, root)
    inmem_strings = _measure("inmemory-strings", DAYS, root)
    seq = _measure("sequential", DAYS, root)
    few = _measure("range", PANDAS_DAYS, root)
    pandas = _measure("pandas", PANDAS_DAYS, root)
    rate = month["samples"] / month["seconds"]
    ratio = pandas["seconds"] / few["seconds"]

    def line(what: str, m: dict) -> str:
        return (f"{what}: {m['samples'] / m['seconds'] / 1e6:.1f} M samples/s ({m['seconds']:.2f} s), "
                f"CPU {m['cpu_seconds']:.2f} s = {m['samples'] / m['cpu_seconds'] / 1e6:.1f} M samples per CPU-second")

    print(f"load average before the measurements: {load:.2f} (2 cores; others' work slows the wall-time figures)", file=sys.stderr)
    print(f"polars, month from Parquet: {month['samples']:,} samples in {month['seconds']:.2f} s = {rate / 1e6:.1f} M samples/s, "
          f"peak RSS {month['peak_mb']:.0f} MB, {month['rollup_rows']:,} rollup rows", file=sys.stderr)
    print("  " + line("same, CPU", month).split(", ", 1)[1], file=sys.stderr)
    print(line("polars, month from Parquet in the plain layout (label strings, lz4; imported files)", month_plain)
          + f", peak RSS {month_plain['peak_mb']:.0f} MB", file=sys.stderr)
    print(line("polars, month in memory (read excluded), series ids", inmem), file=sys.stderr)
    print(line("polars, month in memory (read excluded), label strings", inmem_strings), file=sys.stderr)
    print(f"polars, one day from Parquet (month one day after another): {1000 * seq['seconds'] / DAYS:.0f} ms per day = "
          f"{seq['samples'] / seq['seconds'] / 1e6:.1f} M samples/s, CPU {1000 * seq['cpu_seconds'] / DAYS:.0f} ms per day",
          file=sys.stderr)
    print(f"pandas, {PANDAS_DAYS} days from Parquet: {pandas['samples'] / pandas['seconds'] / 1e6:.1f} M samples/s, "
          f"peak RSS {pandas['peak_mb']:.0f} MB; polars is {ratio:.1f}× faster", file=sys.stderr)
    from bench import rollup_duckdb

    return [
        *rollup_duckdb.run(),
        ("rollup, month of 1,008 GPUs at 1 min from Parquet (s)", month["seconds"], 2.0),
        ("rollup, month from Parquet: peak RSS (MB)", month["peak_mb"], 2048.0),
        ("rollup from Parquet: ms per million samples (40 M/s = 25)", 1000 * month["seconds"] / (month["samples"] / 1e6), 25.0),
        ("rollup in memory: ms per million samples (40 M/s = 25)", 1000 * inmem["seconds"] / (inmem["samples"] / 1e6), 25.0),
        ("rollup: pandas time / polars time, inverted (≤ 0.2 = ≥ 5× faster)", 1.0 / ratio, 0.2),
    ]


LAYOUTS = (  # (name, series ids, integer MiB, compression)
    ("label strings, Float64 MiB, lz4 (before)", False, False, "lz4"),
    ("label strings, Float64 MiB, zstd", False, False, "zstd"),
    ("label strings, Float64 MiB, none", False, False, "uncompressed"),
    ("label strings, Int32 MiB, none", False, True, "uncompressed"),
    ("series ids, Int32 MiB, zstd", True, True, "zstd"),
    ("series ids, Int32 MiB, lz4", True, True, "lz4"),
    ("series ids, Int32 MiB, none (write_samples)", True, True, "uncompressed"),
)


def compare_layouts(root: Path = ROOT, repeat: int = 9) -> None:
    """One day of the month in each of :data:`LAYOUTS`: file size, CPU to read the columns the rollup
    needs and CPU of the whole daily rollup (``OfflineSource.daily_gpu_stats``), medians of ``repeat``."""
    import statistics
    import tempfile

    import polars as pl

    from core.metrics.offline import SERIES_INPUT_COLUMNS, OfflineSource, scan_file, write_day_file
    from core.metrics.rollup import ROLLUP_INPUT_COLUMNS

    name = f"day={START.isoformat()}"
    frame = scan_file(ensure_month(root) / name / "part.parquet").collect()

    def cpu_ms(fn) -> float:
        times = []
        for _ in range(repeat):
            c0 = time.process_time()
            fn()
            times.append(1000 * (time.process_time() - c0))
        return statistics.median(times)

    print(f"one day: {frame.height:,} samples; load average {os.getloadavg()[0]:.2f}")
    print("| layout | MB | read, CPU ms | read + rollup, CPU ms |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, series, integer, compression in LAYOUTS:
            folder = Path(tmp) / label.replace(" ", "_").replace(",", "") / name
            folder.mkdir(parents=True)
            path = folder / "part.parquet"
            if series:
                write_day_file(frame, path, compression=compression)
            else:
                out = frame.with_columns(pl.col("fb_used_mib", "fb_free_mib").cast(pl.Int32)) if integer else frame
                out.write_parquet(path, compression=compression, statistics=True, row_group_size=frame.height)
            columns = list(SERIES_INPUT_COLUMNS if series else ROLLUP_INPUT_COLUMNS)
            source = OfflineSource(folder.parent)
            read = cpu_ms(lambda: pl.read_parquet(path, columns=columns))
            both = cpu_ms(lambda: source.daily_gpu_stats(START, step_s=STEP))
            print(f"| {label} | {path.stat().st_size / 1e6:.1f} | {read:.1f} | {both:.1f} |")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--layouts":
        compare_layouts()
        return 0
    failed = 0
    for name, value, target in run():
        ok = value <= target
        failed += not ok
        print(f"| {name} | {value:.3f} | ≤ {target:g} | {'ok' if ok else 'MISSED'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
