"""The DuckDB comparison of `python -m bench rollup` compares the same figures as our rollup: on a
small plain exporter file (label strings, snappy Parquet from pandas) in shuffled row order, with
namespaces changing mid-day, samples of the neighbouring days and values that are not measurements,
the benchmark's SQL and `rollup_range` agree on every compared column; and the check fails when one
figure differs."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bench.rollup_duckdb import COMPARED, check_same, duckdb_rollup, plain_day, write_plain
from core.metrics.rollup import rollup_range
from tests.support.clock import day

DAY = day(-2)
STEP = 300  # 288 samples a day: 40 GPUs make a file of about 11,000 rows


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    out = plain_day(gpus=40, step_s=STEP, day=DAY, seed=5, changes=(0.0, 0.5, 0.5))  # every GPU changes namespace
    out.loc[3, "util"] = float("nan")  # missing (null in the file)
    out.loc[400, "util"] = -1.0  # not a measurement: missing for both
    out.loc[900, "fb_used_mib"] = float("inf")
    out.loc[1300, "fb_free_mib"] = 2e6  # above sample_values: missing
    neighbours = [out.iloc[:500].assign(ts=out["ts"].iloc[:500] - timedelta(days=1)),
                  out.iloc[-500:].assign(ts=out["ts"].iloc[-500:] + timedelta(days=1))]
    return pd.concat([out, *neighbours], ignore_index=True)


def _write(frame: pd.DataFrame, root) -> tuple:
    path = write_plain(frame, root / f"day={DAY.isoformat()}" / "part.parquet")
    return path, rollup_range(root, DAY, DAY, step_s=STEP)


def test_duckdb_and_ours_agree_on_a_shuffled_plain_file(frame, tmp_path):
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    path, ours = _write(shuffled, tmp_path)
    theirs = duckdb_rollup(path, DAY, step_s=STEP)
    check_same(ours, theirs)
    assert theirs.height == ours.height
    assert (theirs.group_by("uuid").len()["len"] > 1).sum() >= 20  # namespaces changed mid-day
    assert (theirs["namespace"] == "").any()  # idle stretches
    assert theirs["samples"].sum() < 40 * 288  # 3 % missing, neighbouring days left out


def test_shuffled_rows_roll_up_like_the_per_series_order(frame, tmp_path):
    _, ordered = _write(frame, tmp_path / "ordered")
    _, shuffled = _write(frame.sample(frac=1.0, random_state=11).reset_index(drop=True), tmp_path / "shuffled")
    assert_frame_equal(shuffled, ordered, check_exact=False, rel_tol=1e-12)


@pytest.mark.parametrize(("column", "change"), [("samples", 1), ("mean_util", 1e-6), ("peak_mem", 1e-12),
                                                ("used_gpu_hours", 1e-6), ("namespace", "x")])
def test_the_check_fails_on_any_difference(frame, tmp_path, column, change):
    path, ours = _write(frame, tmp_path)
    theirs = duckdb_rollup(path, DAY, step_s=STEP)
    check_same(ours, theirs)
    assert column in COMPARED
    changed = pl.when(pl.int_range(pl.len()) == 0).then(pl.col(column) + change).otherwise(pl.col(column))
    with pytest.raises(AssertionError):
        check_same(ours, theirs.with_columns(changed.alias(column)))
