"""AppTest: the Warnings page — ops see and triage a warning with its evidence and its owner; another
department sees nothing; provincial ops see their province's, legacy usage marked as having no owner."""

from __future__ import annotations

import calendar
import os

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine, unit_of_work
from core.reclaim.persistence import WarningRow
from tests.support import clock
from tests.support.app_run import no_exceptions, open_page, shows, text

FIRST = clock.month_start(-1)  # last month: the month a warning is about
DAYS = calendar.monthrange(FIRST.year, FIRST.month)[1]
OBSERVED = DAYS - 3


def _seed_warning(department: str = "digital", owner: str = "zhang.wei", unit: str = "HQ", pool: str = "hq-ft",
                  owner_source: str = "allocation", resource: str = "a-ns-1") -> int:
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    ctx = build(url)
    now = clock.now()
    with unit_of_work(ctx.sessions) as s:
        w = WarningRow(resource=resource, month=FIRST.strftime("%Y-%m"), level="yellow", status="new", owner=owner,
                       owner_source=owner_source, department=department, unit=unit, pool_id=pool, util=0.05, mem=0.1, gpu_hours=24.0 * DAYS,
                       coverage=0.9, days_in_scope=DAYS, days_observed=OBSERVED,
                       series=[{"day": FIRST.isoformat(), "util": 0.05, "mem": 0.1, "gpu_hours": 24.0, "coverage": 1.0}],
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
    assert shows(at.caption, "warn.coverage_note", observed=OBSERVED, days=DAYS), [c.value for c in at.caption]
    at.text_area(key=f"warn_note_{wid}_new").input("已核实")
    at.button(key="warn_apply").click().run()
    no_exceptions(at)
    assert text("warn.status.acknowledged") in at.dataframe[0].value.to_string()
    assert shows(at.success, "warn.moved", id=wid, status=text("warn.status.acknowledged"))
    # recorded: the next step has a form of its own, which does not repeat the note
    assert at.text_area(key=f"warn_note_{wid}_acknowledged").value == ""


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
    assert not at.dataframe and shows(at.info, "warn.empty")


def test_the_hq_list_names_each_warnings_owner_department_pool_and_province():
    _seed_warning()
    at = open_page("app_pages/warnings.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    [row] = at.dataframe[0].value.to_dict("records")
    cols = {k: text(f"warn.col.{k}", "zh-CN") for k in ("owner", "department", "pool", "unit")}
    assert {k: row[c] for k, c in cols.items()} == {"owner": "张伟", "department": "数字化部",
                                                   "pool": f"hq-ft · {text('pool_kind.training_finetune', 'zh-CN')}",
                                                   "unit": "总部"}


def test_provincial_ops_see_their_provinces_legacy_usage_said_to_have_no_owner():
    wid = _seed_warning(department="", owner="", unit="JS", pool="js-pool", owner_source="none", resource="legacy-js")
    _seed_warning()  # an HQ department's: not theirs
    at = open_page("app_pages/warnings.py", persona="chen.jing", lang="zh-CN")
    no_exceptions(at)
    [row] = at.dataframe[0].value.to_dict("records")
    assert row[text("warn.col.resource", "zh-CN")] == "legacy-js"
    assert row[text("warn.col.owner", "zh-CN")] == text("warn.no_owner", "zh-CN")
    assert row[text("warn.col.unit", "zh-CN")] == "江苏公司"
    at.selectbox(key="warn_pick").set_value(wid).run()
    no_exceptions(at)
    assert any(text("warn.source.none", "zh-CN") in c.value for c in at.caption), [c.value for c in at.caption]
