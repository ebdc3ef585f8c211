"""Translation on the Streamlit side: the current language and ``t()``."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import config
from core.i18n import LANGS, Msg, normalize_lang, translate


def current_lang() -> str:
    """The session's language: chosen in the sidebar, else forced by settings, else the browser's."""
    if "lang" not in st.session_state:
        forced = config.load().default_lang
        browser = getattr(st.context, "locale", None)
        st.session_state["lang"] = normalize_lang(forced or browser)
    return st.session_state["lang"]


def t(key: str, **params: Any) -> str:
    """The text of ``key`` in the session's language."""
    return translate(key, current_lang(), **params)


def render(msg: Msg | dict) -> str:
    """Render a :class:`Msg` (or a ``{"key", "params"}`` dict from a service result)."""
    if isinstance(msg, dict):
        return translate(msg["key"], current_lang(), **msg.get("params", {}))
    return msg.render(current_lang())


def _language_chosen() -> None:
    st.session_state["lang"] = st.session_state["_lang_choice"]


def language_switch() -> None:
    """The sidebar language switch (中文 / English), and Streamlit's own texts in that language
    (:func:`ui.builtin_text.styles`).

    The choice is kept under a plain session key: a widget's own key is dropped when the page
    changes, and the language must survive navigation.
    """
    from ui.builtin_text import styles

    lang = current_lang()
    st.sidebar.radio(
        t("sidebar.language"), LANGS, index=LANGS.index(lang), key="_lang_choice", horizontal=True,
        on_change=_language_chosen, format_func={"zh-CN": "中文", "en": "English"}.get,
    )
    # Streamlit's own texts that have no parameter (the uploader's, the inputs' hints) follow the language.
    styles()
    from ui.times import zone_note  # imports this module

    st.sidebar.caption(zone_note())
