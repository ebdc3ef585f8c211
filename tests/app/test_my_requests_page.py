"""My requests: the owner of a training allocation records a training result, a bad field is named
on the page, and the recorded result is listed."""

from __future__ import annotations

from core.context import build
from core.demo import _training_form
from core.identity import load_personas
from core.lifecycle import services as lifecycle
from tests.support import clock
from tests.support.app_run import no_exceptions, open_page, shows, text

PAGE = "app_pages/my_requests.py"


def _active_training_request() -> int:
    owner = {p.id: p for p in load_personas()}["zhang.wei"]
    ctx = build()
    try:
        view = lifecycle.submit(sessions=ctx.sessions, actor=owner, form=_training_form(
            project="P-LLM-01", department="digital", applicant=owner.name, pool="hq-ft", gpus=2, days=5,
            start=clock.today()))
    finally:
        ctx.engine.dispose()
    assert view["provisioning"]["status"] == "active"
    return view["id"]


def _fill(at, **values):
    for key, value in values.items():
        at.text_input(key=key).input(value)


def test_the_owner_records_a_training_result_and_a_bad_value_is_named():
    open_page(PAGE)  # migrates the app's database
    rid = _active_training_request()
    at = open_page(PAGE)
    at.selectbox(key="myreq_table").select(rid).run()
    no_exceptions(at)
    assert shows(at.caption, "quality.none_yet")
    _fill(at, tr_metric="eval_loss", tr_value="abc", tr_dataset="held-out", tr_baseline="2.3")
    at.checkbox(key="tr_higher").uncheck()
    at.button[-1].click().run()
    bad_value = text("error.field_prefix", field=text("fieldname.value")) + " " + text("quality.not_a_number", value="abc")
    assert bad_value in [e.value for e in at.error], [e.value for e in at.error]
    _fill(at, tr_value="1.9")
    at.button[-1].click().run()
    no_exceptions(at)
    assert shows(at.success, "quality.recorded")
    table = at.dataframe[-1].value
    assert list(table[text("quality.metric")]) == [text("uitext.quality_metric.eval_loss")]
    assert float(table[text("reports.col.improvement")].iloc[0]) == 0.4  # 2.3 - 1.9, lower is better


def test_ops_see_the_results_but_no_form_on_someone_elses_request():
    open_page(PAGE)
    rid = _active_training_request()
    at = open_page(PAGE, persona="li.na", lang="zh-CN")
    at.selectbox(key="myreq_table").select(rid).run()
    no_exceptions(at)
    assert shows(at.caption, "quality.only_training", "zh-CN")
    assert not [b for b in at.button if b.label == text("quality.record", "zh-CN")]
