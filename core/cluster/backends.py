"""Provisioning backends: one narrow interface, a plan (dry-run) backend and a live one.

:class:`PlanBackend` renders the manifests and hands them back as YAML for GitOps; it never
touches a cluster. :class:`LiveBackend` applies them with the official ``kubernetes`` client,
one ``ApiClient`` per cluster. It is idempotent: every object is created, an existing one
(409 AlreadyExists) is read and left alone or merge-patched when its desired fields differ,
and a run that stops midway is finished by running it again. Errors of the client, the HTTP
layer and the network are translated here into :class:`ClusterError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Protocol, Sequence

from core.clock import utc_now
from core.cluster.manifests import (
    AllocationSpec, ClusterSettings, kubeconfig, load_cluster_settings, render, step_name, to_yaml,
    token_seconds,
)
from core.cluster.scheduler_queues import CUSTOM_KINDS, RECONCILED, custom_object_call
from core.errors import ComputeLoopError

CREATED, UNCHANGED, UPDATED, FAILED, PLANNED = "created", "unchanged", "updated", "failed", "planned"
KUBECONFIG_STEP = "Kubeconfig/token"


class ClusterError(ComputeLoopError):
    """The Kubernetes API (or the way to it) failed; ``step`` names what was being done."""

    def __init__(self, key: str, *, step: str = "", status: int | str = "", reason: str = "", **params: Any) -> None:
        self.step = step
        self.status = status
        self.reason = reason
        super().__init__(key, step=step, status=status, reason=reason, **params)


def translate_error(step: str, exc: BaseException) -> ClusterError:
    """The :class:`ClusterError` for an exception raised while doing ``step``."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    if isinstance(exc, ClusterError):
        return exc
    if isinstance(exc, ApiException):
        reason = exc.reason or ""
        try:
            body = json.loads(exc.body) if exc.body else {}
            reason = ": ".join(x for x in (body.get("reason"), body.get("message")) if x) or reason
        except (ValueError, AttributeError):
            pass
        return ClusterError("cluster.api_error", step=step, status=exc.status or 0, reason=reason)
    if isinstance(exc, ConfigException):
        return ClusterError("cluster.config_error", step=step, reason=str(exc))
    # urllib3 errors (connection refused, dropped, timeouts) and plain socket errors
    return ClusterError("cluster.unreachable", step=step, reason=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class ObjectRef:
    """One Kubernetes object by kind, namespace and name."""

    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, manifest: Mapping[str, Any]) -> "ObjectRef":
        meta = manifest["metadata"]
        return cls(manifest["kind"], meta["name"], meta.get("namespace"))


@dataclass(frozen=True)
class StepResult:
    """What one step did: created | unchanged | updated | failed | planned."""

    step: str
    status: str
    error: ClusterError | None = None


@dataclass(frozen=True)
class ProvisionResult:
    """The outcome of one provision run; steps after a failure are not attempted."""

    allocation_id: str
    namespace: str
    cluster: str
    backend: str
    steps: tuple[StepResult, ...]
    kubeconfig: str | None = None
    manifests_yaml: str | None = None

    @property
    def ok(self) -> bool:
        """True when no step failed."""
        return self.failed_step is None

    @property
    def failed_step(self) -> str | None:
        """Name of the failed step, if any."""
        return next((s.step for s in self.steps if s.status == FAILED), None)

    @property
    def error(self) -> ClusterError | None:
        """The error of the failed step, if any."""
        return next((s.error for s in self.steps if s.status == FAILED), None)

    def statuses(self) -> dict[str, str]:
        """``{step: status}`` in order."""
        return {s.step: s.status for s in self.steps}


@dataclass(frozen=True)
class SuspendAction:
    """One thing a suspension does (or, in plan mode and dry runs, would do) on the cluster.

    ``verb`` is ``patch`` (the ResourceQuota's GPU request set to 0, ``detail`` names the
    resource) or ``delete`` (a running pod that requests GPUs; in plan mode one entry with an
    empty ``name`` stands for every such pod, since the plan does not read the cluster).
    """

    verb: str
    kind: str
    name: str
    namespace: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"verb": self.verb, "kind": self.kind, "name": self.name, "namespace": self.namespace,
                "detail": self.detail}


def _quota_action(spec: AllocationSpec, settings: ClusterSettings) -> tuple[SuspendAction, dict[str, Any]]:
    """The ResourceQuota patch that stops an allocation from holding GPUs (namespace and data stay)."""
    quota = next(m for m in render(spec, settings) if m["kind"] == "ResourceQuota")
    resource = f"requests.{spec.gpu_resource or settings.gpu_resource}"
    action = SuspendAction("patch", "ResourceQuota", quota["metadata"]["name"], spec.namespace, f"{resource}=0")
    return action, {"spec": {"hard": {resource: "0"}}}


