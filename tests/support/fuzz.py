"""Property-based fuzzing of the command line and the importers (issue 11, "zero tracebacks").

* :func:`leaf_commands` enumerates every command from the argparse parser itself, so a new
  command is fuzzed without touching the tests; :func:`argv_for` draws an argv for one of them
  from its own actions (types, choices, nargs), mixing valid values, values at and just beyond the
  bounds of data/cli_limits.yaml, and hostile ones (huge and tiny numbers, full-width digits,
  impossible dates, control characters, unpaired surrogates, junk options).
* :func:`run_cli` runs one command in-process through :func:`core.cli.main` with stdout/stderr
  captured (a subprocess per case would cost ~1 s each).
* :func:`count_writes` / :func:`writes` (rows written per table) and :func:`file_tree` take the
  state a refused command must leave alone.
* :data:`FUZZ` is the hypothesis profile of every fuzz test: ``max_examples`` per entry point from
  ``COMPUTELOOP_FUZZ_EXAMPLES`` (default 1,000) and, per CLI command, ``COMPUTELOOP_FUZZ_CLI_EXAMPLES`` cases
  (default 1,000, drawn in batches of :data:`CLI_BATCH` argvs per example);
  its parent is the profile in force (tests/conftest.py loads ``ci``, derandomized, when CI is set).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, inspect, text

from tests.support import clock

EXAMPLES = int(os.environ.get("COMPUTELOOP_FUZZ_EXAMPLES", "1000"))
CLI_EXAMPLES = int(os.environ.get("COMPUTELOOP_FUZZ_CLI_EXAMPLES", "1000"))
# Each example of a CLI command's fuzz is a batch of argvs run one after another: hypothesis spends
# about 1.4 ms of its own per example (besides drawing), more than most commands take to refuse.
CLI_BATCH = 10

settings.register_profile(
    "computeloop-fuzz", parent=settings.default, max_examples=EXAMPLES, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
)
FUZZ = settings.get_profile("computeloop-fuzz")
FUZZ_CLI = settings(FUZZ, max_examples=-(-CLI_EXAMPLES // CLI_BATCH))

# The work bounds of the fuzz's own data folder: a run the command line accepts must stay cheap
# (the real bounds are tested by tests/integration/test_cli_inputs.py).
FUZZ_WORK = {"max_backfill_days": 5, "max_fleet_samples": 70_000}


# --------------------------------------------------------------------------- running a command


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(argv: list[str], parser: argparse.ArgumentParser | None = None) -> Result:
    """``python -m core *argv`` in-process: exit code, stdout, stderr."""
    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv, parser=parser)
        except SystemExit as exc:  # argparse's usage errors (2) and --help (0), as from the process
            code = 0 if exc.code is None else exc.code
    return Result(code, out.getvalue(), err.getvalue())


def check_result(argv: list[str], result: Result) -> None:
    """The contract of every command: exit 0 or 2, never a traceback, a refusal is one stderr line."""
    short = [a if len(a) <= 200 else a[:100] + f"…<{len(a)} chars>" for a in argv]
    shown = f"argv={short!r}\nexit={result.code!r}\nstderr={result.err[-2000:]!r}"
    assert result.code in (0, 2), shown
    assert "Traceback" not in result.err, shown
    if result.code == 2:
        assert result.err.count("\n") == 1 and result.err.endswith("\n"), shown
        assert len(result.err.splitlines()) == 1, shown


WRITES_TABLE = "_fuzz_writes"


def count_writes(engine: Engine) -> None:
    """Make a scratch SQLite database count every row written: a table ``_fuzz_writes`` (one row per
    table) and, on every table, triggers after INSERT, UPDATE and DELETE that add one to it. A
    transaction rolled back takes its counts with it, so :func:`writes` changes exactly when a
    command left a row inserted, changed or deleted — stronger than comparing row counts (an UPDATE
    keeps them), and one small query per case instead of a count of every table."""
    names = sorted(n for n in inspect(engine).get_table_names() if n != WRITES_TABLE)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {WRITES_TABLE} (tbl TEXT PRIMARY KEY, n INTEGER NOT NULL)"))
        for name in names:
            conn.execute(text(f"INSERT OR IGNORE INTO {WRITES_TABLE} VALUES (:t, 0)"), {"t": name})
            for op in ("INSERT", "UPDATE", "DELETE"):
                conn.execute(text(
                    f'CREATE TRIGGER IF NOT EXISTS "_fuzz_{op.lower()}_{name}" AFTER {op} ON "{name}" '
                    f"BEGIN UPDATE {WRITES_TABLE} SET n = n + 1 WHERE tbl = '{name}'; END"))


def writes(engine: Engine) -> dict[str, int]:
    """Rows written per table since :func:`count_writes` (one query)."""
    with engine.connect() as conn:
        return dict(conn.execute(text(f"SELECT tbl, n FROM {WRITES_TABLE}")).all())


def file_tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: (size, mtime_ns)."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            out[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns)
    return out


def fuzz_data_dir(target: Path) -> Path:
    """A copy of data/ whose cli_limits.yaml has the small work bounds of :data:`FUZZ_WORK`."""
    from core.config import DATA_DIR

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(DATA_DIR, target)
    limits_file = target / "cli_limits.yaml"
    raw = yaml.safe_load(limits_file.read_text(encoding="utf-8"))
    raw["work"].update(FUZZ_WORK)
    limits_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return target


# --------------------------------------------------------------------------- the commands


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    parser: argparse.ArgumentParser

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def actions(self) -> list[argparse.Action]:
        return [a for a in self.parser._actions if not isinstance(a, argparse._HelpAction)]


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every runnable command of ``parser`` (the leaves of its subparser tree)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaf_commands(sub, path + (name,))
            return
    yield Command(path, parser)


# --------------------------------------------------------------------------- values


def _limits() -> dict:
    from core.cli.inputs import limits

    return limits()


HOSTILE_NUMBERS = ["0", "-0", "-1", "1e308", "-1e308", "1e-320", "1e-300", "nan", "NaN", "inf", "-inf", "1e400",
                   "99999999999999999999", "9223372036854775808", "2147483648", "9" * 400, "１６", "٣", "1_000",
                   "0x10", "", " ", "1e", ".", "+", "--1", "1,5", "7e9 ", "\u00a01", "1\n2", "0.0000001"]
HOSTILE_TEXT = ["", " ", "\n", "a\rb", "\x00", "x\x00y", "\udcff", "\ud800", "<x>", "'; DROP TABLE requests; --",
                "=cmd|' /C calc'!A0", "../../etc/passwd", "%s%n", "{0}{name}", "\u2028", "\x1b[31mred", "—" * 50,
                "x" * 20000, "表" * 100, "--json", "-", "--", "\t"]
HOSTILE_DATES = ["9999-12-31", "9999-12", "0000-01-01", "0001-01-01", "0000-01", "2026-02-30", "2026-13-01",
                 "２０２６-１０-０１", "2026-1-1", "20261001", "2026-W44-1", "2026-10-01T00:00", "1999-12-31",
                 "2100-01-01", "-2026-01-01", "", "today"]
HOSTILE_MONTHS = ["9999-12", "0000-01", "0001-01", "２０２６-１０", "2026-13", "2026-00", "2026-1", "202610", "1999-12",
                  "2100-01", "2026-10-01", ""]


def _fmt_number(value: float, whole: bool) -> str:
    if whole:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class Values:
    """The texts one argument may take: ``valid`` ones (what a careful user types, bounds
    included) and ``hostile`` ones (beyond the bounds, malformed, absurd)."""

    valid: st.SearchStrategy[str]
    hostile: st.SearchStrategy[str]

    def any(self) -> st.SearchStrategy[str]:
        return st.one_of(self.valid, self.hostile)


def number_values(bounds_name: str, *, whole: bool, valid: st.SearchStrategy | None = None) -> Values:
    """A number argument: within the bounds of data/cli_limits.yaml (the bounds themselves
    included); hostile: just beyond them, or not a plain ASCII number at all."""
    entry = _limits()["numbers"][bounds_name]
    low, high = float(entry["min"]), float(entry["max"])
    if valid is None:
        if whole:
            valid = st.integers(math.ceil(low), math.floor(high)).map(str)
        else:
            valid = st.floats(low, high, allow_nan=False, allow_infinity=False).map(repr)
        valid = st.one_of(valid, st.sampled_from([_fmt_number(low, whole), _fmt_number(high, whole)]))
    beyond = [low - 1 if whole else low / 2 if low > 0 else -1.0, high + 1 if whole else high * 2 + 1]
    hostile = st.one_of(st.sampled_from([_fmt_number(b, whole) for b in beyond] + HOSTILE_NUMBERS),
                        st.text(max_size=6))
    return Values(valid, hostile)


def number_text(bounds_name: str, *, whole: bool, valid: st.SearchStrategy | None = None) -> st.SearchStrategy[str]:
    return number_values(bounds_name, whole=whole, valid=valid).any()


def id_values() -> Values:
    """An id: one that exists in the seeded database or not (valid); hostile: beyond ``integer``."""
    beyond = ["2147483648", "9223372036854775808", "99999999999999999999", "1e308", "1e19", "-2147483649"]
    return Values(st.one_of(st.integers(1, 40).map(str), st.just("2147483647")),
                  st.one_of(st.sampled_from(beyond), st.sampled_from(["1.5", "0", *HOSTILE_NUMBERS])))


def day_values() -> Values:
    return Values(st.one_of(st.integers(-400, 400).map(lambda n: clock.iso(n)), st.sampled_from(["2000-01-01", "2099-12-31"])),
                  st.one_of(st.sampled_from(HOSTILE_DATES), st.dates().map(lambda d: d.isoformat()), st.text(max_size=10)))


def month_values() -> Values:
    return Values(st.one_of(st.integers(-14, 2).map(lambda n: clock.month(n)), st.sampled_from(["2000-01", "2099-12"])),
                  st.one_of(st.sampled_from(HOSTILE_MONTHS), st.dates().map(lambda d: d.isoformat()[:7]),
                            st.text(max_size=8)))


def text_values(*meaningful: str) -> Values:
    return Values(st.sampled_from(list(meaningful) or ["x"]),
                  st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=30), st.text(alphabet=string.printable, max_size=30)))


def free_text(*meaningful: str) -> st.SearchStrategy[str]:
    return text_values(*meaningful).any()


# --------------------------------------------------------------------------- files


@dataclass
class Workspace:
    """The folder a fuzzed command may read and write: prepared inputs and output targets."""

    root: Path

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def a_file(self) -> Path:
        """An existing file where a folder is expected (made by :meth:`prepare`)."""
        return self.root / "a-file.txt"

    def prepare(self) -> "Workspace":
        for folder in (self.out, self.root / "empty", self.root / "in"):
            folder.mkdir(parents=True, exist_ok=True)
        self.a_file.write_text("not a folder\n", encoding="utf-8")
        return self

    def new_file(self, name: str, data: bytes) -> str:
        folder = self.root / "in"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        return str(path)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """JSON-like values including the ones importers choke on: huge ints, NaN, deep nesting."""
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(min_value=10**18, max_value=10**400),
        st.floats(), st.text(max_size=20), st.sampled_from(HOSTILE_TEXT[:14]),
    )
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=max_leaves)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def dump_json(value: Any) -> bytes:
    """JSON text of ``value`` (NaN/Infinity kept, as Python writes them) or, for an int beyond
    Python's str() limit, the value's own text."""
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except ValueError:
        return b"{}"


@st.composite
def _edited(draw, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        at = draw(st.integers(0, len(out) - 1))
        kind = draw(st.sampled_from(["flip", "delete", "dup", "insert", "truncate", "digits"]))
        if kind == "flip":
            out[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del out[at:at + draw(st.integers(1, 16))]
        elif kind == "dup":
            out[at:at] = out[at:at + draw(st.integers(1, 32))]
        elif kind == "insert":
            out[at:at] = draw(st.sampled_from([b"\r", b"\x00", b'"', b",", b"\n", b"-", b"1e400", b"\xff",
                                               b"[[[[", b"}", b"9" * 400, b"\xef\xbc\x91"]))
        elif kind == "truncate":
            del out[at:]
        else:
            out[at:at] = str(draw(st.integers(-10**30, 10**30))).encode()
    return bytes(out)


def mutate_bytes(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with a few edits: bytes flipped, a span deleted or duplicated, CR/NUL/quote/digits
    inserted, truncated."""
    return _edited(data) if data else st.binary(max_size=64)


