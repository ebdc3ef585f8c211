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


@contextmanager
def guarded() -> Iterator[None]:
    """Run a block of a page; any error becomes a message in place of the block."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the UI must never show a traceback
        if type(exc).__name__ in {"RerunException", "StopException"}:
            raise
        show_error(exc)
