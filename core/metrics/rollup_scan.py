"""The daily rollup's figures gathered by compiled loops (numba) over a plain exporter's rows: the
loops :mod:`core.metrics.plain_files` runs.

Each row is one GPU's sample (its GPU and namespace as integer codes, its time and numbers); the
figures are those of :mod:`core.metrics.rollup` (see its definitions), kept per (GPU, namespace)
group in :data:`STATS` order. Only the GPU's own previous sample matters for a row (the energy
counter's increase and the duplicate check), so any row order in which no GPU's time goes back is
rolled up where it lies by :func:`scan_rows` — a scraper's (every GPU at one instant, then the
next) and a per-series export alike — without sorting. A row whose GPU's time goes back stops that
pass (:data:`BACKWARDS`). The caller then copies each row into its GPU's stretch of one array of
:data:`RECORD` (:func:`gather_by_gpu`, a counting sort on the GPU codes) and :func:`scan_by_gpu`
rolls each GPU's stretch up in time order, sorting it where it needs to (a bucket sort on the time:
a GPU's day is a few thousand samples at about even steps).

Imported only when a plain file is rolled up: importing numba takes about half a second.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NO_TIME = np.iinfo(np.int64).min  # a GPU without a sample yet; also a row without a time
STATS = ("samples", "util_sum", "util_n", "peak_util", "mem_sum", "mem_n", "peak_mem", "energy")
SAMPLES, UTIL_SUM, UTIL_N, PEAK_UTIL, MEM_SUM, MEM_N, PEAK_MEM, ENERGY = range(len(STATS))
DONE, FULL, BACKWARDS = 0, 1, 2  # how a pass ended: every row, the group arrays full, a GPU's time went back
# One sample in a GPU's stretch (gather_by_gpu): its time, its measurements (NaN where the row's
# value is not one; mem is the memory used as a fraction), namespace code and row in the files; 48 bytes.
RECORD = np.dtype([("ts", np.int64), ("util", np.float64), ("mem", np.float64), ("energy", np.float64),
                   ("ns", np.int32), ("row", np.int64)], align=True)
SMALL_BUCKET = 32  # a time bucket with more samples than this is merge-sorted, not insertion-sorted


def _inlined(function):
    """A helper of the compiled loops, inlined into them by numba (no call per row)."""
    return njit(inline="always")(function)


def _compiled(function):
    """``function`` compiled by numba to run without the GIL, its machine code cached on disk so that
    a later process does not compile it again (about 1 s): beside this file, else in the user's cache
    folder, else where ``NUMBA_CACHE_DIR`` says (the image sets it). Where none is writable numba
    refuses to cache; the function is then compiled in each process instead of failing."""
    try:
        return njit(nogil=True, cache=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(nogil=True)(function)


@_compiled
def scan_rows(start, gpu_index, gpu_codes, ns_index, ns_codes, ts, util, used, free, energy,
              first_row, lo, hi, largest, gpu_last_ts, gpu_last_energy, gpu_group, gpu_groups,
              group_ns, group_next, group_first, stats, groups):
    """Adds rows ``start`` … of one block to the groups; returns (the row reached, the groups now,
    :data:`DONE` | :data:`FULL` | :data:`BACKWARDS`).

    A row's GPU is ``gpu_codes[gpu_index[row]]`` and its namespace ``ns_codes[ns_index[row]]`` (a
    Parquet row group's dictionary indices and that dictionary's place in the codes of all files);
    ``ts`` are integer times, rows outside [``lo``, ``hi``) are not of the day; ``largest`` holds the
    largest measurement of util, used and free memory and energy (:func:`_measured`). Per GPU
    code: its last time and energy reading, its current group and the head of its groups' list; per
    group (``groups`` of them so far): its namespace, the next group of its GPU, its first row
    (``first_row`` + the row) and its :data:`STATS`. With the group arrays full the pass stops at
    the row that needs a new one."""
    top_util, top_used, top_free, top_energy = largest[0], largest[1], largest[2], largest[3]  # not read per row
    for row in range(start, ts.shape[0]):
        t = ts[row]
        if t < lo or t >= hi:
            continue
        gpu = gpu_codes[gpu_index[row]]
        last = gpu_last_ts[gpu]
        if t <= last:
            if t == last:
                continue  # a GPU's duplicate instant: the first in the file stays
            return row, groups, BACKWARDS
        ns = ns_codes[ns_index[row]]
        group = gpu_group[gpu]
        if group < 0 or group_ns[group] != ns:  # the GPU's namespace changed: find or start its group
            group, groups = _group(gpu, ns, first_row + row, gpu_groups, group_ns, group_next, group_first, stats,
                                   groups)
            if group < 0:
                return row, groups, FULL
            gpu_group[gpu] = group
        e = _measured(energy[row], top_energy)
        _add(stats, group, _measured(util[row], top_util), _memory(used[row], free[row], top_used, top_free),
             _increase(e, gpu_last_energy[gpu]) if last != NO_TIME else np.nan)
        gpu_last_energy[gpu] = e
        gpu_last_ts[gpu] = t
    return ts.shape[0], groups, DONE


@_compiled
def gather_by_gpu(gpu_index, gpu_codes, ns_index, ns_codes, ts, util, used, free, energy, first_row,
                  largest, fill, records):
    """Copies one block's rows (given as to :func:`scan_rows`) into ``records``: each at its GPU's
    next place, ``fill[gpu]`` (advanced), so that each GPU's rows lie together in file order."""
    top_util, top_used, top_free, top_energy = largest[0], largest[1], largest[2], largest[3]  # not read per row
    for row in range(ts.shape[0]):
        gpu = gpu_codes[gpu_index[row]]
        at = fill[gpu]
        fill[gpu] = at + 1
        record = records[at]
        record.ts = ts[row]
        record.util = _measured(util[row], top_util)
        record.mem = _memory(used[row], free[row], top_used, top_free)
        record.energy = _measured(energy[row], top_energy)
        record.ns = ns_codes[ns_index[row]]
        record.row = first_row + row


