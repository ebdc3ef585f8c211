"""Exports are data, not code (issue 11, item 4): a cell a person typed that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is written as text by every spreadsheet and CSV
writer — never as a formula in the .xlsx (no ``<f>`` element in any sheet's XML; the cell is a
string with the quotePrefix style) and with a leading ``'`` in a CSV (OWASP "CSV injection").
Numbers stay numbers, a negative one included.
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

from core.estimation.export import to_excel_bytes
from core.metrics.schema import ROLLUP_SCHEMA
from core.org import load_org
from core.reports import export
from core.reports.build import build_report
from core.reports.service import prices, settings
from tests.support import clock

HYPERLINK = '=HYPERLINK("http://x","y")'
DDE = "=cmd|' /C calc'!A0"
LEADS = ("=", "+", "-", "@", "\t", "\r")
# the two cells, and a payload behind each leading character OWASP lists
HOSTILE = [HYPERLINK, DDE] + [f"{lead}1+1|cmd!A0" for lead in LEADS]
IDS = ["hyperlink", "dde", "eq", "plus", "minus", "at", "tab", "cr"]


# --------------------------------------------------------------------------- reading the files back

def sheet_xml(data: bytes) -> dict[str, str]:
    """Every worksheet's XML of an .xlsx, by part name."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)}


def assert_no_formula(data: bytes) -> None:
    parts = sheet_xml(data)
    assert parts, "no worksheet in the workbook"
    for name, xml in parts.items():
        assert "<f>" not in xml and "<f " not in xml, f"a formula in {name}"


def cells(data: bytes) -> list:
    """Every non-empty cell of every sheet (openpyxl cells, read back)."""
    book = load_workbook(io.BytesIO(data))
    return [c for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value is not None]


def as_read(text: str) -> str:
    """``text`` as an XML reader gives it back: a carriage return in element text reads as a line feed."""
    return text.replace("\r", "\n")


def assert_text_cell(data: bytes, text: str) -> None:
    """``text`` is in the workbook as a string cell, as typed, marked quotePrefix (Excel keeps it
    text when the cell is edited)."""
    found = [c for c in cells(data) if c.value == as_read(text)]
    assert found, f"{text!r} is not a cell of the workbook"
    for c in found:
        assert c.data_type == "s" and c.quotePrefix, (c.coordinate, c.data_type, c.quotePrefix)


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# --------------------------------------------------------------------------- the report (board, CLI, builder)

def _report(metric: str, dataset: str) -> dict:
    """A report of last month with one typical training job whose recorded result has ``metric``
    and ``dataset``; its improvement is negative (worse than the baseline)."""
    first = clock.month_start(-1)
    month = f"{first:%Y-%m}"
    ns = "ns-inject"
    rows = []
    for i in range(1, 4):
        day = first + timedelta(days=i)
        for uuid in ("g1", "g2"):
            rows.append({"day": day, "cluster": "hq-beijing-2", "hostname": "n1", "uuid": uuid, "model": "H20",
                         "namespace": ns, "mean_util": 0.9, "peak_util": 0.95, "mean_mem": 0.8, "peak_mem": 0.9,
                         "allocated_gpu_hours": 24.0, "used_gpu_hours": 21.6, "energy_kwh": 7.5, "samples": 96,
                         "expected_samples": 96, "coverage": 1.0})
    alloc = {"request_id": 7, "number": "CR-7", "pool": "hq-ft", "gpus": 2, "requested_gpus": 2, "namespace": ns,
             "starts_on": first + timedelta(days=1), "ends_on": first + timedelta(days=4), "released_on": None,
             "project": "P-LLM-01", "department": "digital", "owner": "zhang.wei", "demand_type": "training"}
    result = {"metric": metric, "value": 0.70, "higher_is_better": True, "dataset": dataset, "baseline": 0.75,
              "improvement": -0.05, "run": "", "recorded_at": f"{first + timedelta(days=4)}T00:00:00+00:00"}
    return build_report(month=month, scope="HQ", rollups=pl.DataFrame(rows, schema=ROLLUP_SCHEMA), allocations=[alloc],
                        requests=[], org=load_org(), prices=prices(), settings=settings(), people={"zhang.wei": "张伟"},
                        training_results={7: [result]})


