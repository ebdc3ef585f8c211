"""Demo fleet: sized from data/org.yaml, deterministic by seed, each workload kind within its bounds."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.errors import InputError
from core.metrics.fleet import FleetManifest, build_fleet, generate_days, load_manifest, write_samples
from core.metrics.offline import SERIES_METADATA, scan_file
from core.metrics.schema import SAMPLE_SCHEMA
from core.org import load_org

START = date(2026, 3, 2)  # a Monday


@pytest.fixture(scope="module")
def fleet() -> FleetManifest:
    return build_fleet(seed=5, scale=0.1)


@pytest.fixture(scope="module")
def samples(fleet) -> pl.DataFrame:
    frames = [f for _, f in generate_days(fleet, start=START, days=2, step_s=300)]
    gpus = fleet.frame().select("uuid", "kind", "memory_mib", "tdp_w")
    return pl.concat(frames).join(gpus, on="uuid").with_columns(
        mem=pl.col("fb_used_mib") / (pl.col("fb_used_mib") + pl.col("fb_free_mib")),
        local_hour=(pl.col("ts").dt.hour() + 8) % 24,
    )


def test_default_fleet_has_the_org_gpus_and_ten_times_for_the_benchmark():
    org_gpus = sum(p.gpus for p in load_org().pools.values())
    one = build_fleet()
    assert len(one.gpus) == org_gpus
    assert len({g.uuid for g in one.gpus}) == org_gpus
    assert len(build_fleet(scale=10).gpus) == 10 * org_gpus
    for pool in load_org().pools.values():
        nodes = {g.hostname for g in one.gpus if g.pool == pool.id}
        assert len(nodes) == pool.nodes
        assert all(int(g.gpu) < pool.gpus_per_node for g in one.gpus if g.pool == pool.id)


def test_every_workload_kind_is_present_and_unallocated_gpus_have_no_namespace():
    f = build_fleet()
    assert {g.kind for g in f.gpus} == {"training", "inference", "idle_service", "burst", "unallocated"}
    assert all(g.namespace == "" and g.pod == "" for g in f.by_kind("unallocated"))
    assert all(g.namespace and g.pod for g in f.gpus if g.kind != "unallocated")
    training_nodes = {}
    for g in f.by_kind("training"):
        training_nodes.setdefault(g.hostname, set()).add(g.namespace)
    assert all(len(ns) == 1 for ns in training_nodes.values())  # training takes whole nodes


def test_same_seed_same_samples_other_seed_other_samples():
    a = next(generate_days(build_fleet(seed=3, scale=0.03), start=START, days=1, step_s=600))[1]
    b = next(generate_days(build_fleet(seed=3, scale=0.03), start=START, days=1, step_s=600))[1]
    c = next(generate_days(build_fleet(seed=4, scale=0.03), start=START, days=1, step_s=600))[1]
    assert_frame_equal(a, b)
    assert not a["uuid"].equals(c["uuid"])


def test_samples_follow_the_schema(samples):
    raw = samples.select(list(SAMPLE_SCHEMA))
    assert raw.schema == pl.Schema(SAMPLE_SCHEMA)
    assert raw["ts"].min().date() == START and raw["ts"].max().date() == date(2026, 3, 3)
    assert raw.null_count().sum_horizontal().item() == 0


def test_training_runs_near_saturation(samples):
    t = samples.filter(pl.col("kind") == "training")
    assert t["util"].min() >= 0.85 and t["util"].max() <= 0.98
    assert t["mem"].min() >= 0.70 - 1e-3 and t["mem"].max() <= 0.95 + 1e-3
    assert (t["power_w"] / t["tdp_w"]).mean() > 0.85
    assert (t["power_w"] <= t["tdp_w"]).all()


def test_inference_follows_the_working_day_with_steady_memory(samples):
    inf = samples.filter(pl.col("kind") == "inference")
    afternoon = inf.filter(pl.col("local_hour").is_between(14, 17))["util"].mean()
    night = inf.filter(pl.col("local_hour").is_between(2, 5))["util"].mean()
    assert afternoon > 3 * night
    spread = inf.group_by("uuid").agg(pl.col("mem").std())["mem"].max()
    assert spread < 0.02


def test_forgotten_services_hold_memory_and_do_nothing(samples):
    idle = samples.filter(pl.col("kind") == "idle_service")
    assert idle.height > 0
    assert idle["util"].max() < 0.05
    assert idle["mem"].min() >= 0.10 - 1e-3 and idle["mem"].max() <= 0.30 + 1e-3


def test_unallocated_gpus_are_idle_and_bursts_have_busy_and_quiet_periods(samples):
    un = samples.filter(pl.col("kind") == "unallocated")
    assert (un["namespace"] == "").all() and un["util"].max() == 0.0
    burst = samples.filter(pl.col("kind") == "burst")
    assert burst["util"].max() >= 0.6 and burst["util"].quantile(0.25) < 0.05


def test_energy_counters_only_go_up_apart_from_resets(samples):
    per_gpu = samples.sort("uuid", "ts").group_by("uuid").agg(drops=(pl.col("energy_mj").diff() < 0).sum())
    assert per_gpu["drops"].max() <= 1
    assert per_gpu["drops"].sum() <= max(1, len(per_gpu) // 20)


def test_write_samples_lays_out_one_partition_per_day_and_a_manifest(tmp_path):
    result = write_samples(tmp_path, start=START, days=2, step_s=900, seed=2, scale=0.02)
    assert sorted(p.parent.name for p in tmp_path.glob("day=*/part.parquet")) == ["day=2026-03-02", "day=2026-03-03"]
    path = tmp_path / "day=2026-03-02" / "part.parquet"
    first = scan_file(path).collect()  # the documented schema, as every reader sees it
    assert first.schema == pl.Schema(SAMPLE_SCHEMA)
    assert result["rows"] == first.height + pl.read_parquet(tmp_path / "day=2026-03-03" / "part.parquet").height
    # stored in the rollup's layout: series ids beside the labels, whole MiB as integers
    stored = pl.read_parquet_schema(path)
    assert (stored["series"], stored["fb_used_mib"], stored["fb_free_mib"]) == (pl.UInt16, pl.Int32, pl.Int32)
    assert SERIES_METADATA in pl.read_parquet_metadata(path)
    assert_frame_equal(first, next(generate_days(build_fleet(seed=2, scale=0.02), start=START, days=1, step_s=900))[1])
    manifest = load_manifest(tmp_path)
    assert manifest.gpus == build_fleet(seed=2, scale=0.02).gpus
    assert set(first["uuid"].unique()) <= {g.uuid for g in manifest.gpus}
    assert manifest.namespaces() and manifest.meta["step_s"] == 900


@pytest.mark.parametrize("kwargs,field", [({"scale": 0}, "scale"), ({"step_s": 7}, "step"), ({"days": 0}, "days")])
def test_bad_generator_settings_name_the_setting(tmp_path, kwargs, field):
    args = {"start": START, "days": 1, "step_s": 600, "scale": 0.02, **kwargs}
    with pytest.raises(InputError) as err:
        write_samples(tmp_path, **args)
    assert err.value.field == field


def test_energy_is_continuous_across_days():
    fleet = build_fleet(seed=8, scale=0.02)
    (_, d1), (_, d2) = list(generate_days(fleet, start=START, days=2, step_s=600))
    last = d1.group_by("uuid").agg(pl.col("energy_mj").last())
    first = d2.group_by("uuid").agg(pl.col("energy_mj").first())
    joined = last.join(first, on="uuid", suffix="_next")
    ok = (joined["energy_mj_next"] >= joined["energy_mj"]).to_numpy()
    assert np.mean(ok) > 0.9  # all but GPUs whose counter was reset / sample dropped at the boundary
