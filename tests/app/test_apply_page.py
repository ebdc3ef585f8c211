"""AppTest: the Apply page checks, saves drafts, refuses incomplete forms with the list, submits once
(then clears the form and links the new request), and takes over what a saved estimate knows."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training
from core.lifecycle.rules import request_number
from core.org import load_org
from core.services import estimates as estimates_svc
from tests.support import clock
from tests.support.app_run import message, no_exceptions, open_page, shows, text
from tests.support.people import APPLICANT

PAGE = "app_pages/apply.py"


def _button(at, key, lang="en"):
    """The button labelled with the catalog text of ``key``."""
    label = text(key, lang)
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in at.button]}"
    return matches[0]


def _status(key_suffixes) -> set[str]:
    return {text(f"status.{s}") for s in key_suffixes}


def _fill_training(at, *, gpus: int, days: int, pool: str = "hq-ft") -> None:
    at.text_input(key="ap_contact").input("010-6666-8888")
    at.text_area(key="ap_business_background").input("调度规程问答模型微调")
    at.text_area(key="ap_expected_value").input("提升调度员检索效率")
    at.text_input(key="ap_model_name").input("Qwen2.5-7B")
    at.number_input(key="ap_parameters").set_value(7.6)
    at.text_input(key="ap_framework").input("PyTorch")
    at.number_input(key="ap_data_size_gb").set_value(50.0)
    at.selectbox(key="ap_gpu_model").set_value("H20")
    at.number_input(key="ap_gpus_per_run").set_value(gpus)
    at.number_input(key="ap_hours_per_run").set_value(12.0)
    at.number_input(key="ap_runs_per_period").set_value(2)
    at.text_input(key="ap_cuda_version").input("12.1")
    at.text_input(key="ap_python_version").input("3.11")
    at.text_input(key="ap_key_libraries").input("torch==2.3.1, peft==0.11.1")
    at.selectbox(key="ap_pool").set_value(pool)
    at.number_input(key="ap_requested_gpus").set_value(gpus)
    at.date_input(key="ap_start_date").set_value(clock.day(1))
    at.number_input(key="ap_duration_days").set_value(days)
    at.radio(key="ap_demand_subtype").set_value("l2_finetune")


def test_an_incomplete_form_is_refused_with_everything_missing_and_nothing_saved():
    at = open_page(PAGE)
    _button(at, "apply.submit").click().run()
    no_exceptions(at)
    assert shows(at.error, "apply.missing"), [e.value for e in at.error]
    shown = " ".join(e.value for e in at.error)
    assert text("form.business_background") in shown and text("form.pool") in shown
    at.switch_page("app_pages/my_requests.py").run()
    assert shows(at.info, "myreq.empty")


def test_check_shows_route_capacity_and_completeness_without_saving():
    at = open_page(PAGE)
    _fill_training(at, gpus=4, days=5)
    _button(at, "apply.check").click().run()
    no_exceptions(at)
    assert shows(at.success, "apply.complete")
    assert shows(at.info, "tier.standard_auto", gpus=4, duration_days=5), [i.value for i in at.info]
    # an empty database: the whole pool is free
    assert shows(at.info, "lifecycle.capacity_ok", pool="hq-ft", free=load_org().pool("hq-ft").gpus, requested=4)


def test_a_small_standard_request_is_approved_at_once():
    at = open_page(PAGE)
    _fill_training(at, gpus=4, days=5)
    _button(at, "apply.submit").click().run()
    no_exceptions(at)
    assert shows(at.success, "apply.submitted"), [s.value for s in at.success]
    assert shows(at.info, "tier.standard_auto", gpus=4, duration_days=5)
    mine = open_page("app_pages/my_requests.py")
    assert mine.dataframe[0].value[text("req.col.status")].iloc[0] in _status(("approved", "active"))


def test_a_large_request_goes_to_ops_who_approve_it_with_a_reason():
    at = open_page(PAGE)
    _fill_training(at, gpus=16, days=5)
    _button(at, "apply.submit").click().run()
    no_exceptions(at)
    assert shows(at.info, "tier.standard_ops")
    ops = open_page("app_pages/approvals.py", persona="li.na")
    no_exceptions(ops)
    table = ops.dataframe[0].value
    assert list(table[text("req.col.status")]) == [text("status.submitted")]
    left = message("queue.left")
    assert table[text("req.col.claim")].map(lambda cell: bool(left.fullmatch(cell))).all(), table


def test_a_draft_can_be_saved_incomplete():
    at = open_page(PAGE)
    at.text_area(key="ap_business_background").input("先占位")
    _button(at, "apply.save_draft").click().run()
    no_exceptions(at)
    assert shows(at.success, "apply.draft_saved", id=1)


def test_ops_claim_read_the_checklist_and_approve_then_the_applicant_sees_it():
    at = open_page(PAGE)
    _fill_training(at, gpus=16, days=5)
    _button(at, "apply.submit").click().run()
    ops = open_page("app_pages/approvals.py", persona="li.na")
    request_id = int(ops.dataframe[0].value[text("req.col.id")].iloc[0])
    ops.selectbox(key="approvals_table").set_value(request_id).run()
    no_exceptions(ops)
    checklist = " ".join(m.value for m in ops.markdown)
    assert text("feasibility.item.software") in checklist
    _button(ops, "review.claim").click().run()
    assert shows(ops.success, "review.claimed")
    ops.radio(key="rv_decision").set_value("approve")
    ops.text_area(key="rv_reason").input("资源充足，同意")
    _button(ops, "review.submit").click().run()
    no_exceptions(ops)
    assert shows(ops.success, "review.decided")
    mine = open_page("app_pages/my_requests.py")
    assert mine.dataframe[0].value[text("req.col.status")].iloc[0] in _status(("approved", "active", "provisioning"))
    inbox = open_page("app_pages/inbox.py")
    no_exceptions(inbox)
    assert shows(inbox.caption, "inbox.unread")



# ----------------------------------------------------------------- submit once


def _requests_listed() -> int:
    mine = open_page("app_pages/my_requests.py")
    no_exceptions(mine)
    return len(mine.dataframe[0].value) if mine.dataframe else 0


def test_after_submit_the_form_is_cleared_and_the_new_number_shown_with_a_link_to_it():
    at = open_page(PAGE)
    _fill_training(at, gpus=4, days=5)
    token = at.session_state["apply_token"]
    _button(at, "apply.submit").click().run()
    no_exceptions(at)
    number = request_number(clock.today().year, 1)
    assert shows(at.success, "apply.submitted", number=number), [s.value for s in at.success]
    links = [link for link in at.page_link if link.value == text("apply.open_request", number=number)]
    assert links and links[0].proto.page.endswith("my-requests")
    assert parse_qs(links[0].proto.query_string) == {"request": ["1"], "persona": ["zhang.wei"], "lang": ["en"]}
    # a fresh form with a new token: nothing of the submitted one is left to send again
    assert at.session_state["apply_token"] != token
    assert at.text_area(key="ap_business_background").value == "" and at.text_input(key="ap_model_name").value == ""
    assert at.selectbox(key="ap_pool").value is None and at.number_input(key="ap_requested_gpus").value == 1
    assert at.number_input(key="ap_parameters").value == 0.0


def test_the_submitted_form_sent_again_with_its_token_finds_the_first_request():
    """A double click: the second click reaches the server with the first form's values and the
    callback of the run the user saw, which carries the first form's token."""
    at = open_page(PAGE)
    _fill_training(at, gpus=4, days=5)
    first_token = at.session_state["apply_token"]
    _button(at, "apply.submit").click().run()
    at.session_state["apply_token"] = first_token
    at.run()
    _fill_training(at, gpus=4, days=5)
    _button(at, "apply.submit").click().run()
    no_exceptions(at)
    number = request_number(clock.today().year, 1)
    assert shows(at.info, "apply.already_submitted", number=number), [i.value for i in at.info]
    assert not shows(at.success, "apply.submitted")
    assert _requests_listed() == 1


