"""Waiting in the browser: how long every page of every menu takes to show in Chromium.

``python -m bench browser [--fleet demo|10k|100k] [--repeat 3] [--lang zh-CN] [--workdir DIR] [--json PATH]``

Seeds a throwaway folder (SQLite database and metrics folder, ``tests.support.browser_app.demo_env``)
through the CLI, starts ``streamlit run app.py`` on it and drives Debian's Chromium
(``/usr/bin/chromium``, Playwright) at 1440×900 in the chosen language (default zh-CN):

* **demo** — the data of ``make run`` (:data:`MAKE_RUN_STEPS`: demo seed, 62 days of samples at
  15 minutes, 13 months of history, last month's board). Target 1.5 s per page.
* **10k** — the demo seed, then a 10,000-GPU fleet (``jobs fleet --scale 10``) from the first day
  of last month to yesterday at 15 minutes, rolled up (``demo metrics``), one older month of
  history at that size and last month's board. The portal's allocations stay those of the demo
  seed (the ~1,000-GPU fleet's namespaces): seeding a request per namespace of the 10k fleet
  through the lifecycle services would take most of an hour. Target 3 s per page.
* **100k** — the same at scale 100: 100,800 GPUs (``jobs fleet`` writes each day in shards of
  10,000 GPUs). Target 3 s per page.

For every distinct menu (``tests.support.menus.distinct_menus``, walked by its first persona) and
every page of it, the time from navigation to "Streamlit idle, content shown" — connected, the
script run finished, no widget skeleton left (``wait_for_app_idle``) — two ways:

* **URL** — the page opened by its address (``?persona=…&lang=…``): a new Streamlit session. Home
  is the root URL, where a new session of ops or an executive lands on its daily page instead;
* **menu** — reached by its link in the sidebar from the page before it: the same session.

The time is taken in the page itself: a ``MutationObserver`` installed before the app loads
records the moment (``performance.now()``) the app last became idle, so the polling of
``wait_for_app_idle`` (and its 200 ms second look) is not counted. The first pass after the server
starts (module imports, empty ``st.cache_data``) is reported apart as "first"; then ``--repeat``
passes, each of every menu by URL and then by menu. Per page: median and worst over all passes and
menus that show it, and the persona of the worst. A page that shows an exception or an error box
is flagged. The load average (1, 5, 15 min) is printed before and after: on the shared 2-core
machine another engineer's test run doubles the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

# `make run` (Makefile, target run) before it serves: keep the two in step.
MAKE_RUN_STEPS: tuple[tuple[str, ...], ...] = (
    ("db", "upgrade"),
    ("demo", "seed"),
    ("demo", "metrics", "--days", "62", "--step", "900"),
    ("demo", "history"),
    ("demo", "board"),
)
FLEET_STEP_S = 900
TARGET_S = {"demo": 1.5, "10k": 3.0, "100k": 3.0}
FLEET_SCALE = {"10k": "10", "100k": "100"}  # jobs fleet --scale: 10,080 and 100,800 GPUs
# Longest a seeding step may take: the 100k fleet's `demo metrics` rolls up 36 days of 100,800 GPUs
# and of their services (about 10 minutes on a 2-core machine).
SEED_STEP_TIMEOUT_S = {"demo": 300.0, "10k": 900.0, "100k": 3600.0}
STATE_FILE = "bench-browser.json"  # in --workdir: which fleet the folder was seeded with

# Installed before any script of every document: records when the app last became idle.
_IDLE_OBSERVER = """(() => {
  const b = window.__bench = {readyAt: null, ready: false};
  const look = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    const ready = !!app && app.getAttribute('data-test-connection-state') === 'CONNECTED'
      && app.getAttribute('data-test-script-state') === 'notRunning'
      && !document.querySelector('[data-testid="stSkeleton"]');
    if (ready && !b.ready) b.readyAt = performance.now();
    b.ready = ready;
  };
  new MutationObserver(look).observe(document, {subtree: true, childList: true, attributes: true,
    attributeFilter: ['data-test-connection-state', 'data-test-script-state']});
})();"""

_ERRORS = """() => document.querySelectorAll('[data-testid="stException"]').length
  + document.querySelectorAll('[data-testid="stAlertContentError"]').length"""


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fleet_steps(fleet: str, metrics: Path, today: date) -> tuple[tuple[str, ...], ...]:
    """The ``python -m core`` steps that seed ``fleet`` (samples into ``metrics``)."""
    if fleet == "demo":
        return MAKE_RUN_STEPS
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)  # first day of last month
    return (
        ("db", "upgrade"),
        ("demo", "seed"),  # before the samples: its allocations are for the default (1k) fleet
        ("jobs", "fleet", "--start", first.isoformat(), "--days", str((today - first).days), "--scale", FLEET_SCALE[fleet],
         "--step", str(FLEET_STEP_S), "--root", str(metrics)),
        ("demo", "metrics", "--step", str(FLEET_STEP_S)),  # rolls the days up, services' and CPU samples
        ("demo", "history", "--months", "2"),
        ("demo", "board"),
    )


@dataclass
class Visit:
    """One timed page view."""

    menu: str  # the persona walking the menu
    page: str
    how: str  # "url" or "menu"
    run: int  # 0 = first pass after the server started
    seconds: float
    errors: int
    shown: str = ""  # the page the root URL landed on, when not Home


@dataclass
class Result:
    """Every visit of a run, and what the figures are to be judged by."""

    fleet: str
    lang: str
    repeat: int
    target_s: float
    machine: dict
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seed_s: dict = field(default_factory=dict)
    visits: list[Visit] = field(default_factory=list)


def machine() -> dict:
    """CPU model, cores, memory, Python and Chromium versions."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kb = 0
    try:
        chromium = subprocess.run(["/usr/bin/chromium", "--version"], check=False, capture_output=True,
                                  text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        chromium = "?"
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "chromium": chromium,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def prepare(fleet: str, workdir: Path) -> tuple[dict[str, str], dict[str, float]]:
    """The app's environment in ``workdir``, seeded for ``fleet`` unless it already is."""
    from core.clock import utc_today
    from tests.support.browser_app import demo_env, seed_demo

    env = demo_env(workdir)
    state = workdir / STATE_FILE
    if state.exists():
        seeded = json.loads(state.read_text())
        if seeded.get("fleet") != fleet:
            raise SystemExit(f"{workdir} holds the {seeded.get('fleet')} fleet, not {fleet}: use another --workdir")
        _log(f"[browser/{fleet}] reusing the data seeded on {seeded['date']} in {workdir}")
        return env, {}
    workdir.mkdir(parents=True, exist_ok=True)
    today = utc_today()
    steps = fleet_steps(fleet, workdir / "metrics", today)
    _log(f"[browser/{fleet}] seeding {workdir}: " + "; ".join(" ".join(s) for s in steps))
    timings = seed_demo(env, steps, timeout_s=SEED_STEP_TIMEOUT_S[fleet])
    _log(f"[browser/{fleet}] seeded: " + ", ".join(f"{step} {s:.0f} s" for step, s in timings.items()))
    state.write_text(json.dumps({"fleet": fleet, "date": today.isoformat()}))
    return env, timings


def _since(page, start_ms: float, wall_s: float) -> float:
    """Seconds from ``start_ms`` (the page's clock) to the app's last becoming idle; the wall time
    when the observer did not see it change (it then missed the run)."""
    ready_at = page.evaluate("() => window.__bench && window.__bench.readyAt")
    return (ready_at - start_ms) / 1000 if ready_at is not None and ready_at > start_ms else wall_s


def visit_by_url(page, base: str, spec, persona: str, lang: str) -> tuple[float, str]:
    """Open ``spec`` by its URL (a new session); (seconds to idle, the page shown if not ``spec``)."""
    from tests.support.browser_app import wait_for_app_idle
    from tests.support.browser_checks import page_path

    started = time.monotonic()
    page.goto(base + page_path(spec, persona, lang), wait_until="domcontentloaded")
    wait_for_app_idle(page)
    # A new document: its clock starts at the navigation.
    seconds = _since(page, 0.0, time.monotonic() - started)
    path = page.evaluate("location.pathname").strip("/")
    return seconds, ("" if path in (spec.url_path, "") else path)


def visit_from_menu(page, base: str, spec, persona: str, lang: str) -> float:
    """Reach ``spec`` by its sidebar link from the page shown (the same session); seconds to idle."""
    from tests.support.browser_checks import open_page

    start_ms = page.evaluate("performance.now()")
    wall = open_page(page, base, spec, persona, lang, from_menu=True)
    return _since(page, start_ms, wall)


def walk(page, base: str, persona: str, specs: list, lang: str, run: int, *, landing: str) -> list[Visit]:
    """Every page of one menu by URL, then every page from the menu (landing page last, since the
    walk starts there); one :class:`Visit` each."""
    from tests.support.browser_checks import page_path

    visits = []
    for spec in specs:
        seconds, shown = visit_by_url(page, base, spec, persona, lang)
        visits.append(Visit(persona, spec.key, "url", run, seconds, page.evaluate(_ERRORS), shown))
    start = next((s for s in specs if s.key == landing), specs[0])
    page.goto(base + page_path(start, persona, lang), wait_until="domcontentloaded")
    from tests.support.browser_app import wait_for_app_idle

    wait_for_app_idle(page)
    for spec in sorted(specs, key=lambda s: s.key == start.key):
        seconds = visit_from_menu(page, base, spec, persona, lang)
        visits.append(Visit(persona, spec.key, "menu", run, seconds, page.evaluate(_ERRORS)))
    return visits


def measure(base: str, result: Result, *, only_pages: set[str], only_menus: set[str]) -> None:
    """The first pass and ``result.repeat`` passes over every menu, into ``result.visits``."""
    from playwright.sync_api import sync_playwright

    from core.identity import load_personas
    from tests.support.browser_app import BROWSER_LOCALE, CHROMIUM, CHROMIUM_ARGS, DESKTOP, wait_for_app_idle
    from tests.support.menus import distinct_menus
    from ui.navigation import landing_page

    roles = {p.id: p.role for p in load_personas()}
    menus = [(personas[0], [s for s in specs if not only_pages or s.key in only_pages])
             for personas, specs in distinct_menus() if not only_menus or personas[0] in only_menus]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=dict(DESKTOP), locale=BROWSER_LOCALE.get(result.lang, result.lang))
            context.set_default_timeout(120_000)
            context.add_init_script(_IDLE_OBSERVER)
            page = context.new_page()
            page.goto(f"{base}/", wait_until="domcontentloaded")  # a fresh server's first run is special
            wait_for_app_idle(page, timeout_ms=120_000)
            for run in range(result.repeat + 1):
                started = time.monotonic()
                for persona, specs in menus:
                    if specs:
                        result.visits += walk(page, base, persona, specs, result.lang, run,
                                              landing=landing_page(roles[persona]))
                _log(f"[browser/{result.fleet}] pass {'first' if run == 0 else run} of {result.repeat}: "
                     f"{time.monotonic() - started:.0f} s, load average {_load()}")
            context.close()
        finally:
            browser.close()


