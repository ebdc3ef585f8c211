"""A published report's exports are data, not code (issue 11, item 4), on SQLite and PostgreSQL.

The owner of a training job records a result whose metric is ``=HYPERLINK(…)`` and whose dataset
is ``=cmd|' /C calc'!A0``; ops build and publish the month's report; the executive exports the
published, immutable version from the command line (as the board's download buttons do, through
the same export functions). The workbook has no formula in any sheet's XML and the CSV cells start
with ``'``.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import timedelta

import polars as pl
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from core.db.session import unit_of_work
from core.demo import backdate
from core.lifecycle import services as lifecycle
from core.lifecycle.persistence import AllocationRow
from core.metrics.persistence import replace_day
from core.metrics.schema import ROLLUP_SCHEMA
from core.reports import results
from core.reports import service as reports
from tests.support import clock
from tests.support.cli import json_of
from tests.support.forms import training_form
from tests.support.people import APPLICANT, EXEC, HQ_OPS

HYPERLINK = '=HYPERLINK("http://x","y")'
DDE = "=cmd|' /C calc'!A0"


def _published_report(ctx) -> int:
    """Last month's HQ report, published, with one training job whose result is hostile text."""
    first = clock.month_start(-1)
    start = first + timedelta(days=1)
    view = lifecycle.submit(sessions=ctx.sessions, actor=APPLICANT,
                            form=training_form(requested_gpus=2, duration_days=4, start_date=clock.iso(0)))
    assert view["provisioning"]["status"] == "active", view["provisioning"]
    backdate(ctx.sessions, view["id"], (clock.today() - start).days)   # the form refuses past dates
    with ctx.sessions() as s:
        ns = s.scalars(select(AllocationRow.namespace).where(AllocationRow.request_id == view["id"])).one()
    for i in range(4):
        frame = pl.DataFrame([{"day": start + timedelta(days=i), "cluster": "hq-beijing-2", "hostname": "n1",
                               "uuid": f"u{g}", "model": "H20", "namespace": ns, "mean_util": 0.9, "peak_util": 0.95,
                               "mean_mem": 0.8, "peak_mem": 0.9, "allocated_gpu_hours": 24.0, "used_gpu_hours": 21.6,
                               "energy_kwh": 7.5, "samples": 96, "expected_samples": 96, "coverage": 1.0}
                              for g in (1, 2)], schema=ROLLUP_SCHEMA)
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, start + timedelta(days=i), frame)
    results.record_result(sessions=ctx.sessions, actor=APPLICANT, request_id=view["id"], metric=HYPERLINK,
                          value=0.70, higher_is_better=True, dataset=DDE, baseline=0.75)
    draft = reports.build_draft(sessions=ctx.sessions, actor=HQ_OPS, month=f"{first:%Y-%m}", scope="HQ")
    job = draft["snapshot"]["economics"]["training_jobs"]["jobs"][0]
    assert job["quality"]["metric"] == HYPERLINK and job["quality"]["dataset"] == DDE
    published = reports.publish(sessions=ctx.sessions, actor=HQ_OPS, report_id=draft["id"], deidentified=True)
    assert published["status"] == "published"
    return published["id"]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_executive_exports_a_published_report_with_no_formula_in_it(ctx, cli, tmp_path, lang):
    report_id = _published_report(ctx)
    xlsx = tmp_path / "r.xlsx"
    json_of(cli("report", "export", str(report_id), "--format", "xlsx", "--out", str(xlsx), "--lang", lang,
                "--as", EXEC.id, "--json"))
    data = xlsx.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheets = [z.read(n).decode("utf-8") for n in z.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)]
    assert sheets and not [x for x in sheets if "<f>" in x or "<f " in x], "a formula in the published workbook"
    book = load_workbook(io.BytesIO(data))
    hostile = [c for ws in book.worksheets for row in ws.iter_rows() for c in row
               if isinstance(c.value, str) and c.value.startswith(("=HYPERLINK", "=cmd"))]
    assert {c.value for c in hostile} >= {DDE} and any(c.value.startswith(HYPERLINK + " ") for c in hostile)
    assert all(c.data_type == "s" and c.quotePrefix for c in hostile)

    out = tmp_path / "r.csv"
    json_of(cli("report", "export", str(report_id), "--format", "csv", "--table", "training_jobs", "--out", str(out),
                "--lang", lang, "--as", EXEC.id, "--json"))
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline="")))
    cells = [c for row in rows[1:] for c in row]
    assert "'" + DDE in cells and any(c.startswith("'" + HYPERLINK + " ") for c in cells)
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")], cells
