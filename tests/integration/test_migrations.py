"""Alembic migrations build the schema from nothing, on SQLite and PostgreSQL, and are idempotent."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sqlalchemy import inspect

from core.config import PROJECT_ROOT
from core.db.migrate import current_revision, head_revision, upgrade
from core.db.session import make_engine


def test_migrations_reach_head_and_rerun_changes_nothing(empty_db_url):
    engine = make_engine(empty_db_url)
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
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


@pytest.mark.changes_schema
def test_0014_fills_in_the_pool_of_existing_adjustment_records(db_url):
    import json
    from datetime import datetime, timezone

    from alembic import command
    from sqlalchemy import text

    from core.db.migrate import alembic_config

    engine = make_engine(db_url)
    cfg = alembic_config(db_url)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0013")
    at = datetime.now(timezone.utc)
    with engine.begin() as connection:
        for subject, after in (("pool:hq-sci", None), ("request:9", {"pool": "hq-ft", "position": 2}),
                               ("deployment:a/b", {"replicas": 3})):
            connection.execute(text("INSERT INTO adjustments (at, actor, kind, subject, before, after, reason, automatic) "
                                    "VALUES (:at, 'system', 'queue_reorder', :subject, NULL, :after, '', :auto)"),
                               {"at": at, "subject": subject, "after": json.dumps(after) if after else None,
                                "auto": True})
    assert upgrade(engine) == head_revision()
    with engine.connect() as connection:
        pools = dict(connection.execute(text("SELECT subject, pool FROM adjustments")).all())
    assert pools == {"pool:hq-sci": "hq-sci", "request:9": "hq-ft", "deployment:a/b": None}
    engine.dispose()
