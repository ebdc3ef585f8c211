"""Recommendation: which GPU model, how many, in which layout — ranked by time and by cost.

Which GPUs: by default the GPU models the organisation's pools hold (``data/org.yaml``; the
dynamic reserve is left out, it never serves ordinary requests), each at most as many as its
largest pool, with the pools that could host each option named; ``whole_catalog=True`` (or an
explicit ``gpu_ids`` list) considers the catalog without that limit. BF16 jobs fall back to FP16 on
GPUs without BF16.

A (GPU model, count) is offered only if it can train (see :mod:`core.estimation.layouts`):

* its data-parallel degree fits the global batch (a setting in tokens: at least one micro-batch per
  GPU per step);
* a layout fits in memory;
* that layout's step is not dominated by communication (data-parallel gradient all-reduce plus
  tensor-parallel all-reduces ≤ ``max_step_overhead_to_compute`` × compute, at the interconnect
  bandwidths of ``data/gpus.yaml`` and ``inter_node_gbps_per_gpu``).

The first layout (in order of preference) meeting all three is kept. Its time comes from
:func:`estimate_training` with a relative penalty for the layout's own costs versus the measured
runs behind the efficiency (full recomputation; pipeline bubble (p − 1)/m with m micro-batches per
pipeline). Options failing a deadline or budget are dropped; the Pareto set over (time, cost) —
options no other option beats on one without losing on the other — is marked, and the choice is
explained in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.errors import InputError
from core.estimation import defaults
from core.estimation.catalog import load_catalog
from core.estimation.efficiency import default_efficiency, load_runs
from core.estimation.layouts import global_batch_tokens, max_data_parallel, runnable_layout
from core.estimation.memory import Layout
from core.estimation.model import ModelSpec, complete_architecture
from core.estimation.training import TrainingInput, estimate_training
from core.i18n import Msg

GPU_COUNTS = tuple(2**i for i in range(0, 15))  # 1 … 16384
EXCLUDED_POOL_KINDS = frozenset({"dynamic_reserve"})  # 动态预留池: green channel only (GLOSSARY.md)
_SAME = 1e-9  # relative difference below which two times or costs are the same (floating-point noise)


def duration_msg(hours: float) -> Msg:
    """A duration as people read it: hours under a day, days from a day on."""
    if hours < 24:
        return Msg("unit.hours", {"value": f"{hours:.2f}" if hours < 1 else f"{hours:.1f}"})
    return Msg("unit.days", {"value": f"{hours / 24:,.1f}"})


@dataclass(frozen=True)
class Option:
    """One feasible (GPU model, count, layout) with its time and cost."""

    gpu: str
    gpus: int
    precision: str
    layout: Layout
    memory_gb: float
    wall_clock_hours: float
    gpu_hours: float
    cost_cny: float
    energy_kwh: float
    efficiency: float
    communication_ratio: float = 0.0
    pools: tuple[str, ...] = ()
    pareto: bool = False

    @property
    def duration(self) -> Msg:
        """The wall-clock as people read it (hours under a day)."""
        return duration_msg(self.wall_clock_hours)

    def as_dict(self) -> dict:
        """Plain dict for tables and JSON."""
        return {
            "gpu": self.gpu, "gpus": self.gpus, "precision": self.precision,
            "tp": self.layout.tp, "pp": self.layout.pp, "dp": self.layout.dp, "ep": self.layout.ep,
            "zero": self.layout.zero, "recompute": self.layout.recompute, "memory_gb": self.memory_gb,
            "wall_clock_hours": self.wall_clock_hours, "wall_clock_days": self.wall_clock_hours / 24,
            "gpu_hours": self.gpu_hours, "cost": self.cost_cny, "energy_kwh": self.energy_kwh,
            "efficiency": self.efficiency, "communication_to_compute": self.communication_ratio,
            "pools": list(self.pools), "pareto": self.pareto,
        }


@dataclass(frozen=True)
class Recommendation:
    """All feasible options, the Pareto set, the choice and why."""

    options: tuple[Option, ...]
    fastest: Option | None
    cheapest: Option | None
    choice: Option | None
    reasons: tuple[Msg, ...]
    whole_catalog: bool = False  # True when not limited to the organisation's pools (whole catalog or a GPU list)

    @property
    def pareto(self) -> list[Option]:
        """Options no other option beats on both time and cost, fastest first."""
        return sorted((o for o in self.options if o.pareto), key=lambda o: (o.wall_clock_hours, o.cost_cny))


def _no_worse(a: float, b: float) -> bool:
    return a <= b * (1 + _SAME)


def _better(a: float, b: float) -> bool:
    return a < b * (1 - _SAME)


def dominates(a: Option, b: Option) -> bool:
    """True when ``a`` is no slower and no dearer than ``b`` and strictly better on one of the two
    (differences below one part in a billion count as equal)."""
    return (_no_worse(a.wall_clock_hours, b.wall_clock_hours) and _no_worse(a.cost_cny, b.cost_cny)
            and (_better(a.wall_clock_hours, b.wall_clock_hours) or _better(a.cost_cny, b.cost_cny)))


def _mark_pareto(options: list[Option]) -> list[Option]:
    """Mark the options no other option dominates (a sweep in time order; the front stays small)."""
    front: list[Option] = []
    for o in sorted(options, key=lambda o: (o.wall_clock_hours, o.cost_cny)):
        if any(dominates(p, o) for p in front):
            continue
        front = [p for p in front if not dominates(o, p)] + [o]
    keep = {id(o) for o in front}
    return [replace(o, pareto=id(o) in keep) for o in options]


def org_pools() -> dict[str, list[tuple[str, int]]]:
    """GPU model id → [(pool id, GPUs)] of the organisation's pools, largest first (dynamic reserve left out)."""
    from core.org import load_org

    catalog = load_catalog()
    out: dict[str, list[tuple[str, int]]] = {}
    for pool in load_org().pools.values():
        if pool.kind in EXCLUDED_POOL_KINDS:
            continue
        out.setdefault(catalog.get(pool.gpu).id, []).append((pool.id, pool.gpus))
    return {gpu: sorted(pools, key=lambda p: -p[1]) for gpu, pools in out.items()}


