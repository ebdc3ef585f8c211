"""AppTest: saved estimates are listed per department; empty state says what to do."""

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine
from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training
from core.identity import load_personas
from core.services.estimates import save_training_estimate
from tests.support.app_run import no_exceptions, open_page, shows, text


def _save_as(persona_id: str, title: str, monkeypatch_url: str) -> None:
    engine = make_engine(monkeypatch_url)
    upgrade(engine)
    ctx = build(monkeypatch_url)
    actor = next(p for p in load_personas() if p.id == persona_id)
    est = estimate_training(TrainingInput(model=ModelSpec(params=7e9), tokens=1e11, gpu="A100", gpus=8))
    save_training_estimate(sessions=ctx.sessions, actor=actor, title=title, estimate=est)


def test_empty_list_explains_how_to_add_one():
    at = open_page("app_pages/saved_estimates.py")
    no_exceptions(at)
    assert shows(at.info, "saved.empty")


def test_applicant_sees_own_department_and_ops_see_everything(tmp_path, monkeypatch):
    import os

    url = os.environ["COMPUTELOOP_DATABASE_URL"]
    _save_as("zhang.wei", "applicant's estimate", url)
    _save_as("li.na", "ops estimate", url)
    mine = open_page("app_pages/saved_estimates.py", persona="zhang.wei")
    no_exceptions(mine)
    assert list(mine.dataframe[0].value[text("saved.col.title")]) == ["applicant's estimate"]
    ops = open_page("app_pages/saved_estimates.py", persona="li.na")
    assert sorted(ops.dataframe[0].value[text("saved.col.title")]) == ["applicant's estimate", "ops estimate"]
