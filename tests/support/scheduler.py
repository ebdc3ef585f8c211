"""The batch scheduler's objects on the Kubernetes API test server: settings for either scheduler, a
status as the scheduler's controller writes it, and every flow the live backend runs on them."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.cluster.scheduler_queues import SchedulerSettings, cluster_objects, load_scheduler_settings
from core.cluster.scheduler_status import LiveSchedulerQueues, read_pool_workloads
from core.org import load_org


def settings_for(scheduler: str) -> SchedulerSettings:
    """``data/batch_scheduler.yaml`` with ``scheduler`` chosen."""
    return dataclasses.replace(load_scheduler_settings(), scheduler=scheduler)


def kueue_status(admitted: int, pending: int, flavor: str, resource: str, gpus: int, borrowed: int = 0) -> dict[str, Any]:
    """A ClusterQueue ``status`` as Kueue's controller writes it (clusterqueue_types.go ClusterQueueStatus)."""
    return {"status": {"admittedWorkloads": admitted, "pendingWorkloads": pending, "reservingWorkloads": admitted,
                       "flavorsUsage": [{"name": flavor, "resources": [
                           {"name": resource, "total": str(gpus), "borrowed": str(borrowed)},
                           {"name": "cpu", "total": "12", "borrowed": "0"}]}],
                       "conditions": [{"type": "Active", "status": "True", "reason": "Ready"}]}}


def volcano_status(pending: int, inqueue: int, running: int, resource: str, gpus: int) -> dict[str, Any]:
    """A Volcano Queue ``status`` (PodGroups by phase, allocated resources)."""
    return {"status": {"state": "Open", "pending": pending, "inqueue": inqueue, "running": running, "unknown": 0,
                       "completed": 3, "allocated": {resource: str(gpus), "cpu": "96"}}}


def drive_scheduler_flows(api: Any, backend: Any, cluster: str) -> None:
    """Everything the live backend does with the pool-level objects of ``cluster``, for Kueue and for
    Volcano: apply (create), apply again (found: read), repair drift (patch), and the water level's
    reading of the queues (list)."""
    org = load_org()
    for scheduler in ("kueue", "volcano"):
        settings = settings_for(scheduler)
        objects = cluster_objects(org, cluster, settings=settings)
        first = backend.apply_cluster_objects(cluster, objects)
        assert first.ok and {s.status for s in first.steps} == {"created"}, first.error
        assert {s.status for s in backend.apply_cluster_objects(cluster, objects).steps} == {"unchanged"}
        for m in objects:  # someone edited every object by hand: the next run puts it back
            api.update(m["kind"], None, m["metadata"]["name"], {"metadata": {"labels": {"app.kubernetes.io/managed-by": "kubectl"}}})
        assert {s.status for s in backend.apply_cluster_objects(cluster, objects).steps} == {"updated"}
        pools = [p.id for p in org.pools.values() if p.cluster == cluster]
        rows = read_pool_workloads(org, LiveSchedulerQueues(backend.client), pools=pools, settings=settings)
        assert [r.found and r.error is None for r in rows] == [True] * len(pools)
