"""The demo data of ``make run``, made once per test session (per xdist worker) for the AppTest walks.

``make run`` fills a database with ``demo seed``, ``demo metrics``, ``demo history`` and ``demo
board``; the walk over every persona's pages opens each page on that data too, not only on an
empty database, so that the tables, charts and details a user meets are rendered under the page
error check. The fleet's samples are kept small (2 days at a 15-minute step, history back to the
start of last month) to keep the set-up at a few seconds.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.support.databases import sqlite_copy

SAMPLE_DAYS = 2
SAMPLE_STEP_S = 900
HISTORY_MONTHS = 1


@dataclass(frozen=True)
class DemoData:
    """A migrated SQLite file holding the demo data, and the folder of its metric samples."""

    database: Path
    samples: Path

    def copy_to(self, folder: Path) -> tuple[str, Path]:
        """A private copy (database URL, samples folder) for one test, which may change both."""
        samples = folder / "samples"
        shutil.copytree(self.samples, samples)
        return sqlite_copy(self.database, folder / "demo.db"), samples


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block: one process at a time."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def demo_data(folder: Path, migrated_template: Path) -> DemoData:
    """The demo data in ``folder``, made from ``migrated_template`` the first time (under a file
    lock, so that parallel workers sharing ``folder`` make it once)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = DemoData(folder / "demo.db", folder / "samples")
    with file_lock(folder / ".lock"):
        if not (folder / ".done").exists():
            _make(data, migrated_template)
            (folder / ".done").write_text("ok", encoding="utf-8")
    return data


def _make(data: DemoData, migrated_template: Path) -> None:
    from core.context import build
    from core.demo import publish_demo_board, seed
    from core.demo_fleet import seed_fleet_allocations
    from core.demo_history import ensure_history, seed_training_runs
    from core.metrics.demo_metrics import ensure_demo_metrics

    for stale in (data.database, data.samples):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    url = sqlite_copy(migrated_template, data.database)
    saved = {name: os.environ.get(name) for name in ("COMPUTELOOP_METRICS_DIR", "COMPUTELOOP_PROMETHEUS_URLS")}
    os.environ["COMPUTELOOP_METRICS_DIR"] = str(data.samples)
    os.environ.pop("COMPUTELOOP_PROMETHEUS_URLS", None)
    ctx = build(url)
    try:
        seed(ctx.sessions)
        seed_fleet_allocations(ctx.sessions)
        ensure_demo_metrics(ctx.sessions, days=SAMPLE_DAYS, step_s=SAMPLE_STEP_S, root=data.samples)
        ensure_history(ctx.sessions, months=HISTORY_MONTHS)
        seed_training_runs(ctx.sessions)
        publish_demo_board(ctx.sessions)
    finally:
        ctx.engine.dispose()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
