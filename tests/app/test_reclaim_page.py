"""AppTest: the Reclaim page opens for an owner and for ops in both languages, and the owner returns an allocation."""

from __future__ import annotations

import pytest

from tests.app.conftest import no_exceptions, open_page
from tests.app.test_allocation_pages import _ctx, _form, _people


@pytest.mark.parametrize("persona,lang", [("zhang.wei", "en"), ("li.na", "zh-CN"), ("zhao.min", "en")])
def test_the_reclaim_page_opens_without_errors(persona, lang):
    at = open_page("app_pages/reclaim.py", persona=persona, lang=lang)
    no_exceptions(at)
    assert len(at.tabs) == 5


def test_the_owner_returns_an_allocation_and_sees_the_record():
    from core.lifecycle import services as lifecycle

    ctx = _ctx()
    lifecycle.submit(sessions=ctx.sessions, actor=_people()["zhang.wei"], form=_form(4))
    at = open_page("app_pages/reclaim.py", persona="zhang.wei")
    no_exceptions(at)
    at.text_area(key="own_reason").input("任务提前完成")
    at.button[1].click().run()  # the form's second button: return
    no_exceptions(at)
    assert any("returned" in s.value for s in at.success)