def _load() -> tuple[float, float, float]:
    return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]


@dataclass(frozen=True)
class Row:
    """One page's figures: median and worst by URL and from the menu (repeat passes), first pass."""

    page: str
    url_median: float
    url_worst: float
    menu_median: float
    menu_worst: float
    first_worst: float
    worst_by: str
    errors: int
    lands_on: str


def rows(result: Result) -> list[Row]:
    """Per page, slowest median first."""
    out = []
    for key in dict.fromkeys(v.page for v in result.visits):
        mine = [v for v in result.visits if v.page == key]
        url = [v.seconds for v in mine if v.how == "url" and v.run]
        menu = [v.seconds for v in mine if v.how == "menu" and v.run]
        first = [v.seconds for v in mine if not v.run] or [0.0]
        repeat = [v for v in mine if v.run]
        worst = max(repeat, key=lambda v: v.seconds) if repeat else mine[0]
        lands = sorted({f"{v.menu} on {v.shown}" for v in mine if v.shown})
        out.append(Row(key, statistics.median(url) if url else 0.0, max(url, default=0.0),
                       statistics.median(menu) if menu else 0.0, max(menu, default=0.0), max(first),
                       f"{worst.menu} ({worst.how})", sum(1 for v in mine if v.errors), ", ".join(lands)))
    return sorted(out, key=lambda r: -max(r.url_median, r.menu_median))


