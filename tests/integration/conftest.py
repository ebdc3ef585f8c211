"""Database fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from COMPUTELOOP_TEST_POSTGRES_URL (``.ci/run`` sets it). Each test session
gets its own schema, so runs never see each other's rows; it is dropped at the end.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from core.context import AppContext, build
from core.db.migrate import upgrade
from core.db.session import make_engine
from tests.conftest import missing_service

PG_ENV = "COMPUTELOOP_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def pg_schema_url():
    """A PostgreSQL URL whose search_path is a fresh schema for this test session."""
    base = os.environ.get(PG_ENV)
    if not base:
        missing_service(f"PostgreSQL ({PG_ENV} not set)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means the service is missing
        missing_service(f"PostgreSQL at {base} ({type(exc).__name__})")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A migrated, empty database URL: SQLite file, then PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
        engine = create_engine(url)
        with engine.begin() as conn:
            # A fresh schema for every test: tables, functions and triggers of every migration go.
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def ctx(db_url) -> AppContext:
    """The app context on a migrated database."""
    context = build(db_url)
    yield context
    context.engine.dispose()
