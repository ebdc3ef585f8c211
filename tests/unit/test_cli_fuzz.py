"""The importers, fuzzed with generated and mutated input (issue 11, "zero tracebacks").

Four entry points, each ``COMPUTELOOP_FUZZ_EXAMPLES`` cases (1,000 by default; the count is
printed in the "fuzz cases" section of the test summary):

* the intake form (``IntakeForm.from_dict``, what the Apply page and every form file go through);
* the form file the command line reads (``requests submit/precheck/draft --file``): bytes → the
  bounded JSON reader → ``IntakeForm.from_dict``;
* load-test files (``parse_sweep``, then the sizing the page and ``estimate inference`` run);
* metric sample files (CSV and Parquet under ``day=YYYY-MM-DD``: ``scan_file`` and
  ``OfflineSource.daily_gpu_stats``, what ``jobs rollup`` runs).

Each either returns its result or raises :class:`InputError` naming a field or file whose message
renders in both languages as one line; any other exception fails the case.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.cli import _render, one_line
from core.errors import InputError
from core.estimation.loadtest_formats import LATENCY_KEYS, parse_sweep
from core.lifecycle.forms import IntakeForm
from core.metrics.offline import OfflineSource, partition_dir, scan_file, write_day_file
from core.metrics.schema import SAMPLE_SCHEMA
from tests.support import clock
from tests.support.forms import INFERENCE, JS_FORM, LARGE, MEDIUM, SMALL, TRAINING
from tests.support.fuzz import (
    FUZZ, HOSTILE_DATES, HOSTILE_NUMBERS, HOSTILE_TEXT, deep, dump_json, json_values, mutate_bytes,
)
from tests.support.run_counts import PROPERTY

ROOT = Path(__file__).resolve().parents[2]
LOADTESTS = sorted((ROOT / "tests" / "fixtures" / "loadtests").glob("*.*[nv]"))
FORMS = [TRAINING, INFERENCE, SMALL, MEDIUM, LARGE, JS_FORM]
FIELDS = sorted({k for f in FORMS for k in f} | {"key_libraries", "extra_pools", "estimate_id", "priority",
                                                "high_availability", "canary", "unknown"})


def _refusal_is_one_line(exc: InputError) -> None:
    assert exc.field is not None
    for lang in ("en", "zh-CN"):
        line = one_line("error: " + _render(exc, lang))
        assert "\n" not in line and line.strip()


class _Count:
    """Cases run by one entry point, recorded for the "fuzz cases" summary."""

    def __init__(self, entry: str, record_property) -> None:
        self.entry, self.record, self.n, self.refused = entry, record_property, 0, 0
        self.started, self.cpu = time.perf_counter(), time.process_time()

    def done(self) -> None:
        self.record(PROPERTY, json.dumps({"entry": self.entry, "group": "importers", "cases": self.n,
                                          "refused": self.refused,
                                          "seconds": round(time.perf_counter() - self.started, 2),
                                          "cpu": round(time.process_time() - self.cpu, 2)}))


# --------------------------------------------------------------------------- the intake form

# Values an importer must refuse or take (a pool drawn from cheaply, and generated ones): huge and
# tiny numbers, NaN, dates beyond the calendar, control characters, nested containers.
HOSTILE_VALUES = [*HOSTILE_TEXT, *HOSTILE_DATES, *HOSTILE_NUMBERS, 10**400, -10**400, 10**19, 2**63, 2**31, -1, 0,
                  1e308, 1e-320, float("nan"), float("inf"), True, None, [], {}, [[[[]]]], {"name": {"a": [1]}},
                  ["torch==2.3", {"name": "x", "version": 10**30}], {"": ""}, [None], "9999-12-30", "0001-01-01",
                  "2026-10-01T25:00", "13B", "1.8T", "1e400B", "9" * 400 + "B", "１６", "是", "否"]
hostile_value = st.one_of(st.sampled_from(HOSTILE_VALUES), st.sampled_from(HOSTILE_VALUES), json_values(3),
                          st.integers(), st.floats(), st.text(max_size=10))
forms = st.one_of(
    st.builds(lambda base, changes: {**base, **changes}, st.sampled_from(FORMS),
              st.dictionaries(st.sampled_from(FIELDS), hostile_value, min_size=1, max_size=3)),
    st.builds(lambda base, changes: {**base, **changes}, st.sampled_from(FORMS),
              st.dictionaries(st.sampled_from(FIELDS), hostile_value, min_size=1, max_size=3)),
    json_values(4),
)


def test_intake_form_importer_returns_a_form_or_names_the_field(record_property):
    count = _Count("importer intake form (IntakeForm.from_dict)", record_property)

    @FUZZ
    @given(raw=forms)
    def case(raw):
        count.n += 1
        try:
            form = IntakeForm.from_dict(raw)
        except InputError as exc:
            count.refused += 1
            _refusal_is_one_line(exc)
            return
        assert isinstance(form, IntakeForm)
        json.dumps(form.to_dict(), ensure_ascii=False)  # what a draft stores

    try:
        case()
    finally:
        count.done()


# --------------------------------------------------------------------------- the form file of the CLI

form_files = st.one_of(
    forms.map(dump_json),
    st.sampled_from(FORMS).map(dump_json).flatmap(mutate_bytes),
    st.sampled_from([('{"x": ' + deep(100_000) + "}").encode(), b'{"requested_gpus": ' + b"9" * 400 + b"}",
                     b'{"requested_gpus": ' + b"9" * 5000 + b"}", b'{"qps_peak": NaN}', b'{"qps_peak": -Infinity}',
                     b'{"project": "\\ud800"}', b'{"project": "a\\u0000b"}', b"[1, 2]", b"", b"\xff\xfe", b"\xef\xbb\xbf{}",
                     b'{"key_libraries": ' + deep(80).encode() + b"}", b'{"a": 1, "a": 2}']),
    st.binary(max_size=200),
)


def test_form_file_importer_reads_a_form_or_names_the_file(tmp_path, record_property):
    from core.cli.requests import _read_form

    count = _Count("importer form file (requests --file)", record_property)
    path = tmp_path / "form.json"

    @FUZZ
    @given(data=form_files)
    def case(data):
        count.n += 1
        path.write_bytes(data)
        try:
            IntakeForm.from_dict(_read_form(str(path)))
        except InputError as exc:
            count.refused += 1
            _refusal_is_one_line(exc)

    try:
        case()
    finally:
        count.done()


# --------------------------------------------------------------------------- load-test files

def _csv_text(header: list[str], rows: list[list[str]]) -> bytes:
    return ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode("utf-8", "surrogatepass")


cell = st.one_of(st.floats(0, 1e4).map(lambda v: f"{v:g}"), st.sampled_from(HOSTILE_NUMBERS + ["N/A", '"1,2"', "\r"]),
                 st.text(max_size=5))
plain_csv = st.builds(
    _csv_text,
    st.lists(st.sampled_from(["concurrency", "qps", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "ttft_p99_ms", "x"]),
             min_size=1, max_size=7, unique=True),
    st.lists(st.lists(cell, min_size=0, max_size=8), max_size=6),
)
vllm_json = st.fixed_dictionaries(
    {"request_throughput": hostile_value, "mean_e2el_ms": hostile_value, "p99_e2el_ms": hostile_value},
    optional={"max_concurrency": hostile_value, "median_ttft_ms": hostile_value},
).map(dump_json)
loadtest_content = st.one_of(
    st.sampled_from(LOADTESTS).map(lambda p: (p.name, p.read_bytes())),
    st.sampled_from(LOADTESTS).flatmap(lambda p: mutate_bytes(p.read_bytes()).map(lambda b: (p.name, b))),
    st.sampled_from(LOADTESTS).flatmap(lambda p: mutate_bytes(p.read_bytes()).map(lambda b: (p.name, b))),
    st.tuples(st.sampled_from(["curve.csv", "run_u16_stats.csv", "c" + "9" * 400 + ".csv", "u１６.csv"]), plain_csv),
    st.tuples(st.sampled_from(["bench-concurrency8.json", "x.json"]), vllm_json),
    st.tuples(st.just("deep.json"), st.sampled_from([("{" + '"a": ' + deep(50_000) + "}").encode(),
                                                     b'{"request_throughput": ' + b"9" * 5000 + b"}"])),
)


def test_loadtest_importer_reads_a_curve_or_names_the_file(record_property):
    from core.estimation.inference import size_inference

    count = _Count("importer load-test files (parse_sweep)", record_property)

    @FUZZ
    @given(files=st.lists(loadtest_content, min_size=1, max_size=2), data=st.data())
    def case(files, data):
        count.n += 1
        try:
            sweep = parse_sweep(files)
            # an SLO on a latency the files carry (another key is refused, rightly, every time)
            keys = sorted(sweep.available_keys()) or list(LATENCY_KEYS)
            slo = data.draw(st.sampled_from(keys))
            limit = data.draw(st.one_of(st.sampled_from([50.0, 200.0, 1000.0, 5000.0]), st.floats(1e-3, 1e7)))
            peak = data.draw(st.one_of(st.sampled_from([1.0, 100.0, 1e4]), st.floats(1e-6, 1e9)))
            sizing = size_inference(sweep, slos={slo: limit}, peak_qps=peak)
        except InputError as exc:
            count.refused += 1
            _refusal_is_one_line(exc)
            return
        payload = sizing.as_dict()
        assert payload["replicas"] >= 1 and math.isfinite(payload["gpus"])
        json.dumps(payload, default=str)

    try:
        case()
    finally:
        count.done()


# --------------------------------------------------------------------------- metric sample files

DAY = clock.day(-1)
T0 = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
COLUMNS = list(SAMPLE_SCHEMA)
LABELS = [c for c, t in SAMPLE_SCHEMA.items() if t == pl.Utf8]
NUMBERS = [c for c, t in SAMPLE_SCHEMA.items() if t == pl.Float64]

number = st.one_of(st.floats(0, 1e5), st.floats(), st.sampled_from([-1.0, 1e308, float("inf"), float("nan")]),
                   st.none())
stamp = st.one_of(st.integers(-3600, 2 * 86400).map(lambda s: T0 + timedelta(seconds=s)),
                  st.sampled_from([datetime(1, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, tzinfo=timezone.utc)]))
label = st.one_of(st.sampled_from(["gpu-0", "gpu-1", "ns-a", "", "hq-beijing-1"]), st.text(max_size=6), st.none())


@st.composite
def sample_rows(draw) -> dict[str, list]:
    n = draw(st.integers(0, 6))
    columns = draw(st.sets(st.sampled_from(COLUMNS), min_size=len(COLUMNS) - 2)) if draw(st.booleans()) else set(COLUMNS)
    out = {}
    for c in COLUMNS:
        if c not in columns:
            continue
        strategy = stamp if c == "ts" else number if c in NUMBERS else label
        out[c] = [draw(strategy) for _ in range(n)]
    return out


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value).replace("\n", " ")


@st.composite
def sample_file(draw) -> tuple[str, bytes | dict]:
    """(suffix, content): a CSV text (generated, or mutated), a frame to write as Parquet (plain or
    with series ids), or random bytes named .parquet."""
    kind = draw(st.sampled_from(["csv", "csv", "csv-mutated", "parquet", "parquet-series", "bytes"]))
    rows = draw(sample_rows())
    if kind.startswith("csv"):
        header = list(rows)
        n = len(next(iter(rows.values()))) if rows else 0
        text = ",".join(header) + "\n" + "".join(",".join(_csv_cell(rows[c][i]) for c in header) + "\n" for i in range(n))
        data = text.encode("utf-8", "surrogatepass")
        if kind == "csv-mutated":
            data = draw(mutate_bytes(data))
        return ".csv", data
    if kind == "bytes":
        return ".parquet", draw(st.binary(max_size=300))
    return ".parquet" + ("-series" if kind == "parquet-series" else ""), rows


def _write(folder: Path, suffix: str, content) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    if suffix == ".csv" or isinstance(content, bytes):
        path = folder / f"part{suffix}"
        path.write_bytes(content)
        return path
    path = folder / "part.parquet"
    frame = pl.DataFrame({c: content[c] for c in content},
                         schema={c: SAMPLE_SCHEMA[c] for c in content}, strict=False)
    if suffix.endswith("-series") and set(content) == set(COLUMNS):
        write_day_file(frame, path)
    else:
        frame.write_parquet(path)
    return path


def test_sample_file_importer_rolls_up_or_names_the_file(tmp_path, record_property):
    count = _Count("importer metric sample files (offline)", record_property)
    source = OfflineSource(tmp_path)
    folder = partition_dir(tmp_path, DAY)

    @FUZZ
    @given(file=sample_file(), step=st.sampled_from([60, 300, 3600]))
    def case(file, step):
        count.n += 1
        try:
            path = _write(folder, *file)
        except (pl.exceptions.PolarsError, OverflowError, ValueError, TypeError):
            return  # the generated values do not make a frame: nothing to import
        try:
            scan_file(path).collect()
            rollup = source.daily_gpu_stats(DAY, step_s=step)
            source.latest()
        except InputError as exc:
            count.refused += 1
            _refusal_is_one_line(exc)
            return
        assert isinstance(rollup, pl.DataFrame)

    try:
        case()
    finally:
        count.done()


@pytest.mark.parametrize("name", [p.name for p in LOADTESTS])
def test_every_loadtest_fixture_still_imports(name):
    assert parse_sweep([(name, (ROOT / "tests" / "fixtures" / "loadtests" / name).read_bytes())]).points
