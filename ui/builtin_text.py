"""Streamlit's own texts in the UI's language.

Streamlit writes some texts of its widgets itself, in English. Where Streamlit 1.67 has a
parameter, the pages pass it: ``placeholder=`` (:func:`choose`, :func:`choose_many`) on every
selectbox and multiselect, ``select_all=False`` on multiselects (the "Select all" entry has no
text parameter), ``format=`` on date inputs (:data:`DATE_FORMAT`). The sidebar menu has no
"View n more / View less": app.py draws it with ``st.page_link`` (``st.navigation`` hidden).

Where it has none, :func:`styles` (called once per run, beside the language switch) replaces
the English with the UI language's text through CSS tied to the pinned version's DOM
(:data:`PINNED_STREAMLIT`): the text inputs' "Press Enter to apply / submit form" hint
(``InputInstructions``), a select's "No results" when the typed filter matches nothing, and the
date range's quick-select ("Date range", "Select...", "Past Week" …; hidden in Chinese); and,
per uploader (:func:`uploader_texts`, scoped by the widget's key), the file uploader's "Upload"
button, "200MB per file • JSON, CSV" and "Drag and drop files here" — an open feature request
upstream. The English is removed with ``display: none`` (no check of visible text sees it) and
the translation shown as a pseudo-element. A Streamlit upgrade that changes these elements shows
the English again: the browser tests' ``english_builtins`` detector (tests/support/
visible_text.py) and tests/unit/test_builtin_text.py (which pins the version) catch it.

Not reachable from here: the date input's calendar names months and weekdays in the browser's
language (``navigator.language``), not the page's.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable

import streamlit as st

from core.i18n import translate
from ui.i18n import current_lang, t

PINNED_STREAMLIT = "1.67.0"
MAX_UPLOAD_OPTION = "server.maxUploadSize"  # Streamlit's per-file limit in MB, which the uploader states
DATE_FORMAT = "YYYY-MM-DD"  # the date inputs' field, as the tables write dates (2026-12-07)


def choose(options: Collection | None = None) -> str:
    """A selectbox's placeholder: "choose one", or "nothing to choose" when ``options`` is empty."""
    return t("uitext.no_options") if options is not None and len(options) == 0 else t("uitext.choose")


def choose_many(options: Collection | None = None) -> str:
    """A multiselect's placeholder: "choose one or more", or "nothing to choose"."""
    return t("uitext.no_options") if options is not None and len(options) == 0 else t("uitext.choose_many")


def _css_text(text: str) -> str:
    """``text`` as a CSS string literal (JSON's escaping is valid CSS for these texts)."""
    return json.dumps(text, ensure_ascii=False)


def _replace(hide: list[str], host: list[str], text: str, *, pseudo: str = "after", style: str = "") -> str:
    """CSS that removes the elements ``hide`` matches (``display: none``, so no check of visible
    text sees them) and shows ``text`` as the ``::after`` (or ``::before``) of ``host``."""
    shown = f"content: {_css_text(text)};" + (f" {style}" if style else "")
    return (f"{', '.join(hide)} {{ display: none !important; }}\n"
            f"{', '.join(f'{h}::{pseudo}' for h in host)} {{ {shown} }}\n")


def _styles_css(lang: str) -> str:
    """The CSS of :func:`styles` for ``lang`` (empty in English: Streamlit's texts are English)."""
    if lang != "zh-CN":
        return ""
    # Text and number inputs: "Press Enter to apply" / "… to submit form" (InputInstructions.*.js);
    # text areas: "Press Ctrl+Enter to …" (⌘ on a Mac). The hint is the box's first span (a character
    # count, when there is one, follows it); in a form the more specific rule wins.
    box = '[data-testid="InputInstructions"]'

    def hint(widgets: tuple[str, ...], key: str, form: bool = False) -> str:
        scope = '[data-testid="stForm"] ' if form else ""
        hosts = [f'{scope}[data-testid="{w}"] {box}' for w in widgets]
        return _replace([f"{h} > span:first-child" for h in hosts], hosts, translate(key, lang), pseudo="before")

    single = ("stTextInput", "stNumberInput")
    return "".join([
        hint(single, "uitext.enter_apply"), hint(single, "uitext.enter_submit", form=True),
        hint(("stTextArea",), "uitext.ctrl_enter_apply"), hint(("stTextArea",), "uitext.ctrl_enter_submit", form=True),
        # A select's list when the typed filter matches nothing: "No results" (Selectbox.*.js, Multiselect.*.js).
        _replace(['[role="listbox"][data-empty="true"] [role="option"] > span'], ['[role="listbox"][data-empty="true"]'],
                 translate("uitext.no_results", lang),
                 style="display: flex; justify-content: center; padding: 0.5rem; font-size: 0.875rem; opacity: 0.7;"),
        # Date ranges: the English quick-select ("Date range", "Select...", "Past Week" …) is hidden.
        '[data-testid="stDateInputQuickSelect"] { display: none !important; }\n',
    ])


def styles() -> None:
    """The UI language's replacement of Streamlit's own texts that have no parameter (see the
    module's docstring); nothing in English."""
    css = _styles_css(current_lang())
    if css:
        st.html(f"<style>\n{css}</style>")


def _uploader_css(key: str, types: Iterable[str], max_mb: int, lang: str) -> str:
    """The CSS of :func:`uploader_texts` (empty in English)."""
    if lang != "zh-CN":
        return ""
    scope = f'.st-key-{key} [data-testid="stFileUploaderDropzone"]'
    kinds = "、".join(x.upper() for x in types)
    limit = (translate("uitext.upload_limit", lang, size=max_mb, types=kinds) if kinds
             else translate("uitext.upload_limit_any", lang, size=max_mb))
    return "".join([
        # The button's label ("Upload"); its icon stays.
        f'{scope} button [data-testid="stMarkdownContainer"] > p {{ display: none !important; }}\n'
        f'{scope} button [data-testid="stMarkdownContainer"]::after '
        f'{{ content: {_css_text(translate("uitext.upload", lang))}; }}\n',
        # "200MB per file • JSON, CSV" (the theme's fontSizes.sm, faded like the original).
        _replace([f'{scope} [data-testid="stFileUploaderDropzoneInstructions"] span'],
                 [f'{scope} [data-testid="stFileUploaderDropzoneInstructions"] > div'], limit,
                 style="font-size: 0.875rem; opacity: 0.7;"),
        # "Drag and drop files here", shown while a file is dragged over the box (the overlay is the box's
        # only child div holding a span; the uploaded files' list is a div of divs).
        _replace([f'{scope} > div:not([data-testid]) > span'], [f'{scope} > div:not([data-testid]):has(> span)'],
                 translate("uitext.drop_here", lang), style="font-size: 0.875rem; font-weight: 800;"),
    ])


def uploader_texts(key: str, types: Iterable[str]) -> None:
    """Show the file uploader with widget key ``key`` (accepting ``types``) in the UI language.
    Call it next to ``st.file_uploader(..., key=key, type=types)``."""
    css = _uploader_css(key, types, int(st.get_option(MAX_UPLOAD_OPTION)), current_lang())
    if css:
        st.html(f"<style>\n{css}</style>")
