"""Our daily rollup against DuckDB on a plain exporter's file (issue #13, point 1).

The file is one fleet-day as an exporter that knows nothing of our series ids writes it: the
documented sample schema (:data:`core.metrics.schema.SAMPLE_SCHEMA`) with label strings, snappy
Parquet written by pandas (pyarrow, its default row groups). 3,000 GPUs at 60 s steps, idle gaps
(namespace "" and no load), namespaces that change mid-day (a GPU may return to a namespace it
left), 3 % of the samples missing: about 4.2 M samples. Three row orders of the same samples:

* ``per-series`` — each GPU's rows together, in time order (a per-series export of a range query);
* ``scrape`` — all GPUs at one instant, then the next (what a scraper appending each scrape writes);
* ``shuffled`` — no order at all (a distributed job's output, say): ours must sort, DuckDB need not.

Ours is :func:`core.metrics.rollup.rollup_range` of that day over the offline layout (what the
rollup job runs). DuckDB runs :data:`SQL` — the same per-(uuid, namespace) group-by — on the same
file in the same process, alternating with ours, ``runs`` times each; the medians are reported.

Compared figures (:data:`COMPARED`; :func:`check_same` fails the benchmark on any difference):
the labels a row carries (``cluster``, ``hostname``, ``model``: those of the row's earliest sample),
``samples``, ``mean_util``, ``peak_util``, ``mean_mem``, ``peak_mem``, ``allocated_gpu_hours``
and ``used_gpu_hours``. Counts, labels and maxima must be equal exactly; sums and means to a
relative 1e-9 (the two add in different orders). The SQL applies the same rule as our reader for
values that are not measurements (not finite, negative or above data/cli_limits.yaml
``sample_values``: missing). Ours only — not asked of DuckDB, so its time does not include them:
``energy_kwh`` (counter deltas in each GPU's time order, resets), ``coverage`` (a second
aggregation over the GPU) and the removal of duplicate (uuid, ts) samples (the file has none).

Threads: DuckDB uses its default, one thread per core (both cores here; printed). Ours rolls the
single day up on one Python thread (``rollup_range`` runs one worker per day): a second thread reads
the next Parquet row group (Arrow's pool decoding its columns on both cores) while the compiled loop
of :mod:`core.metrics.plain_files` goes through the last one's rows on the day's thread; for a
shuffled day, the rows copied into their GPUs' stretches the same way, then the stretches of each half
of the GPUs rolled up on a thread of its own.

``python -m bench.rollup_duckdb [--runs N] [--gpus N] [--step S]`` runs this comparison alone
(``--gpus 20000``: a fleet-size day, about 28 M samples, generated once in about 30 s with 9 GB of
memory; ``--gpus 100000 --step 3600``: many groups for few samples); ``python -m bench rollup``
runs it after the month (:mod:`bench.rollup`). The files are generated once into
``var/bench/plain-exporter`` (about 45 s on a loaded machine, 390 MB for the three orders) and reused.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import date
from itertools import pairwise
from pathlib import Path

import numpy as np

from core.config import PROJECT_ROOT

ROOT = PROJECT_ROOT / "var" / "bench" / "plain-exporter"
DAY, GPUS, STEP, SEED, MISSING = date(2026, 1, 1), 3000, 60, 13, 0.03
ORDERS = ("per-series", "scrape", "shuffled")
RUNS = 7
GENERATOR_VERSION = 1  # bump when plain_day changes, so cached files are regenerated

LABELS = ("cluster", "hostname", "model")
COMPARED = ("uuid", "namespace", *LABELS, "samples", "mean_util", "peak_util", "mean_mem", "peak_mem",
            "allocated_gpu_hours", "used_gpu_hours")
EXACT = ("uuid", "namespace", *LABELS, "samples", "peak_util", "peak_mem")
RELATIVE_TOLERANCE = 1e-9

# The per-(uuid, namespace) group-by of one UTC day. {path}, {start}, {end}, {hours_per_sample} and the
# largest values are filled in by duckdb_sql; a value that is not a measurement counts as missing.
SQL = """
WITH day AS (
    SELECT uuid, namespace, cluster, hostname, model, ts,
           CASE WHEN isfinite(util) AND util BETWEEN 0 AND {max_util} THEN util END AS util,
           CASE WHEN isfinite(fb_used_mib) AND fb_used_mib BETWEEN 0 AND {max_used} THEN fb_used_mib END AS used,
           CASE WHEN isfinite(fb_free_mib) AND fb_free_mib BETWEEN 0 AND {max_free} THEN fb_free_mib END AS free
    FROM read_parquet('{path}')
    WHERE ts >= TIMESTAMPTZ '{start}' AND ts < TIMESTAMPTZ '{end}'
)
SELECT uuid, namespace,
       arg_min(cluster, ts) AS cluster, arg_min(hostname, ts) AS hostname, arg_min(model, ts) AS model,
       count(*) AS samples,
       avg(util) AS mean_util, max(util) AS peak_util,
       avg(CASE WHEN used + free > 0 THEN used / (used + free) END) AS mean_mem,
       max(CASE WHEN used + free > 0 THEN used / (used + free) END) AS peak_mem,
       CASE WHEN namespace <> '' THEN count(*) * {hours_per_sample}::DOUBLE ELSE 0.0::DOUBLE END AS allocated_gpu_hours,
       coalesce(sum(util), 0.0) * {hours_per_sample}::DOUBLE AS used_gpu_hours
