"""Training estimate: FLOPs → effective FLOP/s → wall-clock, GPU-hours, energy and cost, plus the
memory per GPU of the layout that fits.

  total FLOPs      = 6 · N_active · D (4 · N_active · D for LoRA: no weight gradients for the
                     frozen base; the fuller count is shown beside it)
  effective FLOP/s = peak(precision) × efficiency        (efficiency from measured runs; an MoE job
                                                          from MoE runs, or dense runs × MoE discount)
  ideal time       = FLOPs / (effective FLOP/s × GPUs)
  wall-clock       = ideal time × correction factor (修正系数) × calibration (if fitted)
  GPU-hours        = wall-clock × GPUs
  energy (kWh)     = GPU-hours × TDP (kW) × power fraction × PUE
  cost             = GPU-hours × price per GPU-hour
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from core.errors import InputError
from core.estimation import defaults
from core.estimation.calibration import Correction
from core.estimation.catalog import GPU, PRECISIONS, load_catalog
from core.estimation.efficiency import WORKLOADS, EfficiencyDefault, default_efficiency
from core.estimation.flops import (FlopsBreakdown, detailed_training_flops, flops_per_param_token,
                                   simple_training_flops)
from core.estimation.layouts import first_fitting_layout, global_batch_tokens, smallest_footprint_layout
from core.estimation.memory import Layout, MemoryEstimate, estimate_memory, what_would_fit
from core.estimation.model import ModelSpec, complete_architecture
from core.i18n import Msg


@dataclass(frozen=True)
class TrainingInput:
    """What a user asks: a model, a token count, a GPU model and count, and optional overrides."""

    model: ModelSpec
    tokens: float
    gpu: str
    gpus: int
    precision: str = "bf16"
    workload: str = "pretrain"
    efficiency: float | None = None
    correction_factor: float | None = None
    pue: float | None = None
    layout: Layout | None = None

    def to_dict(self) -> dict:
        """Plain dict (JSON-safe) from which :meth:`from_dict` rebuilds the same input."""
        return {
            "model": dict(self.model.__dict__), "tokens": self.tokens, "gpu": self.gpu, "gpus": self.gpus,
            "precision": self.precision, "workload": self.workload, "efficiency": self.efficiency,
            "correction_factor": self.correction_factor, "pue": self.pue,
            "layout": dict(self.layout.__dict__) if self.layout else None,
        }

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainingInput":
        """Rebuild an input saved with :meth:`to_dict`."""
        values = dict(raw)
        values["model"] = ModelSpec(**values["model"])
        values["layout"] = Layout(**values["layout"]) if values.get("layout") else None
        return cls(**values)

    def validate(self) -> "TrainingInput":
        """Raise :class:`InputError` naming the field on absurd values; returns self."""
        self.model.validate()
        if not (self.tokens > 0 and math.isfinite(self.tokens)) or self.tokens > 1e15:
            raise InputError("error.out_of_range", field="tokens", value=self.tokens, low="1", high="1e15")
        if not 1 <= self.gpus <= 1_000_000 or int(self.gpus) != self.gpus:
            raise InputError("error.out_of_range", field="gpus", value=self.gpus, low="1", high="1000000")
        if self.workload not in WORKLOADS:
            raise InputError("error.choice", field="workload", value=self.workload, choices=", ".join(WORKLOADS))
        if self.precision not in PRECISIONS:
            raise InputError("error.choice", field="precision", value=self.precision, choices=", ".join(PRECISIONS))
        if self.efficiency is not None and not 0.01 <= self.efficiency <= 1.0:
            raise InputError("error.out_of_range", field="efficiency", value=self.efficiency, low="0.01", high="1")
        if self.correction_factor is not None and not 1.0 <= self.correction_factor <= 5.0:
            raise InputError("error.out_of_range", field="correction_factor", value=self.correction_factor, low="1", high="5")
        if self.pue is not None and not 1.0 <= self.pue <= 3.0:
            raise InputError("error.out_of_range", field="pue", value=self.pue, low="1", high="3")
        return self


@dataclass(frozen=True)
class Line:
    """One output with its formula (numbers filled in) — what "show the formula" displays."""

    name: str
    value: float
    unit: str
    formula: str


@dataclass(frozen=True)
class TrainingEstimate:
    """The result of :func:`estimate_training`."""

    inputs: TrainingInput
    gpu: GPU
    total_flops: float
    detailed: FlopsBreakdown | None
    peak_tflops: float
    efficiency: float
    efficiency_evidence: EfficiencyDefault | None
    effective_tflops_per_gpu: float
    correction_factor: float
    calibration: Correction | None
    wall_clock_hours: float
    gpu_hours: float
    energy_kwh: float
    cost_cny: float
    layout: Layout
    memory: MemoryEstimate
    fit_remedies: tuple[Msg, ...]
    lines: tuple[Line, ...]
    assumptions: tuple[Msg, ...] = field(default_factory=tuple)

    def as_dict(self, lang: str = "en") -> dict:
        """The JSON contract of ``estimate training`` (assumptions rendered in ``lang``)."""
        ev = self.efficiency_evidence
        return {
            "gpu": self.gpu.id,
            "gpus": self.inputs.gpus,
            "precision": self.inputs.precision,
            "total_flops": self.total_flops,
            "total_flops_detailed": self.detailed.training_total if self.detailed else None,
            "peak_tflops_per_gpu": self.peak_tflops,
            "efficiency": self.efficiency,
            "efficiency_source": [
                {"id": n.run.id, "efficiency": n.efficiency, "weight": n.weight, "source": n.run.source}
                for n in ev.neighbours
            ] if ev else "user",
            "efficiency_tier": ev.tier if ev else None,
            "efficiency_confidence": ev.confidence if ev else None,
            "moe_discount": {
                "value": ev.moe_discount.value,
                "pairs": [{"id": p.run.id, "dense": [r.id for r in p.dense], "ratio": p.ratio, "weight": p.weight}
                          for p in ev.moe_discount.pairs],
            } if ev and ev.moe_discount else None,
            "effective_tflops_per_gpu": self.effective_tflops_per_gpu,
            "correction_factor": self.correction_factor,
            "calibration_factor": self.calibration.factor if self.calibration else None,
            "wall_clock_hours": self.wall_clock_hours,
            "wall_clock_days": self.wall_clock_hours / 24,
            "gpu_hours": self.gpu_hours,
            "energy_kwh": self.energy_kwh,
            "cost": self.cost_cny,
            "cost_currency": "CNY",
            "price_is_placeholder": self.gpu.price_is_placeholder,
            "layout": {"tp": self.layout.tp, "pp": self.layout.pp, "dp": self.layout.dp, "ep": self.layout.ep,
                       "zero": self.layout.zero,
                       "recompute": self.layout.recompute, "offload": self.layout.offload,
                       "micro_batch": self.layout.micro_batch},
            "memory_per_gpu_gb": self.memory.total_gb,
            "memory": self.memory.as_dict(),
            "fits_in_memory": self.memory.fits,
            "fit_remedies": [m.render(lang) for m in self.fit_remedies],
            "formulas": {line.name: line.formula for line in self.lines},
            "assumptions": [m.render(lang) for m in self.assumptions],
        }


def _efficiency_note(evidence: EfficiencyDefault, gpu: GPU, precision: str, active: float) -> Msg:
    """The assumption line saying where the default efficiency comes from."""
    runs = ", ".join(n.run.id for n in evidence.neighbours)
    value = f"{evidence.value:.0%}"
    if evidence.moe_discount:
        discount = evidence.moe_discount
        dense = sum(n.weight * n.efficiency for n in evidence.neighbours)
        pairs = ", ".join(f"{p.run.id} {p.ratio:.2f}" for p in discount.pairs)
        params = {"family": gpu.family, "precision": precision, "dense": f"{dense:.0%}", "runs": runs,
                  "discount": f"{discount.value:.2f}", "pairs": pairs, "efficiency": value}
        if evidence.moe_set_aside:
            larger = all(r.n_active > active for r in evidence.moe_set_aside)
            key = "assume.efficiency_moe_all_larger" if larger else "assume.efficiency_moe_all_smaller"
            return Msg(key, params | {"own": ", ".join(r.id for r in evidence.moe_set_aside),
                                      "active": f"{active:.3g}"})
        return Msg("assume.efficiency_moe_discount", params)
    if evidence.moe:
        return Msg("assume.efficiency_moe", {"efficiency": value, "runs": runs})
    return Msg(f"assume.efficiency_tier{evidence.tier}", {"efficiency": value, "runs": runs})


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.3e}"


def estimate_training(
    inp: TrainingInput, *, calibration: Correction | None = None, evidence: EfficiencyDefault | None = None
) -> TrainingEstimate:
    """Size a training job. ``calibration`` (from past runs) scales the wall-clock when given;
    ``evidence`` is the default efficiency when the caller has already computed it for this very job
    (the recommendation does, once per GPU model and count)."""
    inp.validate()
    catalog = load_catalog()
    gpu = catalog.get(inp.gpu)
    d = defaults.load_defaults()
    peak = gpu.peak_tflops(inp.precision)
    if not peak:
        raise InputError("error.precision_unsupported", field="precision", gpu=gpu.id, precision=inp.precision)

    model, notes = complete_architecture(inp.model)
    notes = list(notes)
    flops = simple_training_flops(model, inp.tokens, inp.workload)
    per_param = flops_per_param_token(inp.workload)
    detailed = (detailed_training_flops(model, inp.tokens, inp.workload)
                if model.has_architecture and model.seq_len else None)
    if inp.workload == "lora":
        notes.append(Msg("assume.lora_flops", {}))
    if inp.model.active_params:
        notes.append(Msg("assume.moe_active", {"active": f"{inp.model.active_params:.3g}", "total": f"{inp.model.params:.3g}"}))

    if inp.efficiency is not None:
        evidence = None
        efficiency = inp.efficiency
        notes.append(Msg("assume.efficiency_user", {"efficiency": f"{efficiency:.0%}"}))
    else:
        evidence = evidence or default_efficiency(
            gpu=gpu, catalog=catalog, precision=inp.precision, params=model.n_active, gpus=inp.gpus,
            workload=inp.workload, total_params=model.params)
        efficiency = evidence.value
        notes.append(_efficiency_note(evidence, gpu, inp.precision, model.n_active))

    effective = peak * efficiency
    correction = inp.correction_factor if inp.correction_factor is not None else d["correction_factor"].value
    notes.append(Msg("assume.correction", {"factor": f"{correction:.2f}",
                                           "source": "user" if inp.correction_factor is not None else d["correction_factor"].source}))
    calib = calibration.factor if calibration else 1.0
    if calibration:
        notes.append(Msg("assume.calibration", {"factor": f"{calib:.2f}", "runs": calibration.runs}))
    ideal_hours = flops / (effective * 1e12 * inp.gpus) / 3600
    wall = ideal_hours * correction * calib
    gpu_hours = wall * inp.gpus
    pue = inp.pue if inp.pue is not None else d["pue"].value
    power_fraction = d["gpu_power_fraction_of_tdp"].value
    energy = gpu_hours * gpu.tdp_w / 1000 * power_fraction * pue
    cost = gpu_hours * gpu.price_cny_per_gpu_hour
    notes.append(Msg("assume.energy", {"pue": f"{pue:.2f}", "fraction": f"{power_fraction:.0%}"}))
    if gpu.price_is_placeholder:
        notes.append(Msg("assume.price_placeholder", {"gpu": gpu.id, "price": gpu.price_cny_per_gpu_hour}))

    base = inp.layout or Layout(precision=inp.precision)
    base = replace(base, gpus=inp.gpus, precision=inp.precision)
    if inp.layout is not None:
        layout = base.validate(model)
        memory = estimate_memory(model, layout, gpu, d)
    else:
        batch = global_batch_tokens(inp.workload, d)
        found = first_fitting_layout(model, gpu, inp.gpus, base, d, batch)
        layout, memory = found if found else smallest_footprint_layout(model, gpu, inp.gpus, base, d, batch)
        notes.append(Msg("assume.layout_chosen", {"tp": layout.tp, "pp": layout.pp, "zero": layout.zero,
                                                  "recompute": layout.recompute}))
        if layout.ep > 1:
            notes.append(Msg("assume.layout_ep", {"ep": layout.ep}))
    notes.extend(memory.assumptions)
    remedies = tuple(what_would_fit(model, layout, gpu, d)) if not memory.fits else ()

    lines = (
        Line("total_flops", flops, "FLOPs", f"{per_param:g} × N × D = {per_param:g} × {_fmt(model.n_active)} × "
                                              f"{_fmt(inp.tokens)} = {_fmt(flops)}"),
        Line("effective_tflops_per_gpu", effective, "TFLOP/s",
             f"peak × efficiency = {_fmt(peak)} × {efficiency:.3f} = {_fmt(effective)}"),
        Line("wall_clock_hours", wall, "h",
             f"FLOPs / (effective × GPUs) × correction{' × calibration' if calibration else ''} = "
             f"{_fmt(flops)} / ({_fmt(effective)}e12 × {inp.gpus}) / 3600 × {correction:.2f}"
             f"{f' × {calib:.2f}' if calibration else ''} = {_fmt(wall)} h"),
        Line("gpu_hours", gpu_hours, "GPU·h", f"wall-clock × GPUs = {_fmt(wall)} × {inp.gpus} = {_fmt(gpu_hours)}"),
        Line("energy_kwh", energy, "kWh",
             f"GPU·h × TDP × power fraction × PUE = {_fmt(gpu_hours)} × {gpu.tdp_w / 1000:.3g} kW × {power_fraction:.2f} × {pue:.2f} = {_fmt(energy)}"),
        Line("cost", cost, "CNY", f"GPU·h × price = {_fmt(gpu_hours)} × {gpu.price_cny_per_gpu_hour:.2f} = {_fmt(cost)}"),
    )
    if detailed:
        lines = lines + (Line("total_flops_detailed", detailed.training_total, "FLOPs",
                              f"{detailed.passes:g} × forward/token × D = {detailed.passes:g} × "
                              f"{_fmt(detailed.forward_per_token)} × {_fmt(inp.tokens)} = "
                              f"{_fmt(detailed.training_total)}"),)
    return TrainingEstimate(
        inputs=inp, gpu=gpu, total_flops=flops, detailed=detailed, peak_tflops=peak, efficiency=efficiency,
        efficiency_evidence=evidence, effective_tflops_per_gpu=effective, correction_factor=correction,
        calibration=calibration, wall_clock_hours=wall, gpu_hours=gpu_hours, energy_kwh=energy, cost_cny=cost,
        layout=layout, memory=memory, fit_remedies=remedies, lines=lines, assumptions=tuple(notes),
    )
