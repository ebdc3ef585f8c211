"""The batch scheduler's objects through the live backend, against the Kubernetes API test server:
pool-level objects created, found again, repaired and resized; a fault names its step and a re-run
finishes; the allocation's LocalQueue comes and goes with the allocation; the plan backend renders what
the live backend applies; and the water level's reading of admitted and pending workloads per pool."""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from core.adjust.scheduler import apply_scheduler_objects, scheduler_workloads
from core.cluster.backends import LiveBackend, PlanBackend
from core.cluster.manifests import allocation_spec, load_cluster_settings
from core.cluster.scheduler_queues import cluster_objects, scheduler_objects
from core.cluster.scheduler_status import LiveSchedulerQueues, pool_workloads, read_pool_workloads
from core.identity import Identity
from core.org import load_org
from tests.support.fake_kube_api import collection_path
from tests.support.scheduler import kueue_status, settings_for, volcano_status
from tests.support import clock

NOW = clock.now()  # the frozen test instant
ORG = load_org()
HQ1 = "hq-beijing-1"
HQ1_POOLS = sorted(p.id for p in ORG.pools.values() if p.cluster == HQ1)
ADMIN = Identity(id="root", name="root", email="root@example.com", role="admin")


@pytest.fixture
def backend(kube):
    api, client = kube
    return LiveBackend(ORG, load_cluster_settings(), clients={c: client for c in ORG.clusters}, now=lambda: NOW)


def stored(api, kinds=("ResourceFlavor", "WorkloadPriorityClass", "ClusterQueue", "Queue", "PriorityClass")):
    out = []
    for obj in api.objects():
        if obj["kind"] not in kinds:
            continue
        obj = copy.deepcopy(obj)
        for server_set in ("uid", "resourceVersion", "creationTimestamp"):
            obj["metadata"].pop(server_set)
        out.append(obj)
    return out


@pytest.mark.parametrize("scheduler", ["kueue", "volcano"])
def test_live_apply_creates_what_the_plan_renders_then_finds_repairs_and_resizes_it(kube, backend, scheduler):
    api, _ = kube
    settings = settings_for(scheduler)
    objects = cluster_objects(ORG, HQ1, settings=settings)
    first = backend.apply_cluster_objects(HQ1, objects)
    assert first.ok and [s.status for s in first.steps] == ["created"] * len(objects)
    planned = list(yaml.safe_load_all(PlanBackend().apply_cluster_objects(HQ1, objects).manifests_yaml))
    assert stored(api) == planned  # the plan backend's YAML is exactly what the live backend applied

    again = backend.apply_cluster_objects(HQ1, objects)
    assert {s.status for s in again.steps} == {"unchanged"} and api.count("PATCH") == 0

    queue_kind = "ClusterQueue" if scheduler == "kueue" else "Queue"
    api.update(queue_kind, None, "hq-lang", {"spec": {"weight": 999} if scheduler == "volcano" else {"cohort": "x"}})
    repaired = backend.apply_cluster_objects(HQ1, objects)
    assert repaired.statuses()[f"{queue_kind}/hq-lang"] == "updated"
    assert stored(api) == planned

    grown = cluster_objects(ORG, HQ1, sizes={"hq-lang": 320}, settings=settings)
    result = backend.apply_cluster_objects(HQ1, grown)
    assert [s for s, st in result.statuses().items() if st == "updated"] == [f"{queue_kind}/hq-lang"]
    lang = api.store[(queue_kind, None, "hq-lang")]["spec"]
    if scheduler == "kueue":
        assert lang["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"] == "320"
    else:
        assert (lang["weight"], lang["capability"]["nvidia.com/gpu"]) == (320, "480")


@pytest.mark.parametrize("action", ["500", "close", "close_after"])
def test_a_fault_names_its_step_and_a_re_run_finishes_without_duplicates(kube, backend, action):
    api, _ = kube
    objects = cluster_objects(ORG, HQ1)
    api.inject(action, method="POST", path=f"^{collection_path('ClusterQueue')}$", name="hq-mm")
    failed = backend.apply_cluster_objects(HQ1, objects)
    assert failed.failed_step == "ClusterQueue/hq-mm" and failed.error.step == "ClusterQueue/hq-mm"
    assert list(failed.statuses())[-1] == "ClusterQueue/hq-mm"  # nothing after the failure was attempted
    retry = backend.apply_cluster_objects(HQ1, objects)
    assert retry.ok
    assert retry.statuses()["ClusterQueue/hq-mm"] == ("unchanged" if action == "close_after" else "created")
    assert len(api.created) == len(set(api.created)) == len(objects)


def test_the_service_applies_every_cluster_through_the_live_backend(kube, backend):
    api, _ = kube
    out = apply_scheduler_objects(actor=ADMIN, backend=backend)
    assert out["backend"] == "live" and all(c["ok"] for c in out["clusters"])
    assert sorted(o["metadata"]["name"] for o in api.objects("ClusterQueue")) == sorted(ORG.pools)
    # one ResourceFlavor per GPU model (the test server is one store for every cluster's client)
    assert sorted(o["metadata"]["name"] for o in api.objects("ResourceFlavor")) == sorted(
        {p.gpu.lower() for p in ORG.pools.values()})
    api.inject("500", method="POST", path=f"^{collection_path('ClusterQueue')}$", name="sc-pool")
    api.store.pop(("ClusterQueue", None, "sc-pool"))
    partly = apply_scheduler_objects(actor=ADMIN, backend=backend)
    assert [c["cluster"] for c in partly["clusters"] if not c["ok"]] == ["sc-chengdu"]
    (sc,) = [c for c in partly["clusters"] if c["cluster"] == "sc-chengdu"]
    assert sc["failed_step"] == "ClusterQueue/sc-pool" and sc["steps"][-1]["error"]["key"] == "cluster.api_error"