# --------------------------------------------------------------------------- argv of one command


@dataclass
class Inputs:
    """Prepared paths the argument strategies draw from."""

    ws: Workspace
    metrics_root: Path       # a folder with two days of tiny samples (jobs rollup --root)
    fleet_root: Path         # where jobs fleet may write
    loadtest_files: list[Path]
    forms: list[dict]
    personas: list[str]
    gpus: list[str]
    scopes: list[str]
    closed_url: str


def _form_file(inputs: Inputs) -> Values:
    """A --file: a valid form (valid); a form with one field replaced by anything, a mutated JSON
    text, or a hostile file (deep nesting, 400-digit integer, NaN, \\ud800, not an object, a folder,
    a device, missing)."""
    forms = st.sampled_from(inputs.forms)
    fields = sorted({k for f in inputs.forms for k in f} | {"unknown_field", "start_date"})
    replaced = st.builds(lambda f, k, v: {**f, k: v}, forms, st.sampled_from(fields),
                         st.one_of(json_values(4), st.sampled_from(HOSTILE_TEXT + HOSTILE_DATES + HOSTILE_NUMBERS)))
    mutated = forms.map(dump_json).flatmap(mutate_bytes)
    special = st.sampled_from([
        ('{"x": ' + deep(100_000) + "}").encode(), b'{"requested_gpus": ' + b"9" * 400 + b"}",
        b'{"requested_gpus": ' + b"9" * 5000 + b"}", b'{"qps_peak": NaN}', b'{"project": "\\ud800"}',
        b'{"project": "a\\u0000b"}', b"[1, 2]", b"", b"\xff\xfe", b'{"start_date": "9999-12-30"}',
        b'{"key_libraries": ' + deep(50).encode() + b"}",
    ])

    def write(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
        return st.builds(lambda d, n: inputs.ws.new_file(f"form-{n}.json", d), data, st.integers(0, 3))

    paths = st.sampled_from([str(inputs.ws.root), str(inputs.ws.root / "missing.json"), "/dev/null", "/dev/zero", ""])
    return Values(write(forms.map(dump_json)),
                  st.one_of(write(replaced.map(dump_json)), write(mutated), write(special), paths))


def _loadtest_file(inputs: Inputs) -> Values:
    fixture = st.sampled_from(inputs.loadtest_files)
    mutated = fixture.flatmap(lambda p: mutate_bytes(p.read_bytes()).map(lambda b: inputs.ws.new_file(p.name, b)))
    special = st.sampled_from([str(inputs.ws.root), str(inputs.ws.root / "missing.csv"), "/dev/zero", "/dev/null"])
    return Values(fixture.map(str), st.one_of(mutated, mutated, special))


def _out_file(inputs: Inputs) -> Values:
    out = inputs.ws.out
    return Values(st.sampled_from([str(out / "result.out"), str(out / "result.csv")]),
                  st.sampled_from([str(out), str(out / "missing" / "x.csv"), "", str(out / "a\udcffb.csv")]))


def _root(inputs: Inputs, *, writable: bool) -> Values:
    target = inputs.fleet_root if writable else inputs.metrics_root
    return Values(st.sampled_from([str(target), str(inputs.ws.root / "empty")]),
                  st.sampled_from([str(inputs.ws.a_file), str(inputs.ws.a_file / "below"),
                                   str(inputs.ws.root / "not-there" / "x")]))


def _slo() -> Values:
    ms = number_values("slo_ms", whole=False)
    return Values(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["p99_ms", "p50_ms", "p95_ms", "mean_ms"]), ms.valid),
                  st.one_of(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["p99_ms", "bogus", "", "ttft_p99_ms"]),
                                      ms.any()),
                            st.sampled_from(["p99_ms", "=200", "p99_ms=", "p99_ms=200=3"]), st.text(max_size=10)))


