"""The least-privilege RBAC of a managed GPU cluster (deploy/gpu-cluster), derived from what the live
backend really does: every request it sends to the Kubernetes API test server while it provisions,
provisions again (a resumed or recovered run), carries an extension to the cluster, suspends a
preempted allocation (green channel), provisions again after the suspension, reads the inventory
(nodes, quotas, pods) and the autoscalers, applies and reads the batch scheduler's queues, and reclaims (dry run, then deprovisioning) is recorded as
(API group, resource, verb); the ClusterRole must grant exactly that set — nothing used is missing,
nothing granted is unused.

Two grants are not requests but checks the API server makes on them (RBAC escalation prevention):
writing a Role needs ``escalate`` on roles (or every permission in the Role), writing a RoleBinding
needs ``bind`` on the Role it references (or every permission in it). They are derived from the
recorded Role and RoleBinding writes and the roleRef of the bindings the backend created."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import yaml

from core.cluster.autoscalers import LiveAutoscalers
from core.cluster.backends import LiveBackend
from core.cluster.inventory import LiveInventory
from core.cluster.manifests import PvcSpec, allocation_spec, load_cluster_settings
from core.org import load_org
from tests.support import clock
from tests.support.deploy import DEPLOY
from tests.support.kube_inventory import put_gpu_node
from tests.support.scheduler import drive_scheduler_flows

RBAC = "rbac.authorization.k8s.io"
_PATH = re.compile(r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))(?:/namespaces/(?P<ns>[^/]+)(?=/))?"
                   r"/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?/?$")
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}

Grant = tuple[str, str, str, str | None]  # (API group, resource, verb, resource name or None)


def authorised_as(method: str, path: str) -> Grant:
    """The RBAC request a REST call is authorised as (Kubernetes' request-info rules)."""
    m = _PATH.match(path)
    assert m, path
    group = "" if m["cv"] else m["g"]
    resource = m["plural"] + (f"/{m['sub']}" if m["sub"] else "")
    if method == "GET":
        verb = "get" if m["name"] else "list"
    elif method == "DELETE":
        verb = "delete" if m["name"] else "deletecollection"
    else:
        verb = _VERBS[method]
    return group, resource, verb, None


def granted(cluster_role: dict[str, Any]) -> set[Grant]:
    out = set()
    for rule in cluster_role["rules"]:
        names = rule.get("resourceNames") or [None]
        out |= {(g, r, v, n) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
                for n in names}
    return out


def rbac_files() -> list[dict[str, Any]]:
    docs = []
    for name in ("clusterrole.yaml", "identity.yaml"):
        docs += [d for d in yaml.safe_load_all((DEPLOY / "gpu-cluster" / name).read_text(encoding="utf-8")) if d]
    return docs


def drive_every_flow(api, client) -> tuple[list[tuple[str, str, int]], list[dict[str, Any]]]:
    """Run the live backend through every flow against the test server; the requests it sent and the
    RoleBindings it created."""
    settings = load_cluster_settings()
    spec = allocation_spec(load_org(), allocation_id="A-RBAC-0001", project="P-LLM-01", pool="hq-lang", gpus=8,
                           cpu=96, memory_gi=768, expires_at=clock.now() + timedelta(days=30),
                           user="zhang.san@example.com", pvcs=[PvcSpec("data", 500)])
    backend = LiveBackend(load_org(), settings, clients={spec.cluster: client}, now=clock.now)

    first = backend.provision(spec)                                   # provisioning
    assert first.ok and set(first.statuses().values()) == {"created"}, first.error
    bindings = api.objects("RoleBinding")
    assert backend.provision(spec).ok                                 # a resumed / recovered run
    extended = dataclasses.replace(spec, expires_at=spec.expires_at + timedelta(days=14))
    carried = backend.provision(extended)                             # an extension carried to the cluster
    assert carried.ok and "updated" in carried.statuses().values()

    gpu = settings.gpu_resource
    api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer-0", "namespace": spec.namespace},
             "spec": {"containers": [{"name": "main", "image": "t:1", "resources": {"limits": {gpu: "8"}}}]},
             "status": {"phase": "Running"}})
    assert [a.verb for a in backend.suspend(extended, dry_run=True)] == ["patch", "delete"]
    assert [a.verb for a in backend.suspend(extended, dry_run=False)] == ["patch", "delete"]  # green channel
    assert not api.objects("Pod")
    assert backend.provision(extended).statuses()["ResourceQuota/allocation"] == "updated"  # re-granted

    put_gpu_node(api, "h800-001", pool="hq-lang", gpus=8)
    api.put({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
             "metadata": {"name": "serve", "namespace": spec.namespace},
             "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "serve"}, "minReplicas": 1, "maxReplicas": 4},
             "status": {"currentReplicas": 1, "desiredReplicas": 2}})
    inventory = LiveInventory(backend.client, settings)               # the water level's live inventory
    assert [n.name for n in inventory.nodes(spec.cluster)] == ["h800-001"]
    assert [q.hard for q in inventory.quotas(spec.cluster)] == [8]
    assert inventory.pods(spec.cluster) == []
    assert [h.name for h in LiveAutoscalers(backend.client).hpas(spec.cluster)] == ["serve"]  # autoscaler events
    drive_scheduler_flows(api, backend, spec.cluster)  # the batch scheduler's queues per pool (Kueue, Volcano)

    planned = backend.deprovision(extended, dry_run=True)             # reclaim: the dry run ...
    assert backend.deprovision(extended, dry_run=False) == planned    # ... then the deletion
    assert not api.objects("Namespace") or all(o["metadata"]["name"] != spec.namespace for o in api.objects("Namespace"))
    return list(api.requests), bindings


