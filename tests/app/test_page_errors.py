"""AppTest: the page-error check itself. A page body runs inside ``ui.errors.guarded``, so a service
that raises shows the catalog's unexpected-error message instead of reaching ``at.exception``;
``no_exceptions`` must fail on that message in both languages, and on an exception that escapes."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.adjust import services as adjust
from core.i18n import LANGS
from core.reports import service as reports
from tests.support.app_run import no_exceptions, open_page, text, unexpected_errors

# (page, persona, the module the page's view reads through, the function that is made to raise)
RAISING = [("app_pages/board.py", "wang.qiang", reports, "list_reports"),
           ("app_pages/queue.py", "li.na", adjust, "queue")]


def _broken(*_args, **_kwargs):
    raise RuntimeError("the service failed")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("page", "persona", "module", "name"), RAISING, ids=["board", "queue"])
def test_a_page_whose_service_raises_fails_the_check(monkeypatch, page, persona, module, name, lang):
    with monkeypatch.context() as patched:
        patched.setattr(module, name, _broken)
        at = open_page(page, persona=persona, lang=lang)
    assert not at.exception  # guarded: no traceback reaches the page ...
    assert unexpected_errors(at) == [text("error.unexpected", lang, kind="RuntimeError")]  # ... but the message
    with pytest.raises(AssertionError):
        no_exceptions(at)

    # the same page with the service intact passes (a failed read is not cached: it reads again)
    no_exceptions(open_page(page, persona=persona, lang=lang))


def test_an_exception_that_escapes_the_page_fails_the_check():
    at = AppTest.from_string("raise RuntimeError('outside any guarded block')", default_timeout=30).run()
    assert at.exception
    with pytest.raises(AssertionError):
        no_exceptions(at)
