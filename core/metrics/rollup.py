"""The daily rollup: raw samples of one UTC day → one row per GPU × namespace (:data:`ROLLUP_SCHEMA`).

Definitions (each row is one GPU and one namespace on one day; ``step`` is the scrape step):

* ``mean_util`` / ``peak_util`` — mean and max of ``util`` over the row's samples.
* ``mean_mem`` / ``peak_mem`` — the same for memory occupancy ``fb_used / (fb_used + fb_free)``.
* ``allocated_gpu_hours`` — ``samples × step / 3600`` when the namespace is not empty (0 for "").
* ``used_gpu_hours`` — ``Σ util × step / 3600`` (utilisation-weighted hours).
* ``energy_kwh`` — the GPU's energy counter increase between consecutive samples of the day,
  each interval credited to the namespace of the sample that ends it. A decrease means the counter
  restarted from 0 (driver reload, reboot), so that interval counts the new value, not a negative
  delta. The interval before the day's first sample belongs to the previous day. A gap in the
  samples does not lose energy: the counter kept counting and the next delta holds it.
* ``samples`` — the row's samples; ``expected_samples`` — ``86400 / step``;
  ``coverage`` — the GPU's samples of the day in any namespace / ``expected_samples`` (≤ 1 with
  duplicates removed upstream). A gap lowers coverage; it is never counted as zero use: means are
  over the samples that exist and hours over the time that was observed.

Two implementations with the same result: :func:`rollup_day` (polars — what the job runs)
and :func:`rollup_day_pandas` (the reference the tests and the benchmark compare against).
:func:`rollup_day_series` is :func:`rollup_day` for files that carry series ids instead of making
the rollup read and compare five label strings per sample (:func:`core.metrics.offline.write_day_file`).
:func:`rollup_range` rolls several days up concurrently (backfills, a month for the benchmark).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from core.errors import InputError
from core.metrics.schema import ROLLUP_SCHEMA

MJ_PER_KWH = 3.6e9
ROLLUP_INPUT_COLUMNS = ("ts", "cluster", "hostname", "uuid", "model", "namespace", "util",
                        "fb_used_mib", "fb_free_mib", "energy_mj")
RUN_LABELS = ("uuid", "namespace", "cluster", "hostname", "model")  # the labels a rollup row carries
NUMBER_INPUTS = ("util", "fb_used_mib", "fb_free_mib", "energy_mj")  # the numbers a rollup reduces


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of the UTC day."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def expected_per_day(step_s: int) -> int:
    """Samples a fully covered UTC day holds at ``step_s``; :class:`InputError` if the step does not
    divide a day."""
    if not isinstance(step_s, int) or step_s <= 0 or 86400 % step_s:
        raise InputError("metrics.bad_step", field="step", value=step_s)
    return 86400 // step_s


def rollup_day(samples: pl.LazyFrame | pl.DataFrame, day: date, *, step_s: int = 60,
               engine: str = "auto") -> pl.DataFrame:
    """The rollup of ``day`` from samples in :data:`SAMPLE_SCHEMA` (any row order, duplicates of
    one GPU and instant counted once; other days are ignored). Returns a frame of
    :data:`ROLLUP_SCHEMA` sorted by uuid and namespace.

    ``samples`` may be lazy (a scan): only the columns the rollup needs are read and the day filter
    is pushed into the scan; ``engine`` is polars' collect engine for that read.

    Fast path: when each GPU's rows are contiguous and in time order — what the demo generator and
    a per-series export of a Prometheus range query produce — runs of equal (GPU, namespace) are
    reduced in one pass with ``numpy.ufunc.reduceat``, without sorting. Otherwise (a scraper's
    order: every GPU at one instant, then the next) the rows are put in (GPU, time) order by integer
    keys and of a GPU's duplicate instants the first in the file is kept (:func:`_sorted_runs`).
    """
    expected = expected_per_day(step_s)
    frame = _day_samples(samples, day).collect(engine=engine)
    runs = _runs(frame)
    if runs is None:
        runs = _sorted_runs(frame)
    return _combine(runs, day, step_s, expected)


def rollup_range(source_or_root, first: date, last: date, *, step_s: int = 60,
                 workers: int | None = None) -> pl.DataFrame:
    """The rollups of the days ``first`` … ``last`` (inclusive), in one :data:`ROLLUP_SCHEMA` frame
    sorted by day, uuid and namespace — the same rows as :func:`rollup_day` day by day; a day without
    samples contributes no rows.

    ``source_or_root`` is a :class:`core.metrics.schema.MetricsSource` (its ``daily_gpu_stats`` is
    called once per day), the folder of an offline layout (read with
    :class:`core.metrics.offline.OfflineSource`) or a frame of samples. Days are rolled up by
    ``workers`` threads (default: one per CPU, at most one per day): polars and numpy release the
    GIL, so one day's numpy phase overlaps another day's Parquet read. Peak memory grows with
    ``workers`` (about one day of samples each). Raises :class:`InputError` when ``last`` is before
    ``first`` (field "to") or on a bad ``step_s``, ``ValueError`` on a bad ``workers``, and whatever
    the source raises.
    """
    frames = [f.select([pl.col(c).cast(t) for c, t in ROLLUP_SCHEMA.items()])
              for f in rollup_days(source_or_root, first, last, step_s=step_s, workers=workers).values() if f.height]
    return pl.concat(frames, how="vertical", rechunk=True) if frames else pl.DataFrame(schema=ROLLUP_SCHEMA)


def rollup_days(source_or_root, first: date, last: date, *, step_s: int = 60,
                workers: int | None = None) -> dict[date, pl.DataFrame]:
    """Day → that day's rollup (possibly empty) for ``first`` … ``last``, computed as
    :func:`rollup_range` describes (what a backfill stores day by day)."""
    expected_per_day(step_s)
    if last < first:
        raise InputError("metrics.bad_days", field="to", value=(last - first).days + 1)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, not {workers!r}")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if isinstance(source_or_root, (str, Path)):
        from core.metrics.offline import OfflineSource  # offline imports this module

        source_or_root = OfflineSource(source_or_root)
    if isinstance(source_or_root, (pl.DataFrame, pl.LazyFrame)):
        samples = source_or_root

        def one(day: date) -> pl.DataFrame:
            return rollup_day(samples, day, step_s=step_s)
    else:
        source = source_or_root

        def one(day: date) -> pl.DataFrame:
            return source.daily_gpu_stats(day, step_s=step_s)
    workers = min(workers or _cpus(), len(days))
    if workers == 1:
        return {d: one(d) for d in days}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rollup") as pool:
        return dict(zip(days, pool.map(one, days)))  # in day order; the first error is raised


def _cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _day_samples(samples: pl.LazyFrame | pl.DataFrame, day: date) -> pl.LazyFrame:
    start, end = day_bounds(day)
    if isinstance(samples, pl.DataFrame) and samples.height and getattr(samples.schema["ts"], "time_zone", None):
        ts = samples["ts"]
        if ts.null_count() == 0 and ts.min() >= start and ts.max() < end:
            return samples.lazy().select(ROLLUP_INPUT_COLUMNS)  # all of the day: no filter to copy rows through
    return samples.lazy().select(ROLLUP_INPUT_COLUMNS).filter((pl.col("ts") >= start) & (pl.col("ts") < end))


def _times(frame: pl.DataFrame) -> np.ndarray:
    """``ts`` as integers (no nulls: the callers filtered or checked them)."""
    return frame["ts"].to_physical().to_numpy()


def _float(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A float column as numpy (nulls → NaN; zero-copy when there are none)."""
    return frame[name].cast(pl.Float64).to_numpy()


