"""Offline source: Parquet and CSV partitions give the same rollup; malformed files are named (with the line for CSV)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.errors import InputError
from core.metrics.fleet import write_samples
from core.metrics.offline import OfflineSource, partition_dir
from core.metrics.rollup import rollup_day
from core.metrics.schema import SAMPLE_SCHEMA

DAY = date(2026, 3, 2)


@pytest.fixture(scope="module")
def parquet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    write_samples(root, start=DAY, days=2, step_s=900, seed=4, scale=0.02)
    return root


@pytest.fixture
def day_frame(parquet_root) -> pl.DataFrame:
    return pl.read_parquet(partition_dir(parquet_root, DAY) / "part.parquet")


def _csv_root(tmp_path, frame: pl.DataFrame, name: str = "part.csv"):
    folder = partition_dir(tmp_path, DAY)
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_csv(folder / name)
    return folder / name


def test_parquet_partition_rolls_up_like_the_frame_itself(parquet_root, day_frame):
    source = OfflineSource(parquet_root)
    assert source.days() == [DAY, DAY + timedelta(days=1)]
    assert_frame_equal(source.daily_gpu_stats(DAY, step_s=900), rollup_day(day_frame, DAY, step_s=900))


def test_csv_partition_gives_the_same_rollup_as_parquet(tmp_path, parquet_root, day_frame):
    _csv_root(tmp_path, day_frame)
    got = OfflineSource(tmp_path).daily_gpu_stats(DAY, step_s=900)
    assert_frame_equal(got, OfflineSource(parquet_root).daily_gpu_stats(DAY, step_s=900), check_exact=False, rel_tol=1e-12)


def test_csv_with_offsets_and_naive_times_is_read_as_utc(tmp_path, day_frame):
    text = day_frame.head(2).with_columns(pl.col("ts").dt.convert_time_zone("Asia/Shanghai").dt.to_string("%Y-%m-%dT%H:%M:%S%:z"))
    path = _csv_root(tmp_path, text)
    got = OfflineSource(tmp_path).scan(DAY).collect()
    assert got["ts"].to_list() == day_frame.head(2)["ts"].to_list()
    assert got.schema == pl.Schema(SAMPLE_SCHEMA)
    naive = day_frame.head(1).with_columns(pl.col("ts").dt.replace_time_zone(None).dt.to_string("%Y-%m-%d %H:%M:%S"))
    naive.write_csv(path)
    assert OfflineSource(tmp_path).scan(DAY).collect()["ts"].to_list() == day_frame.head(1)["ts"].to_list()


def test_a_day_without_files_has_no_rows(tmp_path):
    assert OfflineSource(tmp_path).daily_gpu_stats(DAY).height == 0


def test_csv_with_an_unparsable_number_names_file_and_line(tmp_path, day_frame):
    bad = day_frame.head(5).with_columns(pl.col("util").cast(pl.Utf8))
    bad = bad.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("12%")).otherwise(pl.col("util")).alias("util"))
    path = _csv_root(tmp_path, bad)
    with pytest.raises(InputError) as err:
        OfflineSource(tmp_path).daily_gpu_stats(DAY, step_s=900)
    assert err.value.field == f"{path}:4"  # header is line 1, the third data row is line 4
    assert err.value.params["column"] == "util" and err.value.params["value"] == "12%"


def test_csv_with_a_bad_time_names_file_and_line(tmp_path, day_frame):
    bad = day_frame.head(3).with_columns(pl.col("ts").dt.to_string("%Y-%m-%dT%H:%M:%SZ"))
    bad = bad.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("yesterday")).otherwise(pl.col("ts")).alias("ts"))
    path = _csv_root(tmp_path, bad)
    with pytest.raises(InputError) as err:
        OfflineSource(tmp_path).daily_gpu_stats(DAY, step_s=900)
    assert err.value.field == f"{path}:2" and err.value.params["column"] == "ts"


def test_csv_without_a_column_names_the_file_and_the_column(tmp_path, day_frame):
    path = _csv_root(tmp_path, day_frame.drop("energy_mj"))
    with pytest.raises(InputError) as err:
        OfflineSource(tmp_path).daily_gpu_stats(DAY)
    assert err.value.field == f"{path}:1" and "energy_mj" in err.value.params["columns"]


def test_parquet_without_a_column_or_with_a_text_number_is_named(tmp_path, day_frame):
    folder = partition_dir(tmp_path, DAY)
    folder.mkdir(parents=True)
    day_frame.drop("uuid").write_parquet(folder / "a.parquet")
    with pytest.raises(InputError) as err:
        OfflineSource(tmp_path).daily_gpu_stats(DAY)
    assert err.value.field == str(folder / "a.parquet") and err.value.key == "metrics.missing_columns"
    (folder / "a.parquet").unlink()
    day_frame.with_columns(pl.col("util").cast(pl.Utf8)).write_parquet(folder / "b.parquet")
    with pytest.raises(InputError) as err:
        OfflineSource(tmp_path).daily_gpu_stats(DAY)
    assert err.value.field == str(folder / "b.parquet") and err.value.params["column"] == "util"


def test_a_truncated_parquet_file_is_named(tmp_path, parquet_root):
    folder = partition_dir(tmp_path, DAY)
    folder.mkdir(parents=True)
    data = (partition_dir(parquet_root, DAY) / "part.parquet").read_bytes()
    (folder / "part.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        OfflineSource(tmp_path).daily_gpu_stats(DAY)
    assert str(folder) in err.value.field and err.value.key == "metrics.file_unreadable"


def test_parquet_with_other_integer_types_and_naive_times_is_accepted(tmp_path, day_frame):
    folder = partition_dir(tmp_path, DAY)
    folder.mkdir(parents=True)
    day_frame.with_columns(pl.col("fb_used_mib", "fb_free_mib").cast(pl.Int32),
                           pl.col("ts").dt.replace_time_zone(None).dt.cast_time_unit("ms"),
                           pl.col("model").cast(pl.Categorical)).write_parquet(folder / "x.parquet")
    got = OfflineSource(tmp_path).daily_gpu_stats(DAY, step_s=900)
    assert_frame_equal(got, rollup_day(day_frame, DAY, step_s=900))


def test_latest_gives_one_row_per_gpu_at_or_before_the_time(parquet_root, day_frame):
    source = OfflineSource(parquet_root)
    at = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    latest = source.latest(at)
    assert latest.height == day_frame["uuid"].n_unique()
    assert latest["ts"].max() <= at and "energy_mj" not in latest.columns
    assert source.latest()["ts"].min().date() == DAY + timedelta(days=1)


def test_series_resamples_and_filters_one_namespace(parquet_root, day_frame):
    namespace = day_frame.filter(pl.col("namespace") != "")["namespace"][0]
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    got = OfflineSource(parquet_root).series(start, start + timedelta(hours=6), step_s=3600, namespace=namespace)
    assert set(got["namespace"]) == {namespace}
    assert got.columns == ["ts", "uuid", "hostname", "model", "namespace", "util", "mem", "power_w"]
    assert got.group_by("uuid").len()["len"].max() <= 6
    assert OfflineSource(parquet_root).series(start, start + timedelta(hours=6), step_s=3600, namespace="x' or 1=1").height == 0
