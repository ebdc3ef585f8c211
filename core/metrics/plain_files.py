"""The daily rollup of plain Parquet sample files — any exporter's, without our series ids — read
through the files' dictionary codes instead of their label strings.

An exporter writes the label columns as strings, and Parquet stores such columns dictionary-encoded:
each page holds small integer codes into a list of the distinct values. Arrow reads them as those
codes (``read_dictionary``) without making one string per row, so finding a GPU's rows and a
namespace's runs compares integers and putting a scraper's rows in GPU order is an integer sort;
the label strings are looked up only at the runs' first rows. Polars reads the numbers and times
meanwhile (the labels are read on another thread). The figures are those of :func:`core.metrics.rollup.rollup_day`
on the same samples: the same rows in the same order go into the same reduction (equal exactly;
``tests/unit/test_plain_files.py``).

Three row orders, cheapest first:

* each GPU's rows together and in time order (a per-series export): reduced where they lie;
* time never going back (a scraper appending each scrape: every GPU at one instant, then the next):
  a stable sort by GPU code alone, by radix while the codes fit 15 bits;
* anything else: the (GPU, time) key sort of :func:`core.metrics.rollup.sorted_order`.

Rows are put in order with polars' gather (all columns at once, on both cores), not numpy's.

:func:`rollup_plain_files` returns ``None`` when a file is not such a file — a CSV file, a missing
column or a column of another kind, a missing (null) ``uuid`` or ``namespace``, a file that cannot be
read — and the caller rolls the day up through polars' scan, which names the file and the problem
(:mod:`core.metrics.offline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.metrics.rollup import (
    MIN_BLOCK_ROWS, NUMBER_INPUTS, RUN_LABELS, blocks_in_order, combine_runs, day_bounds, expected_per_day,
    reduce_runs, run_starts, sorted_order,
)
from core.metrics.schema import ROLLUP_SCHEMA, SAMPLE_SCHEMA, largest_value, measured

CODED = ("uuid", "namespace")  # the labels whose codes order and split the rows
RADIX_CODES = 1 << 15  # numpy's stable argsort sorts int16 keys by radix
SNIFF_ROWS = 1 << 14  # rows read by scraper_order


def rollup_plain_files(paths: Sequence[Path | str], day: date, *, step_s: int = 60) -> pl.DataFrame | None:
    """The rollup of ``day`` (:data:`core.metrics.schema.ROLLUP_SCHEMA`) from the Parquet files
    ``paths`` (their samples together, as :func:`core.metrics.rollup.rollup_day` takes them), or
    ``None`` when a file is not a plain sample file this reader takes (see the module)."""
    expected_per_day(step_s)
    paths = [Path(p) for p in paths]
    if not paths or not all(_plain(p) for p in paths):
        return None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="labels") as pool:
        coded = pool.submit(_read_labels, paths)
        frame = _read_numbers(paths)
        labels = coded.result()
    if frame is None or labels is None or labels[0].num_rows != frame.height:
        return None
    table, codes = labels
    rows, frame = _inside(frame, day)
    if not frame.height:
        return pl.DataFrame(schema=ROLLUP_SCHEMA)
    gpu, namespace = (codes[name] if rows is None else codes[name][rows] for name in CODED)
    order, gpu = _gpu_time_order(gpu, frame["ts"].to_numpy())
    if order is not None:
        frame = frame.with_columns(pl.Series("ns", namespace))[pl.Series(order)]
        rows = order if rows is None else rows[order]
        ts = frame["ts"].to_numpy()
        repeated = np.concatenate(([False], (gpu[1:] == gpu[:-1]) & (ts[1:] == ts[:-1])))
        if repeated.any():  # a GPU's duplicate instants: the first in the file stays (the sort is stable)
            frame, gpu, rows = frame.filter(pl.Series(~repeated)), gpu[~repeated], rows[~repeated]
        namespace = frame["ns"].to_numpy()
    gpu_starts, starts = run_starts(gpu, namespace)
    first_rows = pa.array(starts if rows is None else rows[starts])
    run_labels = {name: pl.Series(name, table.column(name).take(first_rows).cast(pa.string()), dtype=pl.Utf8)
                  for name in RUN_LABELS}
    numbers = {name: frame[name].to_numpy() for name in NUMBER_INPUTS}
    return combine_runs(reduce_runs(numbers, starts, gpu_starts, run_labels), day, step_s=step_s)


def scraper_order(paths: Sequence[Path | str]) -> bool:
    """Whether the first Parquet file of ``paths`` starts in a scraper's order — the GPU changing
    from row to row (its first :data:`SNIFF_ROWS` rows average fewer than ``MIN_BLOCK_ROWS`` rows a
    GPU block) — read from those rows' ``uuid`` codes alone. Only a choice of path: each gives the
    same figures for any order, but a file of long GPU blocks is rolled up faster by polars reading
    its strings (:func:`core.metrics.rollup.rollup_day`), and a scraper's by this module."""
    path = Path(paths[0]) if paths else None
    if path is None or not _plain(path):
        return False
    try:
        batch = next(pq.ParquetFile(path, read_dictionary=["uuid"]).iter_batches(batch_size=SNIFF_ROWS, columns=["uuid"]), None)
    except (pa.ArrowException, OSError):
        return False
    if batch is None or not batch.num_rows:
        return False
    uuids = batch.column(0)
    if not pa.types.is_dictionary(uuids.type):  # a kind read_dictionary does not apply to
        uuids = pc.dictionary_encode(uuids)
    codes = uuids.indices.to_numpy(zero_copy_only=False)
    blocks = 1 + int(np.count_nonzero(codes[1:] != codes[:-1]))
    return blocks * MIN_BLOCK_ROWS > codes.size