@pytest.mark.parametrize("payload", HOSTILE, ids=IDS)
def test_the_report_workbook_writes_a_hostile_metric_and_dataset_as_text(payload):
    report = _report(metric=payload, dataset=payload)
    job = report["economics"]["training_jobs"]["jobs"][0]
    assert job["quality"]["metric"] == payload                      # the report carries it as recorded
    for lang in ("en", "zh-CN"):
        data = export.to_excel(report, lang)
        assert_no_formula(data)
        assert_text_cell(data, payload)                             # the dataset column, as typed
        metric_cells = [c for c in cells(data) if isinstance(c.value, str) and c.value.startswith(as_read(payload) + " ")]
        assert metric_cells and all(c.data_type == "s" and c.quotePrefix for c in metric_cells)


@pytest.mark.parametrize("payload", HOSTILE, ids=IDS)
def test_the_report_csv_prefixes_a_hostile_metric_and_dataset_with_a_quote(payload):
    report = _report(metric=payload, dataset=payload)
    rows = csv_rows(export.to_csv(report, "en", "training_jobs"))
    header, data = rows[0], rows[1]
    row = dict(zip(header, data))
    assert row["Dataset / benchmark"] == "'" + payload
    assert row["Quality metric"].startswith("'" + payload + " ")
    for cell in data:
        assert not cell or cell[0] not in "=+-@\t\r" or re.fullmatch(r"-\d+(\.\d+)?(e-?\d+)?", cell), cell


def test_numbers_stay_numbers_a_negative_one_included():
    report = _report(metric=HYPERLINK, dataset=DDE)
    data = export.to_excel(report, "en")
    book = load_workbook(io.BytesIO(data))
    ws = next(ws for ws in book.worksheets if ws.title.startswith("Time–quality–energy"))
    header = [c.value for c in ws[1]]
    row = {h: c for h, c in zip(header, ws[2])}
    assert row["Improvement"].data_type == "n" and row["Improvement"].value == pytest.approx(-0.05)
    assert row["Value"].data_type == "n" and row["Value"].value == pytest.approx(0.70)
    assert not row["Improvement"].quotePrefix
    csv_row = dict(zip(*csv_rows(export.to_csv(report, "en", "training_jobs"))[:2]))
    assert float(csv_row["Improvement"]) == pytest.approx(-0.05)    # "-0.05", not "'-0.05"
    assert float(csv_row["Value"]) == pytest.approx(0.70)


# --------------------------------------------------------------------------- the estimate workbook (Estimate page)

@pytest.mark.parametrize("payload", HOSTILE, ids=IDS)
def test_the_estimate_workbook_writes_hostile_text_as_text_and_numbers_as_numbers(payload):
    data = to_excel_bytes({
        "summary": {"title": payload, "gpu_hours": 1234.5, "delta": -3},
        "inputs": [{"model_name": payload, "gpus": 8}, {"model_name": "ok", "gpus": -1}],
    })
    assert_no_formula(data)
    assert_text_cell(data, payload)
    book = load_workbook(io.BytesIO(data))
    summary = {r[0].value: r[1] for r in book["summary"].iter_rows(min_row=2)}
    assert summary["gpu_hours"].data_type == "n" and summary["gpu_hours"].value == 1234.5
    assert summary["delta"].data_type == "n" and summary["delta"].value == -3
    inputs = [[c.value for c in r] for r in book["inputs"].iter_rows()]
    assert inputs == [["model_name", "gpus"], [as_read(payload), 8], ["ok", -1]]
