"""AppTest fixtures: each test's own migrated SQLite database, demo sign-in, strict catalogs.

Running a page and checking it showed no error live in tests/support/app_run.py (test modules import
from tests/support, never from here or from each other)."""

from __future__ import annotations

import pytest

from tests.support.app_demo import DemoData, demo_data
from tests.support.databases import migrated_sqlite_template, sqlite_copy


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



@pytest.fixture(scope="session")
def demo_template(tmp_path_factory, sqlite_template) -> DemoData:
    """The demo data of ``make run`` (smaller fleet), made once for all xdist workers of the run."""
    import os

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return demo_data(shared / "computeloop-demo-data", sqlite_template)


@pytest.fixture
def demo_database(demo_template, tmp_path, monkeypatch) -> str:
    """The test's own copy of the demo data: its database URL (set for the app) and metric samples."""
    url, samples = demo_template.copy_to(tmp_path / "demo")
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", url)
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(samples))
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    return url
