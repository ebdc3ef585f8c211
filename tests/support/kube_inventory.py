"""Helpers for tests of the live node inventory: a kubeconfig with one context per cluster, GPU
Nodes stored in the Kubernetes API test server, and addresses that refuse or never answer."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import yaml

from tests.support.fake_kube_api import FakeKubeApi


def write_kubeconfig(path: Path, servers: Mapping[str, str]) -> Path:
    """A kubeconfig with one context (named as the cluster's kube_context) per ``servers`` entry."""
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": c, "cluster": {"server": url}} for c, url in servers.items()],
           "users": [{"name": "portal", "user": {"token": "portal-token"}}],
           "contexts": [{"name": c, "context": {"cluster": c, "user": "portal"}} for c in servers],
           "current-context": next(iter(servers))}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def put_gpu_node(api: FakeKubeApi, name: str, *, pool: str | None, gpus: int, product: str | None = "NVIDIA-H800",
                 ready: bool = True, resource: str = "nvidia.com/gpu") -> None:
    """Store one Node with ``gpus`` allocatable of ``resource``, the pool and product labels."""
    labels = {"kubernetes.io/hostname": name}
    if pool:
        labels["computeloop.io/pool"] = pool
    if product:
        labels["nvidia.com/gpu.product"] = product
    api.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
             "status": {"allocatable": {"cpu": "96", "memory": "1Ti", resource: str(gpus)},
                        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})


def refused_url() -> str:
    """An address where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def silent_server() -> Iterator[str]:
    """An address that accepts connections but never answers (a hung API server)."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as s:
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def put_namespace(api: FakeKubeApi, name: str) -> None:
    """Store a Namespace (quotas and pods live in one), once."""
    if not any(o["metadata"]["name"] == name for o in api.objects("Namespace")):
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def put_gpu_quota(api: FakeKubeApi, namespace: str, *, hard: int, used: int, name: str = "allocation",
                  resource: str = "nvidia.com/gpu") -> None:
    """Store a ResourceQuota limiting ``requests.<resource>`` to ``hard``, with the quota controller's
    status (``used``) already written, plus a CPU entry that must not count."""
    put_namespace(api, namespace)
    key = f"requests.{resource}"
    api.put({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": namespace},
             "spec": {"hard": {key: str(hard), "requests.cpu": "64"}},
             "status": {"hard": {key: str(hard), "requests.cpu": "64"}, "used": {key: str(used), "requests.cpu": "8"}}})


def put_gpu_pod(api: FakeKubeApi, namespace: str, name: str, *, node: str | None, gpus: int, phase: str = "Running",
                resource: str = "nvidia.com/gpu", limits_only: bool = False) -> None:
    """Store a Pod whose one container asks for ``gpus`` of ``resource`` (as requests and limits, or
    as limits only, which Kubernetes turns into the request), bound to ``node`` (None: pending)."""
    put_namespace(api, namespace)
    res = {"limits": {resource: str(gpus)}} if limits_only else {"requests": {resource: str(gpus), "cpu": "8"},
                                                                  "limits": {resource: str(gpus)}}
    spec: dict = {"containers": [{"name": "main", "image": "train:1", "resources": res if gpus else {}}]}
    if node:
        spec["nodeName"] = node
    api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
             "spec": spec, "status": {"phase": phase}})
