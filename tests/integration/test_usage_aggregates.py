"""The usage sheets sum the rollups in the database (issue 10: the namespace list and the
inference sheet no longer read every rollup row of the window), on SQLite and PostgreSQL: the
figures must be those of the same sums done in polars over every row (``usage.inference_rows``,
whose formulas tests/unit/test_usage_hints.py pins), for the full scope and a province's.

The rollups hold what makes the sums easy to get wrong: a namespace on two clusters and two GPU
models running on the same days (days are counted per namespace, not per cluster), days without a
utilisation or a memory figure (the means are weighted by the samples of the days that have one),
a model without a catalog price (no cost), idle GPUs (no namespace) and a training namespace.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.db.session import unit_of_work
from core.metrics import usage
from core.metrics.persistence import read_days, replace_day
from core.metrics.schema import ROLLUP_SCHEMA
from tests.support.people import ADMIN, PROV_L2
from tests.support import clock

D1, D2, D3 = clock.day(-42), clock.day(-41), clock.day(-40)
KINDS = {"svc-a": "inference", "train-a": "training"}


def _row(day, namespace, cluster, uuid, model, util, mem, samples, alloc):
    return {"day": day, "cluster": cluster, "hostname": f"{cluster}-n1", "uuid": uuid, "model": model,
            "namespace": namespace, "mean_util": util, "peak_util": None if util is None else min(1.0, util + 0.2),
            "mean_mem": mem, "peak_mem": None if mem is None else min(1.0, mem + 0.1), "allocated_gpu_hours": alloc,
            "used_gpu_hours": alloc * (util or 0.0), "energy_kwh": alloc * 0.3, "samples": samples,
            "expected_samples": 1440, "coverage": samples / 1440}


@pytest.fixture
def rollups(ctx):
    days = {
        D1: [_row(D1, "svc-a", "hq-beijing-2", "G1", "H20", 0.4, 0.5, 1440, 24.0),
             _row(D1, "svc-a", "js-nanjing", "G2", "A800-80GB", 0.7, None, 720, 12.0),
             _row(D1, "svc-b", "js-nanjing", "G3", "A800-80GB", None, 0.3, 1440, 24.0),
             _row(D1, "train-a", "hq-beijing-2", "G4", "H20", 0.95, 0.9, 1440, 24.0),
             _row(D1, "", "hq-beijing-2", "G5", "H20", 0.0, 0.0, 1440, 0.0)],
        D2: [_row(D2, "svc-a", "hq-beijing-2", "G1", "H20", 0.2, 0.6, 1000, 24.0),
             _row(D2, "svc-a", "js-nanjing", "G2", "A800-80GB", 0.1, 0.2, 1440, 24.0),
             _row(D2, "svc-c", "zj-hangzhou", "G6", "no-such-gpu", 0.3, 0.3, 1440, 24.0)],
        D3: [_row(D3, "svc-b", "js-nanjing", "G3", "A800-80GB", 0.5, 0.4, 1440, 24.0)],
    }
    with unit_of_work(ctx.sessions) as s:
        for day, rows in days.items():
            replace_day(s, day, pl.DataFrame(rows, schema=ROLLUP_SCHEMA))
    return ctx


def _all_rows(ctx, actor, first, last) -> pl.DataFrame:
    """Every rollup row of the window the actor may read, filtered in polars."""
    with unit_of_work(ctx.sessions) as s:
        scope, rows = usage._scope(s, actor), read_days(s, first, last)
    if scope.everything:
        return rows
    return rows.filter(pl.col("namespace").is_in(sorted(scope.namespaces)) | pl.col("cluster").is_in(sorted(scope.clusters)))


@pytest.mark.parametrize("actor", [ADMIN, PROV_L2], ids=["all", "province"])
def test_the_namespace_list_summed_in_the_database_matches_the_rows(rollups, actor):
    rows = _all_rows(rollups, actor, D1, D3).filter(pl.col("namespace") != "")
    expected = (rows.group_by("namespace").agg(
        pl.col("uuid").n_unique().alias("gpus"), pl.col("day").min().alias("first_day"),
        pl.col("day").max().alias("last_day"), pl.col("allocated_gpu_hours").sum())
        .sort(["allocated_gpu_hours", "namespace"], descending=[True, False]))
    seen = usage.namespaces_seen(sessions=rollups.sessions, actor=actor, first=D1, last=D3)
    assert seen.height == expected.height > 0
    assert_frame_equal(seen, expected, check_dtypes=False, check_exact=False)


@pytest.mark.parametrize("actor", [ADMIN, PROV_L2], ids=["all", "province"])
def test_the_inference_sheet_summed_in_the_database_matches_the_sums_over_every_row(rollups, actor):
    expected = usage.inference_rows(_all_rows(rollups, actor, D1, D3), KINDS)
    with unit_of_work(rollups.sessions) as s:
        partials = usage._partials_sql(s, usage._scope(s, actor), D1, D3)
    sheet = usage._finish_inference(*partials, KINDS, None)
    assert_frame_equal(sheet, expected, check_exact=False)
    a = sheet.filter(pl.col("namespace") == "svc-a").row(0, named=True)
    if actor is ADMIN:  # two clusters and two models on the same two days: 2 days, 2 GPUs
        assert (a["days"], a["gpus"], a["clusters"]) == (2, 2, "hq-beijing-2, js-nanjing")
        assert a["mean_util"] == pytest.approx((0.4 * 1440 + 0.7 * 720 + 0.2 * 1000 + 0.1 * 1440) / (1440 + 720 + 1000 + 1440))
        assert a["mean_mem"] == pytest.approx((0.5 * 1440 + 0.6 * 1000 + 0.2 * 1440) / (1440 + 1000 + 1440))
        assert sheet.filter(pl.col("namespace") == "svc-c")["cost"][0] is None  # a model without a price
    assert "train-a" not in sheet["namespace"].to_list() and "" not in sheet["namespace"].to_list()
