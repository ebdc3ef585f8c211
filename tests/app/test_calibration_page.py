"""AppTest: ops record an actual outcome and the fitted correction appears."""

import os

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine
from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training
from core.identity import load_personas
from core.services.estimates import save_training_estimate
from tests.support.app_run import no_exceptions, open_page, shows, text


def _record(at):
    """The form's submit button (labelled with the catalog text of calibration.submit)."""
    [button] = [b for b in at.button if b.label == text("calibration.submit")]
    return button


def test_recording_an_outcome_updates_the_correction_table():
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    applicant = next(p for p in load_personas() if p.id == "zhang.wei")
    est = estimate_training(TrainingInput(model=ModelSpec(params=7e9), tokens=1e11, gpu="A100", gpus=8, efficiency=0.4))
    save_training_estimate(sessions=build(url).sessions, actor=applicant, title="finished job", estimate=est)

    at = open_page("app_pages/calibration.py", persona="li.na")
    no_exceptions(at)
    assert shows(at.info, "calibration.empty")
    at.number_input(key="cal_gpu_hours").set_value(round(est.gpu_hours * 1.5, 3))
    at.number_input(key="cal_wall_hours").set_value(round(est.wall_clock_hours * 1.5, 3))
    _record(at).click().run()
    no_exceptions(at)
    assert shows(at.success, "calibration.recorded")
    table = at.dataframe[0].value
    assert table[text("calibration.col.runs")].item() == 1
    assert abs(table[text("calibration.col.factor")].item() - 1.5) < 0.01


def test_zero_hours_are_refused_with_the_field_named():
    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    upgrade(make_engine(url))
    applicant = next(p for p in load_personas() if p.id == "zhang.wei")
    est = estimate_training(TrainingInput(model=ModelSpec(params=7e9), tokens=1e11, gpu="A100", gpus=8))
    save_training_estimate(sessions=build(url).sessions, actor=applicant, title="job", estimate=est)
    at = open_page("app_pages/calibration.py", persona="li.na")
    _record(at).click().run()
    no_exceptions(at)
    field = text("error.field_prefix", field=text("fieldname.actual_gpu_hours"))
    assert any(e.value.startswith(field) for e in at.error), [e.value for e in at.error]
