"""AppTest: from the Estimate page, a saved estimate opens the Apply page filled in with what it
knows (issue 10 point 5) — a training estimate and a load-test sizing of an inference service."""

from __future__ import annotations

import math

import pytest

from core.config import PROJECT_ROOT
from core.estimation.inference import size_inference
from core.estimation.loadtest_formats import parse_sweep
from core.estimation.model import load_presets
from tests.support.app_run import no_exceptions, open_page, text

PAGE = "app_pages/estimate.py"
CURVE = PROJECT_ROOT / "tests" / "fixtures" / "loadtests" / "plain_curve.csv"


def _button(at, key, lang="en"):
    label = text(key, lang)
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in at.button]}"
    return matches[0]


def _on_apply(at) -> None:
    no_exceptions(at)
    assert at.title[0].value == text("apply.title"), [t.value for t in at.title]


@pytest.mark.parametrize("workload", ["finetune", "pretrain"])
def test_a_saved_training_estimate_opens_apply_with_subtype_model_gpus_and_days(workload):
    at = open_page(PAGE)
    at.selectbox(key="tr_workload").set_value(workload)
    _button(at, "training.submit").click().run()
    hours = at.session_state["tr_result"].wall_clock_hours
    at.text_input(key="tr_title").input("Llama 2 7B")
    _button(at, "estimate.save").click().run()
    no_exceptions(at)
    _button(at, "estimate.apply_with").click().run()
    _on_apply(at)
    preset = next(p for p in load_presets() if p.id == "llama-2-7b")  # the page's default model
    assert at.radio(key="ap_demand_type").value == "training"
    assert at.radio(key="ap_demand_subtype").value == {"finetune": "l2_finetune", "pretrain": "l1_foundation"}[workload]
    assert at.text_input(key="ap_model_name").value == preset.name
    assert at.number_input(key="ap_parameters").value == pytest.approx(preset.spec.params / 1e9)
    assert at.number_input(key="ap_data_tokens").value == pytest.approx(100.0)
    assert at.selectbox(key="ap_gpu_model").value == "A100-80GB"
    assert at.number_input(key="ap_requested_gpus").value == 8
    assert at.number_input(key="ap_duration_days").value == max(1, math.ceil(hours / 24))
    assert at.selectbox(key="ap_estimate_id").value == 1


def test_a_saved_inference_sizing_opens_apply_with_sla_qps_gpus_and_model():
    at = open_page(PAGE)
    sweep = parse_sweep([(CURVE.name, CURVE.read_bytes())])
    at.session_state["inf_result"] = size_inference(sweep, slos={"p99_ms": 400.0, "mean_ms": 150.0}, peak_qps=200,
                                                    mean_qps=50)
    # what the load-test form held when it was submitted
    at.session_state["inf_model_name"] = "客服-8B"
    at.session_state["inf_params_b"] = 8.0
    at.session_state["inf_gpu"] = "L20"
    at.run()
    at.text_input(key="inf_title").input("客服压测")
    _button(at, "estimate.save").click().run()
    no_exceptions(at)
    _button(at, "estimate.apply_with").click().run()
    _on_apply(at)
    assert (at.radio(key="ap_demand_type").value, at.radio(key="ap_demand_subtype").value) == ("inference", "online")
    assert at.number_input(key="ap_sla_latency_p99_ms").value == 400.0
    assert at.number_input(key="ap_sla_latency_mean_ms").value == 150.0
    assert (at.number_input(key="ap_qps_peak").value, at.number_input(key="ap_qps_mean").value) == (200.0, 50.0)
    assert at.number_input(key="ap_requested_gpus").value == 2
    assert at.text_input(key="ap_model_name").value == "客服-8B"
    assert at.number_input(key="ap_parameters").value == pytest.approx(8.0)
    assert at.selectbox(key="ap_gpu_model").value == "L20"
