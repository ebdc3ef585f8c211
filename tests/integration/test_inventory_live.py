"""The live node inventory of the water level against the Kubernetes API test server: every
cluster of data/org.yaml through its kubeconfig context, nodes counted per pool, and a cluster
that is unreachable, hung or erroring shown with its last good list, its age and the reason —
never an exception."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from core.config import DATA_DIR
from core.identity import load_personas
from core.metrics import sources
from core.metrics import water_level as wl
from core.org import load_org
from tests.support.fake_kube_api import FakeKubeApi
from tests.support.kube_inventory import (
    put_gpu_node, put_gpu_pod, put_gpu_quota, refused_url, silent_server, write_kubeconfig,
)

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)
OPS = next(p for p in load_personas() if p.id == "li.na")


@pytest.fixture
def hq1():
    with FakeKubeApi() as api:
        put_gpu_node(api, "h800-001", pool="hq-lang", gpus=8)
        put_gpu_node(api, "h800-002", pool="hq-lang", gpus=8, ready=False)
        put_gpu_node(api, "a800-001", pool="hq-mm", gpus=8, product="NVIDIA-A800-SXM4-80GB")
        api.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cpu-001", "labels": {}},
                 "status": {"allocatable": {"cpu": "64"}, "conditions": [{"type": "Ready", "status": "True"}]}})
        yield api


@pytest.fixture
def zj():
    with FakeKubeApi() as api:
        put_gpu_node(api, "910b-001", pool="zj-pool", gpus=8, product=None, resource="huawei.com/Ascend910")
        yield api


@pytest.fixture
def live(monkeypatch, tmp_path, hq1, zj):
    """Live backend: hq-beijing-1 and zj-hangzhou answer, every other cluster refuses connections."""
    servers = {c.kube_context: refused_url() for c in load_org().clusters.values()}
    servers |= {"hq-beijing-1": hq1.url, "zj-hangzhou": zj.url}
    path = write_kubeconfig(tmp_path / "kubeconfig", servers)
    monkeypatch.setenv("COMPUTELOOP_CLUSTER_BACKEND", "live")
    monkeypatch.setenv("COMPUTELOOP_KUBECONFIG", str(path))
    return path


def test_live_nodes_are_read_per_cluster_with_their_origin(live):
    reading = sources.read_inventory(cache={}, now=NOW)
    assert reading.origin == "live"
    by_cluster = {c.cluster: c for c in reading.clusters}
    assert set(by_cluster) == set(load_org().clusters)
    hq = by_cluster["hq-beijing-1"]
    assert not hq.stale and hq.read_at == NOW
    assert [(n.name, n.pool, n.gpu_product, n.gpus, n.ready) for n in hq.nodes] == [
        ("a800-001", "hq-mm", "NVIDIA-A800-SXM4-80GB", 8, True), ("h800-001", "hq-lang", "NVIDIA-H800", 8, True),
        ("h800-002", "hq-lang", "NVIDIA-H800", 8, False)]
    (ascend,) = by_cluster["zj-hangzhou"].nodes
    assert (ascend.gpus, ascend.resource) == (8, "huawei.com/Ascend910")
    down = by_cluster["sd-jinan"]
    assert down.stale and down.read_at is None and down.nodes == () and "Connection refused" in down.reason
    banners = {b.params["cluster"]: b.key for b in reading.banners()}
    assert banners == {c: "inventory.never_read" for c in load_org().clusters if c not in ("hq-beijing-1", "zj-hangzhou")}
    origin = reading.origin_message()
    assert origin.key == "inventory.origin.live" and origin.params["answering"] == 2
    assert origin.params["kubeconfig"] == str(live)


def test_the_water_level_counts_the_live_nodes(live, ctx):
    reading = sources.read_inventory(cache={}, now=NOW)
    snap = wl.snapshot(sessions=ctx.sessions, actor=OPS, source=_NoSamples(), nodes=reading.nodes, cache={})
    totals = dict(snap.pools.select("pool", "total").iter_rows())
    org = load_org()
    assert totals["hq-lang"] == 16 and totals["hq-mm"] == 8 and totals["zj-pool"] == 8  # the real nodes
    assert totals["sd-pool"] == org.pool("sd-pool").gpus  # never read: the size in data/org.yaml


def test_an_outage_keeps_the_last_good_list_with_its_age_and_a_banner_naming_the_cluster(live, hq1):
    cache: dict = {}
    first = sources.read_inventory(cache=cache, now=NOW)
    hq1.inject("500", method="GET", path=r"^/api/v1/nodes$")
    later = sources.read_inventory(cache=cache, now=NOW + timedelta(minutes=7))
    before = {c.cluster: c for c in first.clusters}["hq-beijing-1"]
    after = {c.cluster: c for c in later.clusters}["hq-beijing-1"]
    assert after.stale and after.nodes == before.nodes and after.read_at == NOW
    assert after.reason.startswith("HTTP 500")
    banner = after.banner(later.read_at)
    assert banner.key == "inventory.stale" and banner.params["cluster"] == "hq-beijing-1"
    assert banner.params["minutes"] == 7 and banner.params["as_of"] == "2030-06-01 12:00 UTC"
    assert sum(n.gpus for n in later.nodes) == sum(n.gpus for n in first.nodes)
    # the cluster answers again: fresh, no banner
    again = sources.read_inventory(cache=cache, now=NOW + timedelta(minutes=8))
    assert not {c.cluster: c for c in again.clusters}["hq-beijing-1"].stale


def test_a_hung_cluster_times_out_in_parallel_and_is_reported(monkeypatch, tmp_path, hq1):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    (data / "inventory.yaml").write_text(yaml.safe_dump({"request_timeout_s": 1, "retries": 0, "page_size": 500}), encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(data))
    with silent_server() as hung:
        servers = {c.kube_context: hung for c in load_org().clusters.values()} | {"hq-beijing-1": hq1.url}
        monkeypatch.setenv("COMPUTELOOP_CLUSTER_BACKEND", "live")
        monkeypatch.setenv("COMPUTELOOP_KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", servers)))
        started = time.perf_counter()
        reading = sources.read_inventory(cache={}, now=NOW)
        elapsed = time.perf_counter() - started
    assert elapsed < 3.5, elapsed  # six hung clusters read side by side, each cut at 1 s
    stale = {c.cluster for c in reading.clusters if c.stale}
    assert stale == set(load_org().clusters) - {"hq-beijing-1"}
    assert all("timed out" in c.reason.lower() for c in reading.clusters if c.stale)


def test_a_context_missing_from_the_kubeconfig_is_a_banner_not_a_crash(monkeypatch, tmp_path, hq1):
    monkeypatch.setenv("COMPUTELOOP_CLUSTER_BACKEND", "live")
    monkeypatch.setenv("COMPUTELOOP_KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", {"hq-beijing-1": hq1.url})))
    reading = sources.read_inventory(cache={}, now=NOW)
    stale = {c.cluster: c.reason for c in reading.clusters if c.stale}
    assert set(stale) == set(load_org().clusters) - {"hq-beijing-1"}
    assert all("js-nanjing" in r for c, r in stale.items() if c == "js-nanjing")


def test_a_bad_inventory_setting_names_the_entry(monkeypatch, tmp_path):
    from core.errors import InputError

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    (data / "inventory.yaml").write_text("request_timeout_s: 0\nretries: 0\npage_size: 500\n", encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(data))
    with pytest.raises(InputError) as err:
        sources.inventory_settings()
    assert err.value.params["field"] == "inventory.yaml" and err.value.params["entry"] == "request_timeout_s"


def test_without_the_live_backend_the_demo_fleet_says_where_it_comes_from(monkeypatch):
    monkeypatch.delenv("COMPUTELOOP_CLUSTER_BACKEND", raising=False)
    reading = sources.read_inventory(cache={}, now=NOW)
    assert reading.origin == "demo" and reading.origin_message().key == "inventory.origin.demo"
    assert not reading.stale and sum(n.gpus for n in reading.nodes) == sum(p.gpus for p in load_org().pools.values())


class _NoSamples:
    """A metrics source with no samples (the inventory alone decides the totals)."""

    root = "none"

    def latest(self, at=None):
        import polars as pl

        return pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "hostname": pl.Utf8, "gpu": pl.Utf8,
                                    "uuid": pl.Utf8, "namespace": pl.Utf8, "util": pl.Float64})


# --------------------------------------------------------------------------- quotas and GPU pods


@pytest.fixture
def workloads(hq1, zj):
    """Quotas and pods on hq-beijing-1 (NVIDIA) and zj-hangzhou (Ascend), beside the nodes."""
    put_gpu_quota(hq1, "alloc-a", hard=16, used=6)
    put_gpu_quota(hq1, "alloc-b", hard=8, used=8)
    put_gpu_quota(hq1, "cpu-only", hard=0, used=0, resource="example.com/fpga")  # no GPU entry: left out
    put_gpu_pod(hq1, "alloc-a", "train-0", node="h800-001", gpus=4)
    put_gpu_pod(hq1, "alloc-a", "train-1", node="h800-001", gpus=2, limits_only=True)
    put_gpu_pod(hq1, "alloc-a", "waiting", node=None, gpus=8, phase="Pending")
    put_gpu_pod(hq1, "alloc-b", "serve-0", node="a800-001", gpus=8)
    put_gpu_pod(hq1, "alloc-b", "done", node="a800-001", gpus=8, phase="Succeeded")  # finished: frees its GPUs
    put_gpu_pod(hq1, "alloc-b", "crashed", node="h800-002", gpus=8, phase="Failed")
    put_gpu_pod(hq1, "alloc-b", "web", node="a800-001", gpus=0)  # no GPU: left out
    put_gpu_quota(zj, "zj-infer", hard=8, used=4, resource="huawei.com/Ascend910")
    put_gpu_pod(zj, "zj-infer", "ascend-0", node="910b-001", gpus=4, resource="huawei.com/Ascend910")
    return hq1, zj


@pytest.fixture
def small_pages(monkeypatch, tmp_path):
    """data/inventory.yaml with chunks of 2 items, so every list takes several requests."""
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    (data / "inventory.yaml").write_text(yaml.safe_dump({"request_timeout_s": 5, "retries": 0, "page_size": 2}),
                                         encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(data))


def test_quotas_and_running_gpu_pods_are_read_in_chunks_per_cluster(live, workloads, small_pages):
    hq1, zj = workloads
    reading = sources.read_inventory(cache={}, now=NOW)
    hq = reading.cluster("hq-beijing-1")
    assert [(q.namespace, q.resource, q.hard, q.used) for q in hq.quotas] == [
        ("alloc-a", "nvidia.com/gpu", 16, 6), ("alloc-b", "nvidia.com/gpu", 8, 8)]
    assert [(p.namespace, p.name, p.node, p.gpus, p.phase) for p in hq.pods] == [
        ("alloc-a", "train-0", "h800-001", 4, "Running"), ("alloc-a", "train-1", "h800-001", 2, "Running"),
        ("alloc-a", "waiting", None, 8, "Pending"), ("alloc-b", "serve-0", "a800-001", 8, "Running")]
    assert hq.requested_by_node() == {"h800-001": 6, "a800-001": 8}  # the finished pods free their GPUs
    (ascend_quota,) = reading.cluster("zj-hangzhou").quotas
    assert (ascend_quota.resource, ascend_quota.hard, ascend_quota.used) == ("huawei.com/Ascend910", 8, 4)
    rows = {r["cluster"]: r for r in sources.workload_rows(reading)}
    assert (rows["hq-beijing-1"]["quota_hard"], rows["hq-beijing-1"]["quota_used"]) == (24, 14)
    assert (rows["hq-beijing-1"]["pods_running"], rows["hq-beijing-1"]["pods"]) == (14, 3)
    assert rows["hq-beijing-1"]["source"].key == "inventory.source.live"
    assert (rows["zj-hangzhou"]["quota_hard"], rows["zj-hangzhou"]["pods_running"]) == (8, 4)
    assert rows["sd-jinan"]["quota_hard"] is None and rows["sd-jinan"]["source"].key == "inventory.source.never_read"
    # chunks of 2: the server filtered the finished pods (Succeeded, Failed) before paging
    pod_pages = [p for p in hq1.pages if p[0] == "Pod"]
    assert pod_pages == [("Pod", 0, 2), ("Pod", 2, 2), ("Pod", 4, 2)]  # 5 unfinished pods, 3 requests
    assert [p for p in hq1.pages if p[0] == "ResourceQuota"] == [("ResourceQuota", 0, 2), ("ResourceQuota", 2, 2)]
    assert [p for p in hq1.pages if p[0] == "Node"] == [("Node", 0, 2), ("Node", 2, 2)]


def test_a_failing_pod_list_keeps_the_last_good_quotas_and_pods_with_a_banner(live, workloads):
    hq1, _ = workloads
    cache: dict = {}
    first = sources.read_inventory(cache=cache, now=NOW).cluster("hq-beijing-1")
    put_gpu_pod(hq1, "alloc-b", "serve-1", node="h800-002", gpus=8)  # would change the figures if it were read
    hq1.inject("500", method="GET", path=r"^/api/v1/pods$")
    later = sources.read_inventory(cache=cache, now=NOW + timedelta(minutes=3))
    after = later.cluster("hq-beijing-1")
    assert after.stale and after.reason.startswith("HTTP 500") and after.read_at == NOW
    assert (after.nodes, after.quotas, after.pods) == (first.nodes, first.quotas, first.pods)
    row = next(r for r in sources.workload_rows(later) if r["cluster"] == "hq-beijing-1")
    assert row["pods_running"] == 14 and row["source"].key == "inventory.source.live_stale"
    assert later.cluster("hq-beijing-1").banner(later.read_at).params["minutes"] == 3
    again = sources.read_inventory(cache=cache, now=NOW + timedelta(minutes=4)).cluster("hq-beijing-1")
    assert not again.stale and again.requested_by_node()["h800-002"] == 8


def test_demo_mode_derives_quotas_from_the_portals_allocations_and_invents_no_pods(monkeypatch):
    monkeypatch.delenv("COMPUTELOOP_CLUSTER_BACKEND", raising=False)
    reading = sources.read_inventory(cache={}, now=NOW)
    rows = sources.workload_rows(reading, {"hq-beijing-1": 40})
    hq = next(r for r in rows if r["cluster"] == "hq-beijing-1")
    assert hq["quota_hard"] == 40 and hq["source"].key == "inventory.source.demo"
    assert all(r["quota_used"] is None and r["pods_running"] is None and r["pods"] is None for r in rows)
    assert all(r["quota_hard"] == 0 for r in rows if r["cluster"] != "hq-beijing-1")
    assert all(not c.pods and not c.quotas and not c.workload for c in reading.clusters)


def test_pod_gpus_follow_the_schedulers_rule_and_quotas_read_spec_before_status():
    from core.cluster.inventory import decode_quotas, pod_gpus
    from core.cluster.manifests import load_cluster_settings

    settings = load_cluster_settings()

    def container(n, where="requests"):
        return {"name": "c", "resources": {where: {"nvidia.com/gpu": str(n)}}}

    pod = {"spec": {"containers": [container(2), container(1, "limits")], "initContainers": [container(4)]}}
    assert pod_gpus(pod, settings) == ("nvidia.com/gpu", 4)  # the init container needs more than 2 + 1
    pod["spec"]["initContainers"] = [container(1)]
    assert pod_gpus(pod, settings) == ("nvidia.com/gpu", 3)
    assert pod_gpus({"spec": {"containers": [{"name": "c"}]}}, settings) is None
    fresh = {"items": [{"metadata": {"namespace": "n", "name": "q"}, "spec": {"hard": {"requests.nvidia.com/gpu": "8"}}}]}
    (q,) = decode_quotas(fresh, "c1", settings)
    assert (q.hard, q.used) == (8, 0)  # the quota controller has not written its status yet