@_compiled
def scan_by_gpu(start, stop, starts, records, lo, hi, gpu_groups, group_ns, group_next, group_first, stats, groups):
    """Adds GPUs ``start`` … ``stop`` - 1 to the groups, GPU ``g``'s samples being ``records[starts[g]:starts[g + 1]]``
    in file order (:func:`gather_by_gpu`): each GPU's in time order (a GPU's duplicate instants keep
    the first in the file), as :func:`scan_rows` adds rows. Returns (the GPU reached, the groups now,
    :data:`DONE` | :data:`FULL`); with the group arrays full, the GPU that needed one more is left
    as it was before it started, for the caller to grow the arrays and start it again."""
    for gpu in range(start, stop):
        stretch = records[starts[gpu]:starts[gpu + 1]]
        before = groups
        group, last, last_energy = -1, NO_TIME, 0.0
        for k in _time_order(stretch.ts, lo, hi):
            sample = stretch[k]
            t = sample.ts
            if t == last:
                continue
            if group < 0 or group_ns[group] != sample.ns:
                group, groups = _group(gpu, sample.ns, sample.row, gpu_groups, group_ns, group_next, group_first,
                                       stats, groups)
                if group < 0:  # forget this GPU's groups: all are new since it started
                    gpu_groups[gpu] = -1
                    return gpu, before, FULL
            increase = _increase(sample.energy, last_energy) if last != NO_TIME else np.nan
            _add(stats, group, sample.util, sample.mem, increase)
            last, last_energy = t, sample.energy
    return stop, groups, DONE


@_inlined
def _measured(value, largest):
    """``value``, or NaN where it is not a measurement: not finite, negative or above ``largest``."""
    return value if value >= 0.0 and value <= largest else np.nan


