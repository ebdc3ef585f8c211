"""Every ``python -m core`` command, fuzzed in-process on SQLite (issue 11, "zero tracebacks").

The commands are enumerated from the argparse parser itself, so a new command is fuzzed without a
change here; each gets ``COMPUTELOOP_FUZZ_CLI_EXAMPLES`` argvs drawn from its own actions
(tests/support/fuzz.py), 1,000 by default, run in batches of ten per hypothesis example. After every
case: exit code 0 or 2, no traceback, a refusal is exactly one stderr line, and a refused command
inserted, changed or deleted no row of any table (triggers count every row written) and no file of
its workspace. Each command's cases start from a fresh copy of one migrated database with the demo
seed (requests, estimates, reports); an accepted case's writes are the next case's starting point.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from core import context
from core.cli import build_parser
from tests.support import clock
from tests.support.databases import sqlite_copy
from tests.support.forms import INFERENCE, JS_FORM, LARGE, MEDIUM, SMALL
from tests.support.fuzz import (
    CLI_BATCH, CLI_EXAMPLES, FUZZ_CLI, Inputs, Workspace, argv_for, check_result, count_writes, file_tree, fuzz_data_dir,
    leaf_commands, run_cli, writes,
)
from tests.support.run_counts import PROPERTY

ROOT = Path(__file__).resolve().parents[2]
LOG = os.environ.get("COMPUTELOOP_FUZZ_LOG")
COMMANDS = list(leaf_commands(build_parser()))


@dataclass
class Env:
    parser: object
    engine: object
    inputs: Inputs
    url: str


def _scratch_sqlite(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA synchronous=OFF")
    dbapi_conn.execute("PRAGMA journal_mode=MEMORY")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Seeded:
    """What every command's fuzz starts from: a migrated database with the demo seed, the fuzz's
    data folder (small work bounds), two days of tiny samples, and the argument pools."""

    db: Path
    data: Path
    metrics_root: Path
    parser: object
    pools: dict


@pytest.fixture(scope="module")
def seeded(sqlite_template, tmp_path_factory) -> Seeded:
    from core.demo import publish_demo_board, seed
    from core.estimation.catalog import load_catalog
    from core.identity import load_personas
    from core.metrics.fleet import write_samples
    from core.org import load_org
    from core.reports.service import REPORT_JOB, build_draft

    root = tmp_path_factory.mktemp("cli-fuzz")
    db = root / "seeded.db"
    built = context.build(sqlite_copy(sqlite_template, db))
    seed(built.sessions)
    # reports to show, export, correct (a published one) and publish (a draft)
    publish_demo_board(built.sessions)
    build_draft(sessions=built.sessions, actor=REPORT_JOB, month=clock.month(-2), scope="HQ")
    built.engine.dispose()
    metrics_root = root / "samples"
    write_samples(metrics_root, start=clock.day(-2), days=2, step_s=3600, scale=0.001)
    pools = dict(
        loadtest_files=sorted((ROOT / "tests" / "fixtures" / "loadtests").glob("*.*[nv]")),
        forms=[SMALL, MEDIUM, LARGE, INFERENCE, JS_FORM], personas=[p.id for p in load_personas()],
        gpus=[g.id for g in load_catalog().gpus][:6] + ["a100", "H100"],
        scopes=["company", *sorted(load_org().units)], closed_url=f"http://127.0.0.1:{_closed_port()}/",
    )
    return Seeded(db, fuzz_data_dir(root / "data"), metrics_root, build_parser(), pools)


@pytest.fixture
def env(seeded, tmp_path, monkeypatch) -> Env:
    """A copy of the seeded database and a fresh workspace for one command's cases, so no command's
    fuzz depends on what another wrote (nor grows slower with it)."""
    url = sqlite_copy(seeded.db, tmp_path / "fuzz.db")
    ws = Workspace(tmp_path / "ws").prepare()
    (tmp_path / "fleet").mkdir()
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", url)
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(seeded.data))
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "demo-metrics"))
    monkeypatch.setenv("COMPUTELOOP_CLUSTER_BACKEND", "plan")
    for name in ("COMPUTELOOP_SMTP_HOST", "COMPUTELOOP_PROMETHEUS_URLS"):
        monkeypatch.delenv(name, raising=False)
    # One engine for all the cases of a command (as the app keeps one): a fresh engine per case
    # would spend most of the fuzz's time compiling the same SQL again.
    built = context.build(url)
    # a scratch database: no fsync and no journal file per commit (each cost ~10 ms of the budget)
    event.listen(built.engine, "connect", _scratch_sqlite)
    monkeypatch.setattr(context, "build", lambda url=None, *, require_schema=True: built)
    inputs = Inputs(ws=ws, metrics_root=seeded.metrics_root, fleet_root=tmp_path / "fleet", **seeded.pools)
    yield Env(seeded.parser, built.engine, inputs, url)
    built.engine.dispose()


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name.replace(" ", "-") for c in COMMANDS])
def test_every_command_exits_0_or_2_with_one_line_and_writes_nothing_when_refused(command, env, record_property):
    cases = {"n": 0, "refused": 0}
    count_writes(env.engine)
    written = [writes(env.engine)]
    started, cpu = time.perf_counter(), time.process_time()

    def run_one(argv: list[str]) -> None:
        cases["n"] += 1
        before_files = file_tree(env.inputs.ws.root)
        began = time.perf_counter()
        result = run_cli(argv, env.parser)
        if LOG:  # COMPUTELOOP_FUZZ_LOG=FILE: every case's argv, exit code and stderr, to see what the fuzz reaches
            with open(LOG, "a", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(json.dumps([argv, result.code, result.err[-300:], round(time.perf_counter() - began, 3)],
                                   ensure_ascii=False) + "\n")
        check_result(argv, result)
        after = writes(env.engine)
        if result.code == 2:
            cases["refused"] += 1
            assert after == written[0], f"refused {argv!r} wrote rows: {_diff(written[0], after)}"
            assert file_tree(env.inputs.ws.root) == before_files, f"refused {argv!r} changed files"
        written[0] = after

    @FUZZ_CLI
    @given(batch=st.lists(argv_for(command, env.inputs), min_size=CLI_BATCH, max_size=CLI_BATCH))
    def case(batch):
        for argv in batch:
            run_one(argv)

    try:
        case()
        assert cases["n"] >= CLI_EXAMPLES, f"only {cases['n']} cases of {command.name} ran, {CLI_EXAMPLES} wanted"
    finally:
        record_property(PROPERTY, json.dumps({"entry": f"cli {command.name}", "group": "cli", "cases": cases["n"],
                                              "refused": cases["refused"],
                                              "seconds": round(time.perf_counter() - started, 2),
                                              "cpu": round(time.process_time() - cpu, 2)}))


def test_every_command_of_the_parser_is_fuzzed():
    names = {c.name for c in COMMANDS}
    # a sample of each group, so a refactoring that hides commands from leaf_commands fails here
    assert {"estimate training", "requests draft save", "allocations green plan", "jobs fleet", "report export",
            "loadtest", "db upgrade", "notify send", "reclaim daily", "demo seed"} <= names
    assert len(names) == len(COMMANDS) >= 45


def _diff(before: dict, after: dict) -> dict:
    return {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