def recommend(
    *, model: ModelSpec, tokens: float, precision: str = "bf16", workload: str = "pretrain",
    deadline_hours: float | None = None, budget_cny: float | None = None, max_gpus: int = 4096,
    gpu_ids: list[str] | None = None, base_layout: Layout | None = None, whole_catalog: bool = False,
) -> Recommendation:
    """Enumerate, filter and rank the ways to run a training job (the organisation's GPU models
    unless ``whole_catalog`` or ``gpu_ids`` say otherwise)."""
    if deadline_hours is not None and deadline_hours <= 0:
        raise InputError("error.out_of_range", field="deadline_hours", value=deadline_hours, low=">0", high="-")
    if budget_cny is not None and budget_cny <= 0:
        raise InputError("error.out_of_range", field="budget", value=budget_cny, low=">0", high="-")
    if not 1 <= max_gpus <= 16384:
        raise InputError("error.out_of_range", field="max_gpus", value=max_gpus, low="1", high="16384")
    model.validate()
    full_model, _ = complete_architecture(model)
    catalog = load_catalog()
    pools = org_pools()
    org_only = not whole_catalog and not gpu_ids
    if gpu_ids:
        gpus_considered = [catalog.get(g) for g in gpu_ids]
    elif whole_catalog:
        gpus_considered = list(catalog.gpus)
    else:
        gpus_considered = [g for g in catalog.gpus if g.id in pools]
    d = defaults.load_defaults()
    full_factor = d["full_recompute_flops_factor"].value / d["selective_recompute_flops_factor"].value
    batch_tokens = global_batch_tokens(workload, d)
    seq = full_model.seq_len or int(d["default_seq_len"].value)
    sequences_per_batch = max(1, int(batch_tokens // seq))
    max_ratio = d["max_step_overhead_to_compute"].value
    runs = load_runs()

    options: list[Option] = []
    reasons: list[Msg] = []
    no_fit: list[str] = []
    comm_bound: list[str] = []
    for gpu in gpus_considered:
        job_precision = precision
        if not gpu.peak_tflops(precision):
            if precision == "bf16" and gpu.fp16_tflops:
                job_precision = "fp16"
            else:
                continue
        base = replace(base_layout or Layout(), precision=job_precision)
        gpu_pools = pools.get(gpu.id, [])
        limit = min(max_gpus, gpu_pools[0][1]) if org_only else max_gpus
        fitted_any, bound = False, []
        for count in (c for c in GPU_COUNTS if c <= limit):
            evidence = default_efficiency(gpu=gpu, catalog=catalog, precision=job_precision,
                                          params=full_model.n_active, gpus=count, workload=workload,
                                          total_params=full_model.params, runs=runs)
            found = runnable_layout(full_model, gpu, count, base, d, batch_tokens=batch_tokens,
                                    efficiency=evidence.value, max_ratio=max_ratio)
            fitted_any = fitted_any or found.any_fits_memory
            if found.layout is None:
                if found.any_fits_memory:
                    bound.append(count)
                continue
            layout, mem, comm = found.layout, found.memory, found.communication
            est = estimate_training(TrainingInput(model=model, tokens=tokens, gpu=gpu.id, gpus=count,
                                                  precision=job_precision, workload=workload, layout=layout),
                                    evidence=evidence)
            penalty = full_factor if layout.recompute == "full" else 1.0
            if layout.pp > 1:
                micro_batches = max(1, sequences_per_batch // max(1, layout.dp * layout.micro_batch))
                penalty *= 1 + (layout.pp - 1) / micro_batches
            wall = est.wall_clock_hours * penalty
            options.append(Option(
                gpu=gpu.id, gpus=count, precision=job_precision, layout=layout, memory_gb=mem.total_gb,
                wall_clock_hours=wall, gpu_hours=wall * count, cost_cny=est.cost_cny * penalty,
                energy_kwh=est.energy_kwh * penalty, efficiency=est.efficiency, communication_ratio=comm.ratio,
                pools=tuple(pid for pid, size in gpu_pools if size >= count),
            ))
        if not fitted_any:
            no_fit.append(gpu.id)
        if bound:
            comm_bound.append(f"{gpu.id} × {', '.join(str(c) for c in bound)}")

    if org_only:
        reasons.append(Msg("recommend.org_scope", {
            "pools": "; ".join(f"{gpu}: {', '.join(f'{pid} ({size})' for pid, size in pools[gpu])}"
                               for gpu in (g.id for g in gpus_considered))}))
    reasons.append(Msg("recommend.runnable_rule", {
        "batch": f"{batch_tokens:,.0f}", "seq": seq, "max_dp": max_data_parallel(full_model, base_layout or Layout(), d,
                                                                                  batch_tokens),
        "ratio": f"{max_ratio:g}"}))
    if no_fit:
        reasons.append(Msg("recommend.no_fit", {"gpus": ", ".join(no_fit), "max_gpus": max_gpus}))
    if comm_bound:
        reasons.append(Msg("recommend.comm_bound", {"ratio": f"{max_ratio:g}", "options": "; ".join(comm_bound)}))
    pcie = [g.id for g in gpus_considered if not g.has_fast_interconnect]
    if pcie:
        reasons.append(Msg("recommend.tp_needs_nvlink", {"gpus": ", ".join(pcie)}))
    before = len(options)
    if deadline_hours is not None:
        options = [o for o in options if o.wall_clock_hours <= deadline_hours]
    if budget_cny is not None:
        options = [o for o in options if o.cost_cny <= budget_cny]
    if before and not options:
        reasons.append(Msg("recommend.none_meets_limits", {
            "deadline": f"{deadline_hours:.0f}" if deadline_hours else "-",
            "budget": f"{budget_cny:,.0f}" if budget_cny else "-"}))
    options = _mark_pareto(options)
    fastest = min(options, key=lambda o: (o.wall_clock_hours, o.cost_cny), default=None)
    cheapest = min(options, key=lambda o: (o.cost_cny, o.wall_clock_hours), default=None)
    choice = None
    if options:
        if deadline_hours is not None:
            choice = cheapest
            reasons.append(Msg("recommend.choice_deadline", {"gpu": choice.gpu, "gpus": choice.gpus,
                                                             "duration": choice.duration}))
        elif budget_cny is not None:
            choice = fastest
            reasons.append(Msg("recommend.choice_budget", {"gpu": choice.gpu, "gpus": choice.gpus,
                                                           "cost": f"{choice.cost_cny:,.0f}"}))
        else:
            # No constraint: the cheapest Pareto option whose time is within 2× the fastest.
            pareto = [o for o in options if o.pareto]
            within = [o for o in pareto if o.wall_clock_hours <= 2 * fastest.wall_clock_hours]
            choice = min(within, key=lambda o: o.cost_cny)
            reasons.append(Msg("recommend.choice_balanced", {"gpu": choice.gpu, "gpus": choice.gpus,
                                                             "duration": choice.duration,
                                                             "cost": f"{choice.cost_cny:,.0f}"}))
        if choice.pools:
            reasons.append(Msg("recommend.choice_pools", {"pools": ", ".join(choice.pools)}))
        if choice.layout.tp > 1:
            reasons.append(Msg("recommend.choice_uses_tp", {"tp": choice.layout.tp, "gpu": choice.gpu}))
    return Recommendation(tuple(options), fastest, cheapest, choice, tuple(reasons), whole_catalog=not org_only)