def _runs(frame: pl.DataFrame, *, check: bool = True) -> pl.DataFrame | None:
    """Phase 1: one row per run of consecutive rows with the same (uuid, namespace), in row order,
    with partial sums, counts and maxima. ``None`` when ``check`` finds that some GPU's rows are
    not contiguous or not strictly increasing in time (the caller then sorts)."""
    n = frame.height
    if n == 0:
        return pl.DataFrame(schema={**{k: pl.Utf8 for k in RUN_LABELS}, **dict.fromkeys(
            ["util_sum", "util_n", "peak_util", "mem_sum", "mem_n", "peak_mem", "samples", "energy"], pl.Float64)})
    # Boundaries: string comparisons in one polars pass (both columns in parallel).
    flags = frame.select(
        new_gpu=(pl.col("uuid") != pl.col("uuid").shift(1)).fill_null(True),
        ns_change=(pl.col("namespace") != pl.col("namespace").shift(1)).fill_null(True),
    )
    new_gpu = flags["new_gpu"].to_numpy()
    gpu_starts = np.flatnonzero(new_gpu)
    starts = np.flatnonzero(new_gpu | flags["ns_change"].to_numpy())
    if check and (gpu_starts.size * MIN_BLOCK_ROWS > n  # blocks this short: a scraper's order, sorting pays
                  or not _blocks_in_order(_times(frame), gpu_starts, frame["uuid"].gather(gpu_starts).n_unique())):
        return None
    return reduce_runs(_arrays(frame), starts, gpu_starts, {k: frame[k].gather(starts) for k in RUN_LABELS})


