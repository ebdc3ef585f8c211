"""AppTest: the water-level page shows the core water level of small demo metrics, live part and trend."""

from __future__ import annotations

import os

import pytest

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine
from core.identity import load_personas
from core.metrics import water_level as wl
from core.metrics.demo_metrics import ensure_demo_metrics
from core.metrics.sources import inventory_nodes, metrics_source
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


def test_the_water_level_page_shows_the_core_totals_and_the_trend(demo_metrics):
    at = open_page("app_pages/pools.py", persona="li.na")
    no_exceptions(at)
    ops = next(p for p in load_personas() if p.id == "li.na")
    source = metrics_source()
    snap = wl.snapshot(sessions=demo_metrics.sessions, actor=ops, source=source, nodes=inventory_nodes(source), cache={})
    shown = {m.label: m.value for m in at.metric}
    assert shown["Total GPUs"] == f"{snap.totals['total']:,}"
    assert shown["In use"] == f"{snap.totals['in_use']:,}"
    assert shown["Reserved (reserve pools)"] == f"{snap.totals['reserved']:,}"
    table = at.dataframe[0].value
    assert int(table["Total GPUs"].sum()) == snap.totals["total"]
    assert any("Metrics as of" in c.value for c in at.caption)
    assert not any("No daily rollups" in i.value for i in at.info)


def test_grouping_by_pool_and_choosing_a_pool_show_its_fragments(demo_metrics):
    at = open_page("app_pages/pools.py", persona="zhao.min", lang="zh-CN")
    at.radio(key="pools_group").set_value("pool").run()
    no_exceptions(at)
    assert "资源池" in at.dataframe[0].value.columns
    at.selectbox(key="pools_pool").set_value("hq-ft").run()
    no_exceptions(at)
    assert any("hq-ft" in m.value for m in at.markdown)


def test_executives_see_the_water_level_without_metrics_data():
    at = open_page("app_pages/pools.py", persona="wang.qiang", lang="zh-CN")
    no_exceptions(at)
    assert any("GPU 总量" == m.label for m in at.metric)
