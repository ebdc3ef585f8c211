"""The daily rollup's figures gathered in one pass over samples in a file's own row order, compiled
with numba: the loop :mod:`core.metrics.plain_files` runs over a plain exporter's rows.

Each row is one GPU's sample (its GPU and namespace as integer codes, its time and numbers); the
figures are those of :mod:`core.metrics.rollup` (see its definitions), kept per (GPU, namespace)
group in :data:`STATS` order. Only the GPU's own previous sample matters for a row (the energy
counter's increase and the duplicate check), so any row order in which no GPU's time goes back is
rolled up where it lies — a scraper's (every GPU at one instant, then the next) and a per-series
export alike — without sorting. A row whose GPU's time goes back stops the pass (:data:`BACKWARDS`);
the caller then puts the day's rows in (GPU, time) order (:func:`time_order`) and passes them again.

Imported only when a plain file is rolled up: importing numba takes about half a second.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NO_TIME = np.iinfo(np.int64).min  # a GPU without a sample yet; also a row without a time
STATS = ("samples", "util_sum", "util_n", "peak_util", "mem_sum", "mem_n", "peak_mem", "energy")
SAMPLES, UTIL_SUM, UTIL_N, PEAK_UTIL, MEM_SUM, MEM_N, PEAK_MEM, ENERGY = range(len(STATS))
DONE, FULL, BACKWARDS = 0, 1, 2  # how a pass ended: every row, the group arrays full, a GPU's time went back


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
    largest measurement of util, used and free memory and energy (a value that is not finite,
    negative or larger counts as missing). Per GPU code: its last time and energy reading, its
    current group and the head of its groups' list; per group (``groups`` of them so far): its
    namespace, the next group of its GPU, its first row (``first_row`` + the row) and its
    :data:`STATS`. With the group arrays full the pass stops at the row that needs a new one."""
    capacity = group_ns.shape[0]
    top_util, top_used, top_free, top_energy = largest[0], largest[1], largest[2], largest[3]
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
            group = gpu_groups[gpu]
            while group >= 0 and group_ns[group] != ns:
                group = group_next[group]
            if group < 0:
                if groups == capacity:
                    return row, groups, FULL
                group = groups
                groups += 1
                group_ns[group] = ns
                group_next[group] = gpu_groups[gpu]
                gpu_groups[gpu] = group
                group_first[group] = first_row + row
                for column in range(SAMPLES, ENERGY + 1):
                    stats[group, column] = 0.0
                stats[group, PEAK_UTIL] = np.nan
                stats[group, PEAK_MEM] = np.nan
            gpu_group[gpu] = group
        stats[group, SAMPLES] += 1.0
        u = util[row]
        if u >= 0.0 and u <= top_util:
            stats[group, UTIL_SUM] += u
            stats[group, UTIL_N] += 1.0
            if not stats[group, PEAK_UTIL] >= u:
                stats[group, PEAK_UTIL] = u
        a, b = used[row], free[row]
        if a >= 0.0 and a <= top_used and b >= 0.0 and b <= top_free and a + b > 0.0:
            mem = a / (a + b)
            stats[group, MEM_SUM] += mem
            stats[group, MEM_N] += 1.0
            if not stats[group, PEAK_MEM] >= mem:
                stats[group, PEAK_MEM] = mem
        e = energy[row]
        if not (e >= 0.0 and e <= top_energy):
            e = np.nan
        if last != NO_TIME:  # the interval since the GPU's previous sample of the day
            delta = e - gpu_last_energy[gpu]
            if delta < 0.0:
                delta = e  # the counter restarted at 0
            if delta == delta:  # a missing reading at either end: the interval counts 0
                stats[group, ENERGY] += delta
        gpu_last_energy[gpu] = e
        gpu_last_ts[gpu] = t
    return ts.shape[0], groups, DONE


@_compiled
def time_order(gpu, ts, gpus):
    """The row numbers that put rows in (GPU, time) order — ``gpu`` codes below ``gpus``, ``ts``
    integer times — stably, so a GPU's duplicate instants stay in file order and the pass keeps the
    first: a counting sort by GPU (each GPU's rows in file order), then each GPU's rows by time
    (merge sort), skipped where they are in time order already."""
    rows = gpu.shape[0]
    starts = np.zeros(gpus + 1, dtype=np.int64)
    for row in range(rows):
        starts[gpu[row] + 1] += 1
    for g in range(gpus):
        starts[g + 1] += starts[g]
    order = np.empty(rows, dtype=np.int64)
    fill = starts[:gpus].copy()
    for row in range(rows):
        g = gpu[row]
        order[fill[g]] = row
        fill[g] += 1
    for g in range(gpus):
        a, b = starts[g], starts[g + 1]
        times = ts[order[a:b]]
        for k in range(1, b - a):
            if times[k] < times[k - 1]:
                order[a:b] = order[a:b][np.argsort(times, kind="mergesort")]
                break
    return order
