"""AppTest: ops build, preview and publish a report on the report builder page."""

from __future__ import annotations

import os

from core.context import build
from core.reports import service as reports
from core.identity import load_personas
from tests.app.conftest import no_exceptions, open_page


def test_ops_build_a_draft_and_publish_it():
    at = open_page("app_pages/report_builder.py", persona="li.na")
    no_exceptions(at)
    at.text_input(key="rb_month").set_value("2026-03").run()
    at.button(key="rb_build_btn").click().run()
    no_exceptions(at)
    assert any("Draft version 1" in s.value for s in at.success)
    at.segmented_control(key="rb_section").set_value("versions").run()
    at.button(key="rb_pub_1").click().run()
    no_exceptions(at)
    assert any("published" in s.value for s in at.success)
    ctx = build(os.environ["COMPUTELOOP_DATABASE_URL"])
    exec_ = next(p for p in load_personas() if p.id == "wang.qiang")
    assert [r["status"] for r in reports.list_reports(sessions=ctx.sessions, actor=exec_)] == ["published"]


def test_a_bad_month_is_named_without_a_traceback():
    at = open_page("app_pages/report_builder.py", persona="li.na", lang="zh-CN")
    at.text_input(key="rb_month").set_value("2026-3").run()
    at.button(key="rb_preview_btn").click().run()
    no_exceptions(at)
    assert any("YYYY-MM" in e.value for e in at.error)


def test_the_analysis_tab_runs_a_drill_down():
    at = open_page("app_pages/report_builder.py", persona="zhao.min")
    at.text_input(key="rb_month").set_value("2026-03").run()
    at.segmented_control(key="rb_section").set_value("analysis").run()
    at.selectbox(key="rb_dim").set_value("model").run()
    at.button(key="rb_analysis_btn").click().run()
    no_exceptions(at)
    assert any("Annual summary 2026" in m.value for m in at.markdown)


def test_only_the_chosen_section_is_rendered():
    at = open_page("app_pages/report_builder.py", persona="li.na")
    no_exceptions(at)
    assert "rb_build_btn" in [b.key for b in at.button]
    assert "rbv" not in [w.key for w in at.selectbox]
    at.segmented_control(key="rb_section").set_value("versions").run()
    no_exceptions(at)
    assert "rb_build_btn" not in [b.key for b in at.button]
    assert any("report" in i.value.lower() for i in at.info)


def test_the_preview_shows_the_time_quality_energy_table_and_the_trend_months_without_data():
    at = open_page("app_pages/report_builder.py", persona="li.na", lang="zh-CN")
    at.text_input(key="rb_month").set_value("2026-03").run()
    at.button(key="rb_preview_btn").click().run()
    no_exceptions(at)
    titles = [e.label for e in at.expander]
    assert "典型训练任务的时间—质量—能耗" in titles
    trends = at.expander[titles.index("趋势")].dataframe[0].value
    # an empty database: every trend month, this one included, says it has no data (never zero)
    assert len(trends) == 8 and trends["说明"].str.contains("无数据").all()


def test_the_analysis_trend_says_insufficient_data_instead_of_a_percentage():
    from datetime import date

    import polars as pl

    from core.db.migrate import upgrade
    from core.db.session import make_engine, unit_of_work
    from core.metrics.persistence import replace_day
    from core.metrics.schema import ROLLUP_SCHEMA

    def day_rows(d):
        return pl.DataFrame([{"day": d, "cluster": "sd-jinan", "hostname": "sd-n1", "uuid": f"g{g}", "model": "A30",
                              "namespace": "ns-sd", "mean_util": 0.5, "peak_util": 0.5, "mean_mem": 0.5, "peak_mem": 0.5,
                              "allocated_gpu_hours": 24.0, "used_gpu_hours": 12.0, "energy_kwh": 1.0, "samples": 1440,
                              "expected_samples": 1440, "coverage": 1.0} for g in range(48)], schema=ROLLUP_SCHEMA)

    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    ctx = build(url)
    # March fully observed; February 3 of 28 days (coverage 11 %): raw totals would say +933 %
    for d in [date(2026, 3, n) for n in range(1, 32)] + [date(2026, 2, n) for n in (1, 2, 3)]:
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, d, day_rows(d))
    at = open_page("app_pages/report_builder.py", persona="zhao.min", lang="zh-CN")
    at.text_input(key="rb_month").set_value("2026-03").run()
    at.selectbox(key="rb_scope").set_value("SD").run()
    at.segmented_control(key="rb_section").set_value("analysis").run()
    at.button(key="rb_analysis_btn").click().run()
    no_exceptions(at)
    trend = at.dataframe[0].value
    assert (trend["环比"] == "数据不足").all(), trend
    assert not trend.apply(lambda col: col.astype(str).str.contains("933")).any().any()
    assert any("数据覆盖率 10.7%" in c.value for c in at.caption)