def _concurrency(cheap: bool) -> Values:
    levels = st.integers(1, 3 if cheap else 512)
    valid = st.lists(levels, min_size=1, max_size=3 if cheap else 6).map(lambda xs: ",".join(map(str, xs)))
    return Values(valid, st.sampled_from(["0", "1,x", ",", "513", "1," * 40, "１,２", "-1", "1e308", ""]))


_DAY_DIVISORS = [d for d in range(1, 43201) if 86400 % d == 0]


def value_strategy(command: Command, action: argparse.Action, inputs: Inputs) -> Values:
    """The values of one argument of ``command``."""
    from core.cli import inputs as cli_inputs

    dest, kind = action.dest, action.type
    cmd = command.name
    # Cost pins: a valid value must keep the run short (a load test against a closed port lasts
    # levels × --duration; recommend searches up to --max-gpus; a PDF export takes a second).
    if cmd == "loadtest":
        if dest in ("duration", "timeout"):
            return number_values("loadtest_duration" if dest == "duration" else "loadtest_timeout", whole=False,
                                 valid=st.floats(0.001, 0.01).map(repr))
        if dest == "concurrency":
            return _concurrency(cheap=True)
        if dest == "url":
            return Values(st.sampled_from([inputs.closed_url, inputs.closed_url + "v1"]),
                          st.sampled_from(["http://10.0.0.1/", "ftp://127.0.0.1/", "", "http://[::1", "localhost",
                                           "http://127.0.0.1:99999/", "http://127.0.0.1:0/", "\x00"]))
        if dest == "body":
            return Values(st.sampled_from(["{}", '{"a": 1}']),
                          st.one_of(st.sampled_from(["[", deep(5000), '{"n": ' + "9" * 400 + "}"]), st.text(max_size=10)))
    # Bias toward what is accepted, so accepted runs are fuzzed too: the days that have samples,
    # fleets and sample runs small enough for the fuzz's work bounds (FUZZ_WORK).
    if cmd == "jobs rollup" and dest in ("day", "first", "last"):
        days = day_values()
        return Values(st.one_of(st.sampled_from([clock.iso(-2), clock.iso(-1), clock.iso(0)]), days.valid), days.hostile)
    if (cmd, dest) in (("jobs fleet", "days"), ("demo metrics", "days"), ("demo history", "months")):
        days = number_values("months" if dest == "months" else "days", whole=True)
        return Values(st.one_of(st.integers(1, 3).map(str), days.valid), days.hostile)
    if cmd == "jobs fleet" and dest == "scale":
        scale = number_values("scale", whole=False)
        return Values(st.one_of(st.floats(0.001, 0.05).map(repr), scale.valid), scale.hostile)
    if cmd in ("demo metrics", "demo history") and dest == "step":
        step = number_values("sample_step", whole=True, valid=st.sampled_from(_DAY_DIVISORS).map(str))
        return Values(st.one_of(st.sampled_from(["21600", "43200"]), step.valid), step.hostile)
    if cmd == "estimate recommend" and dest == "max_gpus":
        return number_values("max_gpus", whole=True, valid=st.integers(1, 64).map(str))
    if cmd == "report export" and dest == "format":  # PDF: tests/integration/test_report_export.py
        return Values(st.sampled_from(["html", "xlsx", "csv"]), st.sampled_from(["pdf ", "PDF", "", "docx"]))
    if action.choices is not None:
        return Values(st.sampled_from([str(c) for c in action.choices]), st.sampled_from(HOSTILE_TEXT[:12]))
    if getattr(kind, "choices", None):
        return Values(st.sampled_from(list(kind.choices)), text_values().hostile)
    name = getattr(kind, "bounds_name", None)
    if name and kind.__name__.startswith("list_"):
        return _concurrency(cheap=False)
    if name == "sample_step":  # a divisor of a day (most whole numbers are not: they are refused)
        return number_values(name, whole=True, valid=st.sampled_from(_DAY_DIVISORS).map(str))
    if name:
        return number_values(name, whole=kind.__name__.startswith("whole_"))
    if kind in (cli_inputs.record_id, cli_inputs.positive_int):
        return id_values()
    if kind is cli_inputs.positive_float:
        return Values(st.floats(1e-6, 1e12).map(repr), st.sampled_from(HOSTILE_NUMBERS))
    if kind is cli_inputs.day:
        return day_values()
    if dest == "month":
        return month_values()
    if getattr(kind, "__name__", "") == "_slo":
        return _slo()
    if dest == "persona":
        return Values(st.sampled_from(inputs.personas), text_values().hostile)
    if dest == "file":
        return _form_file(inputs)
    if dest == "files":
        return _loadtest_file(inputs)
    if dest == "out":
        return _out_file(inputs)
    if dest == "root":
        return _root(inputs, writable=cmd == "jobs fleet")
    if dest == "gpu":
        return text_values(*inputs.gpus)
    if dest == "scope":
        return text_values(*inputs.scopes)
    if dest in ("value", "baseline"):
        return Values(st.floats(-1e6, 1e6).map(repr), st.one_of(st.floats().map(repr), st.sampled_from(HOSTILE_NUMBERS)))
    if dest == "table":
        return text_values("projects", "pools", "departments", "cpu", "trends")
    return text_values("fuzz reason", "accuracy", "C-Eval", "r1", "多行\n理由")