def table(result: Result) -> str:
    """The Markdown table and summary lines (copied into the README)."""
    t = result.target_s

    def mark(s: float) -> str:
        return f"**{s:.2f}**" if s > t else f"{s:.2f}"

    lines = ["| page | URL median | URL worst | menu median | menu worst | first visit | worst seen by |",
             "|---|---:|---:|---:|---:|---:|---|"]
    table_rows = rows(result)
    for r in table_rows:
        note = (f" (root URL lands {r.lands_on})" if r.lands_on else "") + (f", {r.errors} with an error" if r.errors else "")
        lines.append(f"| {r.page}{note} | {mark(r.url_median)} | {mark(r.url_worst)} | {mark(r.menu_median)} | "
                     f"{mark(r.menu_worst)} | {r.first_worst:.2f} | {r.worst_by} |")
    over_median = [r.page for r in table_rows if max(r.url_median, r.menu_median) > t]
    over_worst = [r.page for r in table_rows if max(r.url_worst, r.menu_worst) > t]
    views = [v for v in result.visits if v.run]
    lines += ["",
              (f"Seconds from navigation to the app idle with its content shown, {result.fleet} fleet, {result.lang}, "
               f"{result.repeat} passes ({len(views)} views; first visit = the pass right after the server started, "
               f"not in median/worst); bold = over the {t:g} s target."),
              (f"Pages over {t:g} s: median {len(over_median)} of {len(table_rows)}"
               f"{' (' + ', '.join(over_median) + ')' if over_median else ''}; "
               f"worst {len(over_worst)} of {len(table_rows)}{' (' + ', '.join(over_worst) + ')' if over_worst else ''}; "
               f"views over {t:g} s: {sum(v.seconds > t for v in views)} of {len(views)}."),
              (f"Machine: {result.machine['cpu']}, {result.machine['cores']} cores, {result.machine['memory_gib']} GiB, "
               f"Python {result.machine['python']}, {result.machine['chromium']}; {result.machine['date']}; "
               f"load average (1/5/15 min) before {'/'.join(map(str, result.load_before))}, "
               f"after {'/'.join(map(str, result.load_after))}.")]
    return "\n".join(lines)


