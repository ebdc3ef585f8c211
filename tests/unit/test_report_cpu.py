"""The report's top list by CPU utilisation against a hand-computed fixture (HQ scope, March 2026),
on the GPU rollups of tests/unit/test_report_build.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from core.errors import InputError
from core.metrics.cpu import CPU_PARTS_SCHEMA, parts_from_samples, read_file
from core.org import load_org
from core.reports.build import build_report
from core.reports.export import cpu_note, to_csv
from core.reports.tables import tables
from tests.support.report_data import ALLOCS, D1, D2, PRICES, REQUESTS, ROWS, SETTINGS

SCHEMA = {"day": pl.Date, "source": pl.Utf8} | CPU_PARTS_SCHEMA


def _cpu(day, cluster, ns, used, req, covered, peak):
    """A stored CPU rollup row: ``used``/``req`` cores over ``covered`` seconds."""
    return {"day": day, "source": "offline", "cluster": cluster, "namespace": ns, "cpu_core_s": used * covered,
            "covered_s": covered, "cores_used_peak": peak, "requested_core_s": None if req is None else req * covered}


CPU = pl.DataFrame([
    _cpu(D1, "hq-beijing-1", "ns-llm", 8.0, 10.0, 86_400, 9.0),     # u 0.8, whole day; GPU-hours 24
    _cpu(D2, "hq-beijing-1", "ns-llm", 5.0, 10.0, 43_200, 7.0),     # u 0.5, half a day; GPU-hours 24
    _cpu(D1, "hq-beijing-2", "ns-orphan", 0.1, 2.0, 86_400, 0.5),   # u 0.05; GPU-hours 12; D2 (24 h) has no CPU row
    _cpu(D1, "hq-beijing-2", "ns-cpu-only", 3.0, 4.0, 86_400, 3.5),  # no GPU rows: not an entity
    _cpu(D1, "hq-beijing-2", "ns-besteffort", 1.0, None, 86_400, 1.0),  # no request: no utilisation
    _cpu(D1, "js-nanjing", "ns-js", 9.0, 10.0, 86_400, 9.0),        # other scope
    _cpu(date(2026, 2, 10), "hq-beijing-1", "ns-llm", 1.0, 10.0, 86_400, 1.0),  # other month
], schema=SCHEMA)


def _report(cpu):
    return build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=ALLOCS, requests=REQUESTS,
                        org=load_org(), prices=PRICES, settings=SETTINGS, cpu_rollups=cpu)


def _entity(report, key):
    return next(e for e in report["entities"] if e["id"] == key)


def test_cpu_utilisation_is_gpu_hour_weighted_with_its_coverage():
    r = _report(CPU)
    llm, orphan = _entity(r, "P-LLM-01"), _entity(r, "ns-orphan")
    # (0.8 × 24 + 0.5 × 24) / 48; coverage (1 × 24 + 0.5 × 24) / 48
    assert llm["cpu_util"] == pytest.approx(0.65) and llm["cpu_coverage"] == pytest.approx(0.75)
    # (8 × 86,400 + 5 × 43,200) / 129,600 = 7 cores; requested 10; peak the highest day
    assert (llm["cpu_cores_used_mean"], llm["cpu_cores_requested_mean"], llm["cpu_cores_used_peak"]) == (7.0, 10.0, 9.0)
    # only D1 has CPU data: 0.05; coverage (1 × 12 + 0 × 24) / 36
    assert orphan["cpu_util"] == pytest.approx(0.05) and orphan["cpu_coverage"] == pytest.approx(1 / 3, abs=1e-4)
    top = r["top"]["cpu"]
    assert top["available"] is True and top["ranking"] == ["P-LLM-01", "ns-orphan"]
    assert top["coverage"] == pytest.approx((36 + 12) / 84, abs=1e-4) and top["basis"] == "gpu_hour_weighted"
    assert {e["id"] for e in r["entities"]} == {"P-LLM-01", "ns-orphan"}


def test_the_cpu_top_list_is_in_the_tables_csv_and_notes():
    r = _report(CPU)
    table = next(t for t in tables(r, "en") if t.key == "cpu_top")
    assert [(row["rank"], row["project"], row["cpu_util"], row["cpu_coverage"]) for row in table.rows] == [
        (1, "Guangming power LLM", 0.65, 0.75), (2, "ns-orphan", 0.05, 0.3333)]
    assert table.headers("zh-CN")[3] == "CPU 利用率" and table.title("en") == "Top list by CPU utilisation"
    lines = to_csv(r, "en", "cpu_top").decode("utf-8-sig").splitlines()
    assert lines[1:] == ["1,Guangming power LLM,Digital Department,0.65,7.0,9.0,10.0,0.75,0.7,48.0",
                         "2,ns-orphan,,0.05,0.1,0.5,2.0,0.3333,0.026667,36.0"]
    assert "57.1%" in cpu_note(r, "en") and "57.1%" in cpu_note(r, "zh-CN")


def test_a_month_without_cpu_data_says_not_collected():
    for cpu in (None, CPU.filter(pl.col("day") < D1), CPU.filter(pl.col("cluster") == "js-nanjing")):
        r = _report(cpu)
        assert r["top"]["cpu"] == {"available": False, "note_key": "reports.cpu_not_collected"}
        assert _entity(r, "P-LLM-01")["cpu_util"] is None
        assert next(t for t in tables(r, "en") if t.key == "cpu_top").rows == []
        assert "not collected" in cpu_note(r, "en")


def test_offline_cpu_files_roll_up_per_namespace_and_bad_lines_are_named(tmp_path):
    csv = tmp_path / "part.csv"
    csv.write_text("ts,cluster,namespace,pod,interval_s,cpu_seconds,cores_requested\n"
                   "2026-03-01T00:01:00Z,hq,a,a-0,60,120,4\n"
                   "2026-03-01T00:01:00Z,hq,a,a-1,60,60,4\n"
                   "2026-03-01T00:02:00Z,hq,a,a-0,60,240,4\n"
                   "2026-03-01T00:02:00Z,hq,b,b-0,60,6,\n"
                   "2026-03-02T00:00:00Z,hq,b,b-0,60,6,1\n")  # the next day: outside the window
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    parts = parts_from_samples(read_file(csv), start, start + timedelta(days=1))
    a, b = parts.row(0, named=True), parts.row(1, named=True)
    # a: 180 + 240 core-seconds over two 60 s instants; peak 240 / 60; requested 8 cores then 4
    assert (a["cpu_core_s"], a["covered_s"], a["cores_used_peak"], a["requested_core_s"]) == (420.0, 120.0, 4.0, 720.0)
    assert (b["cpu_core_s"], b["covered_s"], b["requested_core_s"]) == (6.0, 60.0, None)
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,cluster,namespace,interval_s,cpu_seconds\n2026-03-01T00:01:00Z,hq,a,60,5\n"
                   "2026-03-01T00:02:00Z,hq,a,60,-1\n")
    with pytest.raises(InputError) as err:
        read_file(bad)
    assert err.value.field == f"{bad}:3" and err.value.params["column"] == "cpu_seconds"
    missing = tmp_path / "missing.csv"
    missing.write_text("ts,cluster,namespace\n")
    with pytest.raises(InputError) as err:
        read_file(missing)
    assert err.value.field == f"{missing}:1" and err.value.params["columns"] == "interval_s, cpu_seconds"


def test_html_and_excel_carry_the_cpu_top_list_and_its_note():
    import io

    from openpyxl import load_workbook

    from core.reports.export import to_excel, to_html

    r = _report(CPU)
    page = to_html(r, "zh-CN")
    assert "CPU 利用率排行" in page and "57.1%" in page and "暂未采集 CPU" not in page
    wb = load_workbook(io.BytesIO(to_excel(r, "en")))
    ws = wb["Top list by CPU utilisation"]
    header = [c.value for c in ws[1]]
    row = {h: c.value for h, c in zip(header, ws[2])}
    assert row["Project"] == "Guangming power LLM" and row["CPU utilisation"] == pytest.approx(0.65)
    assert row["CPU data coverage"] == pytest.approx(0.75)
    none = to_html(_report(None), "en")
    assert "CPU utilisation is not collected" in none