# Options that are always given (with a strategy value): without them the command would read or
# write the real var/ folder of the checkout or run a 20-second load test.
ALWAYS = {("jobs fleet", "root"), ("jobs rollup", "root"), ("loadtest", "duration"), ("loadtest", "timeout")}


def action_tokens(command: Command, action: argparse.Action, inputs: Inputs, hostile: bool) -> st.SearchStrategy[list[str]]:
    """The argv tokens of one action. Valid: omitted (when optional) or given once with a valid
    value. Hostile: a hostile value, no value, the option twice, a required one left out."""
    opts = action.option_strings
    values = value_strategy(command, action, inputs)
    value = values.hostile if hostile else values.valid
    if not opts:  # positional
        if action.nargs in ("+", "*"):
            return st.lists(value, min_size=0 if hostile else 1, max_size=2)
        return st.one_of(value.map(lambda v: [v]), st.just([])) if hostile else value.map(lambda v: [v])
    opt = opts[-1] if opts[-1].startswith("--") else opts[0]
    if isinstance(action, argparse.BooleanOptionalAction):
        yes, no = [o for o in opts if not o.startswith("--no-")][:1], [o for o in opts if o.startswith("--no-")][:1]
        return st.sampled_from([yes + no, no + ["x"]] if hostile else [[], yes, no])
    if action.nargs == 0:
        return st.sampled_from([[opt, opt], [opt + "=1"]] if hostile else [[], [opt]])
    if isinstance(action, argparse._AppendAction):
        return st.lists(value, min_size=0 if hostile else 1, max_size=3).map(lambda vs: [t for v in vs for t in (opt, v)])
    if action.nargs in ("+", "*"):
        return st.lists(value, min_size=0 if hostile else 1, max_size=3).map(lambda vs: [opt, *vs])
    once = value.map(lambda v: [opt, v])
    if hostile:
        twice = st.tuples(values.any(), values.any()).map(lambda vv: [opt, vv[0], opt, vv[1]])
        dropped = [st.just([])] if action.required and (command.name, action.dest) not in ALWAYS else []
        return st.one_of(once, once, st.just([opt]), twice, *dropped)
    if action.required or (command.name, action.dest) in ALWAYS:
        return once
    return st.one_of(st.just([]), once)


