"""Offline source: Parquet and CSV partitions give the same rollup; malformed files are named (with the line for CSV)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.errors import InputError
from core.metrics.fleet import write_samples
from core.metrics import offline as offline_module
from core.metrics.offline import SERIES_METADATA, OfflineSource, partition_dir, scan_file, write_day_file
from core.metrics.rollup import rollup_day, series_runs
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


def _two_days(parquet_root, tmp_path, drop_on_newest: int) -> tuple[OfflineSource, pl.DataFrame]:
    """The fixture's two days rewritten with ``drop_on_newest`` GPUs missing from the newest day."""
    days = [scan_file(partition_dir(parquet_root, d) / "part.parquet").collect() for d in (DAY, DAY + timedelta(days=1))]
    gone = days[0]["uuid"].unique().sort().head(drop_on_newest)
    days[1] = days[1].filter(~pl.col("uuid").is_in(gone.implode()))
    for d, frame in zip((DAY, DAY + timedelta(days=1)), days):
        partition_dir(tmp_path, d).mkdir(parents=True)
        write_day_file(frame.select(list(SAMPLE_SCHEMA)), partition_dir(tmp_path, d) / "part.parquet")
    return OfflineSource(tmp_path), pl.concat(days)


@pytest.mark.parametrize("drop_on_newest", [0, 2])
def test_latest_reads_the_day_before_only_for_gpus_missing_from_the_newest_day(parquet_root, tmp_path, drop_on_newest,
                                                                              monkeypatch):
    source, both = _two_days(parquet_root, tmp_path, drop_on_newest)
    want = (both.filter(pl.col("ts") == pl.col("ts").max().over("uuid")).unique("uuid", keep="last")
            .drop("energy_mj").sort("uuid"))
    scanned = []
    monkeypatch.setattr(offline_module, "scan_file", lambda path: scanned.append(path) or scan_file(path))
    got = source.latest()
    assert (partition_dir(tmp_path, DAY) / "part.parquet" in scanned) is (drop_on_newest > 0)
    assert_frame_equal(got, want.select(got.columns))
    assert (got["ts"].dt.date() == DAY).sum() == drop_on_newest  # the missing GPUs' last samples, the day before
    within = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=1)
    early = source.latest(within)  # an instant inside the newest day: every GPU, from both days
    assert early.height == both["uuid"].n_unique() and early["ts"].max() <= within


def test_series_resamples_and_filters_one_namespace(parquet_root, day_frame):
    namespace = day_frame.filter(pl.col("namespace") != "")["namespace"][0]
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    got = OfflineSource(parquet_root).series(start, start + timedelta(hours=6), step_s=3600, namespace=namespace)
    assert set(got["namespace"]) == {namespace}
    assert got.columns == ["ts", "uuid", "hostname", "model", "namespace", "util", "mem", "power_w"]
    assert got.group_by("uuid").len()["len"].max() <= 6
    assert OfflineSource(parquet_root).series(start, start + timedelta(hours=6), step_s=3600, namespace="x' or 1=1").height == 0


# --------------------------------------------------------------------------- series ids (write_day_file)


def _plain(tmp_path, frame: pl.DataFrame, name: str = "plain") -> OfflineSource:
    """``frame`` as a plain Parquet file (label strings, Float64 MiB): the layout of an imported file."""
    folder = partition_dir(tmp_path / name, DAY)
    folder.mkdir(parents=True)
    frame.write_parquet(folder / "part.parquet")
    return OfflineSource(tmp_path / name)


def _with_ids(tmp_path, frame: pl.DataFrame, name: str = "ids") -> OfflineSource:
    folder = partition_dir(tmp_path / name, DAY)
    folder.mkdir(parents=True)
    write_day_file(frame, folder / "part.parquet")
    return OfflineSource(tmp_path / name)


@pytest.fixture
def samples(parquet_root) -> pl.DataFrame:
    """The day's samples in SAMPLE_SCHEMA, as every reader sees them."""
    return scan_file(partition_dir(parquet_root, DAY) / "part.parquet").collect()


@pytest.fixture
def spy(monkeypatch):
    """Counts the rollups that took the series-id path and those it declined (returned None)."""
    calls = {"taken": 0, "declined": 0}

    def counting(*args, **kwargs):
        out = series_runs(*args, **kwargs)
        calls["taken" if out is not None else "declined"] += 1
        return out

    monkeypatch.setattr(offline_module, "series_runs", counting)
    return calls


