"""AppTest: the adjustment record page (调整记录) — filters and the table."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from core.adjust.persistence import record_adjustment
from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine, unit_of_work
from tests.app.conftest import no_exceptions, open_page


def _seed():
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    ctx = build(url)
    now = datetime.now(timezone.utc)
    with unit_of_work(ctx.sessions) as s:
        record_adjustment(s, actor="system", kind="scale_event", subject="deployment:cs/qwen", automatic=True,
                          before={"replicas": 2}, after={"replicas": 3}, reason="util_high", at=now)
        record_adjustment(s, actor="li.na", kind="defragmentation", subject="pool:hq-ft", reason="整理碎片", at=now)


def test_the_record_lists_adjustments_and_filters_by_kind_and_mode():
    _seed()
    at = open_page("app_pages/adjustments.py", persona="li.na")
    no_exceptions(at)
    assert len(at.dataframe[0].value) == 2
    at.selectbox(key="adj_kind").set_value("defragmentation").run()
    no_exceptions(at)
    assert list(at.dataframe[0].value["Made by"]) == ["li.na"]
    at.selectbox(key="adj_kind").set_value("all").run()
    at.selectbox(key="adj_mode").set_value("auto").run()
    assert list(at.dataframe[0].value["Made by"]) == ["system"]


def test_an_empty_record_says_so_in_chinese():
    at = open_page("app_pages/adjustments.py", persona="zhao.min", lang="zh-CN")
    no_exceptions(at)
    assert any("没有符合" in i.value for i in at.info)
