"""Plain exporter files rolled up in one pass over their rows (core.metrics.plain_files) give the
figures of the polars rollup of the same samples — counts, maxima and labels equal, sums to a relative
1e-12 (added in another order) — in a scraper's order, per series and shuffled (put in time order
first, exactly when some GPU's time goes back), with duplicate instants, values that are not
measurements, other time units, neighbouring days' samples, several files and several row groups
(each its own dictionary), more GPUs and groups than the pass's first arrays hold; and hand over to
the polars reader (``None``) whatever they do not take."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from bench.rollup_duckdb import plain_day
from core.metrics import offline as offline_module
from core.metrics import plain_files
from core.metrics.offline import OfflineSource, scan_file
from core.metrics.plain_files import rollup_plain_files
from core.metrics.rollup import rollup_day
from tests.support.clock import day

DAY = day(-3)
STEP = 300  # 288 samples a day


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    """30 GPUs for a day at 5 minutes, namespaces changing mid-day, 3 % missing, a few values that
    are not measurements, and samples of the days before and after."""
    out = plain_day(gpus=30, step_s=STEP, day=DAY, seed=9, changes=(0.0, 0.5, 0.5))
    out.loc[5, "util"] = float("nan")
    out.loc[50, "util"] = -0.5
    out.loc[500, "fb_used_mib"] = float("inf")
    out.loc[900, "fb_free_mib"] = 5e6
    out.loc[1200, "energy_mj"] = None
    neighbours = [out.iloc[:300].assign(ts=out["ts"].iloc[:300] - timedelta(days=1)),
                  out.iloc[-300:].assign(ts=out["ts"].iloc[-300:] + timedelta(days=1))]
    return pd.concat([out, *neighbours], ignore_index=True)


def _scrape(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["ts", "hostname", "uuid"], kind="stable").reset_index(drop=True)


def _write(frame: pd.DataFrame, path: Path, *, row_group_size: int = 2_000, **options) -> Path:
    """A plain exporter's file: label strings, snappy, small row groups (each its own dictionaries)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size, **options)
    return path


def _polars(paths: list[Path]) -> pl.DataFrame:
    """The rollup the polars reader gives (what the files rolled up to before this module)."""
    frames = [scan_file(p) for p in paths]
    return rollup_day(pl.concat(frames, how="vertical"), DAY, step_s=STEP, engine="streaming")


EXACT = ("uuid", "namespace", "cluster", "hostname", "model", "samples", "peak_util", "peak_mem", "expected_samples")


def _alike(ours: pl.DataFrame, theirs: pl.DataFrame) -> None:
    """The module's promise: equal counts, maxima and labels; sums and means to a relative 1e-12."""
    assert_frame_equal(ours.select(EXACT), theirs.select(EXACT), check_exact=True)
    assert_frame_equal(ours, theirs, check_exact=False, rel_tol=1e-12, abs_tol=0.0)


def _same(paths: list[Path]) -> pl.DataFrame:
    ours = rollup_plain_files(paths, DAY, step_s=STEP)
    assert ours is not None
    _alike(ours, _polars(paths))
    return ours


def _shuffled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sample(frac=1.0, random_state=4).reset_index(drop=True)


@pytest.fixture
def time_orders(monkeypatch) -> list[int]:
    """Counts the days that had to be put in (GPU, time) order first."""
    taken = []
    original = plain_files._in_time_order

    def spy(*args, **kwargs):
        taken.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(plain_files, "_in_time_order", spy)
    return taken


@pytest.mark.parametrize("order", ["scrape", "per-series", "shuffled"])
def test_each_row_order_rolls_up_like_the_polars_reader(samples, tmp_path, order, time_orders):
    frame = {"scrape": _scrape(samples), "per-series": samples, "shuffled": _shuffled(samples)}[order]
    out = _same([_write(frame, tmp_path / "part.parquet")])
    assert out.height > 30 and (out["namespace"] == "").any()
    assert out["samples"].sum() < 30 * 288  # missing samples, neighbouring days left out
    assert len(time_orders) == (order == "shuffled")  # rows that are in time order for each GPU are not sorted


def test_one_sample_out_of_time_order_puts_the_day_in_time_order(samples, tmp_path, time_orders):
    """Found in the first block, or in the last (the blocks before it read again, the rest not)."""
    scrape = _scrape(samples)
    early = pd.concat([scrape.iloc[[3000]], scrape.drop(index=3000)], ignore_index=True)  # one sample first
    late = pd.concat([scrape.drop(index=4000), scrape.iloc[[4000]]], ignore_index=True)  # one sample last
    _same([_write(early, tmp_path / "early.parquet")])
    _same([_write(late, tmp_path / "late.parquet", row_group_size=1_000)])
    assert len(time_orders) == 2