@_inlined
def _memory(used, free, top_used, top_free):
    """The memory used as a fraction of used + free, or NaN where either is not a measurement (as
    :func:`_measured`, with those largest values) or both are 0."""
    if used >= 0.0 and used <= top_used and free >= 0.0 and free <= top_free and used + free > 0.0:
        return used / (used + free)
    return np.nan


@_inlined
def _increase(energy, previous):
    """The energy counter's increase since the GPU's previous sample (the reading itself where the
    counter restarted at 0); NaN where either reading is missing, and the interval counts 0."""
    delta = energy - previous
    return energy if delta < 0.0 else delta


@_inlined
def _group(gpu, ns, first, gpu_groups, group_ns, group_next, group_first, stats, groups):
    """(group of ``gpu`` in namespace ``ns``, groups now): found in the GPU's list, else started at
    row ``first`` (counts 0, peaks NaN) — group -1 when the arrays have no room for it."""
    group = gpu_groups[gpu]
    while group >= 0 and group_ns[group] != ns:
        group = group_next[group]
    if group >= 0:
        return group, groups
    if groups == group_ns.shape[0]:
        return -1, groups
    group_ns[groups] = ns
    group_next[groups] = gpu_groups[gpu]
    gpu_groups[gpu] = groups
    group_first[groups] = first
    stats[groups, :] = 0.0
    stats[groups, PEAK_UTIL] = np.nan
    stats[groups, PEAK_MEM] = np.nan
    return groups, groups + 1


@_inlined
def _add(stats, group, util, mem, energy):
    """One sample's measurements added to its group (a NaN is a missing one)."""
    stats[group, SAMPLES] += 1.0
    if util == util:
        stats[group, UTIL_SUM] += util
        stats[group, UTIL_N] += 1.0
        if not stats[group, PEAK_UTIL] >= util:
            stats[group, PEAK_UTIL] = util
    if mem == mem:
        stats[group, MEM_SUM] += mem
        stats[group, MEM_N] += 1.0
        if not stats[group, PEAK_MEM] >= mem:
            stats[group, PEAK_MEM] = mem
    if energy == energy:
        stats[group, ENERGY] += energy


@_compiled
def _time_order(times, lo, hi):
    """The places of the ``times`` in [``lo``, ``hi``) in time order, stably (equal times keep their
    order). Times already in order are kept as they are; others go into as many buckets as there are
    times, by value (about one each for a GPU's day at about even steps), each bucket then sorted by
    insertion, or merge-sorted when it holds more than :data:`SMALL_BUCKET`."""
    kept = np.empty(times.shape[0], dtype=np.int64)
    n, in_order = 0, True
    for k in range(times.shape[0]):
        t = times[k]
        if t >= lo and t < hi:
            if n and t < times[kept[n - 1]]:
                in_order = False
            kept[n] = k
            n += 1
    kept = kept[:n]
    if in_order:
        return kept
    low, high = hi, lo
    for k in kept:
        low, high = min(low, times[k]), max(high, times[k])
    width = (high - low) // n + 1  # (high - low) // width < n
    starts = np.zeros(n + 1, dtype=np.int64)
    for k in kept:
        starts[(times[k] - low) // width + 1] += 1
    for b in range(n):
        starts[b + 1] += starts[b]
    fill = starts[:n].copy()
    order = np.empty(n, dtype=np.int64)
    for k in kept:
        b = (times[k] - low) // width
        order[fill[b]] = k
        fill[b] += 1
    for b in range(n):
        first, end = starts[b], starts[b + 1]
        if end - first > SMALL_BUCKET:
            part = order[first:end].copy()
            order[first:end] = part[np.argsort(times[part], kind="mergesort")]
            continue
        for i in range(first + 1, end):  # insertion: a later equal time stays after
            k = order[i]
            t = times[k]
            j = i
            while j > first and times[order[j - 1]] > t:
                order[j] = order[j - 1]
                j -= 1
            order[j] = k
    return order
