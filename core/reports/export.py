"""Exports of a report: self-contained HTML (tables and SVG charts), PDF, Excel workbook, CSV.

* Charts are rendered to inline SVG with vl-convert-python; if it is not installed, the
  Vega-Lite JSON is embedded with a note saying the chart could not be drawn.
* PDF: WeasyPrint renders the HTML; if WeasyPrint (or its Pango libraries) is missing, Chromium
  headless ``--print-to-pdf`` does (``/usr/bin/chromium`` or ``COMPUTELOOP_CHROMIUM``). A CJK font
  must be installed for Chinese (Debian fonts-wqy-microhei).
* Excel: one sheet per table (openpyxl); CSV: one table, UTF-8 with BOM (opens in Excel). Text
  cells are data, never formulas (:mod:`core.text`: a string cell with quotePrefix in the workbook,
  a leading ``'`` in the CSV for text starting with = + - @ tab or CR); numbers stay numbers.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from core.errors import ComputeLoopError, InputError
from core.i18n import translate
from core.reports.notes import definition_notes
from core.reports.scope import scope_name
from core.reports.tables import Table, fmt, headline, tables
from core.text import csv_row, xlsx_append


class ExportUnavailable(ComputeLoopError):
    """No PDF renderer is available on this machine."""


def _fonts() -> list[str]:
    from core.reports.service import settings

    return list(settings().get("fonts") or ["sans-serif"])


def chart_svgs(report: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    """(kind, markup) per chart: ("svg", "<svg…>") or ("vega", JSON) when vl-convert is absent."""
    from core.reports.charts import all_charts

    specs = [c.to_dict() for c in all_charts(report, lang, _fonts())]
    try:
        import vl_convert as vlc
    except ImportError:
        return [("vega", json.dumps(s, ensure_ascii=False)) for s in specs]
    return [("svg", vlc.vegalite_to_svg(s)) for s in specs]


def _title(report: dict[str, Any], lang: str) -> str:
    return translate("reports.doc_title", lang, month=report["month"], scope=scope_name(report["scope"], lang))


_CSS = """
body { font-family: %(fonts)s; margin: 24px; color: #1b1b1b; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 2px solid #c8102e; }
.meta { color: #555; font-size: 12px; }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 130px; }
.kpi b { display: block; font-size: 20px; }
table { border-collapse: collapse; font-size: 11px; margin: 8px 0; width: 100%%; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
th { background: #f3f3f3; } td.n { text-align: right; }
.note { font-size: 11px; color: #8a5a00; } .chart { page-break-inside: avoid; margin: 12px 0; }
@page { size: A4; margin: 14mm; }
"""


def _table_html(table: Table, lang: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers(lang))
    body = []
    for row in table.rows:
        cells = []
        for col, kind in table.columns:
            cls = ' class="n"' if kind in ("num", "int", "pct") else ""
            cells.append(f"<td{cls}>{html.escape(fmt(row.get(col), kind))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(table.columns)}">{html.escape(translate("reports.empty_table", lang))}</td></tr>')
    return f'<h2 id="{table.key}">{html.escape(table.title(lang))}</h2><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _notes(report: dict[str, Any], lang: str) -> list[str]:
    notes = [translate("reports.coverage_note", lang, coverage=fmt(report["coverage"]["metrics"], "pct"),
                       days=report["coverage"]["days_with_data"], total=report["coverage"]["days"])]
    if report["economics"]["placeholder_prices"]:
        notes.append(translate("reports.placeholder_prices", lang))
    notes.append(cpu_note(report, lang))
    notes.extend(definition_notes(report, lang))
    notes.extend(quality_notes(report, lang))
    for section in ("warnings", "reclaims"):
        if not report[section]["available"]:
            notes.append(translate(f"reports.{section}_not_available", lang))
    if report.get("deidentified"):
        notes.append(translate("reports.deidentified_note", lang))
    return notes


def cpu_note(report: dict[str, Any], lang: str) -> str:
    """How the CPU top list is computed and its coverage, or that CPU is not collected for the month."""
    cpu = (report.get("top") or {}).get("cpu") or {}
    if not cpu.get("available"):
        return translate(cpu.get("note_key") or "reports.cpu_not_collected", lang)
    return translate("cpu.top_definition", lang, coverage=fmt(cpu.get("coverage"), "pct"))


def quality_notes(report: dict[str, Any], lang: str) -> list[str]:
    """How typical training jobs are chosen, and which trend months have no data (said, not hidden)."""
    out = []
    jobs = report["economics"].get("training_jobs")
    if jobs is not None:
        out.append(translate("quality.typical_definition", lang, n=jobs["limit"], candidates=jobs["candidates"]))
    else:
        out.append(translate("quality.section_absent", lang))
    t = report["trends"]
    missing = [m["month"] for m in t["months"] if m["summary"] is None]
    if t["same_month_last_year"] is None:
        missing.append(t["last_year_month"])
    if missing:
        out.append(translate("quality.trend.months_without_data", lang, months=", ".join(missing)))
    return out


def to_html(report: dict[str, Any], lang: str = "zh-CN", *, version: int | None = None, status: str = "") -> str:
    """A self-contained HTML page: title, headline numbers, charts (inline SVG) and every table."""
    title = _title(report, lang)
    kpis = "".join(f'<div class="kpi">{html.escape(translate(f"reports.metric.{k}", lang))}<b>{html.escape(fmt(v, kind))}</b></div>'
                   for k, v, kind in headline(report))
    charts = []
    for kind, markup in chart_svgs(report, lang):
        if kind == "svg":
            charts.append(f'<div class="chart">{markup}</div>')
        else:
            charts.append(f'<div class="chart"><p class="note">{html.escape(translate("reports.chart_not_rendered", lang))}</p>'
                          f'<script type="application/json">{html.escape(markup)}</script></div>')
    version = version or report.get("version")
    meta = translate("reports.meta", lang, version=version or "-", status=translate(f"reports.status.{status}", lang) if status else "-",
                     built_at=report.get("built_at") or "-")
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in _notes(report, lang))
    body = "".join(_table_html(t, lang) for t in tables(report, lang))
    css = _CSS % {"fonts": ", ".join(f'"{f}"' if " " in f else f for f in _fonts())}
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{css}</style></head><body>'
            f'<h1>{html.escape(title)}</h1><p class="meta">{html.escape(meta)}</p>{notes}<div class="kpis">{kpis}</div>'
            f'{"".join(charts)}{body}</body></html>')


def _chromium() -> str | None:
    for candidate in (os.environ.get("COMPUTELOOP_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def html_to_pdf(page: str, *, renderer: str = "auto") -> bytes:
    """PDF bytes of an HTML page with WeasyPrint, else Chromium headless.

    Raises:
        ExportUnavailable: neither renderer works here.
    """
    if renderer in ("auto", "weasyprint"):
        try:
            import weasyprint

            return weasyprint.HTML(string=page).write_pdf()
        except (ImportError, OSError):
            if renderer == "weasyprint":
                raise ExportUnavailable("reports.pdf_unavailable") from None
    browser = _chromium()
    if browser is None:
        raise ExportUnavailable("reports.pdf_unavailable")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(page, encoding="utf-8")
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-pdf-header-footer",
               f"--print-to-pdf={out}", src.as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired):
            raise ExportUnavailable("reports.pdf_unavailable") from None
        if not out.exists() or out.stat().st_size == 0:
            raise ExportUnavailable("reports.pdf_unavailable")
        return out.read_bytes()


def to_pdf(report: dict[str, Any], lang: str = "zh-CN", *, version: int | None = None, status: str = "",
           renderer: str = "auto") -> bytes:
    """The HTML export printed to PDF (A4)."""
    return html_to_pdf(to_html(report, lang, version=version, status=status), renderer=renderer)


def to_excel(report: dict[str, Any], lang: str = "zh-CN") -> bytes:
    """An .xlsx workbook with one sheet per table (numbers stay numbers, text is never a formula)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for table in tables(report, lang):
        ws = wb.create_sheet(title=table.title(lang)[:31])
        for cell in xlsx_append(ws, table.headers(lang)):
            cell.font = Font(bold=True)
        for row in table.rows:
            xlsx_append(ws, [row.get(c) if not isinstance(row.get(c), (list, dict)) else json.dumps(row.get(c), ensure_ascii=False)
                             for c, _ in table.columns])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def table_keys(report: dict[str, Any]) -> list[str]:
    """Keys of the tables a CSV can be made of."""
    return [t.key for t in tables(report, "en")]


def to_csv(report: dict[str, Any], lang: str = "zh-CN", table: str = "projects") -> bytes:
    """One table as CSV (UTF-8 with BOM; formula-like text prefixed with ``'``); :class:`InputError`
    (field "table") for an unknown table."""
    chosen = {t.key: t for t in tables(report, lang)}
    if table not in chosen:
        raise InputError("error.choice", field="table", value=table, choices=", ".join(chosen))
    t = chosen[table]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(csv_row(t.headers(lang)))
    for row in t.rows:
        writer.writerow(csv_row(row.get(c) for c, _ in t.columns))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
