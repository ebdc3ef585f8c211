"""Applying the Alembic migrations programmatically (used by the CLI, the app and the tests)."""

from __future__ import annotations

from functools import lru_cache

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from core.config import PROJECT_ROOT


def alembic_config(url: str) -> AlembicConfig:
    """Alembic configuration for ``url`` using the project's migrations folder."""
    cfg = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> str:
    """Apply every pending migration on ``engine``; returns the revision now in force.

    A database already at the head revision is left alone without loading Alembic's environment
    (each app session and each CLI command calls this)."""
    head = head_revision()
    if current_revision(engine) == head:
        return head
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    return current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest revision in the migrations folder (read once per process)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""
