"""How wrong the efficiency model is on runs it did not see (``python -m core estimate validate``).

Leave-one-out over ``data/efficiency.yaml``: each published run in turn is removed, the default
efficiency for its own job (GPU, precision, workload, active and total parameters, GPU count) is
computed from all the other runs — tiers, MoE discount and all — and the GPU-hours that efficiency
gives for one trillion tokens are compared with the GPU-hours the run's published figure gives:

  GPU-hours = c · N_active · 1e12 / (achieved TFLOP/s per GPU · 1e12) / 3600
  published: achieved = published MFU × the run's dense peak (its ``peak_basis``)
  estimated: achieved = default efficiency × the job's dense peak at its precision

with c the model FLOPs per parameter and token of the run's workload, as the estimate counts them
(:func:`core.estimation.flops.flops_per_param_token`: 6, or 4 for LoRA — which is also how NVIDIA's
published LoRA figures count, so for those rows the published GPU-hours match the published
tokens per second).

The correction factor (修正系数) and any calibration are left out on both sides: the published
figures are throughputs, and this measures the efficiency model alone. The error of one run is
|estimated / published − 1|; the summary gives the median of those and the worst ratio either way
(max(est/pub, pub/est)), overall and per search path ("tier 1", "tier 2 + MoE discount", …).

Recorded outcomes (actual GPU-hours of finished jobs against their saved estimates) get the same
summary, before and after a leave-one-out calibration (see :mod:`core.estimation.calibration`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable

from core.datafiles import load_yaml
from core.errors import InputError
from core.estimation.calibration import RunPair
from core.estimation.catalog import Catalog, load_catalog
from core.estimation.efficiency import MeasuredRun, default_efficiency, load_runs
from core.estimation.flops import flops_per_param_token

REFERENCE_TOKENS = 1e12  # GPU-hours are compared per trillion training tokens


@dataclass(frozen=True)
class RunCheck:
    """One published run estimated from the others."""

    run: MeasuredRun
    method: str
    tier: int
    efficiency: float
    estimated_gpu_hours: float
    published_gpu_hours: float

    @property
    def ratio(self) -> float:
        """Estimated / published GPU-hours (above 1: the estimate is too slow)."""
        return self.estimated_gpu_hours / self.published_gpu_hours

    @property
    def error(self) -> float:
        """|estimated / published − 1|."""
        return abs(self.ratio - 1.0)

    @property
    def factor(self) -> float:
        """How many times off, either way (≥ 1)."""
        return max(self.ratio, 1.0 / self.ratio)

    def as_dict(self) -> dict:
        """Plain dict for JSON."""
        return {"id": self.run.id, "method": self.method, "tier": self.tier, "moe": self.run.is_moe,
                "efficiency": self.efficiency, "published_mfu": self.run.mfu,
                "estimated_gpu_hours_per_1e12_tokens": self.estimated_gpu_hours,
                "published_gpu_hours_per_1e12_tokens": self.published_gpu_hours,
                "ratio": self.ratio, "error": self.error, "factor": self.factor}


@dataclass(frozen=True)
class ErrorSummary:
    """Median error and worst factor over a group of runs."""

    label: str
    runs: int
    median_error: float
    worst_factor: float
    worst_run: str

    def as_dict(self) -> dict:
        """Plain dict for JSON."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Validation:
    """The leave-one-out evaluation over the published runs."""

    checks: tuple[RunCheck, ...]
    groups: tuple[ErrorSummary, ...]
    overall: ErrorSummary
    skipped: tuple[str, ...] = ()

    def group(self, method: str) -> ErrorSummary | None:
        """The summary of one search path ('tier 1', 'tier 1 + MoE discount', …), if any run took it."""
        return next((g for g in self.groups if g.label == method), None)

    def as_dict(self) -> dict:
        """The JSON contract of ``estimate validate`` (published runs part)."""
        return {"reference_tokens": REFERENCE_TOKENS, "overall": self.overall.as_dict(),
                "by_method": [g.as_dict() for g in self.groups], "runs": [c.as_dict() for c in self.checks],
                "skipped": list(self.skipped)}


def _summary(label: str, items: list[tuple[str, float]]) -> ErrorSummary:
    """``items``: (run id, estimated / actual ratio)."""
    worst_id, worst_ratio = max(items, key=lambda x: max(x[1], 1.0 / x[1]))
    return ErrorSummary(label=label, runs=len(items), median_error=statistics.median(abs(r - 1.0) for _, r in items),
                        worst_factor=max(worst_ratio, 1.0 / worst_ratio), worst_run=worst_id)


def _gpu_hours(n_active: float, achieved_tflops: float, workload: str) -> float:
    return flops_per_param_token(workload) * n_active * REFERENCE_TOKENS / (achieved_tflops * 1e12) / 3600.0


def leave_one_out(runs: list[MeasuredRun] | None = None, catalog: Catalog | None = None) -> Validation:
    """Estimate every run from all the others and compare GPU-hours (see the module docstring)."""
    runs = load_runs() if runs is None else list(runs)
    catalog = catalog or load_catalog()
    checks: list[RunCheck] = []
    skipped: list[str] = []
    for i, run in enumerate(runs):
        others = runs[:i] + runs[i + 1:]
        try:
            gpu = catalog.get(run.gpu)
            result = default_efficiency(gpu=gpu, catalog=catalog, precision=run.precision, params=run.n_active,
                                        gpus=run.gpus, workload=run.workload, total_params=run.params, runs=others)
            basis_peak = gpu.peak_tflops(run.peak_basis)
            job_peak = gpu.peak_tflops(run.precision)
        except InputError:
            skipped.append(run.id)
            continue
        if not basis_peak or not job_peak:
            skipped.append(run.id)
            continue
        checks.append(RunCheck(
            run=run, method=result.method, tier=result.tier, efficiency=result.value,
            estimated_gpu_hours=_gpu_hours(run.n_active, result.value * job_peak, run.workload),
            published_gpu_hours=_gpu_hours(run.n_active, run.mfu * basis_peak, run.workload),
        ))
    if not checks:
        raise InputError("error.no_efficiency_data", field="efficiency.yaml")
    methods = sorted({c.method for c in checks}, key=lambda m: (int(m.split()[1]), m))
    groups = tuple(_summary(m, [(c.run.id, c.ratio) for c in checks if c.method == m]) for m in methods)
    overall = _summary("all", [(c.run.id, c.ratio) for c in checks])
    return Validation(tuple(checks), groups, overall, tuple(skipped))


