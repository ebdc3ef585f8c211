"""Manifests of an allocation: schema-valid for real Kubernetes versions, valid names and labels
for any input, quota figures that match the allocation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from core.cluster.backends import KUBECONFIG_STEP, PlanBackend, steps_of
from core.cluster.inventory import FakeInventory
from core.cluster.manifests import (
    AllocationSpec, PvcSpec, allocation_spec, dns_label, is_dns_label, is_label_value, kubeconfig, label_value,
    load_cluster_settings, namespace_name, render, to_yaml,
)
from core.errors import InputError
from core.org import load_org
from tests.support.scheduler_schemas import validate_manifest

# kubernetes-validate ships schemas for 1.25 … 1.37; check the oldest we expect in the field and the newest.
K8S_VERSIONS = ["1.30", "1.37"]
EXPIRES = datetime(2031, 3, 1, 8, 30, tzinfo=timezone.utc)


def spec(**over) -> AllocationSpec:
    base = dict(allocation_id="A-20250001", department="digital", project="P-LLM-01", unit="HQ", pool="hq-lang",
                cluster="hq-beijing-1", gpus=16, cpu=96, memory_gi=768, expires_at=EXPIRES,
                user="zhang.san@example.com", pvcs=(PvcSpec("data", 500), PvcSpec("ckpt", 2000, "fast-nvme")),
                storage_type="parallel_fs", jupyter_url="https://jupyter.example.internal/a-20250001")
    base.update(over)
    return AllocationSpec(**base)


ODD = [
    spec(),
    spec(project="光明电力大模型", department="数字化部", unit="总部", allocation_id="申请-0001"),
    spec(allocation_id="A-" + "9" * 80, project="P-" + "X" * 90, user="李四"),
    spec(allocation_id="--weird..ID__", project="p_a.b/c d", pvcs=(), cpu=0.5, user="CN=王五,OU=运维"),
]


@pytest.fixture(scope="module")
def settings():
    return load_cluster_settings()


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("s", ODD, ids=range(len(ODD)))
def test_every_manifest_validates_against_the_kubernetes_schema_strictly(s, version, settings):
    manifests = render(s, settings)
    assert [m["kind"] for m in manifests][:4] == ["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy"]
    for m in manifests:
        validate_manifest(m, version)  # built-in kinds: kubernetes-validate strict; the LocalQueue: its schema


@pytest.mark.parametrize("s", ODD, ids=range(len(ODD)))
def test_names_and_label_values_are_valid_for_odd_inputs(s, settings):
    manifests = render(s, settings)
    assert is_dns_label(s.namespace) and s.namespace.startswith("cl-")
    assert is_dns_label(s.service_account)
    for m in manifests:
        meta = m["metadata"]
        assert is_dns_label(meta["name"]), meta["name"]
        assert meta.get("namespace") in (None, s.namespace)
        for key, value in meta["labels"].items():
            assert is_label_value(value), (key, value)
            assert len(key.split("/")[-1]) <= 63


def test_chinese_ids_become_distinct_hashed_names():
    a, b = namespace_name("A-1", "光明电力大模型"), namespace_name("A-1", "智能客服")
    assert a != b and is_dns_label(a) and is_dns_label(b)
    assert label_value("数字化部") != label_value("研究院")
    assert is_label_value(label_value("数字化部"))


def test_namespace_keeps_the_allocation_id_and_shortens_the_project():
    name = namespace_name("A-20250001", "P-" + "LONG" * 30)
    assert name.startswith("cl-a-20250001-p-long") and len(name) <= 63 and is_dns_label(name)
    assert namespace_name("A-20250001", "P-LLM-01") == "cl-a-20250001-p-llm-01"


@pytest.mark.parametrize("text", ["", "-", "a" * 200, "Ab_C.d", "x.", "项目", "a b c", "Z" * 63])
def test_sanitisers_always_give_valid_values(text):
    assert is_dns_label(dns_label(text))
    assert is_label_value(label_value(text))


def test_valid_label_values_pass_through_unchanged():
    assert label_value("P-LLM-01") == "P-LLM-01"
    assert label_value("hq-lang") == "hq-lang"


def test_quota_figures_match_the_allocation(settings):
    rq = next(m for m in render(spec(), settings) if m["kind"] == "ResourceQuota")
    assert rq["spec"]["hard"] == {
        "requests.nvidia.com/gpu": "16", "requests.cpu": "96", "requests.memory": "768Gi",
        "persistentvolumeclaims": "2", "requests.storage": "2500Gi",
    }
    half = next(m for m in render(spec(cpu=1.5, pvcs=()), settings) if m["kind"] == "ResourceQuota")
    assert half["spec"]["hard"]["requests.cpu"] == "1500m"
    assert half["spec"]["hard"]["persistentvolumeclaims"] == "0"


def test_labels_carry_allocation_department_project_and_expiry(settings):
    ns = render(spec(), settings)[0]
    labels = ns["metadata"]["labels"]
    assert labels["computeloop.io/allocation"] == "A-20250001"
    assert labels["computeloop.io/department"] == "digital"
    assert labels["computeloop.io/project"] == "P-LLM-01"
    assert labels["computeloop.io/expires"] == "20310301T083000Z"
    assert ns["metadata"]["annotations"]["computeloop.io/expires-at"] == "2031-03-01T08:30:00Z"


def test_pvcs_use_the_pool_storage_class_unless_one_is_given(settings):
    pvcs = {m["metadata"]["name"]: m["spec"] for m in render(spec(), settings) if m["kind"] == "PersistentVolumeClaim"}
    assert pvcs["data"]["storageClassName"] == "parallel-fs"
    assert pvcs["data"]["accessModes"] == ["ReadWriteMany"]
    assert pvcs["ckpt"]["storageClassName"] == "fast-nvme"
    assert pvcs["ckpt"]["resources"]["requests"]["storage"] == "2000Gi"


def test_a_bad_pvc_name_or_unknown_storage_is_an_input_error(settings):
    with pytest.raises(InputError) as bad:
        render(spec(pvcs=(PvcSpec("Data_1", 10),)), settings)
    assert bad.value.key == "cluster.bad_name"
    with pytest.raises(InputError) as unknown:
        render(spec(storage_type="tape", pvcs=(PvcSpec("data", 10),)), settings)
    assert unknown.value.key == "cluster.storage_class_unknown"


def test_network_policy_denies_other_namespaces_but_allows_own_ingress_and_monitoring(settings):
    np = next(m for m in render(spec(), settings) if m["kind"] == "NetworkPolicy")
    assert np["spec"]["podSelector"] == {} and np["spec"]["policyTypes"] == ["Ingress"]
    sources = np["spec"]["ingress"][0]["from"]
    assert {"podSelector": {}} in sources
    allowed = {s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in sources if "namespaceSelector" in s}
    assert allowed == {"ingress-nginx", "monitoring"}


def test_rolebinding_binds_the_user_and_the_service_account_to_the_role_and_role_cannot_touch_quota(settings):
    manifests = render(spec(), settings)
    rb = next(m for m in manifests if m["kind"] == "RoleBinding")
    role = next(m for m in manifests if m["kind"] == "Role")
    assert rb["roleRef"]["name"] == role["metadata"]["name"]
    assert {(s["kind"], s["name"]) for s in rb["subjects"]} == {("User", "zhang.san@example.com"),
                                                                ("ServiceAccount", spec().service_account)}
    writable = {r for rule in role["rules"] if "create" in rule["verbs"] for r in rule["resources"]}
    assert not writable & {"resourcequotas", "limitranges", "networkpolicies", "roles", "rolebindings"}


def test_kubeconfig_in_plan_mode_has_server_namespace_and_a_token_placeholder(settings):
    s = spec()
    doc = yaml.safe_load(kubeconfig(s, settings, now=EXPIRES - timedelta(days=7)))
    assert doc["clusters"][0]["cluster"]["server"] == settings.servers["hq-beijing-1"]
    assert doc["contexts"][0]["context"]["namespace"] == s.namespace
    assert doc["current-context"] == doc["contexts"][0]["name"]
    token = doc["users"][0]["user"]["token"]
    assert token.startswith("<token:") and f"--duration={7 * 86400}s" in token


def test_plan_backend_returns_the_manifests_as_multi_document_yaml_and_touches_nothing(settings):
    s = spec()
    result = PlanBackend(settings).provision(s)
    assert result.ok and set(result.statuses().values()) == {"planned"}
    assert list(yaml.safe_load_all(result.manifests_yaml)) == render(s, settings)
    assert list(result.statuses()) == steps_of(s, settings) and steps_of(s, settings)[-1] == KUBECONFIG_STEP
    assert [r.kind for r in PlanBackend(settings).deprovision(s, dry_run=True)][-1] == "Namespace"
    assert to_yaml(render(s, settings)) == result.manifests_yaml


def test_allocation_spec_fills_department_unit_cluster_and_storage_from_the_org():
    s = allocation_spec(load_org(), allocation_id="A-1", project="P-JS-06", pool="js-pool", gpus=8, cpu=32,
                        memory_gi=256, expires_at=EXPIRES, user="u1", pvcs=[("data", 100, None)])
    assert (s.department, s.unit, s.cluster, s.storage_type) == ("js-it", "JS", "js-nanjing", "local_ssd")
    assert s.pvcs == (PvcSpec("data", 100, None),)
    with pytest.raises(InputError):
        allocation_spec(load_org(), allocation_id="A-1", project="nope", pool="js-pool", gpus=8, cpu=32,
                        memory_gi=256, expires_at=EXPIRES, user="u1")


def test_fake_inventory_matches_pool_sizes():
    org = load_org()
    nodes = FakeInventory(org).nodes("sd-jinan")
    assert sum(n.gpus for n in nodes) == org.pools["sd-pool"].gpus
    assert len(nodes) == org.pools["sd-pool"].nodes and {n.pool for n in nodes} == {"sd-pool"}
    assert {n.gpu_product for n in nodes} == {"A30"}


def test_ascend_pools_get_the_ascend_resource_in_their_quota():
    from datetime import datetime, timezone

    from core.cluster.manifests import allocation_spec, load_cluster_settings, render
    from core.org import load_org

    spec = allocation_spec(load_org(), allocation_id="A1", project="P-JS-06", pool="zj-pool", gpus=8, cpu=32,
                           memory_gi=256, expires_at=datetime(2027, 1, 1, tzinfo=timezone.utc), user="zhang.wei")
    quota = next(m for m in render(spec, load_cluster_settings()) if m["kind"] == "ResourceQuota")
    assert quota["spec"]["hard"]["requests.huawei.com/Ascend910"] == "8"
    assert not any("nvidia.com" in key for key in quota["spec"]["hard"])
