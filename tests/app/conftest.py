"""AppTest helpers: run the real app.py with a persona, a language and a page."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from tests.support.databases import migrated_sqlite_template, sqlite_copy

APP = str(PROJECT_ROOT / "app.py")


@pytest.fixture
def app_ctx():
    """The app's context on the test's database, migrated: for setting data up through the services."""
    import os

    from core.context import build
    from core.db.migrate import upgrade
    from core.db.session import make_engine

    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    return build(url)


@pytest.fixture
def demo_metrics(app_ctx, tmp_path, monkeypatch):
    """One day of demo samples and its rollup in a temporary folder and the test's database."""
    from core.metrics.demo_metrics import ensure_demo_metrics

    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "samples"))
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    ensure_demo_metrics(app_ctx.sessions, days=1)
    return app_ctx


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """The migrated SQLite file every AppTest's database is a copy of."""
    return migrated_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(autouse=True)
def _isolated_database(tmp_path, monkeypatch, sqlite_template):
    """Each AppTest gets its own SQLite database, a copy of the migrated template."""
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", sqlite_copy(sqlite_template, tmp_path / "app.db"))
    monkeypatch.setenv("COMPUTELOOP_AUTH", "demo")
    monkeypatch.setenv("COMPUTELOOP_I18N_STRICT", "1")


def open_page(page: str, *, persona: str = "zhang.wei", lang: str = "en", timeout: float = 60) -> AppTest:
    """Run app.py as ``persona`` in ``lang`` and switch to ``page`` (e.g. 'pages/estimate.py')."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params["persona"] = persona
    at.query_params["lang"] = lang
    at.run()
    at.switch_page(page)
    at.run()
    return at


def no_exceptions(at: AppTest) -> None:
    """Fail with the exception texts when the page showed any."""
    assert not at.exception, [e.value for e in at.exception]
    assert not [e for e in at.error if "unexpected" in (e.value or "").lower()], [e.value for e in at.error]
