"""Daily rollup: hand-computed figures, gaps as missing coverage, counter resets, both implementations agree."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.errors import InputError
from core.metrics.fleet import build_fleet, generate_days
from core.metrics.fleet import write_samples
from core.metrics import rollup as rollup_module
from core.metrics.offline import SERIES_INPUT_COLUMNS, OfflineSource, series_labels, write_day_file
from core.metrics.rollup import MJ_PER_KWH, rollup_day, rollup_day_pandas, rollup_day_series, rollup_days, rollup_range
from core.metrics.schema import ROLLUP_SCHEMA, SAMPLE_SCHEMA

DAY = date(2026, 3, 1)
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _samples(rows: list[dict]) -> pl.DataFrame:
    base = {"cluster": "c1", "hostname": "n1", "gpu": "0", "model": "A800-80GB", "pod": "", "power_w": 300.0}
    return pl.DataFrame([{**base, **r} for r in rows]).select([pl.col(c).cast(t) for c, t in SAMPLE_SCHEMA.items()])


def _row(frame: pl.DataFrame, uuid: str, namespace: str) -> dict:
    rows = frame.filter((pl.col("uuid") == uuid) & (pl.col("namespace") == namespace)).to_dicts()
    assert len(rows) == 1
    return rows[0]


@pytest.fixture
def minute_gpu() -> pl.DataFrame:
    """Four 1-minute samples of one GPU; the energy counter restarts at 0 before the third."""
    return _samples([
        {"ts": T0 + timedelta(minutes=i), "uuid": "GPU-a", "namespace": "team-a", "util": u,
         "fb_used_mib": used, "fb_free_mib": 100.0 - used, "energy_mj": e}
        for i, (u, used, e) in enumerate([(0.5, 10.0, 1000.0), (1.0, 20.0, 61000.0), (0.0, 30.0, 1000.0), (0.5, 40.0, 31000.0)])
    ])


def test_hand_computed_means_peaks_hours_and_energy_with_a_counter_reset(minute_gpu):
    out = rollup_day(minute_gpu, DAY, step_s=60)
    r = _row(out, "GPU-a", "team-a")
    assert r["mean_util"] == pytest.approx(0.5)
    assert r["peak_util"] == pytest.approx(1.0)
    assert r["mean_mem"] == pytest.approx(0.25)  # fb_used / (fb_used + fb_free): 0.1, 0.2, 0.3, 0.4
    assert r["peak_mem"] == pytest.approx(0.4)
    assert r["allocated_gpu_hours"] == pytest.approx(4 * 60 / 3600)
    assert r["used_gpu_hours"] == pytest.approx(2.0 * 60 / 3600)
    # deltas 60,000; reset → the new value 1,000 (not -60,000); 30,000
    assert r["energy_kwh"] == pytest.approx(91_000 / MJ_PER_KWH)
    assert (r["samples"], r["expected_samples"]) == (4, 1440)
    assert r["coverage"] == pytest.approx(4 / 1440)
    assert out.schema == pl.Schema(ROLLUP_SCHEMA)


def test_a_gap_lowers_coverage_and_is_not_counted_as_zero_use():
    hours = [h for h in range(24) if not 10 <= h < 14]  # exporter down 10:00-14:00
    frame = _samples([{"ts": T0 + timedelta(hours=h), "uuid": "GPU-b", "namespace": "svc", "util": 0.8,
                       "fb_used_mib": 50.0, "fb_free_mib": 50.0, "energy_mj": 5e9 + h * MJ_PER_KWH} for h in hours])
    r = _row(rollup_day(frame, DAY, step_s=3600), "GPU-b", "svc")
    assert r["coverage"] == pytest.approx(20 / 24)
    assert r["mean_util"] == pytest.approx(0.8)  # not diluted to 0.8 × 20/24 by the gap
    assert r["used_gpu_hours"] == pytest.approx(16.0)  # observed hours only, no zero hours invented
    assert r["allocated_gpu_hours"] == pytest.approx(20.0)
    assert r["energy_kwh"] == pytest.approx(23.0)  # the counter kept counting through the gap


def test_a_gpu_that_changes_namespace_gets_one_row_each_and_energy_follows_the_sample():
    spec = [("a", 0.9)] * 6 + [("", 0.0)] * 6 + [("a", 0.7)] * 6
    frame = _samples([{"ts": T0 + timedelta(hours=h), "uuid": "GPU-c", "namespace": ns, "util": u,
                       "fb_used_mib": 10.0, "fb_free_mib": 90.0, "energy_mj": h * MJ_PER_KWH} for h, (ns, u) in enumerate(spec)])
    out = rollup_day(frame, DAY, step_s=3600)
    a, idle = _row(out, "GPU-c", "a"), _row(out, "GPU-c", "")
    assert (a["samples"], idle["samples"]) == (12, 6)
    assert a["mean_util"] == pytest.approx(0.8)
    assert idle["allocated_gpu_hours"] == 0.0 and a["allocated_gpu_hours"] == pytest.approx(12.0)
    assert a["coverage"] == idle["coverage"] == pytest.approx(18 / 24)  # coverage is the GPU's
    # 17 one-hour intervals: 5 inside the first block + 6 of the second (ending on "a") ; 6 ending on ""
    assert a["energy_kwh"] == pytest.approx(11.0) and idle["energy_kwh"] == pytest.approx(6.0)


def test_row_order_and_duplicates_do_not_change_the_result(minute_gpu):
    other = minute_gpu.with_columns(pl.lit("GPU-z").alias("uuid"))
    frame = pl.concat([minute_gpu, other])
    expected = rollup_day(frame, DAY, step_s=60)
    shuffled = pl.concat([frame, frame.head(2)]).sample(fraction=1.0, shuffle=True, seed=3)
    assert_frame_equal(rollup_day(shuffled, DAY, step_s=60), expected)


@pytest.mark.parametrize("key_bits", [62, 1], ids=["one integer key", "two sort keys"])
def test_rows_in_a_scrapers_order_roll_up_as_each_gpus_rows_in_time_order(minute_gpu, monkeypatch, key_bits):
    """Every GPU at one instant, then the next (one-row blocks: the sorting path), with a duplicate
    instant whose values differ: the first in the file counts, as the in-order path keeps it."""
    import core.metrics.rollup as rollup

    monkeypatch.setattr(rollup, "KEY_BITS", key_bits)  # 1: the key cannot hold both, np.lexsort instead
    gpus = pl.concat([minute_gpu.with_columns(pl.lit(f"GPU-{i}").alias("uuid"), pl.col("util") * (i + 1) / 4)
                      for i in range(3)])
    per_gpu = gpus.sort("uuid", "ts", maintain_order=True)
    duplicate = per_gpu.head(1).with_columns(pl.lit(0.0).alias("util"))
    scrape = pl.concat([gpus.sort("ts", maintain_order=True), duplicate])
    assert_frame_equal(rollup_day(scrape, DAY, step_s=60), rollup_day(per_gpu, DAY, step_s=60))  # in order, no copy
    # the copy first: its values count instead
    first = rollup_day(pl.concat([duplicate, scrape]), DAY, step_s=60).filter(pl.col("uuid") == "GPU-0")
    utils = per_gpu.filter(pl.col("uuid") == "GPU-0")["util"].to_list()
    assert first["samples"].item() == len(utils)
    assert first["mean_util"].item() == pytest.approx(sum([0.0, *utils[1:]]) / len(utils))


def test_samples_of_other_days_are_ignored_and_an_empty_day_gives_no_rows(minute_gpu):
    later = minute_gpu.with_columns(pl.col("ts") + timedelta(days=1))
    assert rollup_day(later, DAY, step_s=60).height == 0
    assert rollup_day(pl.concat([minute_gpu, later]), DAY, step_s=60)["samples"].to_list() == [4]


def test_missing_utilisation_values_are_left_out_of_means_not_taken_as_zero(minute_gpu):
    frame = minute_gpu.with_columns(pl.when(pl.col("util") == 0.0).then(None).otherwise(pl.col("util")).alias("util"))
    r = _row(rollup_day(frame, DAY, step_s=60), "GPU-a", "team-a")
    assert r["mean_util"] == pytest.approx(2.0 / 3)
    assert r["samples"] == 4


@pytest.mark.parametrize("step", [0, 7, -60])
def test_a_step_that_does_not_divide_a_day_is_refused(minute_gpu, step):
    with pytest.raises(InputError) as err:
        rollup_day(minute_gpu, DAY, step_s=step)
    assert err.value.field == "step"


def test_polars_and_pandas_implementations_agree_on_generated_data():
    fleet = build_fleet(seed=11, scale=0.05)
    (day, frame), = list(generate_days(fleet, start=DAY, days=1, step_s=300))
    fast = rollup_day(frame, day, step_s=300)
    reference = rollup_day_pandas(frame.to_pandas(), day, step_s=300)
    ref = pl.from_pandas(reference).with_columns(pl.col("day").cast(pl.Date)).cast(dict(fast.schema))
    assert_frame_equal(fast, ref, check_exact=False, rel_tol=1e-9)
    assert fast.height >= len(fleet.gpus)


def test_pandas_reference_handles_the_hand_computed_fixture(minute_gpu):
    out = rollup_day_pandas(minute_gpu.to_pandas(), DAY, step_s=60)
    assert isinstance(out, pd.DataFrame)
    assert out.loc[0, "energy_kwh"] == pytest.approx(91_000 / MJ_PER_KWH)


@pytest.fixture(scope="module")
def three_days(tmp_path_factory):
    """Three generated days written in the offline layout (with a day before and after missing)."""
    root = tmp_path_factory.mktemp("range")
    write_samples(root, start=DAY, days=3, step_s=600, seed=5, scale=0.03)
    return root


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_rollup_range_equals_rollup_day_day_by_day_whatever_the_workers(three_days, workers):
    source = OfflineSource(three_days)
    first, last = DAY - timedelta(days=1), DAY + timedelta(days=3)  # one empty day at each end
    expected = pl.concat([rollup_day(source.scan(DAY + timedelta(days=i)), DAY + timedelta(days=i), step_s=600)
                          for i in range(3)])
    out = rollup_range(three_days, first, last, step_s=600, workers=workers)
    assert_frame_equal(out, expected)
    assert out["day"].unique().sort().to_list() == [DAY + timedelta(days=i) for i in range(3)]
    by_day = rollup_days(source, first, last, step_s=600, workers=workers)
    assert list(by_day) == [first + timedelta(days=i) for i in range(5)]
    assert by_day[first].height == by_day[last].height == 0
    assert_frame_equal(by_day[DAY + timedelta(days=1)], expected.filter(pl.col("day") == DAY + timedelta(days=1)))


def test_rollup_range_over_a_frame_of_several_days_matches_each_day(three_days):
    frame = pl.concat([OfflineSource(three_days).scan(DAY + timedelta(days=i)) for i in range(3)]).collect()
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    expected = pl.concat([rollup_day(frame, DAY + timedelta(days=i), step_s=600) for i in range(3)])
    assert_frame_equal(rollup_range(shuffled, DAY, DAY + timedelta(days=2), step_s=600, workers=2), expected)


def test_rollup_range_of_days_without_samples_is_empty_with_the_rollup_schema(three_days):
    out = rollup_range(three_days, date(2020, 1, 1), date(2020, 1, 2), step_s=600)
    assert out.height == 0 and out.schema == pl.Schema(ROLLUP_SCHEMA)


def test_rollup_range_refuses_a_range_that_ends_before_it_starts_and_a_bad_step(three_days):
    with pytest.raises(InputError) as err:
        rollup_range(three_days, DAY, DAY - timedelta(days=1), step_s=600)
    assert err.value.field == "to"
    with pytest.raises(InputError) as err:
        rollup_range(three_days, DAY, DAY, step_s=7)
    assert err.value.field == "step"
    with pytest.raises(ValueError):
        rollup_range(three_days, DAY, DAY, step_s=600, workers=0)


def _as_ids(frame: pl.DataFrame, tmp_path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` as series ids and labels, the way write_day_file stores them."""
    path = tmp_path / "ids.parquet"
    write_day_file(frame, path)
    labels, _ = series_labels(path)
    return pl.read_parquet(path, columns=list(SERIES_INPUT_COLUMNS)), labels