def test_write_day_file_round_trips_the_samples_and_stores_ids_and_integer_mib(tmp_path, samples):
    path = tmp_path / "x.parquet"
    write_day_file(samples, path)
    assert_frame_equal(scan_file(path).collect(), samples)
    stored = pl.read_parquet(path)
    assert stored.schema["fb_used_mib"] == stored.schema["fb_free_mib"] == pl.Int32
    meta = json.loads(pl.read_parquet_metadata(path)[SERIES_METADATA])
    assert meta["version"] == 1 and meta["rows"] == samples.height
    labels = pl.DataFrame(meta["labels"])
    # every row's label columns are row `series` of the labels
    joined = stored.select("series", "uuid", "namespace", "cluster", "hostname", "model")
    looked_up = labels[stored["series"].to_numpy()]
    assert_frame_equal(joined.drop("series"), looked_up.select(joined.columns[1:]))
    assert labels.height == samples.select("uuid", "namespace", "cluster", "hostname", "model").n_unique()


def test_write_day_file_keeps_fractional_mib_as_floats(tmp_path, samples):
    frac = samples.with_columns(pl.col("fb_used_mib") + 0.5)
    write_day_file(frac, tmp_path / "x.parquet")
    assert pl.read_parquet_schema(tmp_path / "x.parquet")["fb_used_mib"] == pl.Float64
    assert_frame_equal(scan_file(tmp_path / "x.parquet").collect(), frac)


def test_the_demo_writer_s_files_take_the_series_path_and_give_the_plain_layout_s_numbers(tmp_path, parquet_root, samples, spy):
    fast = OfflineSource(parquet_root).daily_gpu_stats(DAY, step_s=900)
    assert spy == {"taken": 1, "declined": 0}
    plain = _plain(tmp_path, samples).daily_gpu_stats(DAY, step_s=900)
    assert spy == {"taken": 1, "declined": 0}  # no ids: the label columns are read
    assert_frame_equal(fast, plain)  # exactly: integer MiB and ids change no figure
    assert fast.height >= samples["uuid"].n_unique()