def _plain(path: Path) -> bool:
    """Whether ``path`` is a Parquet file with every column of the sample schema, of a kind the
    polars reader takes (:func:`core.metrics.offline._scan_parquet`): a timestamp, strings, numbers."""
    if path.suffix.lower() != ".parquet":
        return False
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError):
        return False
    if any(name not in schema.names for name in SAMPLE_SCHEMA):
        return False
    for name, want in SAMPLE_SCHEMA.items():
        kind = schema.field(name).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if name == "ts":
            ok = pa.types.is_timestamp(kind)
        elif want == pl.Utf8:
            ok = pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
        else:
            ok = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if not ok:
            return False
    return True


def _read_numbers(paths: list[Path]) -> pl.DataFrame | None:
    """``ts`` as int64 microseconds (UTC; nulls kept) and the numbers of :data:`NUMBER_INPUTS` as
    float64 with what is not a measurement as null (:func:`_measurements_only`), all files in order."""
    frames = []
    for path in paths:
        try:
            frame = pl.read_parquet(path, columns=["ts", *NUMBER_INPUTS])
        except (pl.exceptions.PolarsError, OSError):
            return None
        unit = frame.schema["ts"]
        ts = frame["ts"] if unit.time_unit == "us" else frame["ts"].cast(pl.Datetime("us", unit.time_zone))
        frames.append(pl.DataFrame([ts.to_physical().alias("ts"), *[_measurements_only(frame[name]) for name in NUMBER_INPUTS]]))
    return pl.concat(frames, how="vertical").rechunk()  # one buffer a column: a gather of chunks is 2-4× slower


def _measurements_only(values: pl.Series) -> pl.Series:
    """``values`` as float64 with what is not a measurement — missing, not finite, negative, above its
    largest value in data/cli_limits.yaml — as null: the polars reader's rule
    (:func:`core.metrics.schema.measured`), after a cheap look whether any value breaks it."""
    values = values.cast(pl.Float64)
    largest = largest_value(values.name)
    low, high = values.nan_min(), values.nan_max()  # NaN when there is one (min and max skip it)
    if low is not None and low >= 0 and high <= largest < float("inf"):
        return values  # the usual file: no value to drop
    return values.to_frame().select(pl.when(measured(values.name)).then(pl.col(values.name))).to_series()


