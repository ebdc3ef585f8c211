"""The feasibility checklist (可行性评估) the system pre-fills for the reviewer (pure functions).

Items (seed chapter 4, 多维度的算力可行性评估): GPU model fit, storage fit, network domain,
software compatibility, conflict with high-priority allocations, and room in the pool (the
capacity figures of :mod:`core.capacity_figures` today, and the GPUs free on every day of the
request's window — what the Apply check reports). Each is ok / warn / fail with a message; the
reviewer still decides (approve, approve with adjustments, reject — with a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from core.capacity_figures import Figures
from core.datafiles import load_derived
from core.errors import InputError
from core.estimation.catalog import GPU, Catalog
from core.i18n import Msg
from core.lifecycle.forms import IntakeForm
from core.org import Org, Pool

OK, WARN, FAIL = "ok", "warn", "fail"
ITEMS = ("gpu_fit", "storage_fit", "network_domain", "software", "conflict")  # then "capacity", given its figures



@dataclass(frozen=True)
class FeasibilityFigures:
    """The checklist's figures from ``data/feasibility.yaml`` (each with its rationale there)."""

    training_bytes_per_param: float
    inference_bytes_per_param: float
    usable_memory_share: float
    large_dataset_gb: float
    conflict_warn_share: float
    conflict_fail_share: float


def _build_figures(raw: Any) -> FeasibilityFigures:
    try:
        return FeasibilityFigures(**{k: float(raw[k]) for k in FeasibilityFigures.__dataclass_fields__})
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("error.data_entry_invalid", field="feasibility.yaml", entry=str(exc)) from None


def figures() -> FeasibilityFigures:
    """The figures in force (rebuilt when the file changes)."""
    return load_derived("feasibility.yaml", _build_figures)


@dataclass(frozen=True)
class CheckItem:
    """One line of the checklist."""

    id: str
    status: str  # ok | warn | fail
    msg: Msg

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"id": self.id, "status": self.status, "key": self.msg.key, "params": dict(self.msg.params)}


@dataclass(frozen=True)
class CudaTable:
    """Driver branch → newest CUDA (``data/cuda_compat.yaml``)."""

    branches: Mapping[str, str]
    source: str

    def max_cuda(self, driver: str) -> str | None:
        """Newest CUDA for a driver version like "535.161" (None if the branch is not listed)."""
        return self.branches.get(driver.split(".")[0])


def _build_cuda(raw: Any) -> CudaTable:
    raw = raw or {}
    branches = {str(k): str(v) for k, v in (raw.get("branches") or {}).items()}
    for k, v in branches.items():
        try:
            version_tuple(v)
        except ValueError:
            raise InputError("error.data_entry_invalid", field="cuda_compat.yaml", entry=f"{k}: {v}") from None
    return CudaTable(branches, str(raw.get("source", "")))


def load_cuda_table() -> CudaTable:
    """The driver/CUDA table (rebuilt when the file changes)."""
    return load_derived("cuda_compat.yaml", _build_cuda)


def version_tuple(text: str) -> tuple[int, ...]:
    """"12.4" → (12, 4); ValueError for anything that is not dotted numbers."""
    parts = str(text).strip().lower().removeprefix("cuda").strip().split(".")
    return tuple(int(p) for p in parts if p != "")


def _fmt_params(n: float) -> str:
    return f"{n / 1e9:.3g}B"