def derive(requests: list[tuple[str, str, int]], bindings: list[dict[str, Any]]) -> set[Grant]:
    """The grants the recorded requests need, plus the escalation checks they trigger."""
    used = {authorised_as(method, path) for method, path, _ in requests}
    writes = {"create", "update", "patch"}
    if any(g == RBAC and r == "roles" and v in writes for g, r, v, _ in used):
        used.add((RBAC, "roles", "escalate", None))
    if any(g == RBAC and r == "rolebindings" and v in writes for g, r, v, _ in used):
        for binding in bindings:
            ref = binding["roleRef"]
            used.add((RBAC, {"Role": "roles", "ClusterRole": "clusterroles"}[ref["kind"]], "bind", ref["name"]))
    return used


def test_the_cluster_role_grants_exactly_what_the_live_backend_uses(kube):
    api, client = kube
    requests, bindings = drive_every_flow(api, client)
    assert all(status != 0 for _, _, status in requests)
    needed = derive(requests, bindings)
    (role,) = [d for d in rbac_files() if d["kind"] == "ClusterRole"]
    grants = granted(role)
    assert needed - grants == set(), "used by the live backend but not granted"
    assert grants - needed == set(), "granted but never used"


def test_the_derivation_sees_every_kind_of_call():
    """The recording maps each REST call to the RBAC request Kubernetes authorises (so the set above
    is the cluster's view, not ours)."""
    assert authorised_as("GET", "/api/v1/namespaces/cl-a") == ("", "namespaces", "get", None)
    assert authorised_as("GET", "/api/v1/pods") == ("", "pods", "list", None)
    assert authorised_as("GET", "/api/v1/namespaces/cl-a/pods") == ("", "pods", "list", None)
    assert authorised_as("POST", "/api/v1/namespaces/cl-a/serviceaccounts/user-x/token") == (
        "", "serviceaccounts/token", "create", None)
    assert authorised_as("PATCH", f"/apis/{RBAC}/v1/namespaces/cl-a/roles/workspace-edit") == (
        RBAC, "roles", "patch", None)
    assert authorised_as("DELETE", "/api/v1/namespaces/cl-a/pods") == ("", "pods", "deletecollection", None)


def test_the_portal_identity_is_bound_to_that_role():
    docs = rbac_files()
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    (token,) = [d for d in docs if d["kind"] == "Secret"]
    assert binding["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == account["metadata"]["name"]
    assert token["metadata"]["namespace"] == account["metadata"]["namespace"]
