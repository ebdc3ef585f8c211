"""Browser test fixtures: the demo data of ``make run`` served by a real ``streamlit run app.py``,
Debian's Chromium driven by Playwright.

The demo data is seeded once per run (the first xdist worker to need it; the others copy it); one
copy of it, one Streamlit server and one Chromium per test session (per xdist worker);
each test opens its own tab, which is a new Streamlit session (tabs share one browser context per
language, so static assets come from the HTTP cache). Seeding and serving run on the real clock,
in subprocesses, so they agree on today. Screenshots are saved only for pages that fail, under
test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest

from tests.support.browser_app import (
    BROWSER_LOCALE,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    SCREENSHOT_DIR,
    SetupFailed,
    save_screenshot,
    seed_shared_demo,
    streamlit_server,
    wait_for_app_idle,
)
from tests.support.browser_checks import unexpected_error_patterns

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# `pytest` (not `python -m pytest`) does not put the project root on sys.path.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))


def missing_service(what: str) -> None:
    """Fail (COMPUTELOOP_REQUIRE_LIVE=1, as in CI) or skip (laptop): same rule as tests/conftest.py."""
    if os.environ.get("COMPUTELOOP_REQUIRE_LIVE") == "1":
        pytest.fail(f"{what} is required (COMPUTELOOP_REQUIRE_LIVE=1) but missing", pytrace=False)
    pytest.skip(f"{what} not available")


@contextmanager
def serving(env: dict[str, str], logdir: Path) -> Iterator[str]:
    """:func:`streamlit_server`, failing the test (not erroring with a traceback) when it does not start."""
    server = streamlit_server(env, logdir)
    try:
        base = server.__enter__()
    except SetupFailed as exc:
        failed = str(exc)
    else:
        failed = ""
    if failed:
        pytest.fail(failed, pytrace=False)
    try:
        yield base
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def serve() -> Callable[..., object]:
    """:func:`serving`, for tests that start a server of their own."""
    return serving


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
    """Environment of the app under test: a throwaway SQLite database and metrics folder with the
    demo data, seeded through the CLI as ``make run`` does (smaller history) once for all xdist
    workers and copied for each; demo sign-in, strict i18n."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "computeloop-browser-demo"
    try:
        env, timings = seed_shared_demo(shared, tmp_path_factory.mktemp("demo-app"))
    except SetupFailed as exc:
        failed = str(exc)
    else:
        failed = ""
    if failed:
        pytest.fail(failed, pytrace=False)
    if timings:
        print("demo data seeded: " + ", ".join(f"{step} {s:.1f} s" for step, s in timings.items()))
    return env


@pytest.fixture(scope="session")
def _clean_screenshots() -> None:
    """Screenshots are of this run's failures only: clear the folder once (by the first xdist
    worker, or the only process)."""
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0" and SCREENSHOT_DIR.is_dir():
        shutil.rmtree(SCREENSHOT_DIR)


@pytest.fixture(scope="session")
def app_url(chromium_browser, app_env, tmp_path_factory, _clean_screenshots) -> Iterator[str]:
    """Base URL of the session's Streamlit server, warmed up by one visit of the root URL.

    The warm-up makes the page tests independent of their order: the first script run of a
    fresh server is special (see test_first_visit_after_start_runs_the_app_shell).
    """
    with serving(app_env, tmp_path_factory.mktemp("streamlit")) as base:
        context = chromium_browser.new_context(viewport=dict(DESKTOP))
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
    with serving(app_env, tmp_path) as base:
        yield base


@pytest.fixture(scope="session")
def _contexts(chromium_browser) -> Iterator[dict]:
    """One browser context per language for the session (shares the HTTP cache: faster loads)."""
    contexts: dict[str, object] = {}
    yield contexts
    for context in contexts.values():
        context.close()


@pytest.fixture()
def new_tab(chromium_browser, _contexts) -> Iterator[Callable[[str], Page]]:
    """``new_tab(lang)``: an empty tab at 1440×900 in the browser context of ``lang``, closed
    after the test."""
    pages = []

    def _new(lang: str):
        if lang not in _contexts:
            context = chromium_browser.new_context(viewport=dict(DESKTOP), locale=BROWSER_LOCALE.get(lang, lang))
            context.set_default_timeout(30_000)
            _contexts[lang] = context
        page = _contexts[lang].new_page()
        page.set_viewport_size(dict(DESKTOP))
        pages.append(page)
        return page

    yield _new
    for page in pages:
        page.close()


@pytest.fixture()
def open_page(new_tab, app_url) -> Callable[..., Page]:
    """``open_page(path, lang, base=None)``: a new tab (a new Streamlit session), loaded and idle."""

    def _open(path: str, lang: str, base: str | None = None):
        page = new_tab(lang)
        page.goto(f"{base or app_url}/{path.lstrip('/')}", wait_until="domcontentloaded")
        wait_for_app_idle(page)
        return page

    return _open


@pytest.fixture(scope="session")
def error_patterns() -> list:
    """The generic unexpected-error message of every language, from the catalogs. A catalog that
    cannot give it fails the test: the error check must never be dropped."""
    try:
        return unexpected_error_patterns()
    except Exception as exc:  # noqa: BLE001 - any failure to read the key is the same failure
        pytest.fail(f"cannot build the unexpected-error pattern from the catalog key error.unexpected: {exc!r}",
                    pytrace=False)


# Helpers are handed to tests as fixtures rather than imported from this conftest: how conftest
# modules are named depends on pytest's import mode and on which test folders are packages.
@pytest.fixture(scope="session")
def wait_idle() -> Callable[..., None]:
    """:func:`wait_for_app_idle`, for tests that interact with a page."""
    return wait_for_app_idle


@pytest.fixture(scope="session")
def screenshot() -> Callable[..., Path]:
    """``screenshot(page, name)``: saved as test-artifacts/screenshots/<name>.png; returns the path."""

    def _shot(page, name: str) -> Path:
        return save_screenshot(page, SCREENSHOT_DIR / f"{name}.png")

    return _shot
