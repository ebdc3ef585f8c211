"""AppTest: the queue page (队列与调整) — queue table with blocked reasons, policy text, simulations."""

from __future__ import annotations

import os

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine
from core.identity import load_personas
from core.lifecycle import services as lifecycle
from tests.app.conftest import no_exceptions, open_page
from tests.app.test_allocation_pages import _form


def _ctx():
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    return build(url)


def test_an_empty_queue_says_so_and_explains_the_policy():
    at = open_page("app_pages/queue.py", persona="li.na")
    no_exceptions(at)
    assert any("No request is waiting" in s.value for s in at.success)
    assert any("effective priority" in i.value.lower() and "20" in i.value for i in at.info)


def test_a_queued_request_shows_its_position_and_blocked_reason_in_chinese():
    ctx = _ctx()
    people = {p.id: p for p in load_personas()}
    view = lifecycle.submit(sessions=ctx.sessions, actor=people["zhang.wei"], form=_form(200), queue_if_short=True)
    assert view["status"] == "queued"
    at = open_page("app_pages/queue.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert view["number"] in table.to_string()
    assert "排位" in table.columns and "受阻原因" in table.columns
    assert "无预期释放" in table.to_string()


def test_the_defragmentation_tab_says_that_the_portal_only_records_the_plan():
    at = open_page("app_pages/queue.py", persona="zhao.min")
    no_exceptions(at)
    assert any("cannot be moved from the portal" in c.value for c in at.caption)
    at.selectbox(key="adjq_pool").set_value("hq-sci").run()
    no_exceptions(at)