class Provisioner(Protocol):
    """Puts an allocation onto its cluster and takes it off again."""

    def provision(self, spec: AllocationSpec) -> ProvisionResult:
        """Create (or finish creating) every object of ``spec``; never raises for API failures."""

    def deprovision(self, spec: AllocationSpec, dry_run: bool) -> list[ObjectRef]:
        """Delete the allocation's objects (or, with ``dry_run``, list what would go)."""

    def suspend(self, spec: AllocationSpec, dry_run: bool) -> list[SuspendAction]:
        """Stop a preempted allocation's GPU work: quota to 0 GPUs, GPU pods deleted; the
        namespace, volumes and access stay so a later re-grant resumes where it stopped."""


def steps_of(spec: AllocationSpec, settings: ClusterSettings | None = None) -> list[str]:
    """Names of the steps a provision run goes through, in order."""
    settings = settings or load_cluster_settings()
    return [step_name(m) for m in render(spec, settings)] + [KUBECONFIG_STEP]


class PlanBackend:
    """Renders manifests and a kubeconfig with a token placeholder; never touches a cluster."""

    name = "plan"

    def __init__(self, settings: ClusterSettings | None = None) -> None:
        self._settings = settings

    @property
    def settings(self) -> ClusterSettings:
        return self._settings or load_cluster_settings()

    def manifests(self, spec: AllocationSpec) -> list[dict[str, Any]]:
        """The rendered manifests, in apply order."""
        return render(spec, self.settings)

    def provision(self, spec: AllocationSpec) -> ProvisionResult:
        """Every step ``planned``; ``manifests_yaml`` is the download for GitOps."""
        manifests = self.manifests(spec)
        steps = tuple(StepResult(step_name(m), PLANNED) for m in manifests) + (StepResult(KUBECONFIG_STEP, PLANNED),)
        return ProvisionResult(spec.allocation_id, spec.namespace, spec.cluster, self.name, steps,
                               kubeconfig=kubeconfig(spec, self.settings), manifests_yaml=to_yaml(manifests))

    def deprovision(self, spec: AllocationSpec, dry_run: bool = True) -> list[ObjectRef]:
        """What a deprovision would delete (reverse apply order); nothing is deleted."""
        return [ObjectRef.of(m) for m in reversed(self.manifests(spec))]

    def suspend(self, spec: AllocationSpec, dry_run: bool = True) -> list[SuspendAction]:
        """What a suspension does, for the operator to apply; nothing is touched."""
        quota, _ = _quota_action(spec, self.settings)
        gpu = quota.detail.split("=")[0].removeprefix("requests.")
        return [quota, SuspendAction("delete", "Pod", "", spec.namespace, f"pods requesting {gpu}")]

    def apply_cluster_objects(self, cluster_id: str, manifests: Sequence[dict[str, Any]]) -> ProvisionResult:
        """Cluster-level objects (the batch scheduler's, :mod:`core.cluster.scheduler_queues`): every
        step ``planned``, ``manifests_yaml`` the download for GitOps."""
        steps = tuple(StepResult(step_name(m), PLANNED) for m in manifests)
        return ProvisionResult("", "", cluster_id, self.name, steps, manifests_yaml=to_yaml(manifests))

    def alert_rules(self, cluster: str, placed: Sequence[Any] = ()) -> dict[str, Any]:
        """The cluster's PrometheusRule (dual-threshold alerts of the ``placed`` policies, pool saturation)."""
        from core.cluster.alert_rules import prometheus_rule

        return prometheus_rule(cluster, placed, cluster_settings=self.settings)


# --- live --------------------------------------------------------------------------------------

# kind → (API class name, method suffix, namespaced); methods are <verb>_<suffix>.
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("CoreV1Api", "namespace", False),
    "ResourceQuota": ("CoreV1Api", "namespaced_resource_quota", True),
    "LimitRange": ("CoreV1Api", "namespaced_limit_range", True),
    "PersistentVolumeClaim": ("CoreV1Api", "namespaced_persistent_volume_claim", True),
    "ServiceAccount": ("CoreV1Api", "namespaced_service_account", True),
    "NetworkPolicy": ("NetworkingV1Api", "namespaced_network_policy", True),
    "Role": ("RbacAuthorizationV1Api", "namespaced_role", True),
    "RoleBinding": ("RbacAuthorizationV1Api", "namespaced_role_binding", True),
    "PriorityClass": ("SchedulingV1Api", "priority_class", False),
}

