"""Page render speed: the server-side time of every page of ``ui/navigation.PAGES``, run with
Streamlit's AppTest (the real app.py: identity, menus, navigation, then the page).

Each page is opened as the admin persona (zhao.min) — the board as the executive (wang.qiang) —
in English. First one pass over every page (imports, ``st.cache_resource``); then, with
``st.cache_data`` cleared (as after its one-minute TTL), per page one warm-up visit (its time is
the "cold" figure: the page loads its data), then three fresh visits (a new AppTest session each:
run app.py, switch to the page, time that ``at.run()``); the page's row is the median of the three.
Because the pages cache their reads for only a minute, a cold visit happens about once a minute
in use, so one more row per fleet holds the slowest cold visit, against the same target.

Two fleets, each in its own SQLite database and metrics folder under ``var/bench/pages`` (removed
afterwards):

* **demo** — ``core.demo.seed`` + :func:`core.metrics.demo_metrics.ensure_demo_metrics`: the demo
  fleet (~1,000 GPUs), a week of samples at 5-minute steps ending yesterday, rolled up. Target 1,500 ms.
* **10k** — the same seed, and a fleet of ``build_fleet(scale=10)`` (~10,000 GPUs) with only
  **2 days** at 5-minute steps (a week would take ~5× longer to generate and roll up and changes
  nothing the pages read live: the water level reads the latest sample, trends read the rollups),
  rolled up. Target 3,000 ms.

Targets (issue #4): every page under 1.5 s server time on the demo fleet and under 3 s on a
10,000-GPU generated fleet. Rows are (name, value, target), lower is better, the unit in the name.
A page that raised an exception (or logged an unexpected error through ``ui.errors``) is reported
on stderr and its row set to infinity (missed).

Run alone: ``python -m bench pages`` (or ``python -m bench.pages [demo|10k]``).
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Iterator

from core.clock import utc_today
from core.config import PROJECT_ROOT

ROOT = PROJECT_ROOT / "var" / "bench" / "pages"
APP = str(PROJECT_ROOT / "app.py")
ADMIN, EXECUTIVE = "zhao.min", "wang.qiang"
REPEAT = 3
STEP_S = 300


@dataclass(frozen=True)
class Fleet:
    """One benchmark fleet: its label, generator scale, days of samples and the target."""

    name: str
    scale: float
    days: int
    target_ms: float


FLEETS = (
    Fleet("demo", 1.0, 7, 1500.0),
    Fleet("10k", 10.0, 2, 3000.0),
)

_ENV = ("COMPUTELOOP_DATABASE_URL", "COMPUTELOOP_METRICS_DIR", "COMPUTELOOP_AUTH", "COMPUTELOOP_PROMETHEUS_URLS",
        "COMPUTELOOP_I18N_STRICT")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in _ENV}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def prepare(fleet: Fleet, folder: Path) -> dict:
    """Database (migrated, demo seed) and metrics folder (samples + rollups) of ``fleet`` in ``folder``."""
    from core.context import build
    from core.db.migrate import upgrade
    from core.db.session import make_engine
    from core.demo import seed
    from core.metrics.demo_metrics import ensure_demo_metrics
    from core.metrics.fleet import write_samples

    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    samples = Path(os.environ["COMPUTELOOP_METRICS_DIR"])
    started = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    ctx = build(url)
    made = seed(ctx.sessions)
    t_seed = time.perf_counter()
    today = utc_today()
    written = write_samples(samples, start=today - timedelta(days=fleet.days), days=fleet.days, step_s=STEP_S,
                            scale=fleet.scale)
    t_samples = time.perf_counter()
    rolled = ensure_demo_metrics(ctx.sessions, root=samples, step_s=STEP_S, today=today)
    t_rollup = time.perf_counter()
    ctx.engine.dispose()
    info = {"gpus": written["gpus"], "samples": written["rows"], "rollup_rows": rolled["rows"], "seed": made,
            "seed_s": t_seed - started, "samples_s": t_samples - t_seed, "rollup_s": t_rollup - t_samples}
    _log(f"[pages/{fleet.name}] {info['gpus']:,} GPUs, {fleet.days} days at {STEP_S} s: {info['samples']:,} samples "
         f"({info['samples_s']:.1f} s), {info['rollup_rows']:,} rollup rows ({info['rollup_s']:.1f} s), "
         f"demo seed {made} ({info['seed_s']:.1f} s)")
    return info


class _Recorder(logging.Handler):
    """Collects the error records logged while a page runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        self.messages.append(f"{record.getMessage()}: {type(exc).__name__}: {exc}"[:300] if exc else record.getMessage()[:300])


