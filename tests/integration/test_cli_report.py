"""``python -m core report`` on SQLite and PostgreSQL: list, show, publish, correct and export a
report from the command line, JSON output, translated text, one-line errors (exit 2)."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from core.reports import service as reports
from tests.support.cli import json_of as _json, refused as _bad
from core.identity import load_personas
from tests.support.report_data import seed_rollups

OPS = {p.id: p for p in load_personas()}["li.na"]


@pytest.fixture
def draft_id(ctx) -> str:
    """A built draft of March 2026 for HQ (two days of hand-made rollups)."""
    seed_rollups(ctx)
    return str(reports.build_draft(sessions=ctx.sessions, actor=OPS, month="2026-03", scope="HQ")["id"])


def test_list_and_show_follow_who_may_read_drafts(cli, draft_id):
    rows = _json(cli("report", "list", "--as", "li.na", "--json"))
    assert [(r["id"], r["status"], r["version"]) for r in rows] == [(int(draft_id), "draft", 1)]
    assert "snapshot" not in rows[0]
    assert _json(cli("report", "list", "--as", "wang.qiang", "--json")) == []  # executives: published only
    assert cli("report", "list", "--as", "wang.qiang", "--lang", "zh-CN")[1].strip() == "没有报告。"
    assert _json(cli("report", "list", "--month", "2026-04", "--as", "li.na", "--json")) == []
    view = _json(cli("report", "show", draft_id, "--as", "li.na", "--json"))
    assert view["snapshot"]["economics"]["gpu_hours_used"] == pytest.approx(2 * (21.6 + 0.24))
    code, text, _ = cli("report", "show", draft_id, "--as", "li.na", "--lang", "zh-CN")
    assert code == 0 and "第 1 版  草稿" in text and "有效卡时: 43.68" in text
    _bad(cli("report", "show", draft_id, "--as", "wang.qiang"), names="error:")
    _bad(cli("report", "show", "999", "--as", "li.na"), names="error:")
    _bad(cli("report", "show", "--as", "li.na"), names="id")


def test_publish_then_correct_makes_version_2_and_version_1_stays(cli, draft_id):
    published = _json(cli("report", "publish", draft_id, "--deidentify", "--as", "li.na", "--json"))
    assert published["status"] == "published" and published["deidentified"] is True
    assert published["published_by"] == "li.na" and published["snapshot"]["deidentified"] is True
    _bad(cli("report", "publish", draft_id, "--as", "li.na"), names="error:")  # immutable
    _bad(cli("report", "publish", draft_id, "--as", "wang.qiang"), names="error:")
    _bad(cli("report", "correct", draft_id, "--reason", "  ", "--as", "li.na"), names="error: reason:")
    _bad(cli("report", "correct", draft_id, "--as", "li.na"), names="--reason")
    corrected = _json(cli("report", "correct", draft_id, "--reason", "energy double counted", "--as", "li.na", "--json"))
    assert (corrected["version"], corrected["status"], corrected["supersedes"]) == (2, "draft", int(draft_id))
    _bad(cli("report", "correct", str(corrected["id"]), "--reason", "x", "--as", "li.na"), names="error: report:")
    v2 = _json(cli("report", "publish", str(corrected["id"]), "--no-deidentify", "--as", "li.na", "--json"))
    assert v2["deidentified"] is False and v2["correction_reason"] == "energy double counted"
    rows = _json(cli("report", "list", "--as", "wang.qiang", "--json"))
    assert [r["version"] for r in rows] == [2, 1]
    code, text, _ = cli("report", "list", "--as", "wang.qiang", "--lang", "zh-CN")
    assert code == 0 and "第 2 版  已发布" in text and f"更正 #{draft_id}：energy double counted" in text
    assert "已脱敏" in text.splitlines()[1] and "已脱敏" not in text.splitlines()[0]


def test_export_writes_html_excel_and_csv_and_names_a_bad_option(cli, draft_id, tmp_path):
    html = tmp_path / "r.html"
    out = _json(cli("report", "export", draft_id, "--format", "html", "--out", str(html), "--lang", "zh-CN",
                    "--as", "li.na", "--json"))
    page = html.read_text(encoding="utf-8")
    assert out["bytes"] == len(page.encode("utf-8")) and page.startswith("<!DOCTYPE html>") and 'lang="zh-CN"' in page
    assert "2026-03" in page and "草稿" in page
    xlsx = tmp_path / "r.xlsx"
    _json(cli("report", "export", draft_id, "--format", "xlsx", "--out", str(xlsx), "--as", "li.na", "--json"))
    book = load_workbook(io.BytesIO(xlsx.read_bytes()))
    assert len(book.sheetnames) >= 5
    csv_file = tmp_path / "r.csv"
    code, text, _ = cli("report", "export", draft_id, "--format", "csv", "--table", "projects", "--out", str(csv_file),
                        "--as", "li.na", "--lang", "zh-CN")
    assert code == 0 and text.startswith(f"已写出 {csv_file}")
    assert csv_file.read_bytes().startswith("\ufeff".encode("utf-8"))
    _bad(cli("report", "export", draft_id, "--format", "csv", "--table", "nope", "--out", str(csv_file), "--as", "li.na"),
         names="error: table:")
    _bad(cli("report", "export", draft_id, "--format", "doc", "--out", str(csv_file), "--as", "li.na"), names="--format")
    _bad(cli("report", "export", draft_id, "--format", "csv", "--out", str(tmp_path / "no" / "r.csv"), "--as", "li.na"),
         names="error: --out:")
    _bad(cli("report", "export", draft_id, "--format", "csv", "--out", str(tmp_path), "--as", "li.na"), names="error: --out:")
    _bad(cli("report", "export", draft_id, "--format", "html", "--out", str(html), "--as", "wang.qiang"), names="error:")


def test_the_monthly_job_text_is_in_the_chosen_language(ctx, cli):
    seed_rollups(ctx)
    code, text, _ = cli("report", "monthly", "--month", "2026-03", "--scope", "HQ", "--lang", "zh-CN")
    assert code == 0 and text.startswith("2026-03 HQ 报告 v1（草稿 #") and "已通知运营" in text
    _bad(cli("report", "monthly", "--month", "2026-3"), names="month")


def test_export_pdf_is_a_readable_pdf_of_the_month(cli, draft_id, tmp_path):
    import pypdf  # a dev requirement: the PDF is read back

    pdf = tmp_path / "r.pdf"
    out = _json(cli("report", "export", draft_id, "--format", "pdf", "--out", str(pdf), "--as", "li.na", "--json"))
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and out["bytes"] == len(data)
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)
    assert "2026-03" in text