# Fields kept in line with the desired state when an object already exists. Everything else of
# an existing object is left as found: PVC specs are immutable once bound, roleRef cannot change.
_RECONCILED: dict[str, tuple[str, ...]] = {
    "Namespace": (),
    "ResourceQuota": ("spec",),
    "LimitRange": ("spec",),
    "NetworkPolicy": ("spec",),
    "PersistentVolumeClaim": (),
    "ServiceAccount": (),
    "Role": ("rules",),
    "RoleBinding": ("subjects",),
    **RECONCILED,  # the batch scheduler's kinds
}
_MERGE_PATCH = "application/merge-patch+json"


def _same_scalar(actual: Any, desired: Any) -> bool:
    if actual == desired:
        return True
    if isinstance(actual, str) and isinstance(desired, str) and desired[:1].isdigit():
        # the API server stores quantities canonically ("1024Gi" comes back as "1Ti")
        from kubernetes.utils import parse_quantity

        try:
            return parse_quantity(actual) == parse_quantity(desired)
        except ValueError:
            return False
    return False


def _contains(actual: Any, desired: Any) -> bool:
    """True if every field of ``desired`` is in ``actual`` with the same value (lists: equal
    item by item; quantities compared by amount)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(_contains(actual.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(actual) == len(desired)
                and all(_contains(a, d) for a, d in zip(actual, desired)))
    return _same_scalar(actual, desired)


def _json(response: Any) -> dict[str, Any]:
    data = response.data if hasattr(response, "data") else response
    return json.loads(data) if data else {}


class LiveBackend:
    """Applies manifests with the official client, one ``ApiClient`` per cluster id.

    ``clients`` injects ready clients (tests, or a composition root that built them); others
    are built on first use from the kubeconfig context of the cluster in ``org``
    (``kubernetes.config.new_client_from_config(config_file=kubeconfig_file,
    context=cluster.kube_context)``; ``kubeconfig_file`` None means $KUBECONFIG or ~/.kube/config).
    """

    name = "live"

    def __init__(self, org: Any = None, settings: ClusterSettings | None = None, *,
                 clients: Mapping[str, Any] | None = None,
                 client_factory: Callable[[str], Any] | None = None,
                 kubeconfig_file: str | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self._org = org
        self._settings = settings
        self._clients: dict[str, Any] = dict(clients or {})
        self._factory = client_factory
        self._kubeconfig_file = kubeconfig_file
        self._now = now or utc_now

    @property
    def settings(self) -> ClusterSettings:
        return self._settings or load_cluster_settings()

    def client(self, cluster_id: str) -> Any:
        """The ``ApiClient`` for ``cluster_id`` (built from its kubeconfig context when needed)."""
        if cluster_id not in self._clients:
            try:
                if self._factory is not None:
                    self._clients[cluster_id] = self._factory(cluster_id)
                else:
                    from kubernetes.config import new_client_from_config

                    if self._org is None or cluster_id not in self._org.clusters:
                        raise ClusterError("cluster.no_client", step="connect", cluster=cluster_id)
                    context = self._org.clusters[cluster_id].kube_context
                    self._clients[cluster_id] = new_client_from_config(config_file=self._kubeconfig_file,
                                                                       context=context)
            except Exception as exc:  # noqa: BLE001 - every failure to connect is translated here
                raise translate_error("connect", exc) from exc
        return self._clients[cluster_id]

    def _call(self, spec: AllocationSpec, kind: str, verb: str, **kwargs: Any) -> dict[str, Any]:
        from kubernetes import client as k8s

        if kind in CUSTOM_KINDS:  # the batch scheduler's kinds, through CustomObjectsApi
            api = k8s.CustomObjectsApi(self.client(spec.cluster))
            return _json(custom_object_call(api, kind, verb, spec.namespace, **kwargs))
        api_name, suffix, namespaced = _KINDS[kind]
        api = getattr(k8s, api_name)(self.client(spec.cluster))
        if namespaced:
            kwargs.setdefault("namespace", spec.namespace)
        method = getattr(api, f"{verb}_{suffix}")
        return _json(method(_preload_content=False, **kwargs))

    def _apply(self, spec: AllocationSpec, manifest: dict[str, Any]) -> str:
        from kubernetes.client.exceptions import ApiException

        kind, name = manifest["kind"], manifest["metadata"]["name"]
        try:
            self._call(spec, kind, "create", body=manifest)
            return CREATED
        except ApiException as exc:
            if exc.status != 409:
                raise
        current = self._call(spec, kind, "read", name=name)
        patch: dict[str, Any] = {}
        for part in ("labels", "annotations"):  # e.g. an extension moves the expiry label and annotation
            want = manifest["metadata"].get(part) or {}
            if not _contains(current.get("metadata", {}).get(part) or {}, want):
                patch.setdefault("metadata", {})[part] = want
        for field_ in _RECONCILED[kind]:
            if field_ in manifest and not _contains(current.get(field_), manifest[field_]):
                patch[field_] = manifest[field_]
        if not patch:
            return UNCHANGED
        # merge-patch replaces lists wholesale, which is what a desired list means here
        self._call(spec, kind, "patch", name=name, body=patch, _content_type=_MERGE_PATCH)
        return UPDATED

    def _token(self, spec: AllocationSpec) -> str:
        from kubernetes import client as k8s

        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [], "expirationSeconds": token_seconds(spec, self.settings, self._now())}}
        api = k8s.CoreV1Api(self.client(spec.cluster))
        answer = _json(api.create_namespaced_service_account_token(
            name=spec.service_account, namespace=spec.namespace, body=body, _preload_content=False))
        token = (answer.get("status") or {}).get("token")
        if not token:
            raise ClusterError("cluster.api_error", step=KUBECONFIG_STEP, status=200, reason="TokenRequest without token")
        return token

    def provision(self, spec: AllocationSpec) -> ProvisionResult:
        """Apply every manifest in order, then mint the kubeconfig token.

        Stops at the first failing step and returns it (status ``failed`` with a
        :class:`ClusterError`); running again resumes, since finished steps come back
        ``unchanged``.
        """
        settings = self.settings
        steps: list[StepResult] = []
        config_text: str | None = None

        def finish() -> ProvisionResult:
            return ProvisionResult(spec.allocation_id, spec.namespace, spec.cluster, self.name, tuple(steps),
                                   kubeconfig=config_text)

        for manifest in render(spec, settings):
            step = step_name(manifest)
            try:
                steps.append(StepResult(step, self._apply(spec, manifest)))
            except Exception as exc:  # noqa: BLE001 - translated at the boundary
                steps.append(StepResult(step, FAILED, translate_error(step, exc)))
                return finish()
        try:
            token = self._token(spec)
            server = settings.servers.get(spec.cluster) or self.client(spec.cluster).configuration.host
            config_text = kubeconfig(spec, settings, server=server, token=token)
            steps.append(StepResult(KUBECONFIG_STEP, CREATED))
        except Exception as exc:  # noqa: BLE001
            steps.append(StepResult(KUBECONFIG_STEP, FAILED, translate_error(KUBECONFIG_STEP, exc)))
        return finish()

    def apply_cluster_objects(self, cluster_id: str, manifests: Sequence[dict[str, Any]]) -> ProvisionResult:
        """Create or patch cluster-level objects in order (the batch scheduler's flavours, priority
        classes and queues), as :meth:`provision` does: stops at the first failing step."""
        target, steps = _ClusterTarget(cluster_id), []
        for manifest in manifests:
            step = step_name(manifest)
            try:
                steps.append(StepResult(step, self._apply(target, manifest)))  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - translated at the boundary
                steps.append(StepResult(step, FAILED, translate_error(step, exc)))
                break
        return ProvisionResult("", "", cluster_id, self.name, tuple(steps))

    def _existing(self, spec: AllocationSpec) -> list[ObjectRef]:
        """The allocation's objects present on the cluster, in deletion order."""
        from kubernetes.client.exceptions import ApiException

        label = self.settings.label("allocation")
        manifests = render(spec, self.settings)
        try:
            ns = self._call(spec, "Namespace", "read", name=spec.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise translate_error(f"Namespace/{spec.namespace}", exc) from exc
        except Exception as exc:  # noqa: BLE001
            raise translate_error(f"Namespace/{spec.namespace}", exc) from exc
        owner = (ns.get("metadata", {}).get("labels") or {}).get(label)
        if owner != manifests[0]["metadata"]["labels"][label]:
            # never delete a namespace some other allocation (or a person) owns
            raise ClusterError("cluster.not_owned", step=f"Namespace/{spec.namespace}", namespace=spec.namespace,
                               allocation=spec.allocation_id)
        present: list[ObjectRef] = []
        for manifest in reversed(manifests[1:]):
            step = step_name(manifest)
            try:
                self._call(spec, manifest["kind"], "read", name=manifest["metadata"]["name"])
                present.append(ObjectRef.of(manifest))
            except ApiException as exc:
                if exc.status != 404:
                    raise translate_error(step, exc) from exc
            except Exception as exc:  # noqa: BLE001
                raise translate_error(step, exc) from exc
        present.append(ObjectRef.of(manifests[0]))
        return present

    def deprovision(self, spec: AllocationSpec, dry_run: bool = True) -> list[ObjectRef]:
        """Delete the allocation's objects that exist (namespace last) and return them.

        With ``dry_run`` nothing is deleted and the list is what a real run would delete.
        Raises :class:`ClusterError` on API failures, and ``cluster.not_owned`` if the namespace
        is not labelled with this allocation's id.
        """
        from kubernetes.client.exceptions import ApiException

        present = self._existing(spec)
        if dry_run:
            return present
        deleted: list[ObjectRef] = []
        for ref in present:
            step = f"{ref.kind}/{ref.name}"
            try:
                self._call(spec, ref.kind, "delete", name=ref.name)
                deleted.append(ref)
            except ApiException as exc:
                if exc.status != 404:  # already gone is what we wanted
                    raise translate_error(step, exc) from exc
            except Exception as exc:  # noqa: BLE001
                raise translate_error(step, exc) from exc
        return deleted

    def suspend(self, spec: AllocationSpec, dry_run: bool = True) -> list[SuspendAction]:
        """Patch the quota to 0 GPUs, then delete the running pods that request GPUs.

        The quota comes first: a controller that recreates a deleted pod is refused by quota
        admission, so the work stays stopped. With ``dry_run`` nothing changes and the list is
        what a real run would do. Raises :class:`ClusterError` on API failures and
        ``cluster.not_owned`` when the namespace is not this allocation's.
        """
        from kubernetes import client as k8s
        from kubernetes.client.exceptions import ApiException

        if not self._existing(spec):  # checks ownership; a namespace already gone has nothing to stop
            return []
        quota, patch = _quota_action(spec, self.settings)
        gpu = quota.detail.split("=")[0].removeprefix("requests.")
        step = f"{quota.kind}/{quota.name}"
        try:
            if not dry_run:
                self._call(spec, "ResourceQuota", "patch", name=quota.name, body=patch, _content_type=_MERGE_PATCH)
            core = k8s.CoreV1Api(self.client(spec.cluster))
            step = f"Pod/{spec.namespace}"
            pods = _json(core.list_namespaced_pod(namespace=spec.namespace, _preload_content=False)).get("items") or []
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise translate_error(step, exc) from exc
        actions = [quota]
        for pod in pods:
            name = pod["metadata"]["name"]
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or not _requests_gpu(pod, gpu):
                continue
            if not dry_run:
                try:
                    core.delete_namespaced_pod(name=name, namespace=spec.namespace, _preload_content=False)
                except ApiException as exc:
                    if exc.status != 404:
                        raise translate_error(f"Pod/{name}", exc) from exc
                except Exception as exc:  # noqa: BLE001
                    raise translate_error(f"Pod/{name}", exc) from exc
            actions.append(SuspendAction("delete", "Pod", name, spec.namespace, f"requests {gpu}"))
        return actions


@dataclass(frozen=True)
class _ClusterTarget:
    """Where cluster-scoped objects go: a cluster and no namespace (stands in for a spec in ``_apply``)."""

    cluster: str
    namespace: None = None


def _requests_gpu(pod: Mapping[str, Any], gpu: str) -> bool:
    containers = (pod.get("spec") or {}).get("containers") or []
    for c in containers:
        res = c.get("resources") or {}
        if any(str((res.get(part) or {}).get(gpu, "0")) not in ("0", "") for part in ("requests", "limits")):
            return True
    return False


def plan_or_live(mode: str, org: Any = None, settings: ClusterSettings | None = None, **live_kwargs: Any) -> Provisioner:
    """The backend for ``mode`` ("plan" or "live")."""
    if mode == "live":
        from core import tokens

        tokens.require_key()  # the tokens it mints are stored sealed, never in clear
        return LiveBackend(org, settings, **live_kwargs)
    return PlanBackend(settings)


__all__: Sequence[str] = (
    "ClusterError", "LiveBackend", "ObjectRef", "PlanBackend", "ProvisionResult", "Provisioner", "StepResult",
    "SuspendAction",
    "KUBECONFIG_STEP", "plan_or_live", "steps_of", "translate_error",
)