def test_hand_made_cases_give_the_same_rollup_with_and_without_ids(tmp_path, samples, spy):
    """A counter reset, a GPU that leaves its namespace and comes back, a missing utilisation, a
    missing counter value and a GPU whose hostname label differs in its second run."""
    uuid = samples["uuid"][0]
    one = samples.filter(pl.col("uuid") == uuid)
    n = one.height
    idx = pl.int_range(pl.len())
    edited = one.with_columns(
        namespace=pl.when(idx.is_between(n // 3, n // 2)).then(pl.lit("")).otherwise(pl.col("namespace")),
        hostname=pl.when(idx > n // 2).then(pl.lit("moved-node")).otherwise(pl.col("hostname")),
        util=pl.when(idx == 2).then(None).otherwise(pl.col("util")),
        energy_mj=pl.when(idx == 3).then(None).when(idx >= n // 4).then(pl.col("energy_mj") - pl.col("energy_mj").first())
        .otherwise(pl.col("energy_mj")),
    )
    frame = pl.concat([edited, samples.filter(pl.col("uuid") != uuid)])
    got = _with_ids(tmp_path, frame).daily_gpu_stats(DAY, step_s=900)
    assert spy == {"taken": 1, "declined": 0}
    assert_frame_equal(got, _plain(tmp_path, frame).daily_gpu_stats(DAY, step_s=900))
    assert got.filter(pl.col("uuid") == uuid).height == 2


@pytest.mark.parametrize("case", ["shuffled", "duplicate", "other_day"])
def test_rows_out_of_order_duplicated_or_of_another_day_fall_back_to_the_label_columns(tmp_path, samples, spy, case):
    if case == "shuffled":
        frame = samples.sample(fraction=1.0, shuffle=True, seed=2)
    elif case == "duplicate":
        frame = pl.concat([samples.head(3), samples]).sort("uuid", "ts", maintain_order=True)
    else:
        frame = pl.concat([samples, samples.head(5).with_columns(pl.col("ts") + timedelta(days=1))])
    got = _with_ids(tmp_path, frame).daily_gpu_stats(DAY, step_s=900)
    assert spy == {"taken": 0, "declined": 1}
    assert_frame_equal(got, rollup_day(OfflineSource(tmp_path / "ids").scan(DAY), DAY, step_s=900))
    assert_frame_equal(got, _plain(tmp_path, samples).daily_gpu_stats(DAY, step_s=900))


@pytest.mark.parametrize("meta", [
    {"version": 1, "rows": 1, "labels": None},            # labels not in the documented form
    {"version": 2},                                       # a version this reader does not know
    "rows-mismatch", "ids-out-of-range",
])
def test_ids_whose_metadata_does_not_fit_the_file_are_not_used(tmp_path, samples, spy, meta):
    folder = partition_dir(tmp_path / "ids", DAY)
    folder.mkdir(parents=True)
    path = folder / "part.parquet"
    write_day_file(samples, path)
    stored, raw = pl.read_parquet(path), json.loads(pl.read_parquet_metadata(path)[SERIES_METADATA])
    if meta == "rows-mismatch":
        raw["rows"] += 1
    elif meta == "ids-out-of-range":
        raw["labels"] = {k: v[:-1] for k, v in raw["labels"].items()}
    else:
        raw = meta
    stored.write_parquet(path, metadata={SERIES_METADATA: json.dumps(raw)})
    got = OfflineSource(tmp_path / "ids").daily_gpu_stats(DAY, step_s=900)
    assert spy["taken"] == 0
    assert_frame_equal(got, _plain(tmp_path, samples).daily_gpu_stats(DAY, step_s=900))


def test_a_file_rewritten_by_polars_loses_the_ids_so_edited_labels_are_read(tmp_path, parquet_root, spy):
    """The documented contract: a tool that edits the labels must not keep stale ids; polars drops the
    metadata when it rewrites a file, so the edited namespace is what the rollup reports."""
    folder = partition_dir(tmp_path / "edited", DAY)
    folder.mkdir(parents=True)
    edited = pl.read_parquet(partition_dir(parquet_root, DAY) / "part.parquet").with_columns(namespace=pl.lit("renamed"))
    edited.write_parquet(folder / "part.parquet")
    got = OfflineSource(tmp_path / "edited").daily_gpu_stats(DAY, step_s=900)
    assert spy["taken"] == 0 and set(got["namespace"]) == {"renamed"}


def test_a_day_written_as_shards_of_gpus_takes_the_series_ids_file_by_file(tmp_path, samples, spy):
    folder = partition_dir(tmp_path / "shards", DAY)
    folder.mkdir(parents=True)
    gpus = samples["uuid"].unique().sort()
    for k, shard in enumerate((gpus[: gpus.len() // 2], gpus[gpus.len() // 2:])):
        write_day_file(samples.filter(pl.col("uuid").is_in(shard.implode())), folder / f"part-{k}.parquet")
    got = OfflineSource(tmp_path / "shards").daily_gpu_stats(DAY, step_s=900)
    assert spy == {"taken": 2, "declined": 0}
    assert_frame_equal(got, _plain(tmp_path, samples).daily_gpu_stats(DAY, step_s=900))


def test_a_day_of_two_files_sharing_a_gpu_reads_the_label_columns(tmp_path, samples, spy):
    folder = partition_dir(tmp_path / "two", DAY)
    folder.mkdir(parents=True)
    write_day_file(samples.gather_every(2), folder / "a.parquet")  # every GPU in both files
    write_day_file(samples.gather_every(2, offset=1), folder / "b.parquet")
    got = OfflineSource(tmp_path / "two").daily_gpu_stats(DAY, step_s=900)
    assert spy == {"taken": 0, "declined": 0}
    assert_frame_equal(got, _plain(tmp_path, samples).daily_gpu_stats(DAY, step_s=900))


def test_a_fleet_written_in_shards_rolls_up_as_the_same_fleet_in_one_frame(tmp_path):
    """write_samples(shard_gpus=…): one file per shard of GPUs, each rolled up from its series ids,
    the day's rows those of the plain rollup of all the shards' samples together."""
    from core.metrics.fleet import write_samples

    out = write_samples(tmp_path / "sharded", start=DAY, days=1, step_s=900, scale=0.05, shard_gpus=20)
    folder = partition_dir(tmp_path / "sharded", DAY)
    parts = sorted(folder.glob("part*.parquet"))
    assert len(parts) == len(out["files"]) > 1 and all(p.name.startswith("part-") for p in parts)
    together = pl.concat([scan_file(p).collect() for p in parts])
    assert together.height == out["rows"] and together["uuid"].n_unique() == out["gpus"]
    got = OfflineSource(tmp_path / "sharded").daily_gpu_stats(DAY, step_s=900)
    assert_frame_equal(got, rollup_day(together, DAY, step_s=900))
    # written again unsharded: the shards' files go, the day is one file
    write_samples(tmp_path / "sharded", start=DAY, days=1, step_s=900, scale=0.05)
    assert [p.name for p in folder.glob("part*.parquet")] == ["part.parquet"]
