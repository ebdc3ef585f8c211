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
        record_adjustment(s, actor="system", kind="queue_reorder", subject="request:7", automatic=True,
                          before={"pool": "hq-sci", "pool_position": 1}, after={"pool": "hq-sci", "pool_position": 2},
                          reason="arrival,aging", at=now)


def test_the_record_lists_adjustments_and_filters_by_kind_and_mode():
    _seed()
    at = open_page("app_pages/adjustments.py", persona="li.na")
    no_exceptions(at)
    assert len(at.dataframe[0].value) == 3
    at.selectbox(key="adj_kind").set_value("defragmentation").run()
    no_exceptions(at)
    assert list(at.dataframe[0].value["Made by"]) == ["li.na"]
    at.selectbox(key="adj_kind").set_value("all").run()
    at.selectbox(key="adj_mode").set_value("auto").run()
    assert sorted(at.dataframe[0].value["Made by"]) == ["system", "system"]


def test_the_pool_filter_keeps_the_pools_records_and_system_reasons_are_spelled_out():
    _seed()
    at = open_page("app_pages/adjustments.py", persona="li.na")
    at.selectbox(key="adj_pool").set_value("hq-sci").run()
    no_exceptions(at)
    frame = at.dataframe[0].value
    assert list(frame["Subject"]) == ["request:7"] and list(frame["Pool"]) == ["hq-sci"]
    assert list(frame["Reason"]) == ["a new request entered the queue ahead; aging: waiting time changed the "
                                     "effective priorities"]
    at.selectbox(key="adj_pool").set_value("hq-ft").run()
    assert list(at.dataframe[0].value["Reason"]) == ["整理碎片"]  # a person's reason is shown as written
    at.selectbox(key="adj_pool").set_value("js-pool").run()
    assert any("No adjustment matches" in i.value for i in at.info)


def test_system_reasons_are_in_chinese_for_a_chinese_reader():
    _seed()
    at = open_page("app_pages/adjustments.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    reasons = list(at.dataframe[0].value["原因"])
    assert "有新申请排到其前面; 等待老化：等待时长改变了有效优先级" in reasons
    assert "资源池" in at.dataframe[0].value.columns


def test_an_empty_record_says_so_in_chinese():
    at = open_page("app_pages/adjustments.py", persona="zhao.min", lang="zh-CN")
    no_exceptions(at)
    assert any("没有符合" in i.value for i in at.info)