def test_series_ids_give_the_hand_computed_figures(minute_gpu, tmp_path):
    frame, labels = _as_ids(minute_gpu, tmp_path)
    out = rollup_day_series(frame, labels, DAY, step_s=60)
    assert_frame_equal(out, rollup_day(minute_gpu, DAY, step_s=60))
    r = _row(out, "GPU-a", "team-a")
    assert r["energy_kwh"] == pytest.approx(91_000 / MJ_PER_KWH) and r["mean_mem"] == pytest.approx(0.25)
    assert rollup_day_series(frame.head(0), labels, DAY, step_s=60).schema == pl.Schema(ROLLUP_SCHEMA)


def test_series_ids_decline_what_only_the_sorting_path_handles(minute_gpu, tmp_path):
    frame, labels = _as_ids(minute_gpu, tmp_path)
    assert rollup_day_series(frame.reverse(), labels, DAY, step_s=60) is None  # not in time order
    assert rollup_day_series(frame, labels, DAY + timedelta(days=1), step_s=60) is None  # another day's samples
    assert rollup_day_series(frame, labels.head(0), DAY, step_s=60) is None  # an id without labels
    with pytest.raises(InputError):
        rollup_day_series(frame, labels, DAY, step_s=7)


@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_chunks_of_runs_give_the_figures_of_one_pass(monkeypatch, chunk):
    """reduce_runs works through the day in chunks of whole runs: small chunks (every run boundary a chunk
    boundary, counter resets, missing values and namespace changes inside and across chunks) give
    exactly what one chunk for the whole day gives."""
    fleet = build_fleet(seed=12, scale=0.03)
    (day, frame), = list(generate_days(fleet, start=DAY, days=1, step_s=600))
    idx = pl.int_range(pl.len())
    frame = frame.with_columns(
        namespace=pl.when((idx % 97).is_between(10, 20)).then(pl.lit("moved")).otherwise(pl.col("namespace")),
        util=pl.when(idx % 31 == 0).then(None).otherwise(pl.col("util")),
        energy_mj=pl.when(idx % 53 == 0).then(None).when(idx % 41 == 0).then(pl.lit(5.0)).otherwise(pl.col("energy_mj")),
        fb_free_mib=pl.when(idx % 59 == 0).then(None).otherwise(pl.col("fb_free_mib")),
    )
    monkeypatch.setattr(rollup_module, "CHUNK_ROWS", 10**9)
    whole = rollup_day(frame, day, step_s=600)
    monkeypatch.setattr(rollup_module, "CHUNK_ROWS", chunk)
    assert_frame_equal(rollup_day(frame, day, step_s=600), whole)
    assert whole["energy_kwh"].min() >= 0 and whole.filter(pl.col("namespace") == "moved").height > 0
