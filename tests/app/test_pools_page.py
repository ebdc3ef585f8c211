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


def _frame_with(at, column: str):
    """The one table on the page with ``column``."""
    (frame,) = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def test_live_clusters_are_counted_and_an_unreachable_one_is_named_in_a_banner(tmp_path, monkeypatch):
    from core.org import load_org
    from tests.support.fake_kube_api import FakeKubeApi
    from tests.support.kube_inventory import put_gpu_node, refused_url, write_kubeconfig

    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "no-samples"))
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    org = load_org()
    with FakeKubeApi() as api:
        put_gpu_node(api, "h800-live-01", pool="hq-lang", gpus=8)
        put_gpu_node(api, "h800-live-02", pool="hq-lang", gpus=8, ready=False)
        servers = {c.kube_context: refused_url() for c in org.clusters.values()} | {"hq-beijing-1": api.url}
        monkeypatch.setenv("COMPUTELOOP_CLUSTER_BACKEND", "live")
        monkeypatch.setenv("COMPUTELOOP_KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", servers)))
        at = open_page("app_pages/pools.py", persona="li.na")
        no_exceptions(at)
        at.radio(key="pools_group").set_value("pool").run()
        no_exceptions(at)
    table = at.dataframe[0].value.set_index("Pool")
    assert table.loc["hq-lang", "Total GPUs"] == 16  # the two live nodes, not the 256 of data/org.yaml
    assert table.loc["sd-pool", "Total GPUs"] == org.pool("sd-pool").gpus  # never read: the org size
    warnings = [w.value for w in at.warning]
    down = sorted(set(org.clusters) - {"hq-beijing-1"})
    assert all(any(f"Cluster {c} is not answering" in w for w in warnings) for c in down), warnings
    assert not any("hq-beijing-1" in w for w in warnings)
    assert any("live from the Kubernetes API (1 of 7 clusters answering: hq-beijing-1)" in c.value for c in at.caption)
    summary = _frame_with(at, "GPU nodes").set_index("Cluster")
    assert summary.loc["hq-beijing-1", "GPU nodes"] == 2 and summary.loc["hq-beijing-1", "Ready nodes"] == 1
    assert summary.loc["sd-jinan", "State"] == "not read yet"
    at.selectbox(key="pools_inventory_cluster").set_value("hq-beijing-1").run()
    nodes = _frame_with(at, "Node")
    assert nodes[["Node", "Pool", "GPU product", "Allocatable GPUs", "Ready"]].values.tolist() == [
        ["h800-live-01", "hq-lang", "NVIDIA-H800", 8, "yes"], ["h800-live-02", "hq-lang", "NVIDIA-H800", 8, "no"]]


def test_the_demo_fleet_says_where_its_nodes_come_from(demo_metrics):
    at = open_page("app_pages/pools.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    assert any("演示机群清单" in c.value for c in at.caption)
    summary = _frame_with(at, "GPU 节点数")
    assert int(summary["GPU 节点数"].sum()) > 0 and set(summary["状态"]) == {"最新"}
