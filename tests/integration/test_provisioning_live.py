"""Live provisioning with the official kubernetes client against a Kubernetes API test server:
creation, idempotence, a fault at every step followed by a clean retry, deprovisioning and the
plan backend's equivalence with what the live backend applied."""

from __future__ import annotations

import copy
import dataclasses
import re
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config

from core.cluster.backends import KUBECONFIG_STEP, ClusterError, LiveBackend, PlanBackend, steps_of
from core.cluster.inventory import LiveInventory
from core.cluster.manifests import PvcSpec, allocation_spec, load_cluster_settings, render, step_name
from core.org import load_org
from tests.support.fake_kube_api import FakeKubeApi, collection_path

NOW = datetime(2030, 6, 1, tzinfo=timezone.utc)


def make_spec(**over):
    args = dict(allocation_id="A-20300001", project="P-LLM-01", pool="hq-lang", gpus=16, cpu=96, memory_gi=768,
                expires_at=NOW + timedelta(days=30), user="zhang.san@example.com",
                pvcs=[PvcSpec("data", 500), PvcSpec("ckpt", 2000)])
    args.update(over)
    return allocation_spec(load_org(), **args)


SPEC = make_spec()
SETTINGS = load_cluster_settings()
STEPS = steps_of(SPEC, SETTINGS)
MANIFESTS = render(SPEC, SETTINGS)
EXPECTED = {(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in MANIFESTS}


@pytest.fixture
def api():
    with FakeKubeApi() as server:
        yield server


@pytest.fixture
def api_client(api):
    cfg = k8s.Configuration()
    cfg.host = api.url
    with k8s.ApiClient(cfg) as c:
        yield c


@pytest.fixture
def backend(api_client):
    return LiveBackend(load_org(), SETTINGS, clients={SPEC.cluster: api_client}, now=lambda: NOW)


def stored(api):
    return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in api.objects()}


def fault_at(api, step: str, action: str = "500"):
    """Inject ``action`` into the request that performs ``step`` (its create POST, or the TokenRequest)."""
    if step == KUBECONFIG_STEP:
        path = rf"^{collection_path('ServiceAccount', SPEC.namespace)}/{SPEC.service_account}/token$"
        return api.inject(action, method="POST", path=path)
    manifest = next(m for m in MANIFESTS if step_name(m) == step)
    path = f"^{collection_path(manifest['kind'], manifest['metadata'].get('namespace'))}$"
    return api.inject(action, method="POST", path=path, name=manifest["metadata"]["name"])


def creations(api):
    """Every object creation the server performed (duplicates would show twice)."""
    return list(api.created)


def test_provision_creates_every_object_with_201_and_returns_a_working_kubeconfig(api, backend, tmp_path):
    result = backend.provision(SPEC)
    assert result.ok, result.error
    assert list(result.statuses()) == STEPS
    assert set(result.statuses().values()) == {"created"}
    assert stored(api) == EXPECTED
    assert len(creations(api)) == len(MANIFESTS)
    assert api.count("POST", 201) == len(MANIFESTS) + 1  # + the TokenRequest

    kc = yaml.safe_load(result.kubeconfig)
    assert kc["users"][0]["user"]["token"].startswith("fake-token-")
    assert kc["contexts"][0]["context"]["namespace"] == SPEC.namespace


def test_the_kubeconfig_loads_with_the_official_client_and_reaches_the_namespace(api, api_client, tmp_path):
    settings = dataclasses.replace(SETTINGS, servers={SPEC.cluster: api.url})
    live = LiveBackend(load_org(), settings, clients={SPEC.cluster: api_client}, now=lambda: NOW)
    result = live.provision(SPEC)
    path = tmp_path / "kubeconfig"
    path.write_text(result.kubeconfig, encoding="utf-8")
    doc = yaml.safe_load(result.kubeconfig)
    user_client = new_client_from_config(config_file=str(path), context=doc["current-context"])
    quotas = k8s.CoreV1Api(user_client).list_namespaced_resource_quota(SPEC.namespace)
    token = doc["users"][0]["user"]["token"]
    assert token.startswith("fake-token-") and api.authorization[-1] == f"Bearer {token}"
    assert [q.metadata.name for q in quotas.items] == ["allocation"]
    assert quotas.items[0].spec.hard["requests.nvidia.com/gpu"] == "16"