FROM day
GROUP BY uuid, namespace
ORDER BY uuid, namespace
"""


def duckdb_sql(path: Path | str, day: date, *, step_s: int = STEP) -> str:
    """:data:`SQL` for ``day`` of the Parquet file ``path``."""
    from core.metrics.schema import largest_value
    from core.metrics.rollup import day_bounds, expected_per_day

    expected_per_day(step_s)
    start, end = day_bounds(day)
    return SQL.format(path=str(path).replace("'", "''"), start=start.isoformat(), end=end.isoformat(),
                      hours_per_sample=repr(step_s / 3600.0), max_util=repr(largest_value("util")),
                      max_used=repr(largest_value("fb_used_mib")), max_free=repr(largest_value("fb_free_mib")))


def duckdb_rollup(path: Path | str, day: date, *, step_s: int = STEP, con=None):
    """DuckDB's figures (:data:`COMPARED`) for ``day`` of ``path``, a polars frame sorted by uuid
    and namespace; ``con`` a DuckDB connection (default: a new in-memory one)."""
    import duckdb
    import polars as pl

    con = con or duckdb.connect()
    frame = pl.from_arrow(con.sql(duckdb_sql(path, day, step_s=step_s)).to_arrow_table())
    return frame.select(pl.col(c) for c in COMPARED).with_columns(pl.col("samples").cast(pl.Int64))


def check_same(ours, theirs) -> None:
    """Raise ``AssertionError`` naming the first column of :data:`COMPARED` where our rollup and
    DuckDB's disagree (exact for :data:`EXACT`, else to :data:`RELATIVE_TOLERANCE`)."""
    from polars.testing import assert_frame_equal

    ours = ours.select(COMPARED).sort("uuid", "namespace")
    theirs = theirs.select(COMPARED).sort("uuid", "namespace")
    if ours.height != theirs.height:
        raise AssertionError(f"rows differ: ours {ours.height}, DuckDB {theirs.height}")
    for column in COMPARED:
        exact = column in EXACT
        assert_frame_equal(ours.select(column), theirs.select(column), check_dtypes=False, check_exact=exact,
                           rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0)


def plain_day(*, gpus: int = GPUS, step_s: int = STEP, day: date = DAY, seed: int = SEED,
              missing: float = MISSING, changes: tuple[float, ...] = (0.45, 0.3, 0.15, 0.1)):
    """One day of a plain exporter's samples as a pandas frame in SAMPLE_SCHEMA order, each GPU's
    rows together in time order. ``changes[k]`` is the share of GPUs whose namespace changes ``k``
    times during the day (each stretch is idle — namespace "" and no load — one time in five);
    ``missing`` the share of samples left out at random."""
    return plain_day_frame(gpus=gpus, step_s=step_s, day=day, seed=seed, missing=missing, changes=changes).to_pandas()


