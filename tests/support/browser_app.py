"""The app as a browser test meets it: a throwaway database seeded with the demo data of ``make run``
through the CLI, a real ``streamlit run app.py`` on a free port, and Debian's Chromium.

Seeding and serving run in subprocesses on the real clock (the frozen test clock of
``tests/conftest.py`` lives only in the pytest process), so the demo data and the app agree on
what "today" is.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
BROWSER_LOCALE = {"zh-CN": "zh-CN", "en": "en-US"}
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOT_DIR = PROJECT_ROOT / "test-artifacts" / "screenshots"

SERVER_START_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 300.0

# What `make run` does before serving, with a smaller history: two days of fine samples (the
# usage sheet's curves), last month and the one before as daily rollups (the board's month and its
# comparison) and last month's board published. `demo history --months 2` takes ~3 s here against
# ~10 s for the default 13 months (measured on the 2-core CI machine).
DEMO_STEPS: tuple[tuple[str, ...], ...] = (
    ("db", "upgrade"),
    ("demo", "seed"),
    ("demo", "metrics", "--days", "2", "--step", "900"),
    ("demo", "history", "--months", "2"),
    ("demo", "board"),
)


class SetupFailed(RuntimeError):
    """Seeding or starting the app failed; the message carries the command's output."""


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "<no output>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty>"


def demo_env(workdir: Path) -> dict[str, str]:
    """The environment of a demo app under test: its own SQLite file and metrics folder under
    ``workdir``, demo sign-in (personas by ``?persona=``), strict i18n (a missing key raises)."""
    env = os.environ.copy()
    env.update(
        COMPUTELOOP_DATABASE_URL=f"sqlite:///{workdir / 'computeloop.db'}",
        COMPUTELOOP_METRICS_DIR=str(workdir / "metrics"),
        COMPUTELOOP_AUTH="demo",
        COMPUTELOOP_I18N_STRICT="1",
        PYTHONUNBUFFERED="1",
    )
    # Live Prometheus servers would make `demo metrics` a no-op and the pages read them instead.
    env.pop("COMPUTELOOP_PROMETHEUS_URLS", None)
    env.pop("COMPUTELOOP_CLUSTER_BACKEND", None)
    return env


def seed_demo(env: dict[str, str], steps: tuple[tuple[str, ...], ...] = DEMO_STEPS, *,
              timeout_s: float = CLI_TIMEOUT_S) -> dict[str, float]:
    """Run ``steps`` (default :data:`DEMO_STEPS`) as ``python -m core …``, each within ``timeout_s``;
    returns the seconds each took."""
    timings: dict[str, float] = {}
    for step in steps:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "core", *step], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout_s)
        timings[" ".join(step)] = time.monotonic() - started
        if done.returncode != 0:
            raise SetupFailed(f"`python -m core {' '.join(step)}` exited {done.returncode}:\n"
                              f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return timings


def seed_shared_demo(shared: Path, workdir: Path) -> tuple[dict[str, str], dict[str, float]]:
    """The environment of a demo app in ``workdir`` (:func:`demo_env`) holding a copy of the demo
    data, which is seeded (:func:`seed_demo`) once in ``shared`` by the first process to get there
    — the other pytest-xdist workers wait on a file lock and copy it (each worker's app writes to
    its own copy). Returns (env, seconds of each seeding step; empty when it was copied)."""
    from tests.support.app_demo import file_lock

    shared.mkdir(parents=True, exist_ok=True)
    seeded = demo_env(shared)
    timings: dict[str, float] = {}
    with file_lock(shared / ".lock"):
        if not (shared / ".done").exists():
            timings = seed_demo(seeded)
            (shared / ".done").write_text("ok", encoding="utf-8")
    env = demo_env(workdir)
    shutil.copyfile(shared / "computeloop.db", workdir / "computeloop.db")
    shutil.copytree(shared / "metrics", workdir / "metrics")
    return env, timings


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def streamlit_server(env: dict[str, str], logdir: Path, script: str = "app.py") -> Iterator[str]:
    """Run ``streamlit run <script>`` from the project root on a free port until the block ends;
    yields its base URL. Raises :class:`SetupFailed` when it does not come up."""
    port = _free_port()
    logdir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = logdir / "streamlit.out", logdir / "streamlit.err"
    cmd = [
        sys.executable, "-m", "streamlit", "run", script,
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.fileWatcherType", "none",  # pages may be edited while tests run: no reloads
        "--client.showErrorDetails", "full",  # an uncaught exception shows its traceback (stException)
        "--browser.gatherUsageStats", "false",
    ]
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(f"{base}/_stcore/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with code {proc.returncode}" if proc.poll() is not None
                       else f"did not answer within {SERVER_START_TIMEOUT_S:.0f} s")
                raise SetupFailed(f"streamlit {why} before answering {base}/_stcore/health;"
                                  f" stderr tail:\n{tail(stderr_path)}\nstdout tail:\n{tail(stdout_path)}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_for_app_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the app is connected and its script run has finished (and stayed finished)."""
    app = '[data-testid="stApp"]'
    page.wait_for_selector(f'{app}[data-test-connection-state="CONNECTED"]', state="attached", timeout=timeout_ms)
    # "initial" until the first run starts, "running" during it, "notRunning" when done.
    page.wait_for_selector(f'{app}[data-test-script-state="notRunning"]', state="attached", timeout=timeout_ms)
    # A finished run may request another one straight away (st.rerun, st.switch_page): look again.
    page.wait_for_timeout(200)
    page.wait_for_selector(f'{app}[data-test-script-state="notRunning"]', state="attached", timeout=timeout_ms)
    # Widgets (radio, selectbox, ...) are lazily loaded components: until their code has arrived a
    # skeleton stands in their place, even after the run has finished.
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=timeout_ms, polling=100
    )


def save_screenshot(page, path: Path) -> Path:
    """Full-page screenshot; Streamlit scrolls inside its own container, so grow the viewport first
    (and put it back afterwards)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        """() => Math.max(document.documentElement.scrollHeight,
            ...['stAppViewContainer', 'stMain', 'stMainBlockContainer', 'stSidebarContent']
                .map(id => document.querySelector(`[data-testid="${id}"]`))
                .filter(Boolean).map(el => el.scrollHeight))"""
    )
    size = dict(page.viewport_size or DESKTOP)
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 8000))})
    page.wait_for_timeout(150)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path