# ----------------------------------------------------------------- estimate -> apply


def _saved_estimate(app_ctx, gpu: str = "A800-80GB") -> int:
    """A fine-tuning estimate of Qwen2.5 7B on 8 × ``gpu`` saved by the applicant (about 31 h on A800)."""
    est = estimate_training(TrainingInput(model=ModelSpec(params=7.61e9), tokens=2e9, gpu=gpu, gpus=8,
                                          workload="finetune"))
    return estimates_svc.save_training_estimate(sessions=app_ctx.sessions, actor=APPLICANT, title="调度问答微调",
                                                estimate=est)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_an_estimate_fills_the_form_and_the_check_offers_it_on_the_pools_other_gpu(app_ctx, lang):
    est_id = _saved_estimate(app_ctx)
    at = open_page(PAGE, lang=lang)
    at.selectbox(key="ap_estimate_id").set_value(est_id).run()
    no_exceptions(at)
    assert at.radio(key="ap_demand_subtype").value == "l2_finetune"
    assert at.text_input(key="ap_model_name").value == "Qwen2.5 7B"
    assert at.number_input(key="ap_parameters").value == pytest.approx(7.61)
    assert at.number_input(key="ap_data_tokens").value == pytest.approx(2.0)
    assert at.selectbox(key="ap_gpu_model").value == "A800-80GB"
    assert (at.number_input(key="ap_gpus_per_run").value, at.number_input(key="ap_requested_gpus").value) == (8, 8)
    assert at.number_input(key="ap_duration_days").value == 2  # 31 h rounded up to days

    at.selectbox(key="ap_pool").set_value("hq-ft").run()  # an H20 pool
    _button(at, "apply.check", lang).click().run()
    no_exceptions(at)
    assert shows(at.warning, "apply.gpu_mismatch", lang, pool="hq-ft", pool_gpu="H20", estimate_gpu="A800-80GB"), \
        [w.value for w in at.warning]
    assert shows(at.info, "apply.gpu_rerun", lang, gpu="H20", gpus=8, matching_gpus=24), [i.value for i in at.info]
    use = [b for b in at.button if b.label == text("apply.gpu_use", lang, gpus=24, gpu="H20")]
    assert use, [b.label for b in at.button]
    use[0].click().run()
    no_exceptions(at)
    assert at.selectbox(key="ap_gpu_model").value == "H20"
    assert (at.number_input(key="ap_gpus_per_run").value, at.number_input(key="ap_requested_gpus").value) == (24, 24)


def test_the_check_says_nothing_of_gpus_when_the_pool_has_the_estimates_gpu(app_ctx):
    est_id = _saved_estimate(app_ctx)
    at = open_page(PAGE)
    at.selectbox(key="ap_estimate_id").set_value(est_id).run()
    at.selectbox(key="ap_pool").set_value("hq-sci").run()  # A800
    _button(at, "apply.check").click().run()
    no_exceptions(at)
    assert not shows(at.warning, "apply.gpu_mismatch") and not shows(at.info, "apply.gpu_rerun")
    assert shows(at.info, "lifecycle.capacity_ok", pool="hq-sci")