_cache: tuple[tuple, Validation] | None = None
_INPUTS = ("efficiency.yaml", "gpus.yaml", "estimation_defaults.yaml")


def published_accuracy() -> Validation:
    """:func:`leave_one_out` over the configured data files, computed once until one of them changes."""
    global _cache
    raws = tuple(load_yaml(name) for name in _INPUTS)
    if _cache is None or any(a is not b for a, b in zip(_cache[0], raws)):
        _cache = (raws, leave_one_out())
    return _cache[1]


@dataclass(frozen=True)
class OutcomeAccuracy:
    """Recorded outcomes: raw estimates against actual GPU-hours, and after a leave-one-out
    calibration per (GPU, workload) (None when no group has two runs)."""

    raw: ErrorSummary
    calibrated: ErrorSummary | None

    def as_dict(self) -> dict:
        """Plain dict for JSON."""
        return {"raw": self.raw.as_dict(), "calibrated": self.calibrated.as_dict() if self.calibrated else None}


def outcome_accuracy(pairs: Iterable[RunPair]) -> OutcomeAccuracy | None:
    """Error of recorded estimates, raw and calibrated from the other runs of the same GPU and workload
    (the geometric-mean correction of :func:`core.estimation.calibration.fit_corrections`)."""
    good = [p for p in pairs if p.estimated_gpu_hours > 0 and p.actual_gpu_hours > 0]
    if not good:
        return None
    label = lambda i, p: f"#{i + 1} {p.gpu_id} {p.workload}"  # noqa: E731
    raw = _summary("recorded outcomes", [(label(i, p), p.estimated_gpu_hours / p.actual_gpu_hours)
                                         for i, p in enumerate(good)])
    after = []
    for i, p in enumerate(good):
        logs = [math.log(q.actual_gpu_hours / q.estimated_gpu_hours) for j, q in enumerate(good)
                if j != i and (q.gpu_id, q.workload) == (p.gpu_id, p.workload)]
        if logs:
            corrected = p.estimated_gpu_hours * math.exp(sum(logs) / len(logs))
            after.append((label(i, p), corrected / p.actual_gpu_hours))
    return OutcomeAccuracy(raw, _summary("recorded outcomes, calibrated", after) if after else None)


def percent(x: float) -> str:
    """An error as the README and the page print it: one decimal, a space, '%'."""
    return f"{x * 100:.1f} %"


def times(x: float) -> str:
    """A factor as the README and the page print it: two decimals and '×'."""
    return f"{x:.2f}×"


def method_label(method: str, lang: str) -> str:
    """'tier 1' / 'tier 2 + MoE discount' in ``lang``."""
    from core.i18n import translate

    if method == "all":
        return translate("estvalid.method_all", lang)
    tier = int(method.split()[1])
    text = translate("estvalid.method_tier", lang, tier=tier)
    if method.endswith("MoE discount"):
        return text + translate("estvalid.method_moe_discount", lang)
    return text + translate("estvalid.method_moe_runs", lang) if method.endswith("MoE") else text


def markdown_table(result: Validation, lang: str = "en") -> str:
    """The per-method table as Markdown: what ``estimate validate`` prints and the README holds."""
    from core.i18n import translate

    head = [translate(f"estvalid.col_{c}", lang) for c in ("method", "runs", "median", "worst", "worst_run")]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---|"]
    for g in (*result.groups, result.overall):
        lines.append(f"| {method_label(g.label, lang)} | {g.runs} | {percent(g.median_error)} | "
                     f"{times(g.worst_factor)} | {g.worst_run} |")
    return "\n".join(lines)


def report_text(
    result: Validation, outcomes: OutcomeAccuracy | None, unread, lang: str = "en", *, outcomes_read: bool = True,  # noqa: ANN001
) -> str:
    """The text output of ``estimate validate``: what was compared, the table, the recorded outcomes
    (``outcomes_read`` False: they were not asked for)."""
    from core.i18n import translate

    lines = [translate("estvalid.validate_title", lang, runs=result.overall.runs,
                       tokens=f"{REFERENCE_TOKENS:.0e}".replace("+", "")),
             "", markdown_table(result, lang), ""]
    if result.skipped:
        lines.append(translate("estvalid.validate_skipped", lang, runs=", ".join(result.skipped)))
    if not outcomes_read:
        pass
    elif unread is not None:
        lines.append(translate("estvalid.outcomes_not_read", lang, reason=unread.render(lang)))
    elif outcomes is None:
        lines.append(translate("estvalid.outcomes_none", lang))
    else:
        for s in (outcomes.raw, outcomes.calibrated):
            if s is not None:
                key = "estvalid.outcomes_raw" if s is outcomes.raw else "estvalid.outcomes_calibrated"
                lines.append(translate(key, lang, runs=s.runs, median=percent(s.median_error),
                                       worst=times(s.worst_factor)))
    return "\n".join(lines)
