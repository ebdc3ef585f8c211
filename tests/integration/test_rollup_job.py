"""The daily rollup job on SQLite and PostgreSQL: stores the day, re-running changes nothing, a new day adds rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.cli import OneLineParser
from core.cli.jobs import register
from core.config import PROJECT_ROOT
from core.db.session import unit_of_work
from core.errors import InputError
from core.metrics.fleet import write_samples
from core.metrics.offline import OfflineSource
from core.metrics.persistence import count_rows, read_days, rollup_and_store

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
STEP = 900


@pytest.fixture(scope="module")
def samples_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    write_samples(root, start=DAY1, days=2, step_s=STEP, seed=9, scale=0.02)
    return root


def _stored(ctx, first=DAY1, last=DAY2) -> pl.DataFrame:
    with unit_of_work(ctx.sessions) as s:
        return read_days(s, first, last)


def test_job_stores_the_day_rerun_changes_nothing_and_a_second_day_adds_rows(ctx, samples_root):
    source = OfflineSource(samples_root)
    first = rollup_and_store(sessions=ctx.sessions, source=source, day=DAY1, step_s=STEP,
                             now=datetime(2026, 3, 3, 1, tzinfo=timezone.utc))
    stored = _stored(ctx)
    assert first["inserted"] == first["rows"] == stored.height > 0 and first["deleted"] == 0
    assert_frame_equal(stored, source.daily_gpu_stats(DAY1, step_s=STEP), check_exact=False, rel_tol=1e-12)

    again = rollup_and_store(sessions=ctx.sessions, source=source, day=DAY1, step_s=STEP)
    assert again["deleted"] == again["inserted"] == first["rows"]
    assert_frame_equal(_stored(ctx), stored)

    rollup_and_store(sessions=ctx.sessions, source=source, day=DAY2, step_s=STEP)
    with unit_of_work(ctx.sessions) as s:
        assert count_rows(s, DAY1) == first["rows"]
        assert count_rows(s) == first["rows"] + count_rows(s, DAY2)
        assert count_rows(s, DAY2) > 0


def test_a_day_without_samples_leaves_stored_rows_alone(ctx, samples_root):
    source = OfflineSource(samples_root)
    rollup_and_store(sessions=ctx.sessions, source=source, day=DAY1, step_s=STEP)
    with pytest.raises(InputError) as err:
        rollup_and_store(sessions=ctx.sessions, source=OfflineSource(samples_root / "nowhere"), day=DAY1, step_s=STEP)
    assert err.value.field == "day"
    with unit_of_work(ctx.sessions) as s:
        assert count_rows(s, DAY1) > 0


def _parser():
    parser = OneLineParser(prog="python -m core")
    register(parser.add_subparsers(dest="group", required=True, parser_class=OneLineParser))
    return parser


def test_cli_rollup_through_register_is_idempotent(ctx, db_url, samples_root, monkeypatch, capsys):
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)
    argv = ["jobs", "rollup", "--day", DAY1.isoformat(), "--root", str(samples_root), "--step", str(STEP), "--json"]
    for _ in range(2):
        args = _parser().parse_args(argv)
        assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert '"inserted"' in out
    with unit_of_work(ctx.sessions) as s:
        assert count_rows(s) == count_rows(s, DAY1) > 0


def test_cli_rejects_a_bad_day_with_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(["jobs", "rollup", "--day", "2026-13-01"])
    assert exit_.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_subprocess_rollup_and_missing_day(db_url, samples_root):
    env = {**os.environ, "COMPUTELOOP_DATABASE_URL": db_url}
    base = [sys.executable, "-m", "core", "jobs", "rollup", "--root", str(samples_root), "--step", str(STEP), "--json"]
    ok = subprocess.run([*base, "--day", DAY1.isoformat()], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([*base, "--day", "2020-01-01"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert missing.stderr.startswith("error: day:")


def test_cli_backfill_from_to_stores_each_day_as_the_daily_job_does_and_skips_empty_days(ctx, db_url, samples_root,
                                                                                       monkeypatch, capsys):
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)
    source = OfflineSource(samples_root)
    argv = ["jobs", "rollup", "--from", "2026-03-01", "--to", DAY2.isoformat(), "--root", str(samples_root),
            "--step", str(STEP), "--workers", "2", "--json"]
    for _ in range(2):  # a re-run replaces the same rows
        args = _parser().parse_args(argv)
        assert args.handler(args) == 0
    out, docs, at = capsys.readouterr().out, [], 0
    while out[at:].strip():
        doc, at = json.JSONDecoder().raw_decode(out, len(out) - len(out[at:].lstrip()))
        docs.append(doc)
    assert len(docs) == 2
    last = docs[-1]
    assert last["skipped"] == ["2026-03-01"] and [d["day"] for d in last["days"]] == [DAY1.isoformat(), DAY2.isoformat()]
    assert last["deleted"] == last["inserted"] == last["rows"] > 0
    stored = _stored(ctx)
    expected = pl.concat([source.daily_gpu_stats(DAY1, step_s=STEP), source.daily_gpu_stats(DAY2, step_s=STEP)])
    assert_frame_equal(stored, expected, check_exact=False, rel_tol=1e-12)


def test_cli_backfill_refuses_to_without_from_and_a_range_without_samples(ctx, db_url, samples_root, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        args = _parser().parse_args(["jobs", "rollup", "--day", DAY1.isoformat(), "--to", DAY2.isoformat()])
        args.handler(args)
    assert exit_.value.code == 2
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)
    args = _parser().parse_args(["jobs", "rollup", "--from", "2020-01-01", "--to", "2020-01-02",
                                 "--root", str(samples_root), "--step", str(STEP)])
    with pytest.raises(InputError) as err:
        args.handler(args)
    assert err.value.field == "from"
    with unit_of_work(ctx.sessions) as s:
        assert count_rows(s) == 0


# --------------------------------------------------------------------------- service request rollups


@pytest.fixture(scope="module")
def served_root(samples_root):
    """The demo services' request samples of the same two days, in ``<samples_root>/serving``."""
    from core.metrics.serving import write_demo_serving

    write_demo_serving(samples_root)
    return samples_root


