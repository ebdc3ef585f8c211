"""AppTest: the adjustment record page (调整记录) — filters and the table."""

from __future__ import annotations

import os
from core.adjust.persistence import record_adjustment
from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine, unit_of_work
from tests.support import clock
from tests.support.app_run import no_exceptions, open_page, shows, text
from tests.support.people import HQ_OPS


def _seed():
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    ctx = build(url)
    now = clock.now()
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
    assert list(at.dataframe[0].value[text("adjust.col.actor")]) == [HQ_OPS.name]  # names, not login ids
    at.selectbox(key="adj_kind").set_value("all").run()
    at.selectbox(key="adj_mode").set_value("auto").run()
    assert sorted(at.dataframe[0].value[text("adjust.col.actor")]) == [text("uitext.system")] * 2


def test_the_pool_filter_keeps_the_pools_records_and_system_reasons_are_spelled_out():
    _seed()
    at = open_page("app_pages/adjustments.py", persona="li.na")
    at.selectbox(key="adj_pool").set_value("hq-sci").run()
    no_exceptions(at)
    frame = at.dataframe[0].value
    assert list(frame[text("adjust.col.subject")]) == [text("uitext.subject.request", id="7")]
    assert list(frame[text("records.col.pool")]) == ["hq-sci"]
    assert list(frame[text("adjust.col.reason")]) == [f"{text('records.reason.arrival')}; {text('records.reason.aging')}"]
    at.selectbox(key="adj_pool").set_value("hq-ft").run()
    assert list(at.dataframe[0].value[text("adjust.col.reason")]) == ["整理碎片"]  # a person's reason as written
    at.selectbox(key="adj_pool").set_value("js-pool").run()
    assert shows(at.info, "adjust.empty")


def test_system_reasons_are_in_chinese_for_a_chinese_reader():
    _seed()
    zh = "zh-CN"
    at = open_page("app_pages/adjustments.py", persona="li.na", lang=zh)
    no_exceptions(at)
    reasons = list(at.dataframe[0].value[text("adjust.col.reason", zh)])
    assert f"{text('records.reason.arrival', zh)}; {text('records.reason.aging', zh)}" in reasons
    assert text("records.col.pool", zh) in at.dataframe[0].value.columns


def test_an_empty_record_says_so_in_chinese():
    at = open_page("app_pages/adjustments.py", persona="zhao.min", lang="zh-CN")
    no_exceptions(at)
    assert shows(at.info, "adjust.empty", "zh-CN")