def gpu_fit(form: IntakeForm, pool: Pool, gpu: GPU, estimate: Mapping[str, Any] | None) -> CheckItem:
    """Does the pool's GPU model suit the model (memory, tensor-parallel interconnect)?

    With an attached estimate its memory verdict (``fits_in_memory``) and layout (tensor-parallel
    size) are used; otherwise the parameter count: a model whose per-GPU share does not fit one
    GPU is memory-bound and needs model parallelism, hence a fast (NVLink-class) interconnect.
    """
    gpus = form.requested_gpus or 1
    if estimate:
        if estimate.get("gpu") and estimate["gpu"] != gpu.id:
            return CheckItem("gpu_fit", WARN, Msg("feasibility.gpu_estimate_other_model",
                                                  {"estimate_gpu": estimate["gpu"], "gpu": gpu.id}))
        if estimate.get("fits_in_memory") is False:
            return CheckItem("gpu_fit", FAIL, Msg("feasibility.gpu_estimate_does_not_fit",
                                                  {"gpu": gpu.id, "gpus": estimate.get("gpus", gpus)}))
        tp = int((estimate.get("layout") or {}).get("tp") or 1)
        if tp > 1 and not gpu.has_fast_interconnect:
            return CheckItem("gpu_fit", FAIL, Msg("feasibility.gpu_tp_needs_nvlink",
                                                  {"gpu": gpu.id, "tp": tp, "link": gpu.interconnect}))
        return CheckItem("gpu_fit", OK, Msg("feasibility.gpu_estimate_fits", {"gpu": gpu.id, "tp": tp}))
    if not form.parameters:
        return CheckItem("gpu_fit", WARN, Msg("feasibility.gpu_no_size", {"gpu": gpu.id}))
    usable = gpu.memory_bytes * figures().usable_memory_share
    if form.is_inference:
        need_one = form.parameters * figures().inference_bytes_per_param
        replicas_gpus = gpus
        if need_one > usable * replicas_gpus:
            return CheckItem("gpu_fit", FAIL, Msg("feasibility.gpu_memory_short",
                                                  {"gpu": gpu.id, "gpus": gpus, "params": _fmt_params(form.parameters)}))
        if need_one > usable and not gpu.has_fast_interconnect:
            return CheckItem("gpu_fit", WARN, Msg("feasibility.gpu_tp_needs_nvlink",
                                                  {"gpu": gpu.id, "tp": -(-int(need_one) // int(usable)),
                                                   "link": gpu.interconnect}))
        if need_one <= usable and gpu.has_fast_interconnect and gpu.memory_gb >= 80:
            # 大马拉小车: a model that fits a mid-range card does not need a training GPU.
            return CheckItem("gpu_fit", WARN, Msg("feasibility.gpu_oversized_for_inference",
                                                  {"gpu": gpu.id, "params": _fmt_params(form.parameters)}))
        return CheckItem("gpu_fit", OK, Msg("feasibility.gpu_fits_compute", {"gpu": gpu.id}))
    need_total = form.parameters * figures().training_bytes_per_param
    if need_total > usable * gpus:
        return CheckItem("gpu_fit", FAIL, Msg("feasibility.gpu_memory_short",
                                              {"gpu": gpu.id, "gpus": gpus, "params": _fmt_params(form.parameters)}))
    memory_bound = need_total > usable  # sharded over several GPUs
    weights_exceed_one = form.parameters * figures().inference_bytes_per_param > usable  # tensor parallelism needed
    if weights_exceed_one and not gpu.has_fast_interconnect:
        return CheckItem("gpu_fit", FAIL, Msg("feasibility.gpu_tp_needs_nvlink",
                                              {"gpu": gpu.id, "tp": -(-int(form.parameters * 2) // int(usable)),
                                               "link": gpu.interconnect}))
    if memory_bound and gpus > 1 and not gpu.has_fast_interconnect:
        return CheckItem("gpu_fit", WARN, Msg("feasibility.gpu_sharding_slow_link",
                                              {"gpu": gpu.id, "link": gpu.interconnect}))
    key = "feasibility.gpu_fits_memory" if memory_bound else "feasibility.gpu_fits_compute"
    return CheckItem("gpu_fit", OK, Msg(key, {"gpu": gpu.id}))


def storage_fit(form: IntakeForm, pool: Pool) -> CheckItem:
    """Does the pool's storage type suit the data size and type?"""
    size = form.data_size_gb or 0
    multi_node = (form.requested_gpus or 0) > pool.gpus_per_node
    params = {"storage": pool.storage, "size": f"{size:g}", "pool": pool.id}
    if form.is_training:
        if size > figures().large_dataset_gb and pool.storage != "parallel_fs":
            return CheckItem("storage_fit", WARN, Msg("feasibility.storage_large_dataset", params))
        if multi_node and pool.storage == "local_ssd":
            return CheckItem("storage_fit", WARN, Msg("feasibility.storage_local_multinode", params))
    return CheckItem("storage_fit", OK, Msg("feasibility.storage_ok", params))


def network_domain(form: IntakeForm, pool: Pool, org: Org) -> CheckItem:
    """Are all nodes of a multi-node training job in one high-speed network domain?"""
    cluster = org.clusters[pool.cluster]
    others = [org.pools[p] for p in form.extra_pools if p in org.pools and p != pool.id]
    unknown = [p for p in form.extra_pools if p not in org.pools]
    if unknown:
        return CheckItem("network_domain", FAIL, Msg("feasibility.network_unknown_pool", {"pools": ", ".join(unknown)}))
    domains = {cluster.network_domain} | {org.clusters[o.cluster].network_domain for o in others}
    units = {cluster.unit} | {org.clusters[o.cluster].unit for o in others}
    params = {"domain": cluster.network_domain, "domains": ", ".join(sorted(domains)), "pool": pool.id,
              "nodes": -(-(form.requested_gpus or 0) // pool.gpus_per_node)}
    if len(units) > 1:
        return CheckItem("network_domain", FAIL, Msg("feasibility.network_cross_province", params))
    if len(domains) > 1:
        return CheckItem("network_domain", FAIL, Msg("feasibility.network_several_domains", params))
    if form.is_training and (form.requested_gpus or 0) > pool.gpus_per_node:
        return CheckItem("network_domain", OK, Msg("feasibility.network_multinode_one_domain", params))
    return CheckItem("network_domain", OK, Msg("feasibility.network_single_node", params))


def software(form: IntakeForm, pool: Pool, gpu: GPU, org: Org, table: CudaTable) -> CheckItem:
    """Is the requested CUDA supported by the cluster's driver (and the GPU vendor)?"""
    cluster = org.clusters[pool.cluster]
    if not form.cuda_version:
        return CheckItem("software", OK, Msg("feasibility.software_no_cuda", {"driver": cluster.driver}))
    try:
        wanted = version_tuple(form.cuda_version)
    except ValueError:
        return CheckItem("software", WARN, Msg("feasibility.software_bad_version", {"cuda": form.cuda_version}))
    if gpu.vendor.lower() != "nvidia":
        return CheckItem("software", FAIL, Msg("feasibility.software_not_nvidia",
                                               {"gpu": gpu.id, "vendor": gpu.vendor, "cuda": form.cuda_version}))
    limits = [cluster.driver_cuda_max]
    from_table = table.max_cuda(cluster.driver)
    if from_table:
        limits.append(from_table)
    max_cuda = min(limits, key=version_tuple)
    params = {"cuda": form.cuda_version, "max_cuda": max_cuda, "driver": cluster.driver, "cluster": cluster.id}
    if wanted > version_tuple(max_cuda):
        return CheckItem("software", FAIL, Msg("feasibility.software_cuda_too_new", params))
    return CheckItem("software", OK, Msg("feasibility.software_ok", params))


def conflict(form: IntakeForm, pool: Pool, high_priority_gpus: int) -> CheckItem:
    """Share of the pool already held by high-priority allocations (priority ≥ high)."""
    share = high_priority_gpus / pool.gpus if pool.gpus else 0.0
    after = (high_priority_gpus + (form.requested_gpus or 0)) / pool.gpus if pool.gpus else 0.0
    params = {"pool": pool.id, "held": high_priority_gpus, "gpus": pool.gpus, "share": f"{share:.0%}"}
    if form.priority in ("high", "critical") and after > figures().conflict_fail_share:
        return CheckItem("conflict", FAIL, Msg("feasibility.conflict_high_share", params))
    if share >= figures().conflict_warn_share:
        return CheckItem("conflict", WARN, Msg("feasibility.conflict_contention", params))
    return CheckItem("conflict", OK, Msg("feasibility.conflict_ok", params))


def capacity(form: IntakeForm, pool: Pool, today: Figures, window_free: int) -> CheckItem:
    """Room for the request in its pool: the pool's figures today and the GPUs free on every day of
    the request's window (the Apply check's figure; for a reserve pool, its own reserve). Short is a
    failure: approving as asked would be refused."""
    requested = form.requested_gpus or 0
    params = {"pool": pool.id, "total": int(today.total), "allocated": int(today.allocated),
              "reserved": int(today.reserved), "available": int(today.available), "requested": requested,
              "free": max(int(window_free), 0)}
    if requested > window_free:
        return CheckItem("capacity", FAIL, Msg("feasibility.capacity_short", params))
    key = "feasibility.capacity_ok_reserve" if pool.is_reserve else "feasibility.capacity_ok"
    return CheckItem("capacity", OK, Msg(key, params))


def assess(form: IntakeForm, *, org: Org, catalog: Catalog, cuda: CudaTable,
           estimate: Mapping[str, Any] | None = None, high_priority_gpus: int = 0,
           pool_today: Figures | None = None, window_free: int | None = None) -> list[CheckItem]:
    """The whole checklist for ``form`` on its target pool.

    Args:
        form: the submitted form (its ``pool`` must exist in ``org``).
        org: the organisation; catalog: the hardware catalog; cuda: the driver/CUDA table.
        estimate: the attached estimate's outputs (``fits_in_memory``, ``layout``...), if any.
        high_priority_gpus: GPUs of the pool held by allocations with priority high or critical.
        pool_today, window_free: the pool's capacity figures today and the GPUs free on every day
            of the request's window; the capacity item is left out without them.
    """
    pool = org.pool(form.pool or "")
    gpu = catalog.get(pool.gpu)
    return [
        gpu_fit(form, pool, gpu, estimate),
        storage_fit(form, pool),
        network_domain(form, pool, org),
        software(form, pool, gpu, org, cuda),
        conflict(form, pool, high_priority_gpus),
    ] + ([capacity(form, pool, pool_today, window_free)] if pool_today is not None and window_free is not None else [])
