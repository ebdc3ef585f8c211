"""The default training efficiency (model FLOPs utilisation), from published measured runs.

``data/efficiency.yaml`` lists measured runs (GPU, precision, workload, parameters, GPU count,
MFU, source). For a job, the default is the inverse-distance-weighted mean of the k nearest
runs in (log10 parameters, log10 GPUs), searched in tiers:

1. same GPU family and form factor (SXM/OAM module vs PCIe card) and precision class;
2. same family and form factor, other precision — converted conservatively (see
   :func:`_efficiency_for_job`);
3. anything else, same precision class first — flagged low confidence.

Runs reported as hardware FLOPs utilisation (``measure: hfu``, which counts recomputed forward
passes) are converted to model FLOPs by dividing by the full-recompute factor (8ND / 6ND).

A workload mismatch (pretrain vs fine-tune vs LoRA) adds one unit of distance. The result names
its neighbours, so the page can show exactly which published runs back the number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.datafiles import load_derived
from core.errors import InputError
from core.estimation import defaults
from core.estimation.catalog import GPU, Catalog

WORKLOADS = ("pretrain", "finetune", "lora")


def precision_class(precision: str) -> str:
    """'16bit' for bf16/fp16 (same tensor-core peak on every catalog GPU that has both), else the name."""
    return "16bit" if precision in ("bf16", "fp16") else precision


@dataclass(frozen=True)
class MeasuredRun:
    """One published measurement of training efficiency."""

    id: str
    gpu: str
    gpu_family: str
    precision: str
    peak_basis: str
    workload: str
    params: float
    active_params: float | None
    gpus: int
    mfu: float
    source: str
    url: str = ""
    measure: str = "mfu"


@dataclass(frozen=True)
class Neighbour:
    """A measured run used for a default, with its efficiency re-expressed for the job."""

    run: MeasuredRun
    efficiency: float
    distance: float
    weight: float


@dataclass(frozen=True)
class EfficiencyDefault:
    """The default efficiency for a job and the evidence behind it."""

    value: float
    tier: int
    neighbours: tuple[Neighbour, ...]

    @property
    def confidence(self) -> str:
        """'high' (tier 1), 'medium' (tier 2) or 'low' (tier 3)."""
        return {1: "high", 2: "medium", 3: "low"}[self.tier]


def load_runs() -> list[MeasuredRun]:
    """Every measured run of ``data/efficiency.yaml`` (treat as read-only)."""
    return load_derived("efficiency.yaml", _build_runs)


def _build_runs(raw: dict | None) -> list[MeasuredRun]:
    raw = raw or {}
    hfu_to_mfu = 1.0 / defaults.value("full_recompute_flops_factor")
    runs = []
    for i, p in enumerate(raw.get("points") or []):
        try:
            runs.append(MeasuredRun(
                id=str(p["id"]), gpu=str(p["gpu"]), gpu_family=str(p["gpu_family"]),
                precision=str(p["precision"]), peak_basis=str(p.get("peak_basis") or p["precision"]),
                workload=str(p["workload"]), params=float(p["params"]),
                active_params=float(p["active_params"]) if p.get("active_params") else None,
                gpus=int(p["gpus"]),
                mfu=float(p["mfu"]) * (hfu_to_mfu if p.get("measure") == "hfu" else 1.0),
                source=str(p["source"]),
                url=str(p.get("url") or ""), measure=str(p.get("measure") or "mfu"),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("error.data_entry_invalid", field="efficiency.yaml", entry=p.get("id", f"#{i + 1}")) from exc
    return runs


def form_class(gpu: GPU) -> str:
    """'pcie' for PCIe cards, 'module' for SXM/OAM boards: they differ in power, clocks and links."""
    return "pcie" if gpu.form_factor.lower().startswith("pcie") else "module"


def _efficiency_for_job(run: MeasuredRun, catalog: Catalog, precision: str, job_gpu: GPU) -> float | None:
    """The run's efficiency re-expressed for a job at ``precision`` on ``job_gpu``.

    Within one precision class the utilisation fraction carries over. Across precisions two
    readings exist — the same fraction of the new peak, or the same absolute throughput — and
    the smaller is taken, so FP8 gains are never assumed and FP8 runs never inflate BF16 jobs.
    """
    try:
        run_gpu = catalog.get(run.gpu)
    except InputError:
        return None
    basis_peak = run_gpu.peak_tflops(run.peak_basis)
    own_peak = run_gpu.peak_tflops(run.precision) or basis_peak
    if not basis_peak or not own_peak:
        return None
    achieved = run.mfu * basis_peak
    fraction = achieved / own_peak
    if precision_class(run.precision) == precision_class(precision):
        return fraction
    job_peak = job_gpu.peak_tflops(precision)
    job_peak_at_run_precision = job_gpu.peak_tflops(run.precision)
    if not job_peak or not job_peak_at_run_precision:
        return fraction
    same_throughput = achieved * (job_peak_at_run_precision / own_peak) / job_peak
    return min(fraction, same_throughput)


def default_efficiency(
    *, gpu: GPU, catalog: Catalog, precision: str, params: float, gpus: int, workload: str = "pretrain"
) -> EfficiencyDefault:
    """The default efficiency for training ``params`` (active) on ``gpus`` × ``gpu`` at ``precision``."""
    if workload not in WORKLOADS:
        raise InputError("error.choice", field="workload", value=workload, choices=", ".join(WORKLOADS))
    if not gpu.peak_tflops(precision):
        raise InputError("error.precision_unsupported", field="precision", gpu=gpu.id, precision=precision)
    runs = load_runs()
    k = int(defaults.value("efficiency_neighbours"))
    def same_kind(run: MeasuredRun) -> bool:
        try:
            run_gpu = catalog.get(run.gpu)
        except InputError:
            return False
        return run_gpu.family == gpu.family and form_class(run_gpu) == form_class(gpu)

    same_precision = lambda r: precision_class(r.precision) == precision_class(precision)  # noqa: E731
    tiers = (
        (1, lambda r: same_kind(r) and same_precision(r)),
        (2, same_kind),
        (3, same_precision),
        (3, lambda r: True),
    )
    for tier, accept in tiers:
        scored = []
        for run in runs:
            if not accept(run):
                continue
            eff = _efficiency_for_job(run, catalog, precision, gpu)
            if eff is None or not 0 < eff <= 1:
                continue
            dist = math.hypot(
                math.log10((run.active_params or run.params) / params), math.log10(run.gpus / gpus)
            ) + (0.0 if run.workload == workload else 1.0)
            scored.append((dist, eff, run))
        if not scored:
            continue
        scored.sort(key=lambda x: x[0])
        chosen = scored[:k]
        weights = [1.0 / (dist + 0.05) for dist, _, _ in chosen]
        total = sum(weights)
        value = sum(w * eff for w, (_, eff, _) in zip(weights, chosen)) / total
        neighbours = tuple(Neighbour(run, eff, dist, w / total) for w, (dist, eff, run) in zip(weights, chosen))
        return EfficiencyDefault(value=value, tier=tier, neighbours=neighbours)
    raise InputError("error.no_efficiency_data", field="efficiency.yaml")
