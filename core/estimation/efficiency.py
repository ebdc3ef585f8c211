"""The default training efficiency (model FLOPs utilisation), from published measured runs.

``data/efficiency.yaml`` lists measured runs (GPU, precision, workload, parameters — total and,
for a mixture-of-experts model, active — GPU count, MFU, source). For a job, the default is the
inverse-distance-weighted mean of the k nearest runs in (log10 active parameters, log10 GPUs,
log10 active/total ratio), searched in tiers:

1. same GPU family and form factor (SXM/OAM module vs PCIe card) and precision class;
2. same family and form factor, other precision — converted conservatively (see
   :func:`_efficiency_for_job`);
3. anything else, same precision class first — flagged low confidence.

Dense and mixture-of-experts (MoE) runs are kept apart, as MoE training runs at a much lower
fraction of peak than dense training of the same active size (expert-parallel all-to-all, small
expert GEMMs, load imbalance):

* a dense job only ever takes dense runs;
* an MoE job takes MoE runs of its own GPU family, form factor and precision class (tier 1) when
  they bracket its active parameter count (one run at most, one at least as large). When there is
  none, or when they are all larger or all smaller than the job, it says so and takes the dense
  default (tiers above) times the **MoE discount**: the ratio of MoE to dense MFU measured in the
  same published benchmark table (same system, software and precision — the ``table`` field of a
  run), weighted like neighbours by closeness of the MoE run to the job, from tables of the job's
  precision class when there are any (see :func:`moe_discount`). An FP8 MoE job therefore never
  takes dense FP8 runs as they are.

Why the bracket: MoE MFU rises steeply with the active parameter count (smaller expert GEMMs and
more all-to-all traffic per FLOP in a small model), while dense MFU barely moves with size. In
NVIDIA's Megatron-Bridge 25.11 tables (the ``mbridge-*`` rows of ``data/efficiency.yaml``) MoE
Model TFLOP/s go 214 → 484 → 557 on DGX-B200 FP8 for 3.3B → 22B → 37B active, and 121 → 233 on
DGX-H100 FP8 for 3.3B → 22B, while the dense H100 FP8 rows of the same table give 744, 719 and
737 for 8B, 70B and 405B. A weighted mean of runs that are all larger (or all smaller) than the
job cannot follow that rise: it is biased, and in a known direction. The discount carries the
MoE/dense ratio of the table pairs nearest the job's size on any GPU, and that ratio barely
depends on the GPU: Qwen3-235B-A22B 0.318 on H100 and 0.298 on B200, Qwen3-30B-A3B 0.165 and
0.132, against 0.13 → 0.34 across sizes.

Runs reported as hardware FLOPs utilisation (``measure: hfu``, which counts recomputed forward
passes) are converted to model FLOPs by dividing by the full-recompute factor (8ND / 6ND).

A workload mismatch (pretrain vs fine-tune vs LoRA) adds one unit of distance. A LoRA run's MFU
counts 4·N FLOPs per token, as a LoRA job's estimate does (:mod:`core.estimation.flops`), so LoRA
and full-training efficiencies are fractions of peak on the FLOPs each actually runs (NVIDIA's NeMo
24.07 table: 705 vs 756 Model TFLOP/s for LoRA vs SFT of Llama 2 70B, 673 vs 682 for 7B).

The result names its neighbours (and the MoE/dense pairs behind a discount), so the page can show
exactly which published runs back the number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

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
    table: str = ""

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts run (fewer active than total parameters)."""
        return self.active_params is not None and self.active_params < self.params

    @property
    def n_active(self) -> float:
        """Parameters per token (all of them for a dense run)."""
        return self.active_params or self.params

    @property
    def active_ratio(self) -> float:
        """Active / total parameters (1 for a dense run)."""
        return self.n_active / self.params


@dataclass(frozen=True)
class Neighbour:
    """A measured run used for a default, with its efficiency re-expressed for the job."""

    run: MeasuredRun
    efficiency: float
    distance: float
    weight: float


@dataclass(frozen=True)
class DiscountPair:
    """One MoE run and the dense runs of the same published table, GPU and precision class."""

    run: MeasuredRun
    dense: tuple[MeasuredRun, ...]
    ratio: float  # MoE MFU / mean dense MFU
    distance: float
    weight: float


@dataclass(frozen=True)
class MoeDiscount:
    """Factor applied to a dense default for an MoE job without MoE runs of its own kind."""

    value: float
    pairs: tuple[DiscountPair, ...]


@dataclass(frozen=True)
class EfficiencyDefault:
    """The default efficiency for a job and the evidence behind it."""

    value: float
    tier: int
    neighbours: tuple[Neighbour, ...]
    moe: bool = False
    moe_discount: MoeDiscount | None = None
    # MoE runs of the job's own kind that did not bracket its active size (all larger or all
    # smaller), set aside for the discount
    moe_set_aside: tuple[MeasuredRun, ...] = ()

    @property
    def confidence(self) -> str:
        """'high' (tier 1 from runs of the job's own kind), 'medium' (tier 2, or tier 1 dense runs
        with the MoE discount) or 'low' (tier 3)."""
        if self.tier == 3:
            return "low"
        return "high" if self.tier == 1 and self.moe_discount is None else "medium"

    @property
    def method(self) -> str:
        """The search path, for the accuracy table: 'tier 1' … 'tier 3' (dense runs for a dense job),
        'tier 1 MoE' (MoE runs for an MoE job), 'tier N + MoE discount' (dense runs × discount)."""
        if self.moe_discount:
            return f"tier {self.tier} + MoE discount"
        return f"tier {self.tier}" + (" MoE" if self.moe else "")


