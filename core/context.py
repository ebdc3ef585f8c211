"""The composition root: builds the engine and session factory from the settings.

The Streamlit side keeps one :class:`AppContext` in ``st.cache_resource``; the CLI builds one per
command. Nothing connects at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import config
from core.db.session import check_schema, make_engine, session_factory


@dataclass(frozen=True)
class AppContext:
    """Long-lived resources shared by the services."""

    engine: Engine
    sessions: sessionmaker[Session]


def build(url: str | None = None, *, require_schema: bool = True) -> AppContext:
    """Engine and session factory for ``url`` (default: the configured database)."""
    engine = make_engine(url or config.load().database_url)
    if require_schema:
        check_schema(engine)
    return AppContext(engine=engine, sessions=session_factory(engine))
