"""Showing errors to people: a clear message naming the field, never a traceback."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from core.errors import ComputeLoopError, InputError
from ui.i18n import t

log = logging.getLogger("computeloop.ui")


def show_error(exc: BaseException) -> None:
    """Show ``exc`` as a message: ours are translated, anything else is logged and summarised."""
    if isinstance(exc, ComputeLoopError):
        text = t(exc.key, **exc.params)
        if isinstance(exc, InputError):
            st.error(t("error.field_prefix", field=exc.field) + " " + text, icon=":material/error:")
        else:
            st.error(text, icon=":material/error:")
    else:
        log.exception("unexpected error in a page", exc_info=exc)
        st.error(t("error.unexpected", kind=type(exc).__name__), icon=":material/error:")


def show_outcome(prefix: str) -> bool:
    """The outcome a button's callback left for this run: the error under ``<prefix>_error``, or
    the catalog key of the success message under ``<prefix>_done``; each shown once. True when
    there was one."""
    if f"{prefix}_error" in st.session_state:
        show_error(st.session_state.pop(f"{prefix}_error"))
        return True
    if f"{prefix}_done" in st.session_state:
        st.success(t(st.session_state.pop(f"{prefix}_done")))
        return True
    return False


@contextmanager
def guarded() -> Iterator[None]:
    """Run a block of a page; any error becomes a message in place of the block."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the UI must never show a traceback
        if type(exc).__name__ in {"RerunException", "StopException"}:
            raise
        show_error(exc)
