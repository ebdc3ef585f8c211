"""Recommendation: which GPU model, how many, in which layout — ranked by time and by cost.

For every catalog GPU that supports the precision (BF16 jobs fall back to FP16 on GPUs without
BF16), and every power-of-two GPU count up to ``max_gpus``, the first layout that fits in memory
is kept (see :mod:`core.estimation.layouts`). Its time comes from :func:`estimate_training`
with a relative penalty for the layout's own costs versus the measured runs behind the
efficiency (full recomputation; pipeline bubble (p − 1)/m with m micro-batches per pipeline).
Options failing a deadline or budget are dropped; the Pareto set over (time, cost) is marked and
the choice is explained in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.errors import InputError
from core.estimation import defaults
from core.estimation.catalog import load_catalog
from core.estimation.layouts import first_fitting_layout
from core.estimation.memory import Layout
from core.estimation.model import ModelSpec, complete_architecture
from core.estimation.training import TrainingInput, estimate_training
from core.i18n import Msg

GPU_COUNTS = tuple(2**i for i in range(0, 15))  # 1 … 16384


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
    pareto: bool = False

    def as_dict(self) -> dict:
        """Plain dict for tables and JSON."""
        return {
            "gpu": self.gpu, "gpus": self.gpus, "precision": self.precision,
            "tp": self.layout.tp, "pp": self.layout.pp, "dp": self.layout.dp, "zero": self.layout.zero,
            "recompute": self.layout.recompute, "memory_gb": self.memory_gb,
            "wall_clock_hours": self.wall_clock_hours, "wall_clock_days": self.wall_clock_hours / 24,
            "gpu_hours": self.gpu_hours, "cost": self.cost_cny, "energy_kwh": self.energy_kwh,
            "efficiency": self.efficiency, "pareto": self.pareto,
        }


@dataclass(frozen=True)
class Recommendation:
    """All feasible options, the Pareto set, the choice and why."""

    options: tuple[Option, ...]
    fastest: Option | None
    cheapest: Option | None
    choice: Option | None
    reasons: tuple[Msg, ...]

    @property
    def pareto(self) -> list[Option]:
        """Options no other option beats on both time and cost, fastest first."""
        return sorted((o for o in self.options if o.pareto), key=lambda o: o.wall_clock_hours)


def _mark_pareto(options: list[Option]) -> list[Option]:
    ordered = sorted(options, key=lambda o: (o.wall_clock_hours, o.cost_cny))
    out, best_cost = [], float("inf")
    for o in ordered:
        is_front = o.cost_cny < best_cost
        if is_front:
            best_cost = o.cost_cny
        out.append(replace(o, pareto=is_front))
    return out


def recommend(
    *, model: ModelSpec, tokens: float, precision: str = "bf16", workload: str = "pretrain",
    deadline_hours: float | None = None, budget_cny: float | None = None, max_gpus: int = 4096,
    gpu_ids: list[str] | None = None, base_layout: Layout | None = None,
) -> Recommendation:
    """Enumerate, filter and rank the ways to run a training job across the catalog."""
    if deadline_hours is not None and deadline_hours <= 0:
        raise InputError("error.out_of_range", field="deadline_hours", value=deadline_hours, low=">0", high="-")
    if budget_cny is not None and budget_cny <= 0:
        raise InputError("error.out_of_range", field="budget", value=budget_cny, low=">0", high="-")
    if not 1 <= max_gpus <= 16384:
        raise InputError("error.out_of_range", field="max_gpus", value=max_gpus, low="1", high="16384")
    model.validate()
    full_model, _ = complete_architecture(model)
    catalog = load_catalog()
    gpus_considered = [catalog.get(g) for g in gpu_ids] if gpu_ids else list(catalog.gpus)
    d = defaults.load_defaults()
    full_factor = d["full_recompute_flops_factor"].value / d["selective_recompute_flops_factor"].value
    seq = full_model.seq_len or int(d["default_seq_len"].value)
    sequences_per_batch = max(1, int(d["tokens_per_global_batch"].value // seq))

    options: list[Option] = []
    reasons: list[Msg] = []
    no_fit: list[str] = []
    for gpu in gpus_considered:
        job_precision = precision
        if not gpu.peak_tflops(precision):
            if precision == "bf16" and gpu.fp16_tflops:
                job_precision = "fp16"
            else:
                continue
        base = replace(base_layout or Layout(), precision=job_precision)
        found_any = False
        for count in (c for c in GPU_COUNTS if c <= max_gpus):
            fit = first_fitting_layout(full_model, gpu, count, base, d)
            if fit is None:
                continue
            found_any = True
            layout, mem = fit
            est = estimate_training(TrainingInput(model=model, tokens=tokens, gpu=gpu.id, gpus=count,
                                                  precision=job_precision, workload=workload, layout=layout))
            penalty = full_factor if layout.recompute == "full" else 1.0
            if layout.pp > 1:
                micro_batches = max(1, sequences_per_batch // max(1, layout.dp * layout.micro_batch))
                penalty *= 1 + (layout.pp - 1) / micro_batches
            wall = est.wall_clock_hours * penalty
            options.append(Option(
                gpu=gpu.id, gpus=count, precision=job_precision, layout=layout, memory_gb=mem.total_gb,
                wall_clock_hours=wall, gpu_hours=wall * count, cost_cny=est.cost_cny * penalty,
                energy_kwh=est.energy_kwh * penalty, efficiency=est.efficiency,
            ))
        if not found_any:
            no_fit.append(gpu.id)

    if no_fit:
        reasons.append(Msg("recommend.no_fit", {"gpus": ", ".join(no_fit), "max_gpus": max_gpus}))
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
                                                             "days": f"{choice.wall_clock_hours / 24:.1f}"}))
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
                                                             "days": f"{choice.wall_clock_hours / 24:.1f}",
                                                             "cost": f"{choice.cost_cny:,.0f}"}))
        if choice.layout.tp > 1:
            reasons.append(Msg("recommend.choice_uses_tp", {"tp": choice.layout.tp, "gpu": choice.gpu}))
    return Recommendation(tuple(options), fastest, cheapest, choice, tuple(reasons))