def test_the_allocation_local_queue_is_applied_with_it_and_goes_with_it(kube, backend):
    api, _ = kube
    spec = allocation_spec(ORG, allocation_id="A-20300009", project="P-LLM-01", pool="hq-lang", gpus=8, cpu=96,
                           memory_gi=768, expires_at=NOW + timedelta(days=30), user="zhang.san@example.com")
    result = backend.provision(spec)
    assert result.ok and result.statuses()["LocalQueue/default"] == "created"
    (lq,) = api.objects("LocalQueue")
    assert lq["metadata"]["namespace"] == spec.namespace and lq["spec"] == {"clusterQueue": "hq-lang"}
    later = backend.provision(dataclasses.replace(spec, expires_at=spec.expires_at + timedelta(days=7)))
    assert later.statuses()["LocalQueue/default"] == "updated"  # the expiry label moved
    assert ("LocalQueue", spec.namespace, "default") in {(r.kind, r.namespace, r.name) for r in
                                                         backend.deprovision(spec, dry_run=False)}
    assert api.objects("LocalQueue") == []


@pytest.mark.parametrize("scheduler", ["kueue", "volcano"])
def test_the_water_level_reads_admitted_and_pending_workloads_per_pool(kube, backend, scheduler):
    api, client = kube
    settings = settings_for(scheduler)
    assert backend.apply_cluster_objects(HQ1, cluster_objects(ORG, HQ1, settings=settings)).ok
    if scheduler == "kueue":
        api.update("ClusterQueue", None, "hq-lang", kueue_status(5, 3, "h800-sxm", "nvidia.com/gpu", 200, borrowed=8))
        expected = {"admitted": 5, "pending": 3, "gpus_in_use": 200, "gpus_borrowed": 8}
    else:
        api.update("Queue", None, "hq-lang", volcano_status(pending=3, inqueue=1, running=4, resource="nvidia.com/gpu",
                                                            gpus=200))
        expected = {"admitted": 5, "pending": 3, "gpus_in_use": 200, "gpus_borrowed": None}
    source = LiveSchedulerQueues(lambda cluster_id: client)
    rows = {r.pool: r for r in read_pool_workloads(ORG, source, pools=HQ1_POOLS + ["js-pool"], settings=settings)}
    lang = rows["hq-lang"]
    assert {k: getattr(lang, k) for k in expected} == expected and lang.found and lang.error is None
    assert (rows["hq-mm"].admitted, rows["hq-mm"].pending) == (0, 0)  # a queue not reconciled yet: nothing admitted
    assert not rows["js-pool"].found and rows["js-pool"].admitted is None  # never applied on its cluster


def test_a_cluster_that_fails_is_reported_on_its_pools_and_the_others_are_still_read(kube, backend):
    api, client = kube
    assert apply_scheduler_objects(actor=ADMIN, backend=backend)["clusters"]
    api.update("ClusterQueue", None, "js-pool", kueue_status(2, 1, "a800-80gb", "nvidia.com/gpu", 16))
    calls = []

    def client_for(cluster_id):
        calls.append(cluster_id)
        if cluster_id == HQ1:
            raise ConnectionRefusedError("no route to hq-beijing-1")
        return client

    rows = {r.pool: r for r in pool_workloads(ORG, source=LiveSchedulerQueues(client_for))}
    assert sorted(rows) == sorted(ORG.pools) and sorted(calls) == sorted({p.cluster for p in ORG.pools.values()})
    for pool in HQ1_POOLS:
        assert rows[pool].error.key == "cluster.unreachable" and rows[pool].admitted is None
        assert rows[pool].error.step == f"ClusterQueueList/{HQ1}"
    assert (rows["js-pool"].admitted, rows["js-pool"].pending, rows["js-pool"].gpus_in_use) == (2, 1, 16)
    answer = scheduler_workloads(actor=ADMIN, pool="js-pool", source=LiveSchedulerQueues(lambda c: client))
    assert answer["live"] and answer["pools"] == [{
        "pool": "js-pool", "cluster": "js-nanjing", "scheduler": "kueue", "queue": "js-pool", "admitted": 2,
        "pending": 1, "gpus_in_use": 16, "gpus_borrowed": 0, "found": True, "error": None}]


def test_queues_the_portal_does_not_manage_are_not_read(kube, backend):
    api, client = kube
    api.put({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
             "metadata": {"name": "team-x", "labels": {"computeloop.io/pool": "js-pool"}},
             "spec": {}, "status": {"admittedWorkloads": 99}})
    (row,) = read_pool_workloads(ORG, LiveSchedulerQueues(lambda c: client), pools=["js-pool"])
    assert not row.found and row.admitted is None
    assert scheduler_objects(ORG, pool="js-pool")  # the portal's own queue is what apply would create
