"""Browser smoke-test fixtures: the app served by a real ``streamlit run`` and Debian's Chromium.

One Streamlit server and one Chromium per test session; each test opens its own tab, which is a
new Streamlit session (tabs share one browser context per language, so static assets come from
the HTTP cache). The server uses a throwaway SQLite database and strict i18n, so a missing
translation key raises and shows up on the page as an exception.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# `pytest` (not `python -m pytest`) does not put the project root on sys.path; the tests import
# core.* and ui.* to read the navigation table and the catalogs.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

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
SERVER_START_TIMEOUT_S = 60.0
DB_UPGRADE_TIMEOUT_S = 120.0
SCREENSHOT_DIR = PROJECT_ROOT / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
BROWSER_LOCALE = {"zh-CN": "zh-CN", "en": "en-US"}


def missing_service(what: str) -> None:
    """Fail (COMPUTELOOP_REQUIRE_LIVE=1, as in CI) or skip (laptop): same rule as tests/conftest.py."""
    if os.environ.get("COMPUTELOOP_REQUIRE_LIVE") == "1":
        pytest.fail(f"{what} is required (COMPUTELOOP_REQUIRE_LIVE=1) but missing", pytrace=False)
    pytest.skip(f"{what} not available")


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "<no output>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty>"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has_db_command() -> bool:
    """True once the CLI has the ``db`` group (``python -m core db upgrade``)."""
    try:
        return importlib.util.find_spec("core.cli.db") is not None
    except ImportError:
        return False


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a Playwright browser download)."""
    if not CHROMIUM.exists():
        missing_service(f"Debian chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def app_env(tmp_path_factory) -> dict[str, str]:
    """Environment of the app under test: a throwaway SQLite database (migrated), strict i18n."""
    workdir = tmp_path_factory.mktemp("app-db")
    env = os.environ.copy()
    env.update(
        COMPUTELOOP_DATABASE_URL=f"sqlite:///{workdir / 'computeloop.db'}",
        COMPUTELOOP_I18N_STRICT="1",
        COMPUTELOOP_AUTH="demo",  # personas are selected through ?persona=<id>
        PYTHONUNBUFFERED="1",
    )
    if _has_db_command():
        upgrade = subprocess.run(
            [sys.executable, "-m", "core", "db", "upgrade"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=DB_UPGRADE_TIMEOUT_S,
        )
        if upgrade.returncode != 0:
            pytest.fail(
                f"`python -m core db upgrade` exited {upgrade.returncode}:\n"
                f"{upgrade.stdout[-3000:]}\n{upgrade.stderr[-3000:]}",
                pytrace=False,
            )
    return env


@contextmanager
def streamlit_server(env: dict[str, str], logdir: Path) -> Iterator[str]:
    """Run ``streamlit run app.py`` on a free port until the block ends; yields its base URL."""
    port = _free_port()
    stdout_path, stderr_path = logdir / "streamlit.out", logdir / "streamlit.err"
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.fileWatcherType", "none",  # pages may be edited while tests run: no reloads
        "--client.showErrorDetails", "full",
        "--browser.gatherUsageStats", "false",
    ]
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(f"{base}/_stcore/health"):
            if proc.poll() is not None:
                pytest.fail(
                    f"streamlit exited with code {proc.returncode} before answering /_stcore/health;"
                    f" stderr tail:\n{_tail(stderr_path)}\nstdout tail:\n{_tail(stdout_path)}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit did not answer {base}/_stcore/health within {SERVER_START_TIMEOUT_S:.0f} s;"
                    f" stderr tail:\n{_tail(stderr_path)}\nstdout tail:\n{_tail(stdout_path)}",
                    pytrace=False,
                )
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def app_url(chromium_browser, app_env, tmp_path_factory) -> Iterator[str]:
    """Base URL of the session's Streamlit server, warmed up by one visit of the root URL.

    The warm-up makes the page tests independent of their order: the first script run of a
    fresh server is special (see test_first_visit_after_start_runs_the_app_shell).
    """
    with streamlit_server(app_env, tmp_path_factory.mktemp("streamlit")) as base:
        context = chromium_browser.new_context(viewport=dict(VIEWPORT))
        try:
            page = context.new_page()
            page.goto(f"{base}/", wait_until="domcontentloaded")
            wait_for_app_idle(page)
        finally:
            context.close()
        yield base


@pytest.fixture()
def fresh_app_url(chromium_browser, app_env, tmp_path) -> Iterator[str]:
    """Base URL of a Streamlit server started for this test alone and not visited yet."""
    with streamlit_server(app_env, tmp_path) as base:
        yield base


@pytest.fixture(scope="session")
def _contexts(chromium_browser) -> Iterator[dict]:
    """One browser context per language for the session (shares the HTTP cache: faster loads)."""
    contexts: dict[str, object] = {}
    yield contexts
    for context in contexts.values():
        context.close()


@pytest.fixture()
def open_page(chromium_browser, app_url, _contexts) -> Iterator[Callable[..., Page]]:
    """``open_page(path, lang, base=None)``: a new tab (a new Streamlit session), loaded and idle."""
    pages = []

    def _open(path: str, lang: str, base: str | None = None):
        if lang not in _contexts:
            context = chromium_browser.new_context(viewport=dict(VIEWPORT), locale=BROWSER_LOCALE.get(lang, lang))
            context.set_default_timeout(30_000)
            _contexts[lang] = context
        page = _contexts[lang].new_page()
        pages.append(page)
        page.goto(f"{base or app_url}/{path.lstrip('/')}", wait_until="domcontentloaded")
        wait_for_app_idle(page)
        return page

    yield _open
    for page in pages:
        page.close()


# Helpers are handed to tests as fixtures rather than imported from this conftest: how conftest
# modules are named depends on pytest's import mode and on which test folders are packages.
@pytest.fixture(scope="session")
def wait_idle() -> Callable[..., None]:
    """:func:`wait_for_app_idle`, for tests that interact with a page."""
    return wait_for_app_idle


@pytest.fixture(scope="session")
def screenshot() -> Callable[..., Path]:
    """``screenshot(page, "<lang>/<name>.png")``: saved under test-artifacts/screenshots/."""

    def _shot(page, relative: str) -> Path:
        path = SCREENSHOT_DIR / relative
        save_screenshot(page, path)
        return path

    return _shot


def wait_for_app_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the app is connected and its script run has finished (and stayed finished)."""
    app = '[data-testid="stApp"]'
    page.wait_for_selector(f'{app}[data-test-connection-state="CONNECTED"]', state="attached", timeout=timeout_ms)
    # "initial" until the first run starts, "running" during it, "notRunning" when done.
    page.wait_for_selector(f'{app}[data-test-script-state="notRunning"]', state="attached", timeout=timeout_ms)
    # A finished run may request another one straight away (st.rerun, st.switch_page): look again.
    page.wait_for_timeout(200)
    page.wait_for_selector(f'{app}[data-test-script-state="notRunning"]', state="attached", timeout=timeout_ms)
    # Widgets (radio, selectbox, ...) are lazily loaded components: until
    # their code has arrived a skeleton stands in their place, even after the run has finished.
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=timeout_ms, polling=100
    )


def save_screenshot(page, path: Path) -> None:
    """Full-page screenshot; Streamlit scrolls inside its own container, so grow the viewport first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        """() => Math.max(document.documentElement.scrollHeight,
            ...['stAppViewContainer', 'stMain', 'stMainBlockContainer', 'stSidebarContent']
                .map(id => document.querySelector(`[data-testid="${id}"]`))
                .filter(Boolean).map(el => el.scrollHeight))"""
    )
    size = page.viewport_size or VIEWPORT
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 8000))})
    page.wait_for_timeout(100)
    page.screenshot(path=str(path), full_page=True)