def test_provision_again_changes_nothing(api, backend):
    assert backend.provision(SPEC).ok
    before = {(o["kind"], o["metadata"]["name"]): o["metadata"]["resourceVersion"] for o in api.objects()}
    again = backend.provision(SPEC)
    assert again.ok
    assert {s: st for s, st in again.statuses().items() if s != KUBECONFIG_STEP} == {s: "unchanged" for s in STEPS[:-1]}
    assert api.count("PATCH") == 0 and api.count("PUT") == 0
    assert len(creations(api)) == len(MANIFESTS)  # no second creation of anything
    assert {(o["kind"], o["metadata"]["name"]): o["metadata"]["resourceVersion"] for o in api.objects()} == before
    assert stored(api) == EXPECTED


@pytest.mark.parametrize("action", ["500", "close", "close_after"])
@pytest.mark.parametrize("step", STEPS)
def test_a_fault_at_any_step_names_it_and_a_retry_finishes_without_duplicates_or_orphans(api, backend, step, action):
    fault_at(api, step, action)
    first = backend.provision(SPEC)
    assert not first.ok
    assert first.failed_step == step
    assert isinstance(first.error, ClusterError) and first.error.step == step
    if action == "500":
        assert first.error.key == "cluster.api_error" and first.error.status == 500
    else:
        assert first.error.key == "cluster.unreachable"
    done = STEPS[: STEPS.index(step)]
    assert list(first.statuses()) == done + [step]  # nothing after the failure was attempted
    assert first.kubeconfig is None

    retry = backend.provision(SPEC)
    assert retry.ok, retry.error
    assert stored(api) == EXPECTED  # no orphans, nothing missing
    assert len(creations(api)) == len(MANIFESTS)  # every object created exactly once over both runs
    statuses = retry.statuses()
    assert all(statuses[s] == "unchanged" for s in done)
    if step != KUBECONFIG_STEP:
        # the object was created by the server before the connection dropped: found, not re-created
        assert statuses[step] == ("unchanged" if action == "close_after" else "created")
    assert yaml.safe_load(retry.kubeconfig)["users"][0]["user"]["token"].startswith("fake-token-")


def test_a_failing_request_anywhere_including_reads_is_reported_and_retried(api, backend):
    assert backend.provision(SPEC).ok
    assert len(api.requests) == len(MANIFESTS) + 1
    mark = len(api.requests)
    assert backend.provision(SPEC).ok  # a second run: POST (409) and GET for every object, then the token
    second_run = len(api.requests) - mark
    assert second_run == 2 * len(MANIFESTS) + 1
    for n in range(1, second_run + 1):
        api.inject("500", nth=n)
        result = backend.provision(SPEC)
        assert not result.ok and result.error.status == 500, n
        assert backend.provision(SPEC).ok, n
        assert stored(api) == EXPECTED
    assert len(creations(api)) == len(MANIFESTS)


def test_quota_drift_and_a_changed_allocation_are_patched(api, api_client, backend):
    assert backend.provision(SPEC).ok
    quota_path = f"{collection_path('ResourceQuota', SPEC.namespace)}/allocation"
    k8s.CoreV1Api(api_client).patch_namespaced_resource_quota(
        "allocation", SPEC.namespace, {"spec": {"hard": {"requests.nvidia.com/gpu": "64"}}},
        _content_type="application/merge-patch+json")
    assert any(p == quota_path for m, p, _ in api.requests if m == "PATCH")
    fixed = backend.provision(SPEC)
    assert fixed.statuses()["ResourceQuota/allocation"] == "updated"
    quota = next(o for o in api.objects("ResourceQuota"))
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "16"

    bigger = dataclasses.replace(SPEC, gpus=24)
    result = backend.provision(bigger)
    assert result.statuses()["ResourceQuota/allocation"] == "updated"
    assert next(o for o in api.objects("ResourceQuota"))["spec"]["hard"]["requests.nvidia.com/gpu"] == "24"
    assert stored(api) == EXPECTED


