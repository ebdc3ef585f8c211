"""Saved estimates, outcomes and calibration against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.db.models import AuditEventRow, EstimateRow, OutcomeRow
from core.errors import InputError, NotFound
from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training
from core.identity import Identity, PermissionDenied
from core.services import estimates as svc

APPLICANT = Identity("zhang.wei", "张伟", "z@example.com", "applicant", department="数字化部")
OTHER_DEPT = Identity("liu.yang", "刘洋", "l@example.com", "applicant", department="营销部")
OPS = Identity("li.na", "李娜", "n@example.com", "hq_ops", department="算力运营中心")
EXEC = Identity("wang.qiang", "王强", "w@example.com", "executive")


def _training(gpus: int = 8, efficiency: float = 0.4):
    return estimate_training(TrainingInput(model=ModelSpec(params=7e9), tokens=1e11, gpu="A100-80GB",
                                           gpus=gpus, efficiency=efficiency))


def test_saved_training_estimate_reopens_with_the_same_inputs(ctx):
    est = _training()
    new_id = svc.save_training_estimate(sessions=ctx.sessions, actor=APPLICANT, title="7B 预训练", estimate=est)
    saved = svc.get_estimate(sessions=ctx.sessions, actor=APPLICANT, estimate_id=new_id)
    assert saved["title"] == "7B 预训练"
    assert TrainingInput.from_dict(saved["inputs"]) == est.inputs
    assert saved["outputs"]["gpu_hours"] == pytest.approx(est.gpu_hours)


def test_applicants_see_only_their_department_and_ops_see_all(ctx):
    mine = svc.save_training_estimate(sessions=ctx.sessions, actor=APPLICANT, title="mine", estimate=_training())
    theirs = svc.save_training_estimate(sessions=ctx.sessions, actor=OTHER_DEPT, title="theirs", estimate=_training())
    assert [e["id"] for e in svc.list_estimates(sessions=ctx.sessions, actor=APPLICANT)] == [mine]
    assert {e["id"] for e in svc.list_estimates(sessions=ctx.sessions, actor=OPS)} == {mine, theirs}
    with pytest.raises(NotFound):
        svc.get_estimate(sessions=ctx.sessions, actor=APPLICANT, estimate_id=theirs)
    with pytest.raises(PermissionDenied):
        svc.list_estimates(sessions=ctx.sessions, actor=EXEC)


def test_only_ops_record_outcomes_and_each_is_audited_in_the_same_transaction(ctx):
    est_id = svc.save_training_estimate(sessions=ctx.sessions, actor=APPLICANT, title="t", estimate=_training())
    with pytest.raises(PermissionDenied):
        svc.record_outcome(sessions=ctx.sessions, actor=APPLICANT, estimate_id=est_id,
                           actual_gpu_hours=100, actual_wall_clock_hours=10)
    svc.record_outcome(sessions=ctx.sessions, actor=OPS, estimate_id=est_id, actual_gpu_hours=100,
                       actual_wall_clock_hours=12.5, note="finished")
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(OutcomeRow)) == 1
        actions = s.scalars(select(AuditEventRow.action).order_by(AuditEventRow.id)).all()
    assert actions == ["estimate.saved", "estimate.outcome_recorded"]


def test_bad_outcome_writes_nothing(ctx):
    est_id = svc.save_training_estimate(sessions=ctx.sessions, actor=APPLICANT, title="t", estimate=_training())
    with pytest.raises(InputError) as err:
        svc.record_outcome(sessions=ctx.sessions, actor=OPS, estimate_id=est_id, actual_gpu_hours=-5,
                           actual_wall_clock_hours=1)
    assert err.value.field == "actual_gpu_hours"
    with pytest.raises(NotFound):
        svc.record_outcome(sessions=ctx.sessions, actor=OPS, estimate_id=9999, actual_gpu_hours=5,
                           actual_wall_clock_hours=1)
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(OutcomeRow)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEventRow)) == 1  # only the save


def test_calibration_fits_from_recorded_runs_and_applies_after_enough_runs(ctx):
    ratios = [1.2, 1.3, 1.25]
    for i, ratio in enumerate(ratios):
        est = _training()
        est_id = svc.save_training_estimate(sessions=ctx.sessions, actor=APPLICANT, title=f"run {i}", estimate=est)
        assert svc.correction_for(sessions=ctx.sessions, gpu_id="A100-80GB", workload="pretrain") is None
        svc.record_outcome(sessions=ctx.sessions, actor=OPS, estimate_id=est_id,
                           actual_gpu_hours=est.gpu_hours * ratio, actual_wall_clock_hours=est.wall_clock_hours * ratio)
    correction = svc.correction_for(sessions=ctx.sessions, gpu_id="A100-80GB", workload="pretrain")
    assert correction is not None and correction.runs == 3
    assert correction.factor == pytest.approx((1.2 * 1.3 * 1.25) ** (1 / 3))
    calibrated = estimate_training(_training().inputs, calibration=correction)
    assert calibrated.wall_clock_hours == pytest.approx(_training().wall_clock_hours * correction.factor)
    # Saving a calibrated estimate stores the uncalibrated hours, so the fit is not compounded.
    again = svc.save_training_estimate(sessions=ctx.sessions, actor=APPLICANT, title="calibrated", estimate=calibrated)
    with ctx.sessions() as s:
        row = s.get(EstimateRow, again)
        assert row.estimated_gpu_hours == pytest.approx(_training().gpu_hours)