def _served(ctx, first=DAY1, last=DAY2) -> pl.DataFrame:
    from core.metrics.serving_rollup import read_serving_days

    with unit_of_work(ctx.sessions) as s:
        return read_serving_days(s, first, last)


def _window(first=DAY1, last=DAY2):
    return (datetime.combine(first, datetime.min.time(), tzinfo=timezone.utc),
            datetime.combine(last, datetime.min.time(), tzinfo=timezone.utc) + timedelta(days=1))


def _figures_equal(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.height == want.height > 0
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-12, abs_tol=1e-9, check_column_order=False)


def test_cli_rollup_stores_the_days_service_figures_and_a_rerun_replaces_them(ctx, db_url, served_root, monkeypatch,
                                                                              capsys):
    from core.metrics.serving import OfflineServingSource

    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    argv = ["jobs", "rollup", "--day", DAY1.isoformat(), "--root", str(served_root), "--step", str(STEP), "--json"]
    outs = []
    for _ in range(2):
        args = _parser().parse_args(argv)
        assert args.handler(args) == 0
        outs.append(json.loads(capsys.readouterr().out)["serving"])
    assert outs[0]["deleted"] == 0 and outs[0]["inserted"] == outs[0]["services"] > 0
    assert outs[1]["deleted"] == outs[1]["inserted"] == outs[0]["inserted"] and outs[1]["source"] == "offline"
    stored = _served(ctx)
    assert set(stored["day"]) == {DAY1} and set(stored["source"]) == {"offline"}
    want = OfflineServingSource(served_root / "serving").serving_parts(*_window(DAY1, DAY1))
    _figures_equal(stored.drop("day", "source").sort("cluster", "namespace"), want.sort("cluster", "namespace"))