def run_bench(fleet: str, *, repeat: int = 3, lang: str = "zh-CN", workdir: Path | None = None,
              only_pages: set[str] = frozenset(), only_menus: set[str] = frozenset()) -> Result:
    """Seed (or reuse ``workdir``), serve and measure; the folder is removed unless given."""
    from tests.support.browser_app import streamlit_server

    result = Result(fleet, lang, repeat, TARGET_S[fleet], machine())
    folder = workdir or Path(tempfile.mkdtemp(prefix=f"bench-browser-{fleet}-"))
    try:
        env, result.seed_s = prepare(fleet, folder)
        result.load_before = _load()
        _log(f"[browser/{fleet}] load average before: {result.load_before}")
        with streamlit_server(env, folder / "logs") as base:
            measure(base, result, only_pages=set(only_pages), only_menus=set(only_menus))
        result.load_after = _load()
        _log(f"[browser/{fleet}] load average after: {result.load_after}")
    finally:
        if workdir is None:
            shutil.rmtree(folder, ignore_errors=True)
    return result


def run() -> list[tuple[str, float, float]]:
    """(name, seconds, target) per page of the demo fleet — the worse of its URL and menu medians —
    for ``python -m bench``; the full table goes to stderr."""
    result = run_bench("demo")
    _log(table(result))
    return [(f"browser: page {r.page}, median of URL/menu, demo fleet, {result.lang} (s)",
             max(r.url_median, r.menu_median), result.target_s) for r in rows(result)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench browser", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet", choices=list(TARGET_S), default="demo",
                        help="demo: the data of `make run` (target 1.5 s); 10k, 100k: a 10,080- or 100,800-GPU fleet "
                             "(target 3 s)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over every menu after the first (default 3)")
    parser.add_argument("--lang", default="zh-CN", help="UI language (default zh-CN)")
    parser.add_argument("--workdir", type=Path, help="seed into this folder and keep it (reused when seeded already)")
    parser.add_argument("--pages", default="", help="only these page keys, comma-separated")
    parser.add_argument("--menus", default="", help="only the menus of these personas (first of each menu), comma-separated")
    parser.add_argument("--json", type=Path, help="also write every visit and the summary as JSON here")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    result = run_bench(args.fleet, repeat=args.repeat, lang=args.lang, workdir=args.workdir,
                       only_pages={p for p in args.pages.split(",") if p},
                       only_menus={m for m in args.menus.split(",") if m})
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {k: v for k, v in result.__dict__.items() if k != "visits"}
        payload["visits"] = [v.__dict__ for v in result.visits]
        payload["pages"] = [r.__dict__ for r in rows(result)]
        args.json.write_text(json.dumps(payload, indent=1, ensure_ascii=False))
    worst = max((max(r.url_median, r.menu_median) for r in rows(result)), default=0.0)
    return 1 if worst > result.target_s else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