def test_more_gpus_and_groups_than_the_first_arrays_hold_and_blocks_that_split_row_groups(samples, tmp_path,
                                                                                            monkeypatch):
    monkeypatch.setattr(plain_files, "FIRST_GPUS", 1)
    monkeypatch.setattr(plain_files, "FIRST_GROUPS", 1)
    monkeypatch.setattr(plain_files, "BLOCK_ROWS", 333)  # several blocks a row group, sharing its dictionary
    _same([_write(_scrape(samples), tmp_path / "part.parquet", row_group_size=700)])
    _same([_write(samples, tmp_path / "series.parquet", row_group_size=100_000)])
    _same([_write(_shuffled(samples), tmp_path / "shuffled.parquet", row_group_size=700)])


def test_a_gpus_duplicate_instants_count_once_the_first_in_the_file(samples, tmp_path):
    frame = _scrape(samples)
    again = frame.iloc[[10, 11, 400, 2000]].assign(util=0.123, energy_mj=1.0)  # same GPU and ts, other values
    duplicated = pd.concat([frame.iloc[:2100], again, frame.iloc[2100:]], ignore_index=True)
    duplicated = duplicated.sort_values("ts", kind="stable").reset_index(drop=True)  # still a scraper's order
    out = _same([_write(duplicated, tmp_path / "dup.parquet")])
    assert out["samples"].sum() == _same([_write(frame, tmp_path / "plain.parquet")])["samples"].sum()
    # shuffled, with the copies still after the originals in the file: the first in the file stays
    copies = duplicated.index.isin(duplicated.index[duplicated.duplicated(["uuid", "ts"], keep="first")])
    shuffled = pd.concat([_shuffled(duplicated[~copies]), duplicated[copies]], ignore_index=True)
    assert _same([_write(shuffled, tmp_path / "dup-shuffled.parquet")])["samples"].sum() == out["samples"].sum()


def test_several_files_other_units_integer_memory_and_naive_times(samples, tmp_path):
    frame = _scrape(samples)
    half = len(frame) // 2
    first = frame.iloc[:half].assign(fb_used_mib=lambda f: f["fb_used_mib"].fillna(0).clip(0, 1e6).astype("int64"))
    second = frame.iloc[half:].assign(ts=lambda f: f["ts"].dt.tz_localize(None).astype("datetime64[ns]"))
    paths = [_write(first, tmp_path / "a.parquet"), _write(second, tmp_path / "b.parquet", compression="zstd")]
    assert pq.read_schema(paths[1]).field("ts").type == pa.timestamp("ns")
    _same(paths)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(0, 5), st.integers(-3, 300), st.sampled_from(["", "a", "b"]),
                               st.floats(-0.5, 1.5), st.floats(0, 1e4)), min_size=1, max_size=120),
       row_group=st.integers(1, 50))
def test_any_small_file_rolls_up_like_the_polars_reader(tmp_path, rows, row_group):
    """GPUs, minutes (some the day before), namespaces and values drawn at random, in the drawn order."""
    start = pd.Timestamp(DAY, tz="UTC")
    frame = pd.DataFrame({
        "ts": [start + pd.Timedelta(minutes=m) for _, m, *_ in rows],
        "cluster": "c1", "hostname": [f"n{g // 2}" for g, *_ in rows], "gpu": [str(g % 2) for g, *_ in rows],
        "uuid": [f"GPU-{g}" for g, *_ in rows], "model": "H800", "namespace": [ns for _, _, ns, *_ in rows],
        "pod": "", "util": [u for *_, u, _ in rows], "fb_used_mib": [e for *_, e in rows], "fb_free_mib": 100.0,
        "power_w": 300.0, "energy_mj": [e * 1000 for *_, e in rows],
    })
    path = _write(frame, tmp_path / f"r{row_group}-{len(rows)}.parquet", row_group_size=row_group)
    sorted_first = []
    original = plain_files._in_time_order
    plain_files._in_time_order = lambda *a: sorted_first.append(1) or original(*a)
    try:
        ours = rollup_plain_files([path], DAY, step_s=60)
    finally:
        plain_files._in_time_order = original
    in_day = [(g, m) for g, m, *_ in rows if m >= 0]
    back = any(m < max((n for h, n in in_day[:i] if h == g), default=-1) for i, (g, m) in enumerate(in_day))
    assert bool(sorted_first) == back  # put in time order exactly when some GPU's time goes back
    _alike(ours, rollup_day(scan_file(path), DAY, step_s=60, engine="streaming"))


