"""The batch scheduler's objects per pool (Kueue and Volcano): valid against the projects' API references
(custom kinds) and Kubernetes' schema (PriorityClass), with the figures of the org, the allocation shapes,
the queue policy and the green channel; the allocation's LocalQueue; the settings; the command line and
who may apply them."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from core.adjust.queue import load_policy
from core.adjust.scheduler import apply_scheduler_objects, scheduler_workloads
from core.cli import main
from core.cluster.backends import PlanBackend
from core.cluster.manifests import allocation_spec, load_cluster_settings, render
from core.cluster.scheduler_queues import (
    cluster_objects, load_scheduler_settings, pool_quota, priority_class_name, scheduler_objects,
)
from core.errors import InputError
from core.identity import Identity, PermissionDenied
from core.lifecycle.provisioning import load_provisioning_defaults
from core.org import load_org
from tests.support.data_copy import data_copy, write_data  # noqa: F401 - data_copy is a fixture
from tests.support.scheduler import settings_for
from tests.support.scheduler_schemas import SchemaError, validate_custom, validate_manifest
from tests.support import clock

K8S_VERSIONS = ["1.30", "1.37"]
ORG = load_org()
EXPIRES = clock.now() + timedelta(days=30)


def objects_of(scheduler: str) -> list[dict]:
    return [m for ms in scheduler_objects(ORG, settings=settings_for(scheduler)).values() for m in ms]


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in objects if m["kind"] == kind}


def spec_for(pool: str, project: str = "P-LLM-01"):
    return allocation_spec(ORG, allocation_id="A-20310001", project=project, pool=pool, gpus=8, cpu=96, memory_gi=768,
                           expires_at=EXPIRES, user="zhang.san@example.com")


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    write_data(path, text.replace(old, new))


# --- schema validity ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("scheduler", ["kueue", "volcano"])
def test_every_object_of_every_cluster_passes_its_schema(scheduler, version):
    objects = objects_of(scheduler)
    kinds = {m["kind"] for m in objects}
    assert kinds == ({"ResourceFlavor", "WorkloadPriorityClass", "ClusterQueue"} if scheduler == "kueue"
                     else {"PriorityClass", "Queue"})
    for m in objects:
        validate_manifest(m, version)  # PriorityClass: kubernetes-validate strict; custom kinds: their reference


@pytest.mark.parametrize("pool", sorted(ORG.pools))
def test_the_allocation_local_queue_passes_its_schema_and_points_at_its_pool_queue(pool):
    project = "P-JS-06" if pool == "js-pool" else "P-LLM-01"
    spec = spec_for(pool, project)
    (lq,) = [m for m in render(spec, load_cluster_settings()) if m["kind"] == "LocalQueue"]
    validate_custom(lq)
    assert lq["metadata"] == {"name": "default", "namespace": spec.namespace,
                              "labels": render(spec, load_cluster_settings())[0]["metadata"]["labels"]}
    queues = by_kind(scheduler_objects(ORG, pool=pool)[spec.cluster], "ClusterQueue")
    assert list(queues) == [lq["spec"]["clusterQueue"]]
    # the ClusterQueue admits the namespace: its selector matches the namespace's labels
    ns_labels = render(spec, load_cluster_settings())[0]["metadata"]["labels"]
    selector = queues[pool]["spec"]["namespaceSelector"]["matchLabels"]
    assert selector.items() <= ns_labels.items()
    other = spec_for("hq-mm" if pool != "hq-mm" else "hq-lang")
    assert not selector.items() <= render(other, load_cluster_settings())[0]["metadata"]["labels"].items()


BROKEN = [
    ("ClusterQueue", lambda m: m["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0].pop("nominalQuota"),
     "nominalQuota"),
    ("ClusterQueue", lambda m: m["spec"]["resourceGroups"][0]["flavors"][0]["resources"].pop(), "coveredResources"),
    ("ClusterQueue", lambda m: m["spec"].pop("cohort"), "cohort is empty"),
    ("ClusterQueue", lambda m: m["spec"].update(queueingStrategy="FIFO"), "queueingStrategy"),
    ("ClusterQueue", lambda m: m["spec"]["preemption"].update(withinClusterQueue="Any"), "withinClusterQueue"),
    ("ClusterQueue", lambda m: m["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0].update(nominalQuota="8 GPUs"),
     "nominalQuota"),
    ("ClusterQueue", lambda m: m["spec"].update(borrowing=True), "borrowing"),
    ("ClusterQueue", lambda m: m["metadata"].update(name="HQ_Lang"), "name"),
    ("ResourceFlavor", lambda m: m["spec"]["nodeLabels"].update({f"k{i}": "v" for i in range(8)}), "nodeLabels"),
    ("WorkloadPriorityClass", lambda m: m.update(value="100"), "value"),
    ("WorkloadPriorityClass", lambda m: m.pop("value"), "value"),
    ("WorkloadPriorityClass", lambda m: m.update(value=2**31), "value"),
    ("Queue", lambda m: m["spec"].update(weight=0), "weight"),
    ("Queue", lambda m: m["spec"].update(reclaimable="yes"), "reclaimable"),
    ("Queue", lambda m: m["spec"]["deserved"].update(cpu="100000"), "exceeds capability"),
    ("Queue", lambda m: m["metadata"].update(namespace="x"), "metadata"),
]


@pytest.mark.parametrize(("kind", "breaks", "named"), BROKEN, ids=[f"{k}-{n}-{i}" for i, (k, _, n) in enumerate(BROKEN)])
def test_the_schema_check_refuses_what_the_references_refuse(kind, breaks, named):
    scheduler = "volcano" if kind == "Queue" else "kueue"
    good = next(m for m in objects_of(scheduler) if m["kind"] == kind)
    validate_custom(good)
    bad = copy.deepcopy(good)
    breaks(bad)
    with pytest.raises(SchemaError, match=named):
        validate_custom(bad)


def test_a_local_queue_must_name_its_namespace_and_cluster_queue():
    lq = next(m for m in render(spec_for("hq-lang"), load_cluster_settings()) if m["kind"] == "LocalQueue")
    for path in (("metadata", "namespace"), ("spec", "clusterQueue")):
        bad = copy.deepcopy(lq)
        del bad[path[0]][path[1]]
        with pytest.raises(SchemaError):
            validate_custom(bad)


# --- figures ------------------------------------------------------------------------------------

def test_each_pool_gets_a_cluster_queue_with_its_gpus_and_the_matching_cpu_and_memory():
    queues = by_kind(objects_of("kueue"), "ClusterQueue")
    assert sorted(queues) == sorted(ORG.pools)
    per_gpu = load_provisioning_defaults().per_gpu
    settings = load_cluster_settings()
    for pool in ORG.pools.values():
        spec = queues[pool.id]["spec"]
        (group,) = spec["resourceGroups"]
        (flavor,) = group["flavors"]
        shape = per_gpu["inference" if pool.kind == "inference" else "training"]
        gpu = "huawei.com/Ascend910" if pool.gpu == "Ascend-910B" else settings.gpu_resource
        nominal = {r["name"]: r["nominalQuota"] for r in flavor["resources"]}
        assert group["coveredResources"] == [gpu, "cpu", "memory"]
        assert nominal == {gpu: str(pool.gpus), "cpu": str(int(pool.gpus * shape.cpu)),
                           "memory": f"{pool.gpus * shape.memory_gi}Gi"}
        assert flavor["name"] == pool.gpu.lower()
        assert spec["cohort"] == ORG.clusters[pool.cluster].unit.lower()


def test_pools_borrow_half_their_size_in_their_province_and_the_reserves_neither_borrow_nor_lend():
    queues = by_kind(objects_of("kueue"), "ClusterQueue")
    for pool in ORG.pools.values():
        gpu_row = queues[pool.id]["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]
        if pool.is_reserve:
            assert (gpu_row["borrowingLimit"], gpu_row["lendingLimit"]) == ("0", "0")
        else:
            assert gpu_row["borrowingLimit"] == str(pool.gpus // 2) and "lendingLimit" not in gpu_row
    # the HQ pools of one cluster share a cohort; Jiangsu's pool is in its own
    assert {queues[p]["spec"]["cohort"] for p in ("hq-lang", "hq-mm", "hq-reserve")} == {"hq"}
    assert queues["js-pool"]["spec"]["cohort"] == "js"


def test_every_flavour_a_queue_uses_is_rendered_on_its_cluster_and_selects_that_gpu_models_nodes():
    scheduler = load_scheduler_settings()
    for cluster, objects in scheduler_objects(ORG, settings=settings_for("kueue")).items():
        flavors = by_kind(objects, "ResourceFlavor")
        used = {q["spec"]["resourceGroups"][0]["flavors"][0]["name"] for q in by_kind(objects, "ClusterQueue").values()}
        assert used == set(flavors), cluster
        models = {p.gpu for p in ORG.pools.values() if p.cluster == cluster}
        assert {f["spec"]["nodeLabels"][scheduler.flavor_node_label] for f in flavors.values()} == models
        assert [m["kind"] for m in objects].index("ClusterQueue") > [m["kind"] for m in objects].index("ResourceFlavor")


def test_a_size_override_changes_the_quota_of_that_pool_only():
    base = scheduler_objects(ORG, pool="js-pool")["js-nanjing"]
    moved = scheduler_objects(ORG, pool="js-pool", sizes={"js-pool": 80, "zj-pool": 1})["js-nanjing"]
    row = by_kind(moved, "ClusterQueue")["js-pool"]["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]
    assert (row["nominalQuota"], row["borrowingLimit"]) == ("80", "40")
    assert [m for m in base if m["kind"] != "ClusterQueue"] == [m for m in moved if m["kind"] != "ClusterQueue"]
    assert pool_quota(ORG, "hq-inf", gpus=0).cpu == 0
    with pytest.raises(InputError):
        pool_quota(ORG, "hq-inf", gpus=-1)


@pytest.mark.parametrize("scheduler", ["kueue", "volcano"])
def test_priority_classes_follow_the_queue_policy_and_only_the_green_channel_preempts(scheduler):
    kind = "WorkloadPriorityClass" if scheduler == "kueue" else "PriorityClass"
    classes = by_kind(cluster_objects(ORG, "js-nanjing", settings=settings_for(scheduler)), kind)
    weights = load_policy().weights
    assert {n: c["value"] for n, c in classes.items()} == {
        priority_class_name(p): int(weights[p]) for p in ("low", "normal", "high", "critical")}
    assert "green channel" in classes[priority_class_name("critical")]["description"]
    if scheduler == "volcano":
        assert {n: c["preemptionPolicy"] for n, c in classes.items()} == {
            priority_class_name(p): "Never" for p in ("low", "normal", "high")} | {
            priority_class_name("critical"): "PreemptLowerPriority"}
        assert not any(c["globalDefault"] for c in classes.values())


def test_volcano_queues_are_weighted_by_size_capped_at_quota_plus_borrowing_and_reserves_are_guaranteed():
    queues = by_kind(objects_of("volcano"), "Queue")
    assert sorted(queues) == sorted(ORG.pools)
    for pool in ORG.pools.values():
        spec = queues[pool.id]["spec"]
        gpu = "huawei.com/Ascend910" if pool.gpu == "Ascend-910B" else "nvidia.com/gpu"
        assert spec["weight"] == pool.gpus and spec["reclaimable"] is True
        assert spec["deserved"][gpu] == str(pool.gpus)
        assert spec["capability"][gpu] == str(pool.gpus if pool.is_reserve else pool.gpus + pool.gpus // 2)
        assert ("guarantee" in spec) == pool.is_reserve
        if pool.is_reserve:
            assert spec["guarantee"]["resource"] == spec["deserved"]


# --- settings -----------------------------------------------------------------------------------

def test_volcano_namespaces_get_no_local_queue_and_the_plan_renders_volcano_objects(data_copy):
    rewrite(data_copy / "batch_scheduler.yaml", "scheduler: kueue", "scheduler: volcano")
    assert load_scheduler_settings().scheduler == "volcano"
    assert "LocalQueue" not in [m["kind"] for m in render(spec_for("hq-lang"), load_cluster_settings())]
    assert {m["kind"] for m in scheduler_objects(ORG, pool="hq-lang")["hq-beijing-1"]} == {"PriorityClass", "Queue"}


@pytest.mark.parametrize(("old", "new", "named"), [
    ("scheduler: kueue", "scheduler: yunikorn", "scheduler = yunikorn"),
    ("queueing_strategy: BestEffortFIFO", "queueing_strategy: FIFO", "queueing_strategy"),
    ("within_cluster_queue: Never", "within_cluster_queue: Always", "within_cluster_queue"),
    ("  dynamic_reserve: 0\n\n# Which", "  dynamic_reserve: 150\n\n# Which", "lending_percent"),
    ("local_queue_name: default", "local_queue_name: Default_Queue", "local_queue_name"),
    ("reclaimable: true", "reclaimable: maybe", "reclaimable"),
])
def test_a_bad_setting_names_the_file_and_the_entry(data_copy, old, new, named):
    rewrite(data_copy / "batch_scheduler.yaml", old, new)
    with pytest.raises(InputError) as bad:
        load_scheduler_settings()
    assert bad.value.params["field"] == "batch_scheduler.yaml" and named in bad.value.params["entry"]


# --- command line and service --------------------------------------------------------------------

def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_prints_the_objects_of_a_pool_as_yaml_and_refuses_an_unknown_pool_in_one_line(capsys):
    code, out, err = run(capsys, "scheduler", "objects", "--pool", "zj-pool")
    assert code == 0, err
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert docs == scheduler_objects(ORG, pool="zj-pool")["zj-hangzhou"]
    code, out, err = run(capsys, "scheduler", "objects", "--pool", "xx-pool")
    assert code == 2 and out == "" and err.count("\n") == 1 and "--pool" in err


def test_cli_apply_in_plan_mode_lists_the_planned_objects_and_workloads_says_there_is_nothing_to_read(capsys):
    code, out, err = run(capsys, "scheduler", "apply", "--pool", "js-pool", "--as", "li.na", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["backend"] == "plan" and [c["cluster"] for c in answer["clusters"]] == ["js-nanjing"]
    assert list(yaml.safe_load_all(answer["clusters"][0]["manifests_yaml"])) == scheduler_objects(ORG, pool="js-pool")[
        "js-nanjing"]
    code, out, err = run(capsys, "scheduler", "workloads", "--as", "li.na", "--lang", "zh-CN")
    assert code == 0 and "清单交付" in out
    code, out, err = run(capsys, "scheduler", "apply", "--as", "zhang.wei")
    assert code == 2 and out == "" and err.count("\n") == 1


def person(role: str, province: str = "HQ") -> Identity:
    return Identity(id=f"{role}-{province}", name=role, email=f"{role}@example.com", role=role, province=province)


def test_only_ops_apply_and_provincial_ops_only_on_their_own_province():
    plan = PlanBackend()
    for role in ("applicant", "dept_head", "committee", "executive"):
        with pytest.raises(PermissionDenied):
            apply_scheduler_objects(actor=person(role), backend=plan)
        with pytest.raises(PermissionDenied):
            scheduler_workloads(actor=person(role))
    every = apply_scheduler_objects(actor=person("hq_ops"), backend=plan)
    assert [c["cluster"] for c in every["clusters"]] == sorted({p.cluster for p in ORG.pools.values()})
    js = apply_scheduler_objects(actor=person("prov_ops", "JS"), backend=plan)
    assert [c["cluster"] for c in js["clusters"]] == ["js-nanjing"]
    with pytest.raises(PermissionDenied):
        apply_scheduler_objects(actor=person("prov_ops", "JS"), pool="zj-pool", backend=plan)
    with pytest.raises(InputError):
        apply_scheduler_objects(actor=person("admin"), pool="nowhere", backend=plan)
    assert scheduler_workloads(actor=person("admin")) == {"scheduler": "kueue", "live": False, "pools": []}