def load_runs() -> list[MeasuredRun]:
    """Every measured run of ``data/efficiency.yaml`` (treat as read-only)."""
    return load_derived("efficiency.yaml", _build_runs)


def _build_runs(raw: dict | None) -> list[MeasuredRun]:
    raw = raw or {}
    hfu_to_mfu = 1.0 / defaults.value("full_recompute_flops_factor")
    runs = []
    for i, p in enumerate(raw.get("points") or []):
        try:
            run = MeasuredRun(
                id=str(p["id"]), gpu=str(p["gpu"]), gpu_family=str(p["gpu_family"]),
                precision=str(p["precision"]), peak_basis=str(p.get("peak_basis") or p["precision"]),
                workload=str(p["workload"]), params=float(p["params"]),
                active_params=float(p["active_params"]) if p.get("active_params") else None,
                gpus=int(p["gpus"]),
                mfu=float(p["mfu"]) * (hfu_to_mfu if p.get("measure") == "hfu" else 1.0),
                source=str(p["source"]),
                url=str(p.get("url") or ""), measure=str(p.get("measure") or "mfu"),
                table=str(p.get("table") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("error.data_entry_invalid", field="efficiency.yaml", entry=p.get("id", f"#{i + 1}")) from exc
        if run.active_params is not None and not 0 < run.active_params <= run.params:
            raise InputError("error.data_entry_invalid", field="efficiency.yaml", entry=run.id)
        runs.append(run)
    return runs


def form_class(gpu: GPU) -> str:
    """'pcie' for PCIe cards, 'module' for SXM/OAM boards: they differ in power, clocks and links."""
    return "pcie" if gpu.form_factor.lower().startswith("pcie") else "module"


def _efficiency_for_job(
    run: MeasuredRun, catalog: Catalog, precision: str, job_gpu: GPU, run_gpu: GPU | None = None
) -> float | None:
    """The run's efficiency re-expressed for a job at ``precision`` on ``job_gpu``.

    Within one precision class the utilisation fraction carries over. Across precisions two
    readings exist — the same fraction of the new peak, or the same absolute throughput — and
    the smaller is taken, so FP8 gains are never assumed and FP8 runs never inflate BF16 jobs.
    """
    if run_gpu is None:
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


def _distance(run: MeasuredRun, params: float, gpus: int, ratio: float, workload: str) -> float:
    """Distance of a run from the job in (log10 active params, log10 GPUs, log10 active/total),
    plus one for another workload."""
    return math.hypot(
        math.log10(run.n_active / params), math.log10(run.gpus / gpus), math.log10(run.active_ratio / ratio)
    ) + (0.0 if run.workload == workload else 1.0)


def _weights(distances: Iterable[float]) -> list[float]:
    raw = [1.0 / (dist + 0.05) for dist in distances]
    total = sum(raw)
    return [w / total for w in raw]


def _nearest(
    runs: list[MeasuredRun], tiers: tuple[tuple[int, Callable[[MeasuredRun], bool]], ...], *, catalog: Catalog,
    gpu: GPU, precision: str, params: float, gpus: int, ratio: float, workload: str, k: int,
    run_gpu: Callable[[MeasuredRun], GPU | None],
) -> tuple[int, tuple[Neighbour, ...]] | None:
    """The k nearest runs of the first tier that has any, as (tier, neighbours)."""
    for tier, accept in tiers:
        scored = []
        for run in runs:
            if not accept(run):
                continue
            own = run_gpu(run)
            if own is None:
                continue
            eff = _efficiency_for_job(run, catalog, precision, gpu, own)
            if eff is None or not 0 < eff <= 1:
                continue
            scored.append((_distance(run, params, gpus, ratio, workload), eff, run))
        if not scored:
            continue
        scored.sort(key=lambda x: x[0])
        chosen = scored[:k]
        weights = _weights(dist for dist, _, _ in chosen)
        return tier, tuple(Neighbour(run, eff, dist, w) for w, (dist, eff, run) in zip(weights, chosen))
    return None


def moe_discount(
    runs: list[MeasuredRun], *, params: float, gpus: int, ratio: float, workload: str, k: int,
    precision: str | None = None,
) -> MoeDiscount | None:
    """MoE MFU / dense MFU from published tables holding both, for an MoE job of ``params`` active
    parameters on ``gpus`` GPUs with active/total ``ratio``.

    For every MoE run with a ``table``, the dense runs of the same table, GPU and precision class
    give the reference (their mean MFU); the k such MoE runs nearest the job are averaged with
    inverse-distance weights. With ``precision``, pairs of the job's precision class are taken when
    there are any: FP8 speeds up the GEMMs but not the expert all-to-all and routing, so the ratio
    measured in FP8 is lower than it would be in BF16 (and an FP8 ratio applied to a BF16 job errs
    on the slow side). None when no table holds both kinds.
    """
    candidates = []
    for run in runs:
        if not run.is_moe or not run.table:
            continue
        dense = tuple(d for d in runs if not d.is_moe and d.table == run.table and d.gpu == run.gpu
                      and precision_class(d.precision) == precision_class(run.precision))
        if not dense:
            continue
        reference = sum(d.mfu for d in dense) / len(dense)
        candidates.append((_distance(run, params, gpus, ratio, workload), run, dense, run.mfu / reference))
    if not candidates:
        return None
    if precision is not None:
        same = [c for c in candidates if precision_class(c[1].precision) == precision_class(precision)]
        candidates = same or candidates
    candidates.sort(key=lambda x: x[0])
    chosen = candidates[:k]
    weights = _weights(dist for dist, _, _, _ in chosen)
    pairs = tuple(DiscountPair(run, dense, r, dist, w) for w, (dist, run, dense, r) in zip(weights, chosen))
    return MoeDiscount(sum(p.weight * p.ratio for p in pairs), pairs)


def default_efficiency(
    *, gpu: GPU, catalog: Catalog, precision: str, params: float, gpus: int, workload: str = "pretrain",
    total_params: float | None = None, runs: list[MeasuredRun] | None = None,
) -> EfficiencyDefault:
    """The default efficiency for training ``params`` (active) on ``gpus`` × ``gpu`` at ``precision``.

    ``total_params`` above ``params`` makes it a mixture-of-experts job. ``runs`` replaces the
    runs of ``data/efficiency.yaml`` (the leave-one-out evaluation passes all but one).
    """
    if workload not in WORKLOADS:
        raise InputError("error.choice", field="workload", value=workload, choices=", ".join(WORKLOADS))
    if not gpu.peak_tflops(precision):
        raise InputError("error.precision_unsupported", field="precision", gpu=gpu.id, precision=precision)
    runs = load_runs() if runs is None else runs
    k = int(defaults.value("efficiency_neighbours"))
    moe = bool(total_params and total_params > params)
    ratio = params / total_params if moe else 1.0

    found_gpus: dict[str, GPU | None] = {}

    def run_gpu(run: MeasuredRun) -> GPU | None:
        if run.gpu not in found_gpus:
            try:
                found_gpus[run.gpu] = catalog.get(run.gpu)
            except InputError:
                found_gpus[run.gpu] = None
        return found_gpus[run.gpu]

    def same_kind(run: MeasuredRun) -> bool:
        own = run_gpu(run)
        return own is not None and own.family == gpu.family and form_class(own) == form_class(gpu)

    def same_precision(run: MeasuredRun) -> bool:
        return precision_class(run.precision) == precision_class(precision)

    search = dict(catalog=catalog, gpu=gpu, precision=precision, params=params, gpus=gpus, ratio=ratio,
                  workload=workload, k=k, run_gpu=run_gpu)
    set_aside: tuple[MeasuredRun, ...] = ()
    if moe:
        own = [r for r in runs if r.is_moe and same_kind(r) and same_precision(r)]
        if brackets(own, params):
            found = _nearest(own, ((1, lambda r: True),), **search)
            if found:
                return EfficiencyDefault(value=_mean(found[1]), tier=1, neighbours=found[1], moe=True)
        else:
            set_aside = tuple(own)  # empty when there is no MoE run of the job's kind at all
    dense_runs = [r for r in runs if not r.is_moe]
    found = _nearest(dense_runs, (
        (1, lambda r: same_kind(r) and same_precision(r)),
        (2, same_kind),
        (3, same_precision),
        (3, lambda r: True),
    ), **(search | {"ratio": 1.0}))
    if found is None:
        raise InputError("error.no_efficiency_data", field="efficiency.yaml")
    tier, neighbours = found
    if not moe:
        return EfficiencyDefault(value=_mean(neighbours), tier=tier, neighbours=neighbours)
    discount = moe_discount(runs, params=params, gpus=gpus, ratio=ratio, workload=workload, k=k, precision=precision)
    if discount is None:
        raise InputError("error.no_moe_discount", field="efficiency.yaml")
    return EfficiencyDefault(value=_mean(neighbours) * discount.value, tier=tier, neighbours=neighbours, moe=True,
                             moe_discount=discount, moe_set_aside=set_aside)


def brackets(runs: Iterable[MeasuredRun], params: float) -> bool:
    """True when ``runs`` hold one with at most and one with at least ``params`` active parameters."""
    sizes = [r.n_active for r in runs]
    return any(n <= params * (1 + 1e-9) for n in sizes) and any(n >= params * (1 - 1e-9) for n in sizes)


def _mean(neighbours: tuple[Neighbour, ...]) -> float:
    return sum(n.weight * n.efficiency for n in neighbours)
