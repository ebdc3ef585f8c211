"""The daily rollup job on SQLite and PostgreSQL: stores the day, re-running changes nothing, a new day adds rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone

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
