"""The app's long-lived resources and the identity passed to services."""

from __future__ import annotations

import streamlit as st

from core import context
from core.db.migrate import upgrade
from core.db.session import make_engine
from core.identity import Identity


@st.cache_resource(show_spinner=False)
def app_context(url: str) -> context.AppContext:
    """Engine and session factory for ``url``; migrations are applied once at start."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return context.build(url)


def ctx() -> context.AppContext:
    """The context for the configured database."""
    from core import config

    return app_context(config.load().database_url)


def me() -> Identity:
    """The acting identity (set by app.py before any page runs)."""
    return st.session_state["identity"]
