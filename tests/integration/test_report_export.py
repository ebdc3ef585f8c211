"""Exports of a report: HTML with the tables and charts, PDF rendered (both languages), Excel, CSV."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from core.org import load_org
from core.reports import export
from core.reports.build import build_report
from tests.support.report_data import ALLOCS, PRICES, REQUESTS, ROWS, SETTINGS


@pytest.fixture(scope="module")
def report():
    return build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=ALLOCS, requests=REQUESTS, org=load_org(),
                        prices=PRICES, settings=SETTINGS, people={"zhang.wei": "张伟"})


def test_html_is_self_contained_with_the_tables_and_svg_charts(report):
    page = export.to_html(report, "zh-CN", version=1, status="published")
    assert page.startswith("<!DOCTYPE html>") and "算力资源晾晒报告 2026-03" in page
    assert page.count("<svg") == 3 and "http://" not in page.replace("http://www.w3.org", "")
    for title in ("资源水位（按资源池）", "红黑榜与性能榜单", "项目与命名空间"):
        assert title in page
    assert "光明电力大模型" in page and "70.0%" in page


@pytest.mark.parametrize(("lang", "title"), [("zh-CN", "算力资源晾晒报告"), ("en", "Published resource report")])
def test_pdf_renders_with_the_month_and_the_title(report, lang, title):
    import pypdf  # a dev requirement: the PDF must really be read back, never skipped

    pdf = export.to_pdf(report, lang, version=1, status="published")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "2026-03" in text and title in text


def test_excel_has_one_sheet_per_table_with_numbers_kept_as_numbers(report):
    wb = load_workbook(io.BytesIO(export.to_excel(report, "en")))
    assert "Projects and namespaces" in wb.sheetnames and "Water level by pool" in wb.sheetnames
    ws = wb["Projects and namespaces"]
    header = [c.value for c in ws[1]]
    row = {h: c.value for h, c in zip(header, ws[2])}
    assert row["Project"] == "Guangming power LLM" and row["GPU utilisation"] == pytest.approx(0.7)


def test_csv_holds_one_table_and_refuses_an_unknown_one(report):
    text = export.to_csv(report, "en", "projects").decode("utf-8-sig").splitlines()
    assert text[0].startswith("Project,Kind") and len(text) == 3
    with pytest.raises(Exception) as err:
        export.to_csv(report, "en", "nope")
    assert err.value.field == "table"


@pytest.fixture(scope="module")
def jobs_report():
    from tests.support.report_data import JOBS, RESULTS, job_rows as _job_rows

    history, month = _job_rows()
    return build_report(month="2026-03", scope="HQ", rollups=month, allocations=JOBS, requests=[], org=load_org(),
                        prices=PRICES, settings={**SETTINGS, "typical_training_jobs": 5}, people={"zhang.wei": "张伟"},
                        training_results=RESULTS, job_history=history)


def test_exports_carry_the_time_quality_energy_table_with_not_recorded_jobs(jobs_report):
    page = export.to_html(jobs_report, "zh-CN")
    assert "典型训练任务的时间—质量—能耗" in page and "未登记" in page and "验证集损失 ↓ (r1)" in page  # eval_loss in words
    assert "趋势中无数据的月份" in page and "2025-03" in page
    wb = load_workbook(io.BytesIO(export.to_excel(jobs_report, "en")))
    ws = wb["Time–quality–energy of typical tr"[:31]]
    header = [c.value for c in ws[1]]
    rows = [{h: c.value for h, c in zip(header, r)} for r in ws.iter_rows(min_row=2)]
    assert [r["Request number"] for r in rows] == ["CR-11", "CR-12", "CR-16"]
    assert rows[0]["Energy (kWh)"] == 60 and rows[0]["kWh per unit of improvement"] == pytest.approx(120)
    assert rows[1]["Quality metric"] == "not recorded" and rows[1]["Value"] is None
    csv_lines = export.to_csv(jobs_report, "en", "training_jobs").decode("utf-8-sig").splitlines()
    assert len(csv_lines) == 4 and "not recorded" in csv_lines[2]


def test_a_report_built_before_training_results_still_exports(report):
    old = {**report, "economics": {k: v for k, v in report["economics"].items() if k != "training_jobs"}}
    assert "before training results were part of the report" in export.to_html(old, "en")
    assert export.to_csv(old, "en", "training_jobs").decode("utf-8-sig").count("\n") == 1


def test_pool_kinds_are_translated_in_every_export(report):
    raw = {p.kind for p in load_org().pools.values()}
    assert "training_language" in raw
    page = export.to_html(report, "zh-CN")
    assert "L1 语义大模型" in page and "战略预备队" in page
    assert not [k for k in raw if k in page], "a raw pool kind in the HTML"
    wb = load_workbook(io.BytesIO(export.to_excel(report, "en")))
    ws = wb["Water level by pool"]
    header = [c.value for c in ws[1]]
    kinds = {dict(zip(header, (c.value for c in r)))["Pool"]: dict(zip(header, (c.value for c in r)))["Kind"]
             for r in ws.iter_rows(min_row=2)}
    assert kinds["hq-lang"] == "L1 language models" and kinds["hq-dynamic"] == "dynamic reserve"
    assert not (raw - {"inference"}) & set(kinds.values())   # "inference" is also the English word
    csv_text = export.to_csv(report, "zh-CN", "water_by_pool").decode("utf-8-sig")
    assert "L2 微调与研究" in csv_text and not [k for k in raw if k in csv_text]


def test_a_report_built_before_the_monthly_water_level_still_exports(report):
    """Schema 2 snapshots (allocated = portal GPUs on the last day, mean GPUs in use beside) stay readable."""
    water = {**report["water_level"], "allocated": 2, "available": 734, "mean_gpus_in_use": 0.1129,
             "by_model": [{**m, "allocated": 0, "mean_gpus_in_use": 0.0} for m in report["water_level"]["by_model"]]}
    for key in ("portal_granted", "portal_granted_as_of", "definition_key", "hours_in_month", "unattributed_in_use"):
        water.pop(key)
    old = {**report, "schema": 2, "water_level": water}
    page = export.to_html(old, "en")
    assert "Mean GPUs in use" in page and "Allocated GPUs" in page and "monthly mean" not in page
    assert "water level of the month" not in page.lower()
