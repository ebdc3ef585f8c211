"""AppTest: ops build, preview and publish a report on the report builder page."""

from __future__ import annotations

import calendar
import os

from core.context import build
from core.reports import service as reports
from tests.support import app_scenarios as scenarios
from tests.support import clock
from tests.support.app_run import no_exceptions, open_page, shows, text

MONTH = clock.month(-2)  # a complete month before the frozen today's


def test_ops_build_a_draft_and_publish_it():
    at = open_page("app_pages/report_builder.py", persona="li.na")
    no_exceptions(at)
    at.text_input(key="rb_month").set_value(MONTH).run()
    at.button(key="rb_build_btn").click().run()
    no_exceptions(at)
    assert shows(at.success, "builder.built", version=1), [s.value for s in at.success]
    at.segmented_control(key="rb_section").set_value("versions").run()
    at.button(key="rb_pub_1").click().run()
    no_exceptions(at)
    assert shows(at.success, "builder.published", version=1), [s.value for s in at.success]
    ctx = build(os.environ["COMPUTELOOP_DATABASE_URL"])
    exec_ = scenarios.persona("wang.qiang")
    assert [r["status"] for r in reports.list_reports(sessions=ctx.sessions, actor=exec_)] == ["published"]


def test_a_bad_month_is_named_without_a_traceback():
    bad = MONTH.replace("-", "/")  # YYYY/MM, not YYYY-MM
    at = open_page("app_pages/report_builder.py", persona="li.na", lang="zh-CN")
    at.text_input(key="rb_month").set_value(bad).run()
    at.button(key="rb_preview_btn").click().run()
    no_exceptions(at)
    assert shows(at.error, "reports.bad_month", "zh-CN", value=bad), [e.value for e in at.error]


def test_the_analysis_tab_runs_a_drill_down():
    at = open_page("app_pages/report_builder.py", persona="zhao.min")
    at.text_input(key="rb_month").set_value(MONTH).run()
    at.segmented_control(key="rb_section").set_value("analysis").run()
    at.selectbox(key="rb_dim").set_value("model").run()
    at.button(key="rb_analysis_btn").click().run()
    no_exceptions(at)
    assert shows(at.markdown, "builder.annual", year=int(MONTH[:4])), [m.value for m in at.markdown]


def test_only_the_chosen_section_is_rendered():
    at = open_page("app_pages/report_builder.py", persona="li.na")
    no_exceptions(at)
    assert "rb_build_btn" in [b.key for b in at.button]
    assert "rbv" not in [w.key for w in at.selectbox]
    at.segmented_control(key="rb_section").set_value("versions").run()
    no_exceptions(at)
    assert "rb_build_btn" not in [b.key for b in at.button]
    assert shows(at.info, "builder.no_reports")


def test_the_preview_shows_the_time_quality_energy_table_and_the_trend_months_without_data():
    zh = "zh-CN"
    at = open_page("app_pages/report_builder.py", persona="li.na", lang=zh)
    at.text_input(key="rb_month").set_value(MONTH).run()
    at.button(key="rb_preview_btn").click().run()
    no_exceptions(at)
    titles = [e.label for e in at.expander]
    assert text("reports.table.training_jobs", zh) in titles
    trends = at.expander[titles.index(text("reports.table.trends", zh))].dataframe[0].value
    # an empty database: every trend month, this one included, says it has no data (never zero)
    assert len(trends) == 8 and trends[text("reports.col.note", zh)].str.contains(text("quality.trend.no_data", zh)).all()


def test_the_analysis_trend_says_insufficient_data_instead_of_a_percentage():
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

    observed, before = clock.month_start(-2), clock.month_start(-3)
    observed_days = calendar.monthrange(observed.year, observed.month)[1]
    before_days = calendar.monthrange(before.year, before.month)[1]
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    ctx = build(url)
    # the observed month fully; the month before 3 of its days (coverage ~10 %): raw totals would
    # say +(observed_days / 3 - 1), e.g. +933 % for 31 days
    for d in [observed.replace(day=n) for n in range(1, observed_days + 1)] + [before.replace(day=n) for n in (1, 2, 3)]:
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, d, day_rows(d))
    zh = "zh-CN"
    at = open_page("app_pages/report_builder.py", persona="zhao.min", lang=zh)
    at.text_input(key="rb_month").set_value(observed.strftime("%Y-%m")).run()
    at.selectbox(key="rb_scope").set_value("SD").run()
    at.segmented_control(key="rb_section").set_value("analysis").run()
    at.button(key="rb_analysis_btn").click().run()
    no_exceptions(at)
    trend = at.dataframe[0].value
    assert (trend[text("builder.col.vs_previous", zh)] == text("reportfix.insufficient_data", zh)).all(), trend
    raw_change = f"{(observed_days / 3 - 1) * 100:.0f}"
    assert not trend.apply(lambda col: col.astype(str).str.contains(raw_change)).any().any()
    assert shows(at.caption, "reportfix.trend_insufficient", zh, month=before.strftime("%Y-%m"),
                 base=f"{3 / before_days * 100:.1f}%"), [c.value for c in at.caption]
