"""Database fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from COMPUTELOOP_TEST_POSTGRES_URL (``.ci/run`` sets it). Each test session (each
xdist worker) gets its own schema, so runs never see each other's rows; it is dropped at the end.
Both databases are migrated once per session and handed to each test in the freshly migrated state
(``tests/support/databases.py``).
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from core.context import AppContext, build
from tests.conftest import missing_service
from tests.support.databases import PostgresSchema, migrated_sqlite_template, sqlite_copy

PG_ENV = "COMPUTELOOP_TEST_POSTGRES_URL"


def _in_schema(base: str, schema: str) -> str:
    """``base`` with its search_path set to ``schema``."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_schema_url():
    """A PostgreSQL URL whose search_path is a fresh, empty schema for this test session."""
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
    yield _in_schema(base, schema)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """The migrated SQLite file every SQLite test starts from a copy of."""
    return migrated_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def pg_migrated(pg_schema_url):
    """This session's PostgreSQL schema, migrated once."""
    schema = PostgresSchema.migrate(pg_schema_url)
    yield schema
    schema.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A migrated, empty database URL: SQLite file, then PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path / "test.db")
        return
    schema = request.getfixturevalue("pg_migrated")
    schema.reset()
    yield schema.url
    if request.node.get_closest_marker("changes_schema"):
        schema.rebuild()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request, tmp_path):
    """An empty database with no migration applied: SQLite file, then a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("pg_schema_url")  # PostgreSQL is there (or the test fails/skips)
    base = os.environ[PG_ENV]
    schema = f"e_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield _in_schema(base, schema)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def ctx(db_url) -> AppContext:
    """The app context on a migrated database."""
    context = build(db_url)
    yield context
    context.engine.dispose()


# Fixtures shared by several modules live in tests/support and are registered here.
from tests.support.cli import cli  # noqa: E402,F401
from tests.support.kube import kube  # noqa: E402,F401
from tests.support.smtp import smtp  # noqa: E402,F401
