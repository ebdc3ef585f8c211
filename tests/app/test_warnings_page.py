"""AppTest: the Warnings page — ops see and triage a warning with its evidence; another department sees nothing."""

from __future__ import annotations

import os
from datetime import date, datetime, timezone

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine, unit_of_work
from core.reclaim.persistence import WarningRow
from tests.app.conftest import no_exceptions, open_page


def _seed_warning(department: str = "digital", owner: str = "zhang.wei") -> int:
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    ctx = build(url)
    now = datetime.now(timezone.utc)
    with unit_of_work(ctx.sessions) as s:
        w = WarningRow(resource="a-ns-1", month="2026-10", level="yellow", status="new", owner=owner,
                       department=department, unit="HQ", pool_id="hq-ft", util=0.05, mem=0.1, gpu_hours=744.0,
                       coverage=0.9, days_in_scope=31, days_observed=28,
                       series=[{"day": "2026-10-01", "util": 0.05, "mem": 0.1, "gpu_hours": 24.0, "coverage": 1.0}],
                       created_at=now, updated_at=now, new_at=now)
        s.add(w)
        s.flush()
        return w.id


def test_ops_open_a_warning_with_its_evidence_and_acknowledge_it():
    wid = _seed_warning()
    at = open_page("app_pages/warnings.py", persona="li.na")
    no_exceptions(at)
    assert "a-ns-1" in at.dataframe[0].value.to_string()
    at.selectbox(key="warn_pick").set_value(wid).run()
    no_exceptions(at)
    assert any("28 of 31 days" in c.value for c in at.caption)
    at.text_area(key="warn_note").input("已核实")
    at.button(key="warn_apply").click().run()
    no_exceptions(at)
    assert "Acknowledged" in at.dataframe[0].value.to_string()


def test_the_owner_replies_in_chinese():
    wid = _seed_warning()
    at = open_page("app_pages/warnings.py", persona="zhang.wei", lang="zh-CN")
    no_exceptions(at)
    at.selectbox(key="warn_pick").set_value(wid).run()
    at.text_area(key="warn_reply").input("下周开始训练")
    at.button(key="warn_send").click().run()
    no_exceptions(at)
    assert any("下周开始训练" in m.value for m in at.markdown)


def test_another_departments_warning_is_not_listed():
    _seed_warning(department="marketing", owner="liu.yang")
    at = open_page("app_pages/warnings.py", persona="zhang.wei")
    no_exceptions(at)
    assert not at.dataframe and any("No warnings" in i.value for i in at.info)
