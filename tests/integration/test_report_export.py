"""Exports of a report: HTML with the tables and charts, PDF rendered (both languages), Excel, CSV."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from core.org import load_org
from core.reports import export
from core.reports.build import build_report
from tests.unit.test_report_build import ALLOCS, PRICES, REQUESTS, ROWS, SETTINGS


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
