"""Alembic migrations build the schema from nothing, on SQLite and PostgreSQL, and are idempotent."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import inspect

from core.config import PROJECT_ROOT
from core.db.migrate import current_revision, head_revision, upgrade
from core.db.session import make_engine


def test_migrations_reach_head_and_rerun_changes_nothing(db_url):
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"estimates", "estimate_outcomes", "audit_events"} <= tables
    assert upgrade(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == tables
    engine.dispose()


def test_cli_db_upgrade_creates_the_sqlite_file(tmp_path):
    db = tmp_path / "sub" / "portal.db"
    env = {"COMPUTELOOP_DATABASE_URL": f"sqlite:///{db}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "core", "db", "upgrade", "--json"], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert db.exists()
    assert head_revision() in out.stdout