def argv_for(command: Command, inputs: Inputs) -> st.SearchStrategy[list[str]]:
    """An argv for ``command``: its path, then every action's tokens in a drawn order. A quarter of
    the cases are valid throughout, half have one or two hostile arguments (so the refusal of each
    argument is reached with the others valid), a quarter are hostile anywhere and may carry junk
    (an unknown option, --help, a stray word)."""
    actions = command.actions
    # strategies built once per command: building them per example would cost more than the cases
    tokens = [(action_tokens(command, a, inputs, False), action_tokens(command, a, inputs, True)) for a in actions]
    exclusive = [[actions.index(a) for a in group._group_actions if a in actions]
                 for group in command.parser._mutually_exclusive_groups]
    junk = st.sampled_from([["--bogus"], ["-x"], ["--help"], ["extra"], ["--json=1"], ["--lang", "fr"], ["--"], ["\udcff"]])

    @st.composite
    def build(draw) -> list[str]:
        mode = draw(st.sampled_from(["valid", "one", "one", "many"]))
        if mode == "valid" or not actions:
            hostile: set[int] = set()
        elif mode == "one":
            hostile = set(draw(st.lists(st.integers(0, len(actions) - 1), min_size=1, max_size=2, unique=True)))
        else:
            hostile = {i for i in range(len(actions)) if draw(st.booleans())}
        groups = [draw(tokens[i][i in hostile]) for i in range(len(actions))]
        if mode == "valid":  # one member of each mutually exclusive group (--day | --from), as argparse wants
            for members in exclusive:
                keep = draw(st.sampled_from(members)) if members else None
                for i in members:
                    if i != keep:
                        groups[i] = []
                    elif not groups[i]:
                        groups[i] = draw(tokens[i][0].filter(bool))
        order = draw(st.permutations(range(len(groups)))) if len(groups) > 1 else range(len(groups))
        argv = list(command.path)
        for i in order:
            argv += groups[i]
        if mode == "many" and draw(st.booleans()):
            extra = draw(junk)
            argv.insert(draw(st.integers(len(command.path), len(argv))), extra[0])
            argv += extra[1:]
        return argv

    return build()
