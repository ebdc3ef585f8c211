"""Self-calibration (自学习): fitting a correction from estimated vs actual outcomes.

For each (GPU model, workload) the correction is the geometric mean of actual / estimated
GPU-hours over past runs — robust to one long outlier and symmetric for over- and
under-estimates. Its observed error is reported before (raw estimates) and after correction
(leave-one-out, so a run never corrects itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class RunPair:
    """One finished job: what was estimated and what happened."""

    gpu_id: str
    workload: str
    estimated_gpu_hours: float
    actual_gpu_hours: float


@dataclass(frozen=True)
class Correction:
    """A fitted correction for one (GPU, workload) and the evidence behind it."""

    gpu_id: str
    workload: str
    factor: float
    runs: int
    error_before: float  # mean absolute percentage error of the raw estimates
    error_after: float | None  # leave-one-out MAPE after correction (None with a single run)

    def as_dict(self) -> dict:
        """Plain dict for tables and JSON."""
        return dict(self.__dict__)


def _mape(pairs: list[tuple[float, float]]) -> float:
    return sum(abs(est - act) / act for est, act in pairs) / len(pairs)


def fit_corrections(pairs: Iterable[RunPair]) -> dict[tuple[str, str], Correction]:
    """Corrections by (gpu_id, workload) from ``pairs`` (non-positive values are ignored)."""
    groups: dict[tuple[str, str], list[RunPair]] = {}
    for p in pairs:
        if p.estimated_gpu_hours > 0 and p.actual_gpu_hours > 0:
            groups.setdefault((p.gpu_id, p.workload), []).append(p)
    out = {}
    for key, runs in groups.items():
        logs = [math.log(r.actual_gpu_hours / r.estimated_gpu_hours) for r in runs]
        factor = math.exp(sum(logs) / len(logs))
        before = _mape([(r.estimated_gpu_hours, r.actual_gpu_hours) for r in runs])
        after = None
        if len(runs) > 1:
            loo = []
            for i, r in enumerate(runs):
                others = logs[:i] + logs[i + 1:]
                loo.append((r.estimated_gpu_hours * math.exp(sum(others) / len(others)), r.actual_gpu_hours))
            after = _mape(loo)
        out[key] = Correction(key[0], key[1], factor, len(runs), before, after)
    return out
