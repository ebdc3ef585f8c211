"""Engines, session factories and the unit of work (one transaction per user action)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ComputeLoopError


class DatabaseNotReady(ComputeLoopError):
    """The database has no schema yet (migrations not applied)."""


def make_engine(url: str) -> Engine:
    """An engine for ``url``; creates the folder of a SQLite file and turns on its foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if parsed.get_backend_name() == "sqlite":
        @event.listens_for(engine, "connect")
        def _fk_on(dbapi_conn, _record):  # noqa: ANN001 - SQLAlchemy hook signature
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine`` (objects stay readable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


def check_schema(engine: Engine) -> None:
    """Raise :class:`DatabaseNotReady` when the migrations have not been applied."""
    if not inspect(engine).has_table("alembic_version"):
        raise DatabaseNotReady("error.database_not_ready", url=engine.url.render_as_string(hide_password=True))


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back whole on any error."""
    session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()
