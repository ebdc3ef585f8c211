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
