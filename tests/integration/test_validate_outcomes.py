"""`estimate validate` over recorded outcomes, on SQLite and PostgreSQL: saved estimates with the
actual GPU-hours ops recorded, reported raw and with a leave-one-out calibration."""

from __future__ import annotations

import pytest

from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training
from core.services import estimates as svc
from tests.support.cli import json_of
from tests.support.people import APPLICANT, HQ_OPS


def _save(ctx, actual_gpu_hours: float) -> float:
    est = estimate_training(TrainingInput(model=ModelSpec(params=7e9), tokens=1e11, gpu="A100-80GB", gpus=8,
                                          efficiency=0.4))
    est_id = svc.save_training_estimate(sessions=ctx.sessions, actor=APPLICANT, title="7B", estimate=est)
    svc.record_outcome(sessions=ctx.sessions, actor=HQ_OPS, estimate_id=est_id, actual_gpu_hours=actual_gpu_hours,
                       actual_wall_clock_hours=actual_gpu_hours / 8)
    return est.gpu_hours


def test_no_outcome_yet_is_said(cli):
    data = json_of(cli("estimate", "validate", "--json"))
    assert data["outcomes_read"] is True and data["outcomes"] is None
    code, out, _ = cli("estimate", "validate")
    assert code == 0 and "Recorded outcomes: none yet." in out


def test_recorded_outcomes_raw_and_calibrated(ctx, cli):
    estimated = _save(ctx, 1000.0)
    _save(ctx, estimated * 1.25)
    _save(ctx, estimated * 0.8)
    data = json_of(cli("estimate", "validate", "--json"))
    raw, calibrated = data["outcomes"]["raw"], data["outcomes"]["calibrated"]
    ratios = [estimated / 1000.0, 1 / 1.25, 1 / 0.8]
    assert raw["runs"] == 3
    assert raw["worst_factor"] == pytest.approx(max(max(r, 1 / r) for r in ratios))
    assert calibrated["runs"] == 3  # each of the three calibrated from the other two (same GPU and workload)
    code, out, _ = cli("estimate", "validate", "--lang", "zh-CN")
    assert code == 0 and "历史实际记录（3 条）" in out
