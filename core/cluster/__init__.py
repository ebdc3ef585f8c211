"""Kubernetes adapter: manifests for an allocation, provisioning backends (plan and live) and
the GPU node inventory. Outside errors leave this package as :class:`ClusterError`."""

from core.cluster.backends import (
    KUBECONFIG_STEP, ClusterError, LiveBackend, ObjectRef, PlanBackend, ProvisionResult, Provisioner, StepResult,
    plan_or_live, steps_of,
)
from core.cluster.inventory import FakeInventory, GpuNode, Inventory, LiveInventory
from core.cluster.manifests import (
    AllocationSpec, ClusterSettings, PvcSpec, allocation_spec, kubeconfig, load_cluster_settings, namespace_name,
    render, to_yaml,
)

__all__ = [
    "KUBECONFIG_STEP", "AllocationSpec", "ClusterError", "ClusterSettings", "FakeInventory", "GpuNode", "Inventory",
    "LiveBackend", "LiveInventory", "ObjectRef", "PlanBackend", "ProvisionResult", "Provisioner", "PvcSpec",
    "StepResult", "allocation_spec", "kubeconfig", "load_cluster_settings", "namespace_name", "plan_or_live",
    "render", "steps_of", "to_yaml",
]