def _sorted_runs(frame: pl.DataFrame) -> pl.DataFrame:
    """:func:`_runs` of rows in any order: as if sorted by (uuid, ts) with a GPU's duplicate instants
    dropped but the first in row order, without sorting or moving a string.

    The GPUs and namespaces become dictionary codes (a categorical cast: one hash per row) and
    :func:`_sorted_order` puts the rows in (GPU, time) order by those codes. Only the four number
    columns are put in that order; the labels are taken at the runs' first rows. (Sorting the frame
    by its uuid strings and de-duplicating with ``unique`` took 3.6–5.9 s for a 4.2 M-sample day in a
    scraper's order; this takes about 0.3 s.)"""
    codes = frame.select(pl.col("uuid", "namespace").cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1))
    gpu, namespace = codes["uuid"].to_numpy(), codes["namespace"].to_numpy()
    order = _sorted_order(gpu, _times(frame))  # no null ts: _day_samples keeps the day's instants only
    gpu, namespace = gpu[order], namespace[order]
    gpu_starts, starts = _run_starts(gpu, namespace)
    numbers = frame.select(NUMBER_INPUTS)[pl.Series(order)]
    labels = frame.select(RUN_LABELS)[pl.Series(order[starts])]
    return reduce_runs(_arrays(numbers), starts, gpu_starts, labels.to_dict())


