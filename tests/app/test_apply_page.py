"""AppTest: the Apply page checks, saves drafts, refuses incomplete forms with the list, submits."""

from __future__ import annotations

from datetime import date, timedelta

from tests.app.conftest import no_exceptions, open_page

PAGE = "app_pages/apply.py"


def _button(at, label):
    return next(b for b in at.button if b.label == label)


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
    at.date_input(key="ap_start_date").set_value(date.today() + timedelta(days=1))
    at.number_input(key="ap_duration_days").set_value(days)
    at.radio(key="ap_demand_subtype").set_value("l2_finetune")


def test_an_incomplete_form_is_refused_with_everything_missing_and_nothing_saved():
    at = open_page(PAGE)
    _button(at, "Submit").click().run()
    no_exceptions(at)
    text = " ".join(e.value for e in at.error)
    assert "still missing" in text and "Business background" in text and "Resource pool" in text
    at.switch_page("app_pages/my_requests.py").run()
    assert any("No applications yet" in i.value for i in at.info)


def test_check_shows_route_capacity_and_completeness_without_saving():
    at = open_page(PAGE)
    _fill_training(at, gpus=4, days=5)
    _button(at, "Check").click().run()
    no_exceptions(at)
    assert any("The form is complete" in s.value for s in at.success)
    infos = " ".join(i.value for i in at.info)
    assert "approved automatically" in infos and "hq-ft has 96 free GPUs" in infos


def test_a_small_standard_request_is_approved_at_once():
    at = open_page(PAGE)
    _fill_training(at, gpus=4, days=5)
    _button(at, "Submit").click().run()
    no_exceptions(at)
    done = " ".join(s.value for s in at.success)
    assert "Request CR-" in done
    assert any("approved automatically" in i.value for i in at.info)
    mine = open_page("app_pages/my_requests.py")
    assert mine.dataframe[0].value["Status"].iloc[0] in {"Approved", "Active"}


def test_a_large_request_goes_to_ops_who_approve_it_with_a_reason():
    at = open_page(PAGE)
    _fill_training(at, gpus=16, days=5)
    _button(at, "Submit").click().run()
    no_exceptions(at)
    assert any("operations manager" in i.value for i in at.info)
    ops = open_page("app_pages/approvals.py", persona="li.na")
    no_exceptions(ops)
    table = ops.dataframe[0].value
    assert list(table["Status"]) == ["Submitted"] or len(table) == 1
    assert table["Claim"].str.contains("left").all()


def test_a_draft_can_be_saved_incomplete():
    at = open_page(PAGE)
    at.text_area(key="ap_business_background").input("先占位")
    _button(at, "Save draft").click().run()
    no_exceptions(at)
    assert any("Draft #1 saved" in s.value for s in at.success)


def test_ops_claim_read_the_checklist_and_approve_then_the_applicant_sees_it():
    at = open_page(PAGE)
    _fill_training(at, gpus=16, days=5)
    _button(at, "Submit").click().run()
    ops = open_page("app_pages/approvals.py", persona="li.na")
    request_id = int(ops.dataframe[0].value["No."].iloc[0])
    ops.selectbox(key="approvals_table").set_value(request_id).run()
    no_exceptions(ops)
    checklist = " ".join(m.value for m in ops.markdown)
    assert "Software compatibility" in checklist or "software" in checklist.lower()
    _button(ops, "Claim this request").click().run()
    assert any("Claimed" in s.value for s in ops.success)
    ops.radio(key="rv_decision").set_value("approve")
    ops.text_area(key="rv_reason").input("资源充足，同意")
    _button(ops, "Record the decision").click().run()
    no_exceptions(ops)
    assert any("Decision recorded" in s.value for s in ops.success)
    mine = open_page("app_pages/my_requests.py")
    assert mine.dataframe[0].value["Status"].iloc[0] in {"Approved", "Active", "Provisioning"}
    inbox = open_page("app_pages/inbox.py")
    no_exceptions(inbox)
    assert any("unread" in c.value for c in inbox.caption)