def _quiet_streamlit() -> None:
    """Silence the "missing ScriptRunContext" warning AppTest triggers on every cached call."""
    import streamlit  # noqa: F401 - creates the loggers first

    for name in ("streamlit.runtime.scriptrunner_utils.script_run_context", "streamlit.runtime.caching.cache_data_api"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _visit(script: str, persona: str) -> tuple[float, list[str]]:
    """Open app.py as ``persona``, switch to ``script``; (ms of that run, exception texts)."""
    from streamlit.testing.v1 import AppTest

    _quiet_streamlit()
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["persona"] = persona
    at.query_params["lang"] = "en"
    at.run()
    at.switch_page(script)
    logged = _Recorder()
    ui_log = logging.getLogger("computeloop.ui")  # ui.errors.show_error logs every unexpected error there
    ui_log.addHandler(logged)
    try:
        started = time.perf_counter()
        at.run()
        ms = (time.perf_counter() - started) * 1000
    finally:
        ui_log.removeHandler(logged)
    errors = [str(e.value)[:200] for e in at.exception] + logged.messages
    return ms, errors


def measure_pages(fleet: Fleet, info: dict) -> list[tuple[str, float, float]]:
    """One row per page of PAGES on the prepared ``fleet``."""
    from ui.navigation import PAGES

    import streamlit as st

    rows, timings = [], []
    started = time.perf_counter()
    for key, spec in PAGES.items():  # first pass: imports and st.cache_resource, once per process
        _visit(spec.script, EXECUTIVE if key == "board" else ADMIN)
    _log(f"[pages/{fleet.name}] first pass over {len(PAGES)} pages (imports, migrations check): "
         f"{time.perf_counter() - started:.1f} s")
    st.cache_data.clear()  # as when the one-minute data caches have expired
    for key, spec in PAGES.items():
        persona = EXECUTIVE if key == "board" else ADMIN
        cold, errors = _visit(spec.script, persona)
        samples = []
        for _ in range(REPEAT):
            ms, more = _visit(spec.script, persona)
            samples.append(ms)
            errors += more
        median = statistics.median(samples)
        if errors:
            _log(f"[pages/{fleet.name}] {key}: EXCEPTION {errors[0]}")
            median = float("inf")
        timings.append((key, cold, median, samples))
        rows.append((f"page {key} ({'executive' if persona == EXECUTIVE else 'admin'}), {fleet.name} fleet "
                     f"{info['gpus']:,} GPUs (ms)", median, fleet.target_ms))
    _log(f"[pages/{fleet.name}] page: cold (st.cache_data empty) / median of {REPEAT} warm visits [runs], ms")
    for key, cold, median, samples in sorted(timings, key=lambda r: -r[2]):
        flag = "" if median <= fleet.target_ms else f"  <-- MISSES {fleet.target_ms:g} ms"
        _log(f"  {key:16s} {cold:8.0f} / {median:8.0f}  [{', '.join(f'{s:.0f}' for s in samples)}]{flag}")
    missed = [k for k, _, m, _ in timings if m > fleet.target_ms]
    _log(f"[pages/{fleet.name}] pages missing {fleet.target_ms:g} ms: {', '.join(missed) if missed else 'none'}")
    cold_missed = [k for k, c, _, _ in timings if c > fleet.target_ms]
    _log(f"[pages/{fleet.name}] pages missing {fleet.target_ms:g} ms on a cold visit (data caches expired): "
         f"{', '.join(cold_missed) if cold_missed else 'none'}")
    key, cold, _, _ = max(timings, key=lambda r: r[1])
    rows.append((f"slowest cold visit (data caches expired, as every minute): {key}, {fleet.name} fleet "
                 f"{info['gpus']:,} GPUs (ms)", cold, fleet.target_ms))
    return rows


def run_fleet(fleet: Fleet, *, keep: bool = False) -> list[tuple[str, float, float]]:
    """Prepare ``fleet`` in a fresh folder under var/bench/pages, time every page, remove the folder."""
    ROOT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{fleet.name}-", dir=ROOT))
    env = {"COMPUTELOOP_DATABASE_URL": f"sqlite:///{folder / 'app.db'}", "COMPUTELOOP_METRICS_DIR": str(folder / "samples"),
           "COMPUTELOOP_AUTH": "demo", "COMPUTELOOP_PROMETHEUS_URLS": None, "COMPUTELOOP_I18N_STRICT": "1"}
    try:
        with _environment(env):
            info = prepare(fleet, folder)
            return measure_pages(fleet, info)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def run(fleets: tuple[str, ...] = ()) -> list[tuple[str, float, float]]:
    """(name, median ms, target ms) per page and fleet; lower is better."""
    rows: list[tuple[str, float, float]] = []
    for fleet in FLEETS:
        if not fleets or fleet.name in fleets:
            rows.extend(run_fleet(fleet, keep=bool(os.environ.get("BENCH_KEEP"))))
    return rows


def main() -> int:
    failed = 0
    for name, value, target in run(tuple(sys.argv[1:])):
        ok = value <= target
        failed += not ok
        print(f"| {name} | {value:.3f} | ≤ {target:g} | {'ok' if ok else 'MISSED'} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
