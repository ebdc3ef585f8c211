"""The command line's bad-input defects of issue 11 (item 8) that need no database: each ended in a
traceback, ran without end or printed nonsense with exit 0. Now each is refused with exit 2 and one
stderr line naming the argument, before any work starts; a closed pipe ends quietly; an error that
is not ours is one line with its type.

Run in-process through ``core.cli.main`` (same parser and handlers as ``python -m core``), except
where the process itself matters (the pipe) or where the defect was unbounded work (a subprocess
with a timeout, so the old behaviour fails the test instead of filling the disk).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.support import clock

ROOT = Path(__file__).resolve().parents[2]
LOADTESTS = ROOT / "tests" / "fixtures" / "loadtests"
PLAIN = str(LOADTESTS / "plain_curve.csv")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # the old main let argparse's SystemExit through
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def refused(result: tuple[int, str, str], *, names: str) -> str:
    code, out, err = result
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err and names in err, err
    return err


def subprocess_run(argv: list[str], *, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=timeout)


# --------------------------------------------------------------------------- scales


@pytest.mark.parametrize("command", [
    ["estimate", "training", "--tokens", "2e12", "--gpu", "A100", "--gpus", "8"],
    ["estimate", "memory", "--gpus", "8"],
    ["estimate", "recommend", "--tokens", "1e10", "--max-gpus", "8"],
])
def test_params_1e_320_is_refused_naming_params(command):
    refused(run(*command, "--params", "1e-320"), names="--params")


def test_gpus_per_replica_1e308_is_refused_not_2e308_gpus():
    refused(run("estimate", "inference", "--loadtest", PLAIN, "--slo", "p99_ms=200", "--peak-qps", "100",
                "--gpus-per-replica", "1e308", "--json"), names="--gpus-per-replica")


def test_target_util_1e_300_is_refused():
    refused(run("estimate", "inference", "--loadtest", PLAIN, "--slo", "p99_ms=200", "--peak-qps", "100",
                "--target-util", "1e-300", "--json"), names="--target-util")


@pytest.mark.parametrize("value", ["１６", "1_6", "0x10", "nan", "inf", "99999999999999999999"])
def test_numbers_are_ascii_decimal_and_bounded(value):
    refused(run("estimate", "memory", "--params", "7e9", "--gpus", value), names="--gpus")


def test_the_bounds_themselves_are_accepted():
    from core.cli.inputs import bounds

    low, high = bounds("target_util")
    for util in (low, high):
        code, out, err = run("estimate", "inference", "--loadtest", PLAIN, "--slo", "p99_ms=200", "--peak-qps", "100",
                             "--target-util", repr(util), "--json")
        assert code == 0, err
        assert json.loads(out)["replicas"] >= 2


# --------------------------------------------------------------------------- files


def test_a_carriage_return_inside_a_locust_csv_names_the_file_and_line(tmp_path):
    text = (LOADTESTS / "locust_u32_stats.csv").read_text(encoding="utf-8").replace("Aggregated", "Aggre\rgated")
    path = tmp_path / "run_u32_stats.csv"
    path.write_text(text, encoding="utf-8", newline="")
    err = refused(run("estimate", "inference", "--loadtest", str(path), "--slo", "p99_ms=200", "--peak-qps", "100"),
                  names=str(path))
    assert "line 4" in err


def test_a_400_digit_integer_in_a_loadtest_json_names_the_file(tmp_path):
    path = tmp_path / "bench-concurrency4.json"
    path.write_text('{"request_throughput": ' + "9" * 400 + ', "mean_e2el_ms": 5, "p99_e2el_ms": 9}', encoding="utf-8")
    refused(run("estimate", "inference", "--loadtest", str(path), "--slo", "p99_ms=200", "--peak-qps", "1"),
            names=str(path))


def test_deep_nesting_in_a_loadtest_json_names_the_file(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text('{"request_throughput": 1, "mean_e2el_ms": 5, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
                    encoding="utf-8")
    refused(run("estimate", "inference", "--loadtest", str(path), "--slo", "p99_ms=200", "--peak-qps", "1"),
            names=str(path))


@pytest.mark.parametrize("special", ["folder", "/dev/zero"])
def test_a_loadtest_path_that_is_not_a_regular_file_is_refused(tmp_path, special):
    path = str(tmp_path) if special == "folder" else special
    refused(run("estimate", "inference", "--loadtest", path, "--slo", "p99_ms=200", "--peak-qps", "1"), names=path)


def test_loadtest_out_a_folder_is_refused_before_the_sweep(tmp_path):
    err = refused(run("loadtest", "http://127.0.0.1:9/", "--duration", "0.01", "--concurrency", "1", "--out",
                      str(tmp_path)), names="--out")
    assert "loadtest.progress" not in err and list(tmp_path.iterdir()) == []


def test_a_deeply_nested_loadtest_body_is_refused_naming_body():
    refused(run("loadtest", "http://127.0.0.1:9/", "--duration", "0.01", "--timeout", "0.01",
                "--body", "[" * 100_000 + "]" * 100_000), names="--body")


def test_a_url_urllib_cannot_split_is_refused_naming_url():
    refused(run("loadtest", "http://[::1", "--duration", "0.01", "--timeout", "0.01"), names="url")


# --------------------------------------------------------------------------- demo fleet, seeds, work bounds


def test_seed_minus_5_is_refused_and_nothing_is_written(tmp_path):
    root = tmp_path / "fleet"
    refused(run("jobs", "fleet", "--start", clock.iso(-30), "--days", "1", "--seed", "-5", "--root", str(root),
                "--scale", "0.01", "--step", "3600"), names="--seed")
    assert not root.exists()


def test_fleet_days_1e308_is_refused_at_once(tmp_path):
    """It wrote 11 GB before it was stopped: a subprocess with a timeout, so the old code fails here."""
    root = tmp_path / "fleet"
    proc = subprocess_run(["jobs", "fleet", "--start", clock.iso(-30), "--days", "1e308", "--root", str(root)], timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--days" in proc.stderr, proc.stderr
    assert not root.exists()


def test_a_fleet_beyond_the_sample_limit_is_refused_naming_the_limit(tmp_path):
    root = tmp_path / "fleet"
    err = refused(run("jobs", "fleet", "--start", clock.iso(-30), "--days", "366", "--scale", "10", "--step", "1",
                      "--root", str(root)), names="--days")
    assert "max_fleet_samples" in err and not root.exists()


def test_a_fleet_is_written_in_shards_of_shard_gpus_and_a_shard_below_100_is_refused(tmp_path):
    from core.metrics.offline import OfflineSource

    root = tmp_path / "fleet"
    refused(run("jobs", "fleet", "--start", clock.iso(-30), "--days", "1", "--scale", "0.5", "--step", "43200",
                "--shard-gpus", "99", "--root", str(root)), names="--shard-gpus")
    assert not root.exists()
    code, out, _ = run("jobs", "fleet", "--start", clock.iso(-30), "--days", "1", "--scale", "0.5", "--step", "43200",
                       "--shard-gpus", "100", "--root", str(root), "--json")
    assert code == 0
    gpus = json.loads(out)["gpus"]
    files = OfflineSource(root).files(clock.day(-30))
    assert gpus > 400 and [f.name for f in files] == [f"part-{k:03d}.parquet" for k in range(-(-gpus // 100))]


def test_a_fleet_root_that_is_a_file_is_refused_naming_root(tmp_path):
    a_file = tmp_path / "samples"
    a_file.write_text("x", encoding="utf-8")
    refused(run("jobs", "fleet", "--start", clock.iso(-30), "--days", "1", "--scale", "0.001", "--step", "43200",
                "--root", str(a_file)), names="--root")
    refused(run("jobs", "fleet", "--start", clock.iso(-30), "--days", "1", "--scale", "0.001", "--step", "43200",
                "--root", str(a_file / "below")), names="--root")


def test_demo_history_with_one_sample_a_day_is_refused_not_a_numpy_error():
    refused(run("demo", "history", "--months", "1", "--step", "86400"), names="--step")


@pytest.mark.parametrize("argv,names", [
    (["jobs", "daily", "--today", "0001-01-01"], "--today"),
    (["jobs", "daily", "--today", "9999-12-31"], "--today"),
    (["reclaim", "daily", "--today", "0001-01-01"], "--today"),
    (["jobs", "rollup", "--day", "0001-01-01", "--root", "{tmp}"], "--day"),
    (["jobs", "fleet", "--start", "9999-12-31", "--days", "2", "--root", "{tmp}"], "--start"),
    (["report", "monthly", "--month", "9999-12"], "--month"),
    (["report", "monthly", "--month", "0000-01"], "--month"),
    (["report", "monthly", "--month", "２０２６-１０"], "--month"),
])
def test_dates_beyond_the_calendar_bounds_and_full_width_digits_are_refused(argv, names, tmp_path, monkeypatch):
    """Refused by the argument's type, before the database or any file is opened (the old code
    reached run_daily / build_draft and failed there with OverflowError / ValueError, or turned
    ２０２６-１０ into another report month)."""
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'untouched.db'}")
    refused(run(*[a.replace("{tmp}", str(tmp_path / "root")) for a in argv]), names=names)
    assert not (tmp_path / "untouched.db").exists() and not (tmp_path / "root").exists()


def test_a_backfill_from_year_1_to_9999_is_refused_at_once(tmp_path):
    proc = subprocess_run(["jobs", "rollup", "--from", "0001-01-01", "--to", "9999-12-31", "--root", str(tmp_path)],
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--from" in proc.stderr, proc.stderr


def test_a_backfill_longer_than_the_limit_is_refused_naming_the_limit(tmp_path):
    err = refused(run("jobs", "rollup", "--from", "2001-01-01", "--to", "2099-12-31", "--root", str(tmp_path)),
                  names="--to")
    assert "max_backfill_days" in err


# --------------------------------------------------------------------------- the entry point


def test_output_to_a_closed_pipe_ends_quietly():
    """``python -m core … | head -1``: the reader is gone before the command writes (closed at once:
    after reading a line, the rest of this small output could still fit the pipe's buffer)."""
    proc = subprocess.Popen([sys.executable, "-m", "core", "estimate", "gpus", "--json"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 1
    assert err == b"", err


def test_a_closed_pipe_in_process_ends_quietly():
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    err = io.StringIO()
    with contextlib.redirect_stdout(Closed()), contextlib.redirect_stderr(err):
        assert main(["estimate", "gpus"]) == 1
    assert err.getvalue() == ""


def test_an_error_that_is_not_ours_is_one_line_with_its_type(monkeypatch):
    from core.cli import estimate

    def broken(args):
        raise KeyError("internal detail with\nnewlines and postgresql://user:secret@db/x")

    monkeypatch.setattr(estimate, "_gpus", broken)
    code, out, err = run("estimate", "gpus")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "KeyError" in err and "Traceback" not in err and "secret" not in err, err
    assert err.startswith("error: estimate gpus")


def test_a_refusal_with_line_breaks_in_the_field_is_still_one_line(tmp_path):
    from core.cli import _render, one_line
    from core.errors import InputError

    line = one_line("error: " + _render(InputError("lifecycle.unknown_field", field="a\nb\rc\u2028d"), "en"))
    assert len(line.splitlines()) == 1 and "a\\nb\\rc\\u2028d" in line


def test_nul_and_undecodable_bytes_in_an_argument_are_refused_naming_it():
    refused(run("estimate", "training", "--params", "7e9", "--tokens", "1e12", "--gpu", "A\udcff", "--gpus", "8"),
            names="--gpu")
    refused(run("estimate", "training", "--params", "7e9", "--tokens", "1e12", "--gpu", "A\x00", "--gpus", "8"),
            names="--gpu")


def test_type_errors_follow_lang():
    err = refused(run("estimate", "memory", "--params", "7e9", "--gpus", "0", "--lang", "zh-CN"), names="--gpus")
    assert "超出范围" in err
