"""The daily rollup of plain Parquet sample files — any exporter's, without our series ids — in one
pass over the rows as they lie in the files.

An exporter writes the label columns as strings, and Parquet stores such columns dictionary-encoded:
each row group holds small integer indices into a list of its distinct values. Arrow reads them as
those indices (``read_dictionary``) without making one string per row; each row group's dictionary
is mapped once into codes shared by all files. A compiled loop (:func:`core.metrics.rollup_scan.scan_rows`)
then goes through the rows in the files' order, keeping for each GPU its last sample and for each
(GPU, namespace) the rollup's sums, counts and maxima: no sort, no gather, no string per row. The
label strings are looked up once per (GPU, namespace), at its first row. The rows are read a row
group at a time (at most :data:`BLOCK_ROWS`), the next while the loop runs over the last (both
cores; memory is about two row groups and the pass's arrays, whatever the size of the day).

Any row order is taken. In one in which no GPU's time goes back — a scraper's (every GPU at one
instant, then the next), a per-series export, several files of other GPUs or later hours — the
rows are rolled up where they lie, as above. In any other (a shuffled export, say) the pass stops at
the first row whose GPU's time goes back; each row of the day is then copied into its GPU's
stretch of one array (a counting sort on the GPU codes; the blocks the pass had gone through are
read again, the others once), and each GPU's stretch is rolled up in time order by the same rules
(:func:`core.metrics.rollup_scan.scan_by_gpu`; memory about 70 bytes a sample). A file that is not a
plain sample file — a CSV file, a missing column or one of another kind, a missing (null) ``uuid``
or ``namespace``, a file that cannot be read — makes :func:`rollup_plain_files` return ``None``, and
the caller rolls the day up through polars, which names the file and the problem
(:mod:`core.metrics.offline`).

The figures are those of :func:`core.metrics.rollup.rollup_day` on the same samples: counts, maxima
and labels equal, sums and means to a relative 1e-12 (they are added in another order;
``tests/unit/test_plain_files.py``). Why a compiled loop (numba) and not DuckDB: the rollup needs each
GPU's samples in time order (the energy counter), which a group-by does not give; DuckDB's group-by
of the same file, without that, is the benchmark it is measured against (:mod:`bench.rollup_duckdb`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from itertools import chain, islice
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.metrics.rollup import NUMBER_INPUTS, RUN_LABELS, combine_runs, day_bounds, expected_per_day
from core.metrics.schema import ROLLUP_SCHEMA, SAMPLE_SCHEMA, largest_value

COLUMNS = ("ts", *RUN_LABELS, *NUMBER_INPUTS)  # what the rollup reads
FIRST_GROUPS, FIRST_GPUS = 1 << 12, 1 << 12  # initial sizes of the pass's arrays (doubled when full)
# Rows read at a time at most (about 240 MB of columns): a longer row group is read in blocks, so that
# memory stays bounded. Not smaller: Arrow decodes a whole row group 15-25 % faster than in blocks
# (iter_batches), and reading, not the pass, bounds the time (README, issue #13).
BLOCK_ROWS = 1 << 22


def rollup_plain_files(paths: Sequence[Path | str], day: date, *, step_s: int = 60) -> pl.DataFrame | None:
    """The rollup of ``day`` (:data:`core.metrics.schema.ROLLUP_SCHEMA`) from the Parquet files
    ``paths`` (their samples together, in this order, as :func:`core.metrics.rollup.rollup_day`
    takes them), or ``None`` when this reader does not take them (see the module)."""
    expected_per_day(step_s)
    paths = [Path(p) for p in paths]
    if not paths or not all(_plain(p) for p in paths):
        return None
    start, end = day_bounds(day)
    lo, hi = (int(t.timestamp()) * 1_000_000 for t in (start, end))
    largest = np.array([min(largest_value(c), np.finfo(np.float64).max) for c in NUMBER_INPUTS])
    try:
        blocks = _blocks(paths)
        passed = _in_file_order(blocks, lo, hi, largest)
        if isinstance(passed, _WentBack):  # some GPU's time goes back
            passed = _in_time_order(paths, passed, blocks, lo, hi, largest)
    except (pa.ArrowException, OSError, _NotPlain):
        return None
    stats, labels = passed
    if not len(stats):
        return pl.DataFrame(schema=ROLLUP_SCHEMA)
    return combine_runs(_runs(labels, stats), day, step_s=step_s)


class _NotPlain(Exception):
    """A row without a ``uuid`` or ``namespace``: the polars reader names the file and the problem."""


class _WentBack(NamedTuple):
    """Where the pass in file order stopped: in the block after ``blocks_before`` blocks, ``block``."""

    blocks_before: int
    block: pa.Table


def _in_file_order(blocks: Iterator[pa.Table], lo: int, hi: int,
                   largest: np.ndarray) -> tuple[np.ndarray, list[pa.Table]] | _WentBack:
    """The pass over the rows as they lie, a block at a time (``blocks``, :func:`_blocks`): the groups'
    :data:`~core.metrics.rollup_scan.STATS` and labels (from each group's first row); as soon as a
    GPU's time goes back, where (``blocks`` then holds the blocks after it)."""
    gpus, namespaces, state = _Codes(), _Codes(), _Pass()
    labels: list[pa.Table] = []
    first_row = 0
    for number, table in enumerate(blocks):
        gpu, ns = _coded(table.column("uuid"), gpus), _coded(table.column("namespace"), namespaces)
        state.fit_gpus(len(gpus))
        before = state.groups
        if not state.scan(gpu, ns, _times(table.column("ts")), [_floats(table.column(c)) for c in NUMBER_INPUTS],
                          first_row, lo, hi, largest):
            return _WentBack(number, table)
        if state.groups > before:  # the new groups' labels, from their first rows in this block
            labels.append(table.select(list(RUN_LABELS)).take(pa.array(state.group_first[before:state.groups] - first_row)))
        first_row += table.num_rows
    return state.stats[:state.groups], labels


def _in_time_order(paths: list[Path], went_back: _WentBack, rest: Iterator[pa.Table], lo: int, hi: int,
                   largest: np.ndarray) -> tuple[np.ndarray, list[pa.Table]]:
    """The pass over the day's rows, each GPU's in time order, whatever their order in the files: the
    GPUs' rows are counted (the ``uuid`` column alone is read for that), each row is copied into its
    GPU's stretch of one array (:func:`core.metrics.rollup_scan.gather_by_gpu`, a counting sort by
    GPU) — the blocks the pass in file order went through read again, the one it stopped in and the
    ``rest`` as they come — and each GPU's stretch is rolled up in time order
    (:func:`core.metrics.rollup_scan.scan_by_gpu`), the GPUs in two halves on two threads. Memory:
    48 bytes a sample, and the label columns' dictionary indices (about 20) for the groups' labels."""
    from core.metrics.rollup_scan import RECORD, gather_by_gpu

    gpus, namespaces = _Codes(), _Codes()
    counts = np.zeros(0, dtype=np.int64)
    for table in _blocks(paths, ("uuid",)):
        index, places = _coded(table.column("uuid"), gpus)
        block = np.bincount(places[index], minlength=len(gpus))
        counts = np.pad(counts, (0, block.size - counts.size)) + block
    starts = np.concatenate(([0], np.cumsum(counts)))
    records, fill = np.empty(starts[-1], dtype=RECORD), starts[:-1].copy()
    label_blocks, first_row = [], 0
    for table in chain(islice(_blocks(paths), went_back.blocks_before), [went_back.block], rest):
        gather_by_gpu(*_coded(table.column("uuid"), gpus), *_coded(table.column("namespace"), namespaces),
                      _times(table.column("ts")), *(_floats(table.column(c)) for c in NUMBER_INPUTS), first_row,
                      largest, fill, records)
        label_blocks.append(table.select(list(RUN_LABELS)))
        first_row += table.num_rows
    middle = int(np.searchsorted(starts, starts[-1] // 2))  # about as many samples on either side
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gpu-stretches") as pool:
        halves = list(pool.map(lambda half: _stretches(half, starts, records, lo, hi),
                               (range(middle), range(middle, len(gpus)))))
    stats = np.concatenate([half.stats[:half.groups] for half in halves])
    if not len(stats):
        return stats, []
    first_rows = pa.array(np.concatenate([half.group_first[:half.groups] for half in halves]))
    return stats, [pa.concat_tables(label_blocks, promote_options="permissive").take(first_rows)]


def _stretches(gpus: range, starts: np.ndarray, records: np.ndarray, lo: int, hi: int) -> _Pass:
    """The groups of the GPUs ``gpus`` rolled up from their stretches of ``records``."""
    from core.metrics.rollup_scan import FULL, scan_by_gpu

    state = _Pass()
    state.fit_gpus(gpus.stop)
    gpu = gpus.start
    while gpu < gpus.stop:
        gpu, state.groups, status = scan_by_gpu(gpu, gpus.stop, starts, records, lo, hi, state.gpu_groups,
                                                *state.group_arrays(), state.groups)
        if status == FULL:
            state.grow_groups(2 * len(gpus))
    return state


def _runs(labels: list[pa.Table], stats: np.ndarray) -> pl.DataFrame:
    """The groups as :func:`core.metrics.rollup.combine_runs` takes runs (one run each)."""
    from core.metrics.rollup_scan import STATS

    table = pa.concat_tables(labels, promote_options="permissive")
    frame = pl.DataFrame({name: pl.Series(name, table.column(name).cast(pa.string()), dtype=pl.Utf8) for name in RUN_LABELS})
    return frame.with_columns(pl.Series(name, stats[:, i]) for i, name in enumerate(STATS)).with_columns(
        pl.col("peak_util", "peak_mem").fill_nan(None))


class _Codes:
    """Label strings → codes shared by every row group of a day's files: a string's code is its place
    in the strings seen so far."""

    def __init__(self) -> None:
        self._seen = pa.array([], type=pa.string())
        self._last: tuple[pa.Array, np.ndarray] | None = None  # row groups often repeat the last dictionary

    def __len__(self) -> int:
        return len(self._seen)

    def places(self, dictionary: pa.Array) -> np.ndarray:
        """The code of each entry of a row group's dictionary (new strings get new codes); looked up
        by Arrow's hash lookup, not string by string (100,000 uuids a row group: 9.4 ms, 27 in Python)."""
        if self._last is not None and self._last[0].equals(dictionary):
            return self._last[1]
        values = dictionary.cast(pa.string())
        places = pc.index_in(values, value_set=self._seen)
        if places.null_count:  # strings not seen before go at the end
            self._seen = pa.concat_arrays([self._seen, pc.unique(values.filter(places.is_null()))])
            places = pc.index_in(values, value_set=self._seen)
        codes = places.to_numpy(zero_copy_only=False).astype(np.int32)
        self._last = dictionary, codes
        return codes

    def all(self) -> np.ndarray:
        return np.arange(len(self._seen), dtype=np.int32)


def _coded(column: pa.ChunkedArray, codes: _Codes) -> tuple[np.ndarray, np.ndarray]:
    """A label column of one block as (dictionary index per row, code per index) for the pass;
    :class:`_NotPlain` when a row has no value. A column in several chunks (each with its own
    dictionary) is given as codes per row with the identity as places."""
    if column.null_count:
        raise _NotPlain(column)
    if not pa.types.is_dictionary(column.type):  # a kind read_dictionary does not apply to
        column = pc.dictionary_encode(column)
    chunks = [c for c in column.chunks if len(c)] or column.chunks[:1]
    if len(chunks) == 1:
        return chunks[0].indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False), codes.places(chunks[0].dictionary)
    per_row = np.concatenate([np.take(codes.places(c.dictionary), c.indices.to_numpy(zero_copy_only=False)) for c in chunks])
    return per_row.astype(np.int32, copy=False), codes.all()


def _times(column: pa.ChunkedArray) -> np.ndarray:
    """``ts`` as int64 microseconds (naive times read as UTC); a missing time is outside every day."""
    if column.type.unit != "us":
        column = column.cast(pa.timestamp("us", column.type.tz), safe=False)
    values = column.cast(pa.int64())
    if values.null_count:
        values = pc.fill_null(values, np.iinfo(np.int64).min)
    return _numpy(values)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A number column as float64, a missing value as NaN."""
    return _numpy(column).astype(np.float64, copy=False)


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A column as numpy, without a copy when it is one chunk of numbers without nulls (a chunked
    array's own ``to_numpy`` copies: 16 ms a million doubles)."""
    if column.num_chunks == 1:
        return column.chunk(0).to_numpy(zero_copy_only=False)
    return column.to_numpy()


class _Pass:
    """The arrays :func:`core.metrics.rollup_scan.scan_rows` keeps its state in, grown when full."""

    def __init__(self) -> None:
        from core.metrics.rollup_scan import NO_TIME, STATS

        self._no_time, self._stats = NO_TIME, len(STATS)
        self.groups = 0
        self.gpu_last_ts = np.full(FIRST_GPUS, NO_TIME, dtype=np.int64)
        self.gpu_last_energy = np.zeros(FIRST_GPUS)
        self.gpu_group = np.full(FIRST_GPUS, -1, dtype=np.int64)
        self.gpu_groups = np.full(FIRST_GPUS, -1, dtype=np.int64)
        self.group_ns = np.empty(FIRST_GROUPS, dtype=np.int64)
        self.group_next = np.empty(FIRST_GROUPS, dtype=np.int64)
        self.group_first = np.empty(FIRST_GROUPS, dtype=np.int64)
        self.stats = np.empty((FIRST_GROUPS, self._stats))

    def scan(self, gpu: tuple[np.ndarray, np.ndarray], ns: tuple[np.ndarray, np.ndarray], ts: np.ndarray,
             numbers: list[np.ndarray], first_row: int, lo: int, hi: int, largest: np.ndarray) -> bool:
        """One block's rows through :func:`core.metrics.rollup_scan.scan_rows` (room for its GPU
        codes made first, :meth:`fit_gpus`), growing the group arrays when full; False when a GPU's
        time went back."""
        from core.metrics.rollup_scan import BACKWARDS, FULL, scan_rows  # numba: imported when needed

        row = 0
        while row < ts.size:
            row, self.groups, status = scan_rows(row, *gpu, *ns, ts, *numbers, first_row, lo, hi, largest,
                                                 *self.gpu_arrays(), *self.group_arrays(), self.groups)
            if status == BACKWARDS:
                return False
            if status == FULL:
                self.grow_groups(2 * self.gpu_last_ts.size)
        return True

    def gpu_arrays(self) -> tuple[np.ndarray, ...]:
        return self.gpu_last_ts, self.gpu_last_energy, self.gpu_group, self.gpu_groups

    def group_arrays(self) -> tuple[np.ndarray, ...]:
        return self.group_ns, self.group_next, self.group_first, self.stats

    def fit_gpus(self, count: int) -> None:
        """Room for ``count`` GPU codes."""
        size = self.gpu_last_ts.size
        if count <= size:
            return
        more = max(size, count - size)
        self.gpu_last_ts = np.append(self.gpu_last_ts, np.full(more, self._no_time, dtype=np.int64))
        self.gpu_last_energy = np.append(self.gpu_last_energy, np.zeros(more))
        self.gpu_group = np.append(self.gpu_group, np.full(more, -1, dtype=np.int64))
        self.gpu_groups = np.append(self.gpu_groups, np.full(more, -1, dtype=np.int64))

    def grow_groups(self, at_least: int) -> None:
        """Twice the room for groups, or room for ``at_least`` (most GPUs hold one to three a day)."""
        size = self.group_ns.size
        more = max(size, at_least - size)
        self.group_ns, self.group_next, self.group_first = (
            np.concatenate((a, np.empty(more, dtype=np.int64))) for a in (self.group_ns, self.group_next, self.group_first))
        self.stats = np.concatenate((self.stats, np.empty((more, self._stats))))


def _blocks(paths: list[Path], columns: Sequence[str] = COLUMNS) -> Iterator[pa.Table]:
    """The ``columns`` of the files (by default those the rollup reads), a row group at a time over all
    files (a row group longer than :data:`BLOCK_ROWS` in blocks of that many rows), the next read on
    another thread while the caller works on the last; the label columns as dictionary arrays."""
    def blocks() -> Iterator[pa.Table]:
        for path in paths:
            file = pq.ParquetFile(path, read_dictionary=list(RUN_LABELS))
            for group in range(file.num_row_groups):
                if file.metadata.row_group(group).num_rows <= BLOCK_ROWS:
                    yield file.read_row_group(group, columns=list(columns))
                    continue
                for batch in file.iter_batches(batch_size=BLOCK_ROWS, row_groups=[group], columns=list(columns)):
                    yield pa.Table.from_batches([batch])

    source = blocks()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="row-groups") as pool:
        pending = pool.submit(next, source, None)
        while (table := pending.result()) is not None:
            pending = pool.submit(next, source, None)
            if table.num_rows:
                yield table


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
