"""Running app.py under Streamlit's AppTest, and the check that a page showed no error of its own.

Every page body runs inside ``ui.errors.guarded``: an exception a service raises does not reach
AppTest as ``at.exception`` but becomes an ``st.error`` with the catalog text of
``error.unexpected`` ("Something went wrong (RuntimeError)…" / its Chinese text). :func:`no_exceptions`
fails on that text in either language, matched as the catalog renders it (not a word of it), and
on any ``at.exception``.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from core.i18n import LANGS, catalog, translate

APP = str(PROJECT_ROOT / "app.py")

UNEXPECTED_KEY = "error.unexpected"
_SLOT = "\x00kind\x00"  # what the {kind} placeholder is rendered as, then turned into a wildcard


def text(key: str, lang: str = "en", **params) -> str:
    """The catalog text of ``key`` in ``lang``: what a page shows, so that a test does not hard-code
    a wording the catalogs may change."""
    return translate(key, lang, **params)


def lead(key: str, lang: str = "en") -> str:
    """The catalog text of ``key`` in ``lang`` up to its first ``{placeholder}``."""
    return catalog(lang)[key].split("{", 1)[0]


def message(key: str, lang: str = "en", **known) -> re.Pattern[str]:
    """The catalog text of ``key`` in ``lang`` as a pattern: the ``known`` parameters filled in as
    ``translate`` would, any other ``{placeholder}`` matching any text. For finding a message whose
    parameters (an id, a time) the test does not compute."""
    out = []
    for literal, field, spec, _conversion in string.Formatter().parse(catalog(lang)[key]):
        out.append(re.escape(literal))
        if field is not None:
            out.append(re.escape(format(known[field], spec or "")) if field in known else ".*?")
    return re.compile("(?s)" + "".join(out))


def shows(elements, key: str, lang: str = "en", **known) -> bool:
    """True when one of ``elements`` (``at.success``, ``at.info``, ``at.caption`` ...) shows the
    message ``key`` (see :func:`message`)."""
    pattern = message(key, lang, **known)
    return any(pattern.search(getattr(e, "value", None) or "") for e in elements)


@lru_cache(maxsize=None)
def unexpected_error(lang: str) -> re.Pattern[str]:
    """The rendered ``error.unexpected`` message of ``lang`` as a pattern: the catalog text, rendered
    by ``translate``, with any exception class name in place of ``{kind}``."""
    rendered = translate(UNEXPECTED_KEY, lang, kind=_SLOT)
    parts = rendered.split(_SLOT)
    assert len(parts) >= 2, f"{UNEXPECTED_KEY} in {lang} no longer names the exception: {rendered!r}"
    return re.compile(r"[\w.]+".join(re.escape(p) for p in parts))


def unexpected_errors(at: AppTest) -> list[str]:
    """The error boxes of ``at`` (main area and sidebar) that are the unexpected-error message, in
    any language."""
    patterns = [unexpected_error(lang) for lang in LANGS]
    return [e.value for e in at.error if any(p.search(e.value or "") for p in patterns)]


def no_exceptions(at: AppTest) -> None:
    """Fail when the run raised (``at.exception``) or a page showed the unexpected-error message."""
    assert not at.exception, [e.value for e in at.exception]
    shown = unexpected_errors(at)
    assert not shown, shown


def open_page(page: str, *, persona: str = "zhang.wei", lang: str = "en", timeout: float = 60) -> AppTest:
    """Run app.py as ``persona`` in ``lang`` and switch to ``page`` (e.g. 'app_pages/estimate.py')."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params["persona"] = persona
    at.query_params["lang"] = lang
    at.run()
    at.switch_page(page)
    at.run()
    return at


def start(persona: str | None = None, lang: str | None = None, timeout: float = 60) -> AppTest:
    """Run app.py once (its default page) as ``persona`` in ``lang``; either may be left to the app."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if persona is not None:
        at.query_params["persona"] = persona
    if lang is not None:
        at.query_params["lang"] = lang
    return at.run()