def _sorted_order(gpu: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The row numbers that put rows in (GPU, time) order — ``gpu`` integer codes, ``ts`` integer
    times, both one value per row — with a GPU's duplicate instants left out but the first in row
    order. A row's key is its GPU above its time in the day, in one int64 when both fit, so one
    stable integer argsort gives the order and equal neighbouring keys are the duplicates."""
    offset = ts - ts.min()
    shift = int(offset.max()).bit_length()
    if shift < KEY_BITS and int(gpu.max()) + 2 < 1 << (KEY_BITS - shift):  # (GPU, time) fits one int64 key
        keys = (gpu.astype(np.int64) + 1) << shift | offset  # int64 whatever the codes' type
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        first = np.concatenate(([True], keys[1:] != keys[:-1]))
    else:
        order = np.lexsort((offset, gpu))  # stable, as above
        g, o = gpu[order], offset[order]
        first = np.concatenate(([True], (g[1:] != g[:-1]) | (o[1:] != o[:-1])))
    return order if first.all() else order[first]


def _run_starts(gpu: np.ndarray, namespace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each GPU's rows begin and where each run of one (GPU, namespace) begins, from codes in
    row order."""
    new_gpu = np.concatenate(([True], gpu[1:] != gpu[:-1]))
    starts = np.flatnonzero(new_gpu | np.concatenate(([True], namespace[1:] != namespace[:-1])))
    return np.flatnonzero(new_gpu), starts


def rollup_day_series(frame: pl.DataFrame, labels: pl.DataFrame, day: date, *, step_s: int = 60) -> pl.DataFrame | None:
    """:func:`rollup_day` of samples whose labels come as ids: ``frame`` has ``ts``, ``series`` (an
    integer row number of ``labels``), ``util``, ``fb_used_mib``, ``fb_free_mib`` and ``energy_mj``;
    ``labels`` has one row per series with the columns of :data:`RUN_LABELS` (what
    :func:`core.metrics.offline.write_day_file` stores, so that the five label columns are neither
    read nor compared row by row). Same result as :func:`rollup_day` on the frame with the labels
    joined in.

    ``None`` when this shortcut does not apply and the caller should roll the plain columns up:
    samples outside ``day``, a GPU whose rows are not contiguous and in time order, a series id
    out of range or missing, or a missing uuid/namespace in ``labels``.
    """
    expected = expected_per_day(step_s)
    runs = series_runs(frame, labels, day)
    return None if runs is None else _combine(runs, day, step_s, expected)


def series_runs(frame: pl.DataFrame, labels: pl.DataFrame, day: date) -> pl.DataFrame | None:
    """Phase 1 of :func:`rollup_day_series` (one row per run, not yet combined per GPU and namespace),
    ``None`` where that function returns ``None``. The runs of several files whose GPUs do not
    overlap, concatenated, combine (:func:`combine_runs`) into the rollup of all their samples."""
    n = frame.height
    if n == 0:
        return _runs(frame)
    series = frame["series"]
    if not series.dtype.is_integer() or series.null_count() or labels.select(pl.col("uuid", "namespace").null_count()).sum_horizontal().item():
        return None
    s = series.to_numpy()
    if s.min() < 0 or s.max() >= labels.height:
        return None
    if frame["ts"].null_count():
        return None
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    run_series = s[starts]
    # uuid of each run as a small integer: a GPU starts where the uuid differs from the previous run's
    gpu = labels["uuid"].rank("dense").to_numpy()[run_series]
    first_runs = np.flatnonzero(np.concatenate(([True], gpu[1:] != gpu[:-1])))
    gpu_starts = starts[first_runs]
    ts = _times(frame)
    if not _blocks_in_order(ts, gpu_starts, np.unique(gpu[first_runs]).size):
        return None
    # each GPU's rows are in time order: its first and last rows bound the day's times
    first, last = day_bounds(day)
    lo, hi = (pl.Series([first, last], dtype=frame["ts"].dtype).to_physical().to_list())
    if ts[gpu_starts].min() < lo or ts[np.append(gpu_starts[1:], n) - 1].max() >= hi:
        return None
    run_labels = labels.select(RUN_LABELS)[run_series]
    return reduce_runs(_arrays(frame), starts, gpu_starts, run_labels.to_dict())


def combine_runs(runs: pl.DataFrame, day: date, *, step_s: int = 60) -> pl.DataFrame:
    """Phase 2: the rollup rows of ``day`` from runs (:func:`series_runs`, several files' concatenated)."""
    return _combine(runs, day, step_s, expected_per_day(step_s))


def _blocks_in_order(ts: np.ndarray, gpu_starts: np.ndarray, distinct_gpus: int) -> bool:
    """Whether each GPU's rows are one block (``distinct_gpus`` == the blocks starting at
    ``gpu_starts``) in strictly increasing time ``ts`` (integers, one per row, no nulls)."""
    if gpu_starts.size != distinct_gpus:
        return False
    back = np.flatnonzero(ts[1:] <= ts[:-1]) + 1  # rows not later than the one before: only a GPU's first
    return back.size <= gpu_starts.size and bool(np.isin(back, gpu_starts, assume_unique=True).all())


def reduce_runs(numbers: dict[str, np.ndarray], starts: np.ndarray, gpu_starts: np.ndarray, labels: dict) -> pl.DataFrame:
    """Partial sums, counts and maxima of each run (rows ``starts[i]`` … ``starts[i+1]-1``) whose labels
    are ``labels`` (one value per run); ``numbers`` holds the columns of :data:`NUMBER_INPUTS` as
    numpy arrays (:func:`_arrays`), missing values as NaN.

    The day is taken in chunks of whole runs (about :data:`CHUNK_ROWS` rows) whose temporaries live in
    a few small buffers used over and over: a day-sized temporary costs more in fresh pages from the
    kernel than the arithmetic on it. Each run's figures are the same as from one pass over the day.
    A NaN or a counter drop is rare: it is looked for only when a chunk's sum or minimum shows one."""
    n, runs = numbers["util"].size, starts.size
    util, used, free, e = (numbers[name] for name in NUMBER_INPUTS)
    gpu_run = np.zeros(runs, dtype=bool)
    gpu_run[np.searchsorted(starts, gpu_starts)] = True  # runs that begin a GPU's rows
    ends = np.append(starts[1:], n)
    out = {name: np.empty(runs) for name in ("util_sum", "util_n", "peak_util", "mem_sum", "mem_n", "peak_mem", "energy")}
    buffers = _Buffers()
    r0 = 0
    while r0 < runs:
        a = int(starts[r0])
        r1 = max(r0 + 1, int(np.searchsorted(starts, a + CHUNK_ROWS, side="left")))
        b = int(ends[r1 - 1])
        local = starts[r0:r1] - a
        size = b - a
        # energy: the counter's increase since the previous sample, credited to the run it ends in
        de = buffers.get("de", size)
        if a:
            np.subtract(e[a:b], e[a - 1:b - 1], out=de)
        else:
            de[0] = 0.0
            np.subtract(e[1:b], e[:b - 1], out=de[1:])
        if np.fmin.reduce(de) < 0:  # the counter restarted at 0: the energy since then is the new value itself
            reset = np.flatnonzero(de < 0)
            de[reset] = e[a + reset]
        de[local[gpu_run[r0:r1]]] = 0.0  # the interval before a GPU's first sample of the day is another day's
        energy = np.add.reduceat(de, local)
        if np.isnan(energy).any():  # a missing counter value: its intervals count 0
            de[np.isnan(de)] = 0.0
            energy = np.add.reduceat(de, local)
        out["energy"][r0:r1] = energy
        # memory occupancy fb_used / (fb_used + fb_free); integer MiB give the same floats as Float64
        # columns of the same values (whole numbers below 2**53 and their sums are exact in a double)
        mem, total = buffers.get("mem", size), buffers.get("total", size)
        mem[:] = used[a:b]
        total[:] = free[a:b]
        total += mem
        if np.min(total) > 0:  # False with a NaN or a non-positive total
            np.divide(mem, total, out=mem)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                mem[:] = np.where(total > 0, mem / total, np.nan)
        samples = np.diff(np.append(local, size)).astype(np.float64)
        for name, values in (("util", util[a:b]), ("mem", mem)):
            sums = np.add.reduceat(values, local)
            if np.isnan(sums).any():  # some values are missing: left out of sums and counts
                missing = np.isnan(values)
                out[f"{name}_sum"][r0:r1] = np.add.reduceat(np.where(missing, 0.0, values), local)
                out[f"{name}_n"][r0:r1] = samples - np.add.reduceat(missing.astype(np.float64), local)
            else:
                out[f"{name}_sum"][r0:r1] = sums
                out[f"{name}_n"][r0:r1] = samples
            out[f"peak_{name}"][r0:r1] = np.fmax.reduceat(values, local)  # NaN only when the run has no value
        r0 = r1
    result = {**labels, **{k: out[k] for k in ("util_sum", "util_n", "peak_util", "mem_sum", "mem_n", "peak_mem")},
              "samples": np.diff(np.append(starts, n)).astype(np.float64), "energy": out["energy"]}
    return pl.DataFrame(result).with_columns(pl.col("peak_util", "peak_mem").fill_nan(None))


# The in-order path is tried when a GPU's blocks of rows average at least this many (a day at 60 s has
# 1,440 a GPU): proving a file of one-row blocks is in order (counting its distinct uuids) costs more
# than :func:`_sorted_runs`, which gives the same figures for any order.
MIN_BLOCK_ROWS = 8
KEY_BITS = 62  # of an int64 sort key of _sorted_runs (GPU code above the time), its sign bit spared
CHUNK_ROWS = 1 << 16  # rows per chunk of reduce_runs: its buffers (0.5 MB each) stay in the L2 cache


class _Buffers:
    """Float64 scratch arrays by name, grown when a chunk is longer than any before."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, size: int) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.size < size:
            array = self._arrays[name] = np.empty(max(size, CHUNK_ROWS))
        return array[:size]


def _arrays(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """The columns of :data:`NUMBER_INPUTS` as numpy for :func:`reduce_runs`, nulls as NaN. Without a copy
    when a column has no nulls; memory in MiB may stay integers (whole numbers below 2**53 and their
    sums are exact in a double)."""
    def column(name: str) -> np.ndarray:
        values = frame[name]
        if name in ("fb_used_mib", "fb_free_mib") and not values.null_count():
            return values.to_numpy()
        return _float(frame, name)
    return {name: column(name) for name in NUMBER_INPUTS}


def _combine(runs: pl.DataFrame, day: date, step_s: int, expected: int) -> pl.DataFrame:
    """Phase 2: runs → one row per (uuid, namespace) (a GPU may leave a namespace and come back)."""
    hours_per_sample = step_s / 3600.0
    out = (
        runs.lazy().group_by("uuid", "namespace")
        .agg(
            pl.col("cluster").first(), pl.col("hostname").first(), pl.col("model").first(),
            pl.col("util_sum").sum(), pl.col("util_n").sum(), pl.col("peak_util").max(),
            pl.col("mem_sum").sum(), pl.col("mem_n").sum(), pl.col("peak_mem").max(),
            pl.col("samples").sum(), pl.col("energy").sum(),
        )
        .with_columns(
            day=pl.lit(day, dtype=pl.Date),
            mean_util=pl.when(pl.col("util_n") > 0).then(pl.col("util_sum") / pl.col("util_n")),
            mean_mem=pl.when(pl.col("mem_n") > 0).then(pl.col("mem_sum") / pl.col("mem_n")),
            allocated_gpu_hours=pl.when(pl.col("namespace") != "").then(pl.col("samples") * hours_per_sample).otherwise(0.0),
            used_gpu_hours=pl.col("util_sum") * hours_per_sample,
            energy_kwh=pl.col("energy") / MJ_PER_KWH,
            expected_samples=pl.lit(expected, dtype=pl.Int64),
            coverage=pl.col("samples").sum().over("uuid") / expected,
        )
        .select([pl.col(c).cast(t) for c, t in ROLLUP_SCHEMA.items()])
        .sort("uuid", "namespace")
    )
    return out.collect()


def rollup_day_pandas(samples: pd.DataFrame, day: date, *, step_s: int = 60) -> pd.DataFrame:
    """The same rollup written with pandas (reference implementation; columns of ROLLUP_SCHEMA)."""
    expected = expected_per_day(step_s)
    hours_per_sample = step_s / 3600.0
    start, end = day_bounds(day)
    df = samples.loc[(samples["ts"] >= pd.Timestamp(start)) & (samples["ts"] < pd.Timestamp(end)), list(ROLLUP_INPUT_COLUMNS)]
    df = df.sort_values(["uuid", "ts"], kind="stable").drop_duplicates(["uuid", "ts"], keep="first")
    total = df["fb_used_mib"] + df["fb_free_mib"]
    mem = (df["fb_used_mib"] / total).where(total > 0)
    e = df["energy_mj"].to_numpy(dtype=float)
    uuid = df["uuid"].to_numpy()
    de = np.zeros(len(df))
    if len(df) > 1:
        prev = e[:-1]
        cur = e[1:]
        step_delta = np.where(cur >= prev, cur - prev, cur)
        de[1:] = np.where(uuid[1:] == uuid[:-1], step_delta, 0.0)
    df = df.assign(mem=mem.to_numpy(), de=de)
    g = df.groupby(["uuid", "namespace"], sort=True, observed=True)
    out = g.agg(
        cluster=("cluster", "first"), hostname=("hostname", "first"), model=("model", "first"),
        mean_util=("util", "mean"), peak_util=("util", "max"), mean_mem=("mem", "mean"), peak_mem=("mem", "max"),
        util_sum=("util", "sum"), samples=("util", "size"), energy=("de", "sum"),
    ).reset_index()
    out["day"] = day
    out["allocated_gpu_hours"] = np.where(out["namespace"] != "", out["samples"] * hours_per_sample, 0.0)
    out["used_gpu_hours"] = out["util_sum"] * hours_per_sample
    out["energy_kwh"] = out["energy"] / MJ_PER_KWH
    out["expected_samples"] = expected
    out["coverage"] = out.groupby("uuid")["samples"].transform("sum") / expected
    out["samples"] = out["samples"].astype("int64")
    return out[list(ROLLUP_SCHEMA)].reset_index(drop=True)
