"""Showing errors to people: a clear message naming the field, never a traceback."""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from core.errors import ComputeLoopError, InputError
from core.i18n import Msg, field_name
from ui.i18n import current_lang, render, t

log = logging.getLogger("computeloop.ui")


# Messages whose parameter is a list of field names (", "-joined by the service): shown as labels too.
_FIELD_LISTS = {"lifecycle.incomplete": "missing"}


def _code(text: str) -> str:
    """``text`` as inline code in Markdown (st.error renders Markdown), whatever backticks it holds."""
    run = max((len(r) for r in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def field_label(field: str, lang: str | None = None) -> str:
    """The field an error names, as a person reads it (Markdown): the form's label of it in the
    session's language (``fieldname.<field>``), else — a file, a CLI option, a setting, a field
    the catalogs do not know — the name as it is, shown as code."""
    lang = lang or current_lang()
    return field_name(field, lang) or _code(str(field))


def _field_list(names: str, lang: str) -> str:
    separator = "、" if lang == "zh-CN" else ", "
    return separator.join(field_label(n.strip(), lang) for n in str(names).split(",") if n.strip())


def show_error(exc: BaseException) -> None:
    """Show ``exc`` as a message: ours are translated, anything else is logged and summarised.
    An :class:`InputError` starts with the label of its field (:func:`field_label`), never its id."""
    if isinstance(exc, ComputeLoopError):
        params = dict(exc.params)
        if isinstance(exc, InputError):
            lang = current_lang()
            label = field_label(exc.field, lang)
            if "field" in params:  # a message naming the field in its text names it the same way
                params["field"] = label
            listed = _FIELD_LISTS.get(exc.key)
            if listed and params.get(listed):
                params[listed] = _field_list(params[listed], lang)
            st.error(t("error.field_prefix", field=label) + " " + t(exc.key, **params), icon=":material/error:")
        else:
            st.error(t(exc.key, **params), icon=":material/error:")
    else:
        log.exception("unexpected error in a page", exc_info=exc)
        st.error(t("error.unexpected", kind=type(exc).__name__), icon=":material/error:")


def show_outcome(prefix: str) -> bool:
    """The outcome a button's callback left for this run: the error under ``<prefix>_error``, or
    the success message under ``<prefix>_done`` (a catalog key, or a :class:`Msg` when it has
    parameters); each shown once. True when there was one."""
    if f"{prefix}_error" in st.session_state:
        show_error(st.session_state.pop(f"{prefix}_error"))
        return True
    if f"{prefix}_done" in st.session_state:
        done = st.session_state.pop(f"{prefix}_done")
        st.success(render(done) if isinstance(done, Msg) else t(done))
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