def test_what_it_does_not_take_goes_to_the_polars_reader(samples, tmp_path):
    frame = _scrape(samples)
    csv = tmp_path / "part.csv"
    frame.to_csv(csv, index=False)
    no_uuid = _write(frame.assign(uuid=frame["uuid"].where(frame.index != 7, None)), tmp_path / "null.parquet")
    text_number = _write(frame.assign(util=frame["util"].astype(str)), tmp_path / "text.parquet")
    missing = _write(frame.drop(columns=["pod"]), tmp_path / "missing.parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(_write(frame, tmp_path / "whole.parquet").read_bytes()[:5_000])
    for path in (csv, no_uuid, text_number, missing, broken):
        assert rollup_plain_files([path], DAY, step_s=STEP) is None, path.name


def test_labels_written_as_large_strings(samples, tmp_path):
    table = pa.Table.from_pandas(_scrape(samples), preserve_index=False)
    large = table.cast(pa.schema([f.with_type(pa.large_string()) if pa.types.is_string(f.type) else f for f in table.schema]))
    path = tmp_path / "large.parquet"
    pq.write_table(large, path, store_schema=True)
    _same([path])


def test_the_offline_source_rolls_a_plain_day_up_here_in_any_order(samples, tmp_path, monkeypatch):
    """OfflineSource gives a day of plain files to this module: a scraper's, a per-series and a
    shuffled day are all rolled up here, with alike figures."""
    returned = []
    original = plain_files.rollup_plain_files

    def spy(*args, **kwargs):
        returned.append(original(*args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(offline_module, "rollup_plain_files", spy)
    folder = f"day={DAY.isoformat()}"
    orders = {"scrape": _scrape(samples), "per-series": samples,
              "shuffled": samples.sample(frac=1.0, random_state=4).reset_index(drop=True)}
    days = {order: OfflineSource(_write(frame, tmp_path / order / folder / "part.parquet").parents[1]).daily_gpu_stats(DAY, step_s=STEP)
            for order, frame in orders.items()}
    assert [r is not None for r in returned] == [True, True, True]
    _alike(days["scrape"], days["shuffled"])
    _alike(days["per-series"], days["shuffled"])


def test_a_label_column_in_chunks_with_their_own_dictionaries_has_one_code_per_string():
    """Arrow may hand a row group's column over in chunks, each with its own dictionary (and a later
    row group repeats or extends the earlier strings): equal strings get equal codes throughout."""
    codes = plain_files._Codes()
    first = pa.chunked_array([pa.array(["x", "y", "x"]).dictionary_encode(), pa.array(["z", "x"]).dictionary_encode()])
    per_row, places = plain_files._coded(first, codes)
    assert places[per_row].tolist() == [0, 1, 0, 2, 0]
    per_row, places = plain_files._coded(pa.chunked_array([pa.array(["z", "w", "y"]).dictionary_encode()]), codes)
    assert places[per_row].tolist() == [2, 3, 1]
    with pytest.raises(plain_files._NotPlain):  # a row without a value: the polars reader names the file
        plain_files._coded(pa.chunked_array([pa.array(["x", None]).dictionary_encode()]), codes)


def test_where_numba_cannot_cache_the_loop_is_compiled_in_the_process(samples, tmp_path, monkeypatch):
    """A read-only install without NUMBA_CACHE_DIR: numba finds nowhere to cache and refuses to
    compile with ``cache=True``; the rollup still runs (compiled in the process)."""
    import importlib

    import numba
    from numba.core import caching, config

    from core.metrics import rollup_scan

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    monkeypatch.setattr(config, "CACHE_LOCATOR_CLASSES", "", raising=False)
    with pytest.raises(RuntimeError, match="no locator"):
        numba.njit(cache=True)(lambda x: x)
    try:
        importlib.reload(rollup_scan)
        _same([_write(_scrape(samples), tmp_path / "part.parquet")])
    finally:
        monkeypatch.undo()
        importlib.reload(rollup_scan)


@settings(max_examples=60, deadline=None)
@given(times=st.lists(st.one_of(st.integers(-5, 40), st.sampled_from([7, 7, 7, 1_000, np.iinfo(np.int64).min])),
                      max_size=200))
def test_a_gpus_times_are_put_in_order_stably_those_of_other_days_left_out(times):
    """The sort each GPU's stretch goes through on a shuffled day (rollup_scan._time_order): the places
    of the times in [0, 1000) in time order, equal times in their first order — also with many equal
    times in one bucket (merge-sorted there), one far time (most in one bucket) and missing times."""
    from core.metrics.rollup_scan import SMALL_BUCKET, _time_order

    values = np.array(times, dtype=np.int64)
    inside = np.flatnonzero((values >= 0) & (values < 1_000))
    expected = inside[np.argsort(values[inside], kind="stable")]
    assert _time_order(values, 0, 1_000).tolist() == expected.tolist()
    crowded = np.repeat(np.arange(3, dtype=np.int64), SMALL_BUCKET + 5)[::-1].copy()
    assert _time_order(crowded, 0, 1_000).tolist() == np.argsort(crowded, kind="stable").tolist()
