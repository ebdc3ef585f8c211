"""AppTest: the water-level page shows the core water level of small demo metrics, live part and trend."""

from __future__ import annotations

from core.identity import load_personas
from core.metrics import water_level as wl
from core.metrics.sources import inventory_nodes, metrics_source
from tests.app.conftest import no_exceptions, open_page


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


def test_ops_see_the_water_level_without_metrics_data():
    at = open_page("app_pages/pools.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    assert any("GPU 总量" == m.label for m in at.metric)


def test_executives_read_the_water_level_in_the_published_board_not_live():
    from core.metrics.water_level import WATER_LEVEL_ROLES
    from ui.navigation import sections_for

    assert "executive" not in WATER_LEVEL_ROLES and "committee" not in WATER_LEVEL_ROLES
    for role in ("executive", "committee"):
        pages = {p.key for _title, specs in sections_for(role) for p in specs}
        assert "pools" not in pages and "board" in pages


def _frame_with(at, column: str):
    """The one table on the page with ``column``."""
    (frame,) = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def test_live_clusters_are_counted_and_an_unreachable_one_is_named_in_a_banner(tmp_path, monkeypatch):
    from core.org import load_org
    from tests.support.fake_kube_api import FakeKubeApi
    from tests.support.kube_inventory import put_gpu_node, put_gpu_pod, put_gpu_quota, refused_url, write_kubeconfig

    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "no-samples"))
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    org = load_org()
    with FakeKubeApi() as api:
        put_gpu_node(api, "h800-live-01", pool="hq-lang", gpus=8)
        put_gpu_node(api, "h800-live-02", pool="hq-lang", gpus=8, ready=False)
        put_gpu_quota(api, "alloc-7", hard=16, used=12)
        put_gpu_pod(api, "alloc-7", "trainer-0", node="h800-live-01", gpus=8)
        put_gpu_pod(api, "alloc-7", "trainer-1", node=None, gpus=4, phase="Pending")
        put_gpu_pod(api, "alloc-7", "old-run", node="h800-live-01", gpus=8, phase="Succeeded")
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
    hq = summary.loc["hq-beijing-1"]
    assert (hq["GPUs under quota"], hq["GPUs used (quota)"], hq["GPUs requested by running pods"]) == (16, 12, 8)
    assert hq["Running GPU pods"] == 1 and "Kubernetes API: 1 GPU quotas" in hq["Source of the quota and pod figures"]
    assert summary["GPUs under quota"].isna()["sd-jinan"]  # never read: no figure, not a zero
    at.selectbox(key="pools_inventory_cluster").set_value("hq-beijing-1").run()
    no_exceptions(at)
    nodes = _frame_with(at, "Ready")
    assert nodes[["Node", "Pool", "GPU product", "Allocatable GPUs", "GPUs requested by pods / allocatable",
                  "Ready"]].values.tolist() == [
        ["h800-live-01", "hq-lang", "NVIDIA-H800", 8, "8 / 8", "yes"],
        ["h800-live-02", "hq-lang", "NVIDIA-H800", 8, "0 / 8", "no"]]
    quotas = _frame_with(at, "Quota")
    assert quotas.values.tolist() == [["alloc-7", "allocation", "nvidia.com/gpu", 16, 12]]
    pods = _frame_with(at, "Pod")
    assert pods[["Namespace", "Pod", "Node", "GPUs requested", "Phase"]].values.tolist() == [
        ["alloc-7", "trainer-0", "h800-live-01", 8, "Running"], ["alloc-7", "trainer-1", "(not scheduled)", 4, "Pending"]]


def _grant(sessions, pool: str, gpus: int, status: str) -> None:
    """One allocation of ``gpus`` on ``pool`` in ``status`` (with its request)."""
    from datetime import datetime, timedelta, timezone

    from core.lifecycle.persistence import AllocationRow, RequestRow

    at = datetime.now(timezone.utc)
    with sessions.begin() as s:
        req = RequestRow(status="active", created_by="zhang.wei", pool_id=pool, requested_gpus=gpus, duration_days=7,
                         priority="normal", form={}, created_at=at, updated_at=at, submitted_at=at)
        s.add(req)
        s.flush()
        req.number = f"R-{req.id:06d}"
        s.add(AllocationRow(request_id=req.id, pool_id=pool, gpus=gpus, status=status, created_at=at,
                            provisioned_at=at, ends_on=(at + timedelta(days=30)).date()))


def test_the_demo_fleet_says_where_its_nodes_come_from(demo_metrics):
    _grant(demo_metrics.sessions, "hq-lang", 16, "active")
    _grant(demo_metrics.sessions, "hq-lang", 8, "released")  # gone: not under quota any more
    at = open_page("app_pages/pools.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    assert any("演示机群清单" in c.value for c in at.caption)
    summary = _frame_with(at, "GPU 节点数")
    assert int(summary["GPU 节点数"].sum()) > 0 and set(summary["状态"]) == {"最新"}
    # quotas: what the portal's allocations hold per cluster, said so; use and pods: not invented
    ops = next(p for p in load_personas() if p.id == "li.na")
    source = metrics_source()
    snap = wl.snapshot(sessions=demo_metrics.sessions, actor=ops, source=source, nodes=inventory_nodes(source), cache={})
    held = dict(snap.clusters.select("cluster", "allocated").iter_rows())
    assert held["hq-beijing-1"] == 16  # the active allocation, not the released one
    assert dict(zip(summary["集群"], summary["配额内 GPU"])) == {c: held.get(c, 0) for c in summary["集群"]}
    assert set(summary["配额已用 GPU"]) == {"演示模式下不可用"} and set(summary["运行中 Pod 申请的 GPU"]) == {"演示模式下不可用"}
    assert all("演示模式" in s and "门户分配" in s for s in summary["配额与 Pod 数据来源"])
    assert set(_frame_with(at, "就绪")["Pod 申请 GPU / 可分配 GPU"]) == {"演示模式下不可用"}
    assert any("GPU Pod：演示模式下不可用" in i.value for i in at.info)
