"""A preempted allocation stops on its cluster: the quota goes to 0 GPUs and the pods that request
GPUs are deleted (live backend, against the Kubernetes API test server); the namespace and its
volumes stay, and re-provisioning restores the quota. The plan backend lists the same steps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from kubernetes import client as k8s

from core.cluster.backends import ClusterError, LiveBackend, PlanBackend
from core.cluster.manifests import PvcSpec, allocation_spec, load_cluster_settings
from core.org import load_org
from tests.support.fake_kube_api import FakeKubeApi

NOW = datetime(2030, 6, 1, tzinfo=timezone.utc)
SETTINGS = load_cluster_settings()
SPEC = allocation_spec(load_org(), allocation_id="A-20300002", project="P-LLM-01", pool="hq-lang", gpus=8, cpu=96,
                       memory_gi=768, expires_at=NOW + timedelta(days=30), user="zhang.san@example.com",
                       pvcs=[PvcSpec("data", 500)])
GPU = f"requests.{SETTINGS.gpu_resource}"


def pod(name: str, gpus: int, phase: str = "Running") -> dict:
    resources = {"limits": {SETTINGS.gpu_resource: str(gpus)}} if gpus else {"requests": {"cpu": "1"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": SPEC.namespace},
            "spec": {"containers": [{"name": "main", "image": "trainer:1", "resources": resources}]},
            "status": {"phase": phase}}


@pytest.fixture
def api():
    with FakeKubeApi() as server:
        yield server


@pytest.fixture
def backend(api):
    cfg = k8s.Configuration()
    cfg.host = api.url
    with k8s.ApiClient(cfg) as c:
        yield LiveBackend(load_org(), SETTINGS, clients={SPEC.cluster: c}, now=lambda: NOW)


def quota_gpus(api) -> str:
    (quota,) = api.objects("ResourceQuota")
    return quota["spec"]["hard"][GPU]


def pods(api) -> set[str]:
    return {o["metadata"]["name"] for o in api.objects("Pod")}


def test_suspend_sets_the_quota_to_zero_and_deletes_only_running_gpu_pods(api, backend):
    assert backend.provision(SPEC).ok
    for p in (pod("trainer-0", 8), pod("tensorboard", 0), pod("old-run", 8, phase="Succeeded")):
        api.put(p)
    dry = backend.suspend(SPEC, dry_run=True)
    assert [(a.verb, a.kind, a.name) for a in dry] == [("patch", "ResourceQuota", "allocation"),
                                                       ("delete", "Pod", "trainer-0")]
    assert quota_gpus(api) == "8" and pods(api) == {"trainer-0", "tensorboard", "old-run"}  # a dry run changes nothing
    done = backend.suspend(SPEC, dry_run=False)
    assert [a.as_dict() for a in done] == [a.as_dict() for a in dry]
    assert quota_gpus(api) == "0" and pods(api) == {"tensorboard", "old-run"}
    assert {o["kind"] for o in api.objects()} >= {"Namespace", "PersistentVolumeClaim", "ServiceAccount"}
    # running it again finds nothing more to stop
    assert [a.verb for a in backend.suspend(SPEC, dry_run=False)] == ["patch"]
    # a re-grant re-provisions: the quota comes back, nothing is duplicated
    assert backend.provision(SPEC).statuses()["ResourceQuota/allocation"] == "updated"
    assert quota_gpus(api) == "8"


def test_suspend_refuses_a_namespace_another_allocation_owns(api, backend):
    assert backend.provision(SPEC).ok
    ns = api.objects("Namespace")[0]
    api.update("Namespace", None, ns["metadata"]["name"],
               {"metadata": {"labels": {SETTINGS.label("allocation"): "someone-else"}}})
    with pytest.raises(ClusterError) as err:
        backend.suspend(SPEC, dry_run=False)
    assert err.value.key == "cluster.not_owned"
    assert quota_gpus(api) == "8"


def test_suspend_of_a_namespace_that_is_gone_does_nothing(backend):
    assert backend.suspend(SPEC, dry_run=False) == []


def test_an_api_failure_names_the_step(api, backend):
    assert backend.provision(SPEC).ok
    api.put(pod("trainer-0", 8))
    api.inject("500", method="DELETE", path=r"/pods/trainer-0$")
    with pytest.raises(ClusterError) as err:
        backend.suspend(SPEC, dry_run=False)
    assert err.value.step == "Pod/trainer-0" and err.value.status == 500
    assert quota_gpus(api) == "0"  # the quota went first, so the pod cannot come back meanwhile


def test_the_plan_backend_lists_the_quota_patch_and_the_gpu_pods_for_the_operator():
    actions = PlanBackend(SETTINGS).suspend(SPEC)
    assert [(a.verb, a.kind, a.detail) for a in actions] == [
        ("patch", "ResourceQuota", f"{GPU}=0"), ("delete", "Pod", f"pods requesting {SETTINGS.gpu_resource}")]
