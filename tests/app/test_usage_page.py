"""AppTest: the usage page shows the training sheet of a run and the monthly inference sheet of
small demo metrics, with the core functions' figures."""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta, timezone

import pytest

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine
from core.identity import load_personas
from core.metrics import usage
from core.metrics.demo_metrics import ensure_demo_metrics
from core.metrics.sources import metrics_source
from tests.app.conftest import no_exceptions, open_page


@pytest.fixture
def demo_metrics(tmp_path, monkeypatch):
    """One day of demo samples and its rollup in a temporary folder and the test's database."""
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "samples"))
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    ctx = build(url)
    ensure_demo_metrics(ctx.sessions, days=1)
    return ctx


def _ops():
    return next(p for p in load_personas() if p.id == "li.na")


def test_the_training_sheet_shows_the_core_figures_of_the_chosen_run(demo_metrics):
    at = open_page("app_pages/usage.py", persona="li.na")
    no_exceptions(at)
    namespace = at.selectbox(key="usage_ns").value
    assert "-train-" in namespace or "-dev-" in namespace
    day = metrics_source().days()[-1]  # the page's default window ends on the last day with data
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone.utc)
    sheet = usage.training_sheet(actor=_ops(), source=metrics_source(), namespace=namespace,
                                 start=end - timedelta(days=1), end=end)
    shown = {m.label: m.value for m in at.metric}
    assert shown["GPUs"] == str(sheet.summary["gpus"])
    assert shown["Mean GPU utilisation"] == f"{sheet.summary['mean_util'] * 100:.1f} %"
    assert len(at.success) + len(at.warning) >= 2  # the demo banner plus the hints or "no bottleneck"


def test_the_inference_sheet_lists_the_services_and_says_qps_is_not_exported(demo_metrics):
    at = open_page("app_pages/usage.py", persona="zhao.min", lang="zh-CN")
    no_exceptions(at)
    month = date.today() - timedelta(days=1)
    kinds = usage.namespace_kinds(sessions=demo_metrics.sessions, source=metrics_source())
    sheet = usage.inference_sheet(sessions=demo_metrics.sessions, actor=_ops(), month=month, kinds=kinds)
    table = at.dataframe[-1].value
    assert len(table) == sheet.rows.height > 0
    assert set(table["平均 QPS"]) == {"未导出"}
    assert table["已分配卡时"].sum() == pytest.approx(sheet.rows["allocated_gpu_hours"].round(1).sum())


def test_the_usage_page_without_metrics_says_there_is_nothing_yet():
    at = open_page("app_pages/usage.py", persona="li.na")
    no_exceptions(at)
    assert any("No training run" in i.value for i in at.info)
