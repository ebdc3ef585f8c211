"""AppTest: the water-level page shows the core water level of small demo metrics, live part and trend."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from core.metrics import water_level as wl
from core.metrics.sources import inventory_nodes, metrics_source
from tests.support import app_scenarios as scenarios
from tests.support import clock
from tests.support.app_run import message, no_exceptions, open_page, shows, text


def test_the_water_level_page_shows_the_core_totals_and_the_trend(demo_metrics):
    at = open_page("app_pages/pools.py", persona="li.na")
    no_exceptions(at)
    ops = scenarios.persona("li.na")
    source = metrics_source()
    snap = wl.snapshot(sessions=demo_metrics.sessions, actor=ops, source=source, nodes=inventory_nodes(source), cache={})
    shown = {m.label: m.value for m in at.metric}
    for key in ("total", "in_use", "reserved"):
        assert shown[text(f"pools.level.{key}")] == f"{snap.totals[key]:,}", key
    table = at.dataframe[0].value
    assert int(table[text("pools.level.total")].sum()) == snap.totals["total"]
    assert shows(at.caption, "pools.as_of"), [c.value for c in at.caption]
    assert not shows(at.info, "pools.no_trend")


def test_grouping_by_pool_and_choosing_a_pool_show_its_fragments(demo_metrics):
    at = open_page("app_pages/pools.py", persona="zhao.min", lang="zh-CN")
    at.radio(key="pools_group").set_value("pool").run()
    no_exceptions(at)
    assert text("pools.col.pool", "zh-CN") in at.dataframe[0].value.columns
    at.selectbox(key="pools_pool").set_value("hq-ft").run()
    no_exceptions(at)
    assert shows(at.markdown, "pools.fragments_of", "zh-CN", pool="hq-ft"), [m.value for m in at.markdown]


def test_ops_see_the_water_level_without_metrics_data():
    at = open_page("app_pages/pools.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    assert any(text("pools.level.total", "zh-CN") == m.label for m in at.metric)


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
    c = {key: text(f"inventory.col.{key}") for key in (
        "cluster", "nodes", "ready_nodes", "state", "quota_hard", "quota_used", "pods_running", "running_pods", "source",
        "node", "pool", "product", "allocatable", "requested", "ready", "quota", "namespace", "pod", "pod_gpus", "phase")}
    total = text("pools.level.total")
    table = at.dataframe[0].value.set_index(text("pools.col.pool"))
    assert table.loc["hq-lang", total] == 16  # the two live nodes, not the 256 of data/org.yaml
    assert table.loc["sd-pool", total] == org.pool("sd-pool").gpus  # never read: the org size
    down = sorted(set(org.clusters) - {"hq-beijing-1"})
    for cluster in down:
        assert shows(at.warning, "inventory.never_read", cluster=cluster), (cluster, [w.value for w in at.warning])
    assert not any("hq-beijing-1" in w.value for w in at.warning)
    assert shows(at.caption, "uitext.inventory_origin.live", answering=1, total=len(org.clusters))
    # the kubeconfig and the clusters answering: in ops' technical sources
    assert any("Kubernetes API" in m.value and "hq-beijing-1" in m.value for m in at.markdown)
    summary = _frame_with(at, c["nodes"]).set_index(c["cluster"])
    assert summary.loc["hq-beijing-1", c["nodes"]] == 2 and summary.loc["hq-beijing-1", c["ready_nodes"]] == 1
    assert summary.loc["sd-jinan", c["state"]] == text("inventory.state.never")
    hq = summary.loc["hq-beijing-1"]
    assert (hq[c["quota_hard"]], hq[c["quota_used"]], hq[c["pods_running"]]) == (16, 12, 8)
    assert hq[c["running_pods"]] == 1 and hq[c["source"]] == text("inventory.source.live", quotas=1)
    assert summary[c["quota_hard"]].isna()["sd-jinan"]  # never read: no figure, not a zero
    at.selectbox(key="pools_inventory_cluster").set_value("hq-beijing-1").run()
    no_exceptions(at)
    nodes = _frame_with(at, c["ready"])
    yes, no = text("inventory.yes"), text("inventory.no")
    assert nodes[[c["node"], c["pool"], c["product"], c["allocatable"], c["requested"], c["ready"]]].values.tolist() == [
        ["h800-live-01", "hq-lang", "NVIDIA-H800", 8, "8 / 8", yes],
        ["h800-live-02", "hq-lang", "NVIDIA-H800", 8, "0 / 8", no]]
    quotas = _frame_with(at, c["quota"])
    assert quotas.values.tolist() == [["alloc-7", "allocation", "nvidia.com/gpu", 16, 12]]
    pods = _frame_with(at, c["pod"])
    assert pods[[c["namespace"], c["pod"], c["node"], c["pod_gpus"], c["phase"]]].values.tolist() == [
        ["alloc-7", "trainer-0", "h800-live-01", 8, "Running"],
        ["alloc-7", "trainer-1", text("inventory.unscheduled"), 4, "Pending"]]


def _grant(sessions, pool: str, gpus: int, status: str) -> None:
    """One allocation of ``gpus`` on ``pool`` in ``status`` (with its request)."""
    from datetime import timedelta

    from core.lifecycle.persistence import AllocationRow, RequestRow

    at = clock.now()
    with sessions.begin() as s:
        req = RequestRow(status="active", created_by="zhang.wei", pool_id=pool, requested_gpus=gpus, duration_days=7,
                         priority="normal", form={}, created_at=at, updated_at=at, submitted_at=at)
        s.add(req)
        s.flush()
        req.number = f"R-{req.id:06d}"
        s.add(AllocationRow(request_id=req.id, pool_id=pool, gpus=gpus, status=status, created_at=at,
                            provisioned_at=at, ends_on=(at + timedelta(days=30)).date()))


def test_the_demo_fleet_says_where_its_nodes_come_from(demo_metrics):
    zh = "zh-CN"
    _grant(demo_metrics.sessions, "hq-lang", 16, "active")
    _grant(demo_metrics.sessions, "hq-lang", 8, "released")  # gone: not under quota any more
    at = open_page("app_pages/pools.py", persona="li.na", lang=zh)
    no_exceptions(at)
    assert shows(at.caption, "uitext.inventory_origin.fleet", zh), [c.value for c in at.caption]
    c = {key: text(f"inventory.col.{key}", zh) for key in (
        "cluster", "nodes", "state", "quota_hard", "quota_used", "pods_running", "source", "ready", "requested")}
    not_in_demo = text("inventory.not_in_demo", zh)
    summary = _frame_with(at, c["nodes"])
    assert int(summary[c["nodes"]].sum()) > 0 and set(summary[c["state"]]) == {text("inventory.state.fresh", zh)}
    # quotas: what the portal's allocations hold per cluster, said so; use and pods: not invented
    ops = scenarios.persona("li.na")
    source = metrics_source()
    snap = wl.snapshot(sessions=demo_metrics.sessions, actor=ops, source=source, nodes=inventory_nodes(source), cache={})
    held = dict(snap.clusters.select("cluster", "allocated").iter_rows())
    assert held["hq-beijing-1"] == 16  # the active allocation, not the released one
    assert dict(zip(summary[c["cluster"]], summary[c["quota_hard"]])) == {x: held.get(x, 0) for x in summary[c["cluster"]]}
    assert set(summary[c["quota_used"]]) == {not_in_demo} and set(summary[c["pods_running"]]) == {not_in_demo}
    assert set(summary[c["source"]]) == {text("inventory.source.demo", zh)}
    assert set(_frame_with(at, c["ready"])[c["requested"]]) == {not_in_demo}
    # the setting to change is set as code
    infos = [i.value.replace("`", "") for i in at.info]
    assert any(message("inventory.pods_demo", zh).search(i) for i in infos), infos


def test_ops_see_the_batch_scheduler_queues_read_from_the_live_clusters(tmp_path, monkeypatch):
    """Live backend: per pool, what Kueue admitted and keeps waiting; a pool whose queue was never
    applied says so; a cluster that cannot be read is named in a banner and shows no figures."""
    from kubernetes import client as k8s

    from core.cluster.backends import LiveBackend
    from core.cluster.manifests import load_cluster_settings
    from core.cluster.scheduler_queues import cluster_objects
    from core.org import load_org
    from tests.support.fake_kube_api import FakeKubeApi
    from tests.support.kube_inventory import refused_url, write_kubeconfig
    from tests.support.scheduler import kueue_status

    zh = "zh-CN"
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "no-samples"))
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    org = load_org()
    with FakeKubeApi() as api:
        cfg = k8s.Configuration()
        cfg.host = api.url
        with k8s.ApiClient(cfg) as client:
            backend = LiveBackend(org, load_cluster_settings(), clients={"hq-beijing-1": client})
            objects = [o for o in cluster_objects(org, "hq-beijing-1") if o["metadata"].get("name") != "hq-mm"]
            assert backend.apply_cluster_objects("hq-beijing-1", objects).ok  # hq-mm's queue not applied
        api.update("ClusterQueue", None, "hq-lang", kueue_status(5, 3, "h800-sxm", "nvidia.com/gpu", 200, borrowed=8))
        servers = {c.kube_context: refused_url() for c in org.clusters.values()} | {"hq-beijing-1": api.url}
        monkeypatch.setenv("COMPUTELOOP_CLUSTER_BACKEND", "live")
        monkeypatch.setenv("COMPUTELOOP_KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", servers)))
        at = open_page("app_pages/pools.py", persona="li.na", lang=zh)
        no_exceptions(at)
        province = open_page("app_pages/pools.py", persona="chen.jing", lang=zh)  # Jiangsu's ops
        no_exceptions(province)
    assert any(s.value == text("scheduler.water.title", zh) for s in at.subheader)
    theirs = _frame_with(province, text("scheduler.water.admitted", zh))
    assert [label.split(" · ")[0] for label in theirs[text("pools.col.pool", zh)]] == ["js-pool"]
    col = {k: text(f"scheduler.water.{k}", zh) for k in ("admitted", "pending", "gpus", "borrowed", "queue")}
    table = _frame_with(at, col["admitted"])
    table.index = [label.split(" · ")[0] for label in table[text("pools.col.pool", zh)]]
    state = text("inventory.col.state", zh)
    lang = table.loc["hq-lang"]
    assert [lang[col[k]] for k in ("admitted", "pending", "gpus", "borrowed")] == [5, 3, 200, 8]
    assert lang[state] == text("scheduler.water.state.read", zh) and lang[col["queue"]] == "hq-lang"
    assert table.loc["hq-mm", state] == text("scheduler.water.state.not_applied", zh)
    assert table.loc["hq-mm", [col["admitted"], col["pending"]]].isna().all()  # not read: no figure, not a zero
    assert table.loc["sd-pool", state] == text("scheduler.water.state.unread", zh)
    assert shows(at.warning, "scheduler.water.unread_banner", zh, cluster="sd-jinan"), [w.value for w in at.warning]
    assert not any(message("scheduler.water.unread_banner", zh, cluster="hq-beijing-1").search(w.value)
                   for w in at.warning)
    assert shows(at.caption, "scheduler.water.apply_hint", zh)


def test_plan_mode_says_the_scheduler_queues_are_read_from_live_clusters():
    at = open_page("app_pages/pools.py", persona="li.na")
    no_exceptions(at)
    assert shows(at.info, "scheduler.workloads.plan_mode"), [i.value for i in at.info]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_pool_of_more_nodes_than_the_heat_map_rows_opens_in_node_groups(demo_metrics, monkeypatch, lang):
    from core.metrics import water_level as wl

    thresholds = wl.load_thresholds()
    rows = {**thresholds["water_level"], "heat_map_max_rows": 4}
    monkeypatch.setattr(wl, "load_thresholds", lambda: {**thresholds, "water_level": rows})
    at = open_page("app_pages/pools.py", persona="li.na", lang=lang)
    no_exceptions(at)
    pool = at.selectbox(key="pools_pool").value
    picker = at.selectbox(key=f"pools_nodes_{pool}")
    sizes = [int(re.search(r"[(（](\d+)", label).group(1)) for label in picker.options]  # "(4 nodes)" / "（4 个节点）"
    nodes = sum(sizes)
    # at most 4 rows of ⌈nodes / 4⌉ neighbouring nodes each (the last may be shorter), said in the caption
    assert 1 < len(sizes) <= 4 and set(sizes[:-1]) == {-(-nodes // 4)} and sizes[-1] <= sizes[0]
    assert shows(at.caption, "pools.heat_grouped", lang, nodes=nodes, size=sizes[0])
    picker.set_value(len(picker.options) - 1).run()  # drill down into the last group: its nodes only
    no_exceptions(at)
    assert at.selectbox(key=f"pools_nodes_{pool}").value == len(picker.options) - 1


def test_the_water_level_is_computed_once_for_every_reader_and_still_refused_to_other_roles(demo_metrics, monkeypatch):
    """The figures are fleet-wide: cached once for all readers (not per person), each reader's role
    checked before the cache is read."""
    from core.identity import PermissionDenied
    from ui import pools_view

    calls = []
    real = wl.snapshot
    monkeypatch.setattr(wl, "snapshot", lambda **kw: calls.append(kw["actor"].id) or real(**kw))
    pools_view._snapshot.clear()
    for persona in ("li.na", "zhao.min", "chen.jing"):
        monkeypatch.setattr(pools_view, "me", lambda p=persona: scenarios.persona(p))
        assert pools_view.water_level().totals["total"] > 0
    assert calls == ["li.na"]
    for persona in ("wang.qiang", "zhang.wei"):  # an executive reads the board; an applicant neither
        monkeypatch.setattr(pools_view, "me", lambda p=persona: scenarios.persona(p))
        with pytest.raises(PermissionDenied):
            pools_view.water_level()


def test_the_trend_is_read_again_only_when_a_day_is_rolled_up(demo_metrics, monkeypatch):
    """The trend is cached under the newest rollup (and the nodes' pools), not for a minute: reruns
    and other readers reuse it; a day rolled up again shows at once."""
    from core.db.session import unit_of_work
    from core.metrics.persistence import read_days, replace_day
    from ui import pools_view

    calls = []
    real = wl.trend
    monkeypatch.setattr(wl, "trend", lambda **kw: calls.append(kw["actor"].id) or real(**kw))
    pools_view._trend.clear()
    for persona in ("li.na", "zhao.min"):
        monkeypatch.setattr(pools_view, "me", lambda p=persona: scenarios.persona(p))
        pools_view.trend_section()
    assert calls == ["li.na"]
    before = wl.trend_stamp(demo_metrics.sessions)
    day = clock.day(-1)
    with unit_of_work(demo_metrics.sessions) as s:
        rows = read_days(s, day, day)
        assert rows.height
        replace_day(s, day, rows, now=clock.now() + timedelta(minutes=5))  # the day rolled up again
    assert wl.trend_stamp(demo_metrics.sessions) > before
    pools_view.trend_section()
    assert calls == ["li.na", "zhao.min"]


def test_the_trend_bars_show_each_figure_at_its_own_height_not_stacked(demo_metrics):
    """Hours with a workload and used hours (a part of them) are drawn over each other: stacked, the
    bar's top read as their sum (28,000 GPU-hours a day where 17,300 had a workload)."""
    import json

    at = open_page("app_pages/pools.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    hours = [text("pools.trend.allocated_hours", "zh-CN"), text("pools.trend.used_hours", "zh-CN")]
    (bars,) = [s for s in specs if ((s.get("encoding") or {}).get("color") or {}).get("scale", {}).get("domain") == hours]
    assert bars["encoding"]["y"]["stack"] is None and "xOffset" not in bars["encoding"]