def _read_labels(paths: list[Path]) -> tuple[pa.Table, dict[str, np.ndarray]] | None:
    """The label columns of :data:`RUN_LABELS` as Arrow dictionary arrays (one table of all files)
    and the codes of :data:`CODED` as numpy arrays (one code per distinct value over all files);
    ``None`` when a file cannot be read or a coded label is missing in some row."""
    try:
        tables = [pq.read_table(p, columns=list(RUN_LABELS), read_dictionary=list(RUN_LABELS)) for p in paths]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowException, OSError):
        return None
    if any(table.column(name).null_count for name in CODED):
        return None
    return table, {name: _codes(table.column(name)) for name in CODED}


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    """One integer per row naming its value, the same for equal values in every chunk (each Parquet
    row group has its own dictionary: a chunk's codes are mapped through its dictionary's place in the
    union of all of them, computed once per distinct dictionary; a row group's batches share one)."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    chunks = [c for c in column.chunks if len(c)]
    if not chunks:
        return np.empty(0, dtype=np.int32)
    first = chunks[0].dictionary
    if all(c.dictionary.equals(first) for c in chunks[1:]):
        return np.concatenate([c.indices.to_numpy() for c in chunks])
    union = pc.unique(pa.concat_arrays([c.dictionary.cast(pa.string()) for c in chunks]))
    seen: list[tuple[pa.Array, np.ndarray]] = []  # (dictionary, its values' places in union)
    parts = []
    for chunk in chunks:
        places = next((p for d, p in seen if d.equals(chunk.dictionary)), None)
        if places is None:
            places = pc.index_in(chunk.dictionary.cast(pa.string()), value_set=union).to_numpy().astype(np.int32)
            seen.append((chunk.dictionary, places))
        parts.append(np.take(places, chunk.indices.to_numpy(), mode="clip"))  # 4× numpy's fancy index of int32
    return np.concatenate(parts)


def _inside(frame: pl.DataFrame, day: date) -> tuple[np.ndarray | None, pl.DataFrame]:
    """The rows of ``frame`` whose ``ts`` falls on ``day``: their row numbers (``None``: every row)
    and those rows."""
    start, end = day_bounds(day)
    lo, hi = (int(t.timestamp()) * 1_000_000 for t in (start, end))
    ts = frame["ts"]
    if not ts.null_count() and (not frame.height or (ts.min() >= lo and ts.max() < hi)):
        return None, frame
    inside = ((ts >= lo) & (ts < hi)).fill_null(False).to_numpy()
    rows = np.flatnonzero(inside)
    return rows, frame[pl.Series(rows)]


def _gpu_time_order(gpu: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The row numbers that put rows in (GPU, time) order, stably (a GPU's duplicate instants stay
    in row order, next to each other; ``None`` when each GPU's rows are one block in time order
    already), and the GPU codes in that order."""
    gpu_starts = np.flatnonzero(np.concatenate(([True], gpu[1:] != gpu[:-1])))
    if gpu_starts.size * MIN_BLOCK_ROWS <= gpu.size:
        if blocks_in_order(ts, gpu_starts, int(np.count_nonzero(np.bincount(gpu[gpu_starts])))):
            return None, gpu
    if gpu.max() < RADIX_CODES and bool((ts[1:] >= ts[:-1]).all()):  # a scraper's order
        counts = np.bincount(gpu)
        return np.argsort(gpu.astype(np.int16), kind="stable"), np.repeat(np.arange(counts.size, dtype=gpu.dtype), counts)
    order = sorted_order(gpu, ts)
    return order, gpu[order]