def test_an_extension_moves_the_expiry_label_and_annotation(api, backend):
    assert backend.provision(SPEC).ok
    later = dataclasses.replace(SPEC, expires_at=SPEC.expires_at + timedelta(days=7))
    result = backend.provision(later)
    assert result.statuses()[STEPS[0]] == "updated"
    ns = api.store[("Namespace", None, SPEC.namespace)]["metadata"]
    assert ns["labels"]["computeloop.io/expires"] == later.expires_at.strftime("%Y%m%dT%H%M%SZ")
    assert ns["annotations"]["computeloop.io/expires-at"].startswith(later.expires_at.strftime("%Y-%m-%d"))
    assert stored(api) == EXPECTED


def test_quantities_the_server_canonicalised_are_not_drift(api, backend):
    spec = dataclasses.replace(SPEC, memory_gi=1024, cpu=0.5)
    assert backend.provision(spec).ok
    quota = api.store[("ResourceQuota", SPEC.namespace, "allocation")]
    assert quota["spec"]["hard"]["requests.memory"] == "1024Gi"
    quota["spec"]["hard"]["requests.memory"] = "1Ti"  # what a real API server answers
    quota["spec"]["hard"]["requests.cpu"] = "500m"
    again = backend.provision(spec)
    assert again.statuses()["ResourceQuota/allocation"] == "unchanged"
    assert api.count("PATCH") == 0


@pytest.mark.parametrize("fail_at", [None, "PersistentVolumeClaim/ckpt"])
def test_deprovision_dry_run_lists_exactly_what_a_real_deprovision_deletes(api, backend, fail_at):
    if fail_at:
        fault_at(api, fail_at)
    backend.provision(SPEC)
    present = stored(api)
    dry = backend.deprovision(SPEC, dry_run=True)
    assert api.count("DELETE") == 0 and stored(api) == present
    assert {(r.kind, r.namespace, r.name) for r in dry} == present
    assert dry[-1].kind == "Namespace"

    real = backend.deprovision(SPEC, dry_run=False)
    assert real == dry
    assert api.count("DELETE", 200) == len(dry)
    assert stored(api) == set()
    assert backend.deprovision(SPEC, dry_run=True) == []


def test_deprovision_refuses_a_namespace_another_allocation_owns(api, backend):
    api.put({"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": SPEC.namespace, "labels": {"computeloop.io/allocation": "someone-else"}}})
    with pytest.raises(ClusterError) as refused:
        backend.deprovision(SPEC, dry_run=False)
    assert refused.value.key == "cluster.not_owned"
    assert api.count("DELETE") == 0


def test_plan_backend_output_equals_the_manifests_the_live_backend_applied(api, backend):
    assert backend.provision(SPEC).ok
    plan = PlanBackend(SETTINGS).provision(SPEC)
    planned = list(yaml.safe_load_all(plan.manifests_yaml))
    applied = []
    for obj in api.objects():  # creation order
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        for server_set in ("uid", "resourceVersion", "creationTimestamp"):
            meta.pop(server_set)
        if obj["kind"] == "Namespace":
            meta["labels"].pop("kubernetes.io/metadata.name")
            obj.pop("spec"), obj.pop("status")
        applied.append(obj)
    assert applied == planned
    assert [step_name(m) for m in planned] == STEPS[:-1]


def test_an_unreachable_api_server_is_a_cluster_error_naming_the_first_step(api):
    cfg = k8s.Configuration()
    cfg.host = api.url
    cfg.retries = 0
    api.stop()  # nothing listens there any more
    live = LiveBackend(load_org(), SETTINGS, clients={SPEC.cluster: k8s.ApiClient(cfg)})
    result = live.provision(SPEC)
    assert result.failed_step == STEPS[0]
    assert result.error.key == "cluster.unreachable"
    assert STEPS[0] in result.error.english()


