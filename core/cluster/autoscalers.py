"""HorizontalPodAutoscalers (``autoscaling/v2``) per cluster: a typed record, a pure decoder and a
live source that lists them with the official client.

The autoscaler job (:func:`core.adjust.recorder.record_scale_events`) compares what it reads here
with what it saw last time and records each scale. In plan mode there is no live cluster, so
:func:`live_source` gives None and nothing is read (or made up).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol

# HPAs listed per request; the job follows ``metadata.continue`` until the list is complete.
PAGE_SIZE = 500


@dataclass(frozen=True)
class HpaStatus:
    """What one HorizontalPodAutoscaler decided last: replicas now and wanted, when, and why."""

    cluster: str
    namespace: str
    name: str
    target_kind: str
    target_name: str
    min_replicas: int | None
    max_replicas: int | None
    current_replicas: int | None
    desired_replicas: int | None
    last_scale_time: datetime | None
    conditions: tuple[dict[str, str], ...] = field(default=())

    @property
    def key(self) -> tuple[str, str, str]:
        """``(cluster, namespace, name)``."""
        return self.cluster, self.namespace, self.name


class AutoscalerSource(Protocol):
    """Where HPAs are read from."""

    def hpas(self, cluster_id: str) -> list[HpaStatus]:
        """Every HPA of ``cluster_id``; raises :class:`~core.cluster.backends.ClusterError`."""


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def decode_hpas(hpa_list: Mapping[str, Any], cluster_id: str) -> list[HpaStatus]:
    """The HPAs of a ``HorizontalPodAutoscalerList`` document, by namespace and name.

    Missing status fields (an HPA the controller has not reconciled yet) stay None.
    """
    out = []
    for item in hpa_list.get("items") or []:
        meta = item.get("metadata") or {}
        spec = item.get("spec") or {}
        status = item.get("status") or {}
        target = spec.get("scaleTargetRef") or {}
        conditions = tuple({"type": str(c.get("type", "")), "status": str(c.get("status", "")),
                            "reason": str(c.get("reason", "")), "message": str(c.get("message", ""))}
                           for c in status.get("conditions") or [] if isinstance(c, Mapping))
        out.append(HpaStatus(cluster_id, str(meta.get("namespace", "")), str(meta.get("name", "")),
                             str(target.get("kind", "")), str(target.get("name", "")),
                             _count(spec.get("minReplicas")), _count(spec.get("maxReplicas")),
                             _count(status.get("currentReplicas")), _count(status.get("desiredReplicas")),
                             _time(status.get("lastScaleTime")), conditions))
    return sorted(out, key=lambda h: (h.namespace, h.name))


class LiveAutoscalers:
    """Lists HPAs of every namespace through the official client; ``client_for(cluster_id)`` gives an
    ``ApiClient`` (e.g. :meth:`core.cluster.backends.LiveBackend.client`). One request per page of
    ``PAGE_SIZE`` HPAs, whatever the number of allocations."""

    def __init__(self, client_for: Callable[[str], Any]) -> None:
        self._client_for = client_for

    def hpas(self, cluster_id: str) -> list[HpaStatus]:
        """The HPAs of the cluster; raises :class:`~core.cluster.backends.ClusterError`."""
        from kubernetes import client as k8s

        from core.cluster.backends import translate_error

        step = f"HorizontalPodAutoscalerList/{cluster_id}"
        items: list[Any] = []
        token: str | None = None
        try:
            api = k8s.AutoscalingV2Api(self._client_for(cluster_id))
            while True:
                kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False}
                if token:
                    kwargs["_continue"] = token
                doc = json.loads(api.list_horizontal_pod_autoscaler_for_all_namespaces(**kwargs).data)
                items.extend(doc.get("items") or [])
                token = (doc.get("metadata") or {}).get("continue")
                if not token:
                    break
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise translate_error(step, exc) from exc
        return decode_hpas({"items": items}, cluster_id)


def live_source(org: Any) -> LiveAutoscalers | None:
    """The live HPA source when the settings choose the live cluster backend, else None (plan mode)."""
    from core import config
    from core.cluster.backends import LiveBackend

    cfg = config.load()
    if cfg.cluster_backend != "live":
        return None
    return LiveAutoscalers(LiveBackend(org, kubeconfig_file=cfg.kubeconfig or None).client)