def plain_day_frame(*, gpus: int = GPUS, step_s: int = STEP, day: date = DAY, seed: int = SEED,
                    missing: float = MISSING, changes: tuple[float, ...] = (0.45, 0.3, 0.15, 0.1)):
    """:func:`plain_day` as a polars frame (a fleet of 20,000 GPUs as pandas strings takes 19 GB)."""
    import polars as pl

    rng = np.random.default_rng(seed)
    per_day = 86400 // step_s
    nodes = np.arange(gpus) // 8
    clusters = np.array(["bj-a", "sh-b", "gz-c"])[nodes % 3]
    models = np.array(["h100-sxm", "a100-80g", "l40s"])[nodes % 3]
    memory = np.array([81559.0, 81920.0, 46068.0])[nodes % 3]
    tdp = np.array([700.0, 400.0, 350.0])[nodes % 3]
    uuids = np.array([f"GPU-{rng.integers(0, 2**63):016x}-{i:06d}" for i in range(gpus)])
    teams = np.array([""] + [f"team-{i:02d}" for i in range(80)])

    # namespace of each GPU at each step: stretches between change points, "" one time in five
    ns = np.empty((gpus, per_day), dtype=np.int16)
    level_util = np.empty((gpus, per_day))
    level_mem = np.empty((gpus, per_day))
    counts = rng.choice(len(changes), size=gpus, p=np.asarray(changes) / sum(changes))
    for g in range(gpus):
        cuts = np.sort(rng.choice(np.arange(1, per_day), size=counts[g], replace=False))
        bounds = np.concatenate(([0], cuts, [per_day]))
        for a, b in pairwise(bounds):
            idle = rng.random() < 0.2
            ns[g, a:b] = 0 if idle else rng.integers(1, len(teams))
            level_util[g, a:b] = 0.0 if idle else rng.uniform(0.05, 0.95)
            level_mem[g, a:b] = rng.uniform(0.0, 0.02) if idle else rng.uniform(0.2, 0.95)
    busy = ns > 0
    util = np.where(busy, np.clip(level_util + rng.normal(0, 0.05, ns.shape), 0.0, 1.0), 0.0)
    memf = np.where(busy, np.clip(level_mem + rng.normal(0, 0.01, ns.shape), 0.0, 0.99), level_mem)
    fb_used = np.rint(memf * memory[:, None])
    fb_free = memory[:, None] - fb_used
    power = tdp[:, None] * (0.1 + 0.9 * util) + rng.normal(0, 2.0, ns.shape)
    energy = rng.uniform(1e9, 1e12, size=(gpus, 1)) + np.cumsum(power * step_s * 1000.0, axis=1)  # mJ

    keep = (rng.random(ns.shape) >= missing).ravel()
    gpu_of = (np.flatnonzero(keep) // per_day)
    start = np.datetime64(day.isoformat(), "us")
    ts = np.tile(start + (np.arange(per_day) * step_s * 1_000_000).astype("timedelta64[us]"), gpus)[keep]
    team_of = ns.ravel()[keep]

    def per_gpu(values) -> pl.Series:  # strings gathered by polars, not made per sample by numpy (20 GB at 20,000 GPUs)
        return pl.Series(values).gather(gpu_of)

    frame = pl.DataFrame({
        "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
        "cluster": per_gpu(clusters), "hostname": per_gpu([f"node-{n}" for n in nodes]),
        "gpu": per_gpu([str(g % 8) for g in range(gpus)]), "uuid": per_gpu(uuids), "model": per_gpu(models),
        "namespace": pl.Series(teams).gather(team_of),
        "pod": pl.Series([f"{t}-worker-0" if t else "" for t in teams]).gather(team_of),
        "util": util.ravel()[keep], "fb_used_mib": fb_used.ravel()[keep], "fb_free_mib": fb_free.ravel()[keep],
        "power_w": power.ravel()[keep], "energy_mj": energy.ravel()[keep],
    })
    return frame


def write_plain(frame, path: Path) -> Path:
    """``frame`` (pandas) as a pandas user writes it: ``to_parquet`` with its defaults (pyarrow,
    snappy), no index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, compression="snappy", index=False)
    return path


def in_order(frame, order: str):
    """``frame`` (per-series order) in row order ``order`` (one of :data:`ORDERS`)."""
    if order == "per-series":
        return frame
    if order == "scrape":
        return frame.sort_values(["ts", "hostname", "gpu"], kind="stable").reset_index(drop=True)
    if order == "shuffled":
        return frame.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    raise ValueError(f"unknown row order {order!r}; choose from {', '.join(ORDERS)}")


def ensure_files(root: Path = ROOT, gpus: int = GPUS, step_s: int = STEP) -> dict[str, Path]:
    """Order → the offline-layout folder holding the benchmark day in that row order (generated
    unless already there with the current settings). Another fleet size or step than :data:`GPUS` and
    :data:`STEP` goes to ``<root>-<gpus>-<step>s``, in a scraper's order only, written by pyarrow from
    polars (the same writer and defaults as pandas' ``to_parquet``, without pandas' strings)."""
    fleet = (gpus, step_s) != (GPUS, STEP)
    root = root.with_name(f"{root.name}-{gpus}-{step_s}s") if fleet else root
    want = {"version": GENERATOR_VERSION, "day": DAY.isoformat(), "gpus": gpus, "step_s": step_s, "seed": SEED,
            "missing": MISSING}
    stamp = root / "source.json"
    folders = {order: root / order for order in (("scrape",) if fleet else ORDERS)}
    if stamp.exists() and json.loads(stamp.read_text()) == want and \
            all((f / f"day={DAY.isoformat()}" / "part.parquet").exists() for f in folders.values()):
        return folders
    started = time.perf_counter()
    if fleet:
        import pyarrow.parquet as pq

        frame = plain_day_frame(gpus=gpus, step_s=step_s).sort(["ts", "hostname", "gpu"], maintain_order=True)
        path = folders["scrape"] / f"day={DAY.isoformat()}" / "part.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(frame.to_arrow(), path, compression="snappy")
    else:
        frame = plain_day()
        for order, folder in folders.items():
            write_plain(in_order(frame, order), folder / f"day={DAY.isoformat()}" / "part.parquet")
    root.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(want))
    print(f"generated the plain exporter day ({len(frame):,} samples, {gpus:,} GPUs) in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return folders


def compare(folder: Path, *, runs: int = RUNS, step_s: int = STEP) -> dict:
    """Ours and DuckDB on the day under ``folder``, alternating, ``runs`` times each after one
    warm-up of each (checked equal, :func:`check_same`). Median wall and CPU seconds (all threads of
    this process) and samples per second."""
    import duckdb

    from core.metrics.rollup import rollup_range

    path = folder / f"day={DAY.isoformat()}" / "part.parquet"
    con = duckdb.connect()
    ours = rollup_range(folder, DAY, DAY, step_s=step_s)
    theirs = duckdb_rollup(path, DAY, step_s=step_s, con=con)
    check_same(ours, theirs)
    samples = int(ours["samples"].sum())
    engines = {"ours": lambda: rollup_range(folder, DAY, DAY, step_s=step_s),
               "duckdb": lambda: duckdb_rollup(path, DAY, step_s=step_s, con=con)}
    times: dict[str, list[float]] = {"ours": [], "duckdb": []}
    cpu: dict[str, list[float]] = {"ours": [], "duckdb": []}
    for _ in range(runs):
        for name, engine in engines.items():
            started, cpu0 = time.perf_counter(), time.process_time()
            engine()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu0)
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    median = {k: statistics.median(v) for k, v in times.items()}
    return {"samples": samples, "rows": ours.height, "seconds": median, "all": times,
            "cpu": {k: statistics.median(v) for k, v in cpu.items()},
            "rate": {k: samples / v for k, v in median.items()}, "duckdb_threads": int(threads),
            "mb": path.stat().st_size / 1e6}


def run(runs: int = RUNS, gpus: int = GPUS, step_s: int = STEP) -> list[tuple[str, float, float]]:
    """(name, value, target) rows, lower is better: ours / DuckDB time per row order (issue #13: at
    least as fast, ≤ 1) and ours in ms per million samples (40 M/s = 25). Prints both throughputs,
    the ratio and the load average before and after. ``gpus`` and ``step_s``: the fleet's size and
    its scrape step (see :func:`ensure_files`)."""
    import duckdb
    import polars as pl
    import pyarrow as pa

    folders = ensure_files(gpus=gpus, step_s=step_s)
    before = os.getloadavg()
    results = {order: compare(folder, runs=runs, step_s=step_s) for order, folder in folders.items()}
    after = os.getloadavg()
    print(f"plain exporter day vs DuckDB {duckdb.__version__} (polars {pl.__version__}): load average "
          f"before {before[0]:.2f} / {before[1]:.2f} / {before[2]:.2f}, after {after[0]:.2f} / {after[1]:.2f} / "
          f"{after[2]:.2f} (1/5/15 min, {os.cpu_count()} cores); medians of {runs} alternating runs", file=sys.stderr)
    rows = []
    for order, r in results.items():
        ours, theirs = r["rate"]["ours"] / 1e6, r["rate"]["duckdb"] / 1e6
        ratio = r["rate"]["ours"] / r["rate"]["duckdb"]
        verdict = f"ours {ratio:.2f}× DuckDB's speed" + (f" ({1 / ratio:.2f}× slower)" if ratio < 1 else "")
        print(f"  {order} order, {r['samples']:,} samples, {r['rows']:,} rollup rows, {r['mb']:.0f} MB snappy: "
              f"ours {ours:.1f} M samples/s ({r['seconds']['ours']:.3f} s), DuckDB {theirs:.1f} M samples/s "
              f"({r['seconds']['duckdb']:.3f} s, {r['duckdb_threads']} threads); {verdict}; same figures on "
              f"{', '.join(COMPARED[2:])}", file=sys.stderr)
        print(f"    CPU seconds (all threads, median): ours {r['cpu']['ours']:.3f}, DuckDB {r['cpu']['duckdb']:.3f}",
              file=sys.stderr)
        print(f"    all runs, s: ours {' '.join(f'{t:.3f}' for t in r['all']['ours'])}; "
              f"DuckDB {' '.join(f'{t:.3f}' for t in r['all']['duckdb'])}", file=sys.stderr)
        fleet = "" if (gpus, step_s) == (GPUS, STEP) else f", {gpus:,} GPUs at {step_s} s"
        rows.append((f"plain exporter day ({order} order{fleet}): ours time / DuckDB time (≤ 1 = as fast)",
                     r["seconds"]["ours"] / r["seconds"]["duckdb"], 1.0))
        rows.append((f"plain exporter day ({order} order{fleet}): ours, ms per million samples (40 M/s = 25)",
                     1000 * r["seconds"]["ours"] / (r["samples"] / 1e6), 25.0))
    print("  threads: DuckDB one per core (default); ours the day's thread running the compiled loop over a "
          f"row group while another reads the next (Arrow's pool, {pa.cpu_count()} threads)", file=sys.stderr)
    return rows


def main(argv: list[str]) -> int:
    import argparse

    def positive(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"a positive whole number, not {text!r}")
        return int(text)

    parser = argparse.ArgumentParser(prog="python -m bench.rollup_duckdb", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive, default=RUNS, help=f"alternating runs of each (default {RUNS})")
    parser.add_argument("--gpus", type=positive, default=GPUS,
                        help=f"GPUs in the fleet (default {GPUS:,}, both row orders; another size: a scraper's order only)")
    parser.add_argument("--step", type=positive, default=STEP, help=f"seconds between samples (default {STEP}; divides a day)")
    args = parser.parse_args(argv)
    if 86400 % args.step:
        parser.error(f"argument --step: {args.step} does not divide a day (86,400 s)")
    failed = 0
    for name, value, target in run(args.runs, args.gpus, args.step):
        ok = value <= target
        failed += not ok
        print(f"| {name} | {value:.3f} | ≤ {target:g} | {'ok' if ok else 'MISSED'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