def test_month_from_rollups_equals_month_from_live_and_a_gap_day_is_missing_coverage(ctx, db_url, served_root,
                                                                                     monkeypatch, capsys):
    from core.identity import load_personas
    from core.metrics import usage
    from core.metrics.serving import OfflineServingSource, per_namespace

    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    live = OfflineServingSource(served_root / "serving")
    ops = next(p for p in load_personas() if p.id == "li.na")
    after = datetime(2026, 4, 2, tzinfo=timezone.utc)
    month_start, month_end = _window(date(2026, 3, 1), date(2026, 3, 31))
    want = per_namespace(live.serving_stats(month_start, month_end)).sort("namespace")
    cols = ["qps_mean", "qps_peak", "latency_mean_ms", "latency_p99_ms", "coverage", "requests"]

    def sheet(serving):
        made = usage.inference_sheet(sessions=ctx.sessions, actor=ops, month=DAY1, serving=serving, now=after)
        return made, made.rows.filter(pl.col("qps_mean").is_not_null()).select(
            "namespace", *[pl.col(usage.SERVING_COLUMNS.get(c, c)).alias(c) for c in cols]).sort("namespace")

    # only DAY2 rolled up: DAY1 is a gap — missing coverage, never zero traffic
    rollup_and_store(sessions=ctx.sessions, source=OfflineSource(served_root), day=DAY2, step_s=STEP,
                     serving=(live.serving_parts(*_window(DAY2, DAY2)), "offline"))
    gap, rows = sheet(None)
    assert (gap.serving_basis.rollup_days, gap.serving_basis.live_days) == (1, 0)
    day2 = per_namespace(live.serving_stats(*_window(DAY2, DAY2))).sort("namespace")
    assert rows["namespace"].to_list() == day2["namespace"].to_list()
    assert rows["qps_mean"].to_list() == pytest.approx(day2["qps_mean"].to_list(), rel=1e-12)  # the rate of the data
    assert rows["coverage"].to_list() == pytest.approx((day2["coverage"] / 31).to_list(), rel=1e-12)  # 1 day of 31
    # the live source fills the gap day: the figures of the whole month
    filled, rows = sheet(live)
    assert (filled.serving_basis.rollup_days, filled.serving_basis.live_days) == (1, 30)
    _figures_equal(rows, want.select("namespace", *cols))
    # both days rolled up by the backfill: the month from the rollups alone is the month read live
    args = _parser().parse_args(["jobs", "rollup", "--from", DAY1.isoformat(), "--to", DAY2.isoformat(),
                                 "--root", str(served_root), "--step", str(STEP), "--json"])
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out)["services"] == _served(ctx).height > 0
    rolled, rows = sheet(None)
    assert (rolled.serving_basis.rollup_days, rolled.serving_basis.rollup_sources) == (2, ("offline",))
    _figures_equal(rows, want.select("namespace", *cols))
    assert want["latency_p99_ms"].is_not_null().all()


def test_the_summed_daily_buckets_survive_the_database_and_give_the_hand_computed_p99(ctx):
    from core.metrics.serving import stats_from_parts
    from core.metrics.serving_rollup import month_parts, read_serving_days, replace_serving_day

    def day(requests, lat_sum, peak, covered, cum):
        return pl.DataFrame([{"cluster": "hq", "namespace": "svc", "requests": requests, "covered_s": covered,
                              "qps_peak": peak, "latency_sum_s": lat_sum, "latency_count": requests,
                              "le_0.5": cum[0], "le_1.0": cum[1], "le_2.0": cum[2], "le_+Inf": cum[3]}])

    # tests/unit/test_serving.py works these out: daily P99 1.5 s and 1.0 s, the two days' P99 1.2 s
    with unit_of_work(ctx.sessions) as s:
        replace_serving_day(s, DAY1, day(100.0, 60.0, 2.0, 43_200.0, [80.0, 98.0, 100.0, 100.0]), source="offline")
        replace_serving_day(s, DAY2, day(300.0, 180.0, 5.0, 86_400.0, [150.0, 297.0, 300.0, 300.0]), source="prometheus")
    with unit_of_work(ctx.sessions) as s:
        stored = read_serving_days(s, DAY1, DAY2)
    parts, basis = month_parts(stored, *_window())
    got = stats_from_parts(parts, 2 * 86_400.0).row(0, named=True)
    assert got["latency_p99_ms"] == pytest.approx(1200.0, rel=1e-12) and got["qps_peak"] == 5.0
    assert got["coverage"] == pytest.approx(0.75) and got["latency_mean_ms"] == pytest.approx(600.0)
    assert basis.rollup_sources == ("offline", "prometheus") and basis.rollup_days == 2


def test_a_day_without_request_samples_leaves_the_stored_service_rows_alone(ctx, served_root):
    from core.metrics.serving import OfflineServingSource, SERVING_PARTS_SCHEMA

    live = OfflineServingSource(served_root / "serving")
    first = rollup_and_store(sessions=ctx.sessions, source=OfflineSource(served_root), day=DAY1, step_s=STEP,
                             serving=(live.serving_parts(*_window(DAY1, DAY1)), "offline"))
    again = rollup_and_store(sessions=ctx.sessions, source=OfflineSource(served_root), day=DAY1, step_s=STEP,
                             serving=(pl.DataFrame(schema=SERVING_PARTS_SCHEMA), "prometheus"))
    assert first["serving"]["inserted"] > 0 and again["serving"] is None
    assert _served(ctx).height == first["serving"]["inserted"]