def test_client_is_built_from_the_cluster_kube_context(api, tmp_path):
    org = load_org()
    cluster = org.clusters[SPEC.cluster]
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": api.url}}],
        "users": [{"name": "u", "user": {"token": "portal-token"}}],
        "contexts": [{"name": cluster.kube_context, "context": {"cluster": "c", "user": "u"}}],
        "current-context": cluster.kube_context}), encoding="utf-8")
    live = LiveBackend(org, SETTINGS, kubeconfig_file=str(path), now=lambda: NOW)
    assert live.provision(SPEC).ok
    assert stored(api) == EXPECTED
    missing = LiveBackend(org, SETTINGS, kubeconfig_file=str(tmp_path / "absent"))
    result = missing.provision(SPEC)
    assert not result.ok and result.error.key == "cluster.config_error"


def test_live_inventory_lists_gpu_nodes_with_pool_and_product(api, api_client):
    for name, gpus, pool in [("gpu-1", "8", "hq-lang"), ("gpu-2", "8", "hq-mm"), ("cpu-1", None, None)]:
        labels = {"kubernetes.io/hostname": name}
        if pool:
            labels |= {"computeloop.io/pool": pool, "nvidia.com/gpu.product": "NVIDIA-H800"}
        allocatable = {"cpu": "96", "memory": "1Ti"} | ({"nvidia.com/gpu": gpus} if gpus else {})
        api.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
                 "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": "True"}]}})
    nodes = LiveInventory(lambda cluster_id: api_client, SETTINGS).nodes(SPEC.cluster)
    assert [(n.name, n.pool, n.gpu_product, n.gpus, n.ready) for n in nodes] == [
        ("gpu-1", "hq-lang", "NVIDIA-H800", 8, True), ("gpu-2", "hq-mm", "NVIDIA-H800", 8, True)]
    api.inject("500", method="GET", path=r"^/api/v1/nodes$")
    with pytest.raises(ClusterError):
        LiveInventory(lambda cluster_id: api_client, SETTINGS).nodes(SPEC.cluster)


def test_the_test_server_speaks_kubernetes_rest_semantics(api, api_client):
    core = k8s.CoreV1Api(api_client)
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as no_ns:
        core.create_namespaced_service_account("missing", {"metadata": {"name": "sa"}})
    assert no_ns.value.status == 404 and "NotFound" in no_ns.value.body
    created = core.create_namespace({"metadata": {"name": "ns1"}})
    assert created.metadata.resource_version and created.metadata.uid and created.metadata.creation_timestamp
    with pytest.raises(ApiException) as dup:
        core.create_namespace({"metadata": {"name": "ns1"}})
    assert dup.value.status == 409 and '"reason": "AlreadyExists"' in dup.value.body
    sa = core.create_namespaced_service_account("ns1", {"metadata": {"name": "sa"}})
    stale = sa.metadata.resource_version
    patched = core.patch_namespaced_service_account("sa", "ns1", {"metadata": {"labels": {"a": "b"}}})
    assert int(patched.metadata.resource_version) > int(stale)
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_service_account(
            "sa", "ns1", {"metadata": {"name": "sa", "resourceVersion": stale}})
    assert conflict.value.status == 409 and "Conflict" in conflict.value.body
    replaced = core.replace_namespaced_service_account(
        "sa", "ns1", {"metadata": {"name": "sa", "resourceVersion": patched.metadata.resource_version}})
    assert int(replaced.metadata.resource_version) > int(patched.metadata.resource_version)
    core.delete_namespaced_service_account("sa", "ns1")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_service_account("sa", "ns1")
    assert gone.value.status == 404
    assert re.match(r"^\d+$", core.read_namespace("ns1").metadata.resource_version)
