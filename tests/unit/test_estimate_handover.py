"""What a saved estimate hands to the application (core/services/estimate_handover.py): the intake
form's fields for a fine-tune, a pre-training and an inference estimate, and the same estimate on a
pool's other GPU model."""

from __future__ import annotations

import math

import pytest

from core.estimation.catalog import load_catalog
from core.estimation.model import ModelSpec, load_presets
from core.estimation.training import TrainingInput, estimate_training
from core.lifecycle.forms import IntakeForm
from core.services.estimate_handover import days_of, form_fields, on_gpu


def _saved_training(*, workload: str, params: float = 7.61e9, tokens: float = 2e9, gpu: str = "A800-80GB",
                    gpus: int = 8, name: str = "", precision: str = "bf16", efficiency: float | None = None,
                    estimate_id: int = 3) -> dict:
    """A training estimate as the estimates service returns it once saved."""
    est = estimate_training(TrainingInput(model=ModelSpec(params=params, name=name), tokens=tokens, gpu=gpu, gpus=gpus,
                                          workload=workload, precision=precision, efficiency=efficiency))
    return {"id": estimate_id, "kind": "training", "gpu_id": est.gpu.id, "workload": workload,
            "inputs": est.inputs.to_dict(), "outputs": est.as_dict()}


def _saved_inference(**inputs) -> dict:
    """A load-test sizing as the Estimate page saves it (outputs: what the sizing's as_dict holds)."""
    return {"id": 9, "kind": "inference", "gpu_id": inputs.get("gpu") or "-", "workload": "online",
            "inputs": {"slos": {"p99_ms": 900.0, "mean_ms": 300.0}, "peak_qps": 200.0, "mean_qps": 50.0,
                       "sources": [["sweep.json", "json"]], **inputs},
            "outputs": {"replicas": 3, "gpus": 6, "peak_qps": 200.0, "mean_qps": 50.0,
                        "slos": {"p99_ms": 900.0, "mean_ms": 300.0}}}


def test_a_fine_tune_estimate_fills_subtype_model_data_gpus_hours_and_whole_days():
    saved = _saved_training(workload="finetune")
    wall = saved["outputs"]["wall_clock_hours"]
    assert 24 < wall < 48  # one day and some hours: the application needs 2 days, not the 7 of a blank form
    fields = form_fields(saved)
    assert fields == {
        "demand_type": "training", "demand_subtype": "l2_finetune",
        "model_name": next(p.name for p in load_presets() if p.spec.params == 7.61e9),  # the preset of that size
        "parameters": 7.61e9, "data_tokens": 2e9, "gpu_model": "A800-80GB", "gpus_per_run": 8, "requested_gpus": 8,
        "runs_per_period": 1, "run_period": "once", "hours_per_run": math.ceil(wall * 10) / 10,
        "duration_days": 2, "estimate_id": 3,
    }
    form = IntakeForm.from_dict(fields)  # the form takes every value as it is
    assert (form.demand_subtype, form.duration_days, form.data_tokens) == ("l2_finetune", 2, 2e9)


def test_a_lora_estimate_is_fine_tuning_too_and_a_saved_model_name_wins():
    fields = form_fields(_saved_training(workload="lora", name="调度问答-7B"))
    assert (fields["demand_subtype"], fields["model_name"]) == ("l2_finetune", "调度问答-7B")


def test_a_pre_training_estimate_is_foundation_training_lasting_its_wall_clock_in_days():
    saved = _saved_training(workload="pretrain", params=13e9, tokens=1e12, gpu="H800-SXM", gpus=256)
    wall = saved["outputs"]["wall_clock_hours"]
    fields = form_fields(saved)
    assert fields["demand_subtype"] == "l1_foundation"
    assert fields["duration_days"] == math.ceil(wall / 24) > 7
    assert (fields["gpu_model"], fields["gpus_per_run"], fields["requested_gpus"]) == ("H800-SXM", 256, 256)
    assert (fields["parameters"], fields["data_tokens"]) == (13e9, 1e12)
    assert "model_name" not in fields  # no preset has exactly 13.0B parameters, none saved: left to the user


@pytest.mark.parametrize(("hours", "days"), [(0.2, 1), (23.9, 1), (24.0, 1), (24.01, 2), (30.9, 2), (171.0, 8)])
def test_duration_is_the_wall_clock_in_days_rounded_up_at_least_one(hours, days):
    assert days_of(hours) == days


def test_an_inference_estimate_fills_sla_traffic_gpus_model_and_gpu():
    fields = form_fields(_saved_inference(model_name="客服-7B", params=7e9, gpu="l20"))
    assert fields == {
        "demand_type": "inference", "demand_subtype": "online", "model_name": "客服-7B", "parameters": 7e9,
        "gpu_model": "L20", "requested_gpus": 6, "qps_peak": 200.0, "qps_mean": 50.0,
        "sla_latency_p99_ms": 900.0, "sla_latency_mean_ms": 300.0, "estimate_id": 9,
    }
    IntakeForm.from_dict(fields)


def test_an_inference_estimate_sized_for_other_latencies_leaves_the_end_to_end_sla_to_the_user():
    saved = _saved_inference()
    saved["inputs"]["slos"] = {"ttft_p99_ms": 800.0}
    fields = form_fields(saved)
    assert "sla_latency_p99_ms" not in fields and "sla_latency_mean_ms" not in fields
    assert "parameters" not in fields and "gpu_model" not in fields  # an older sizing that did not say
    assert fields["qps_peak"] == 200.0


def test_on_the_pools_gpu_a_training_estimate_is_run_again_with_its_count_and_with_one_that_keeps_its_time():
    saved = _saved_training(workload="finetune", efficiency=0.4)  # a fixed efficiency: the scaling is exact
    wall = saved["outputs"]["wall_clock_hours"]
    a800, h20 = (load_catalog().get(g).bf16_tflops for g in ("A800-80GB", "H20"))
    check = on_gpu(saved, "h20")
    assert (check["estimate_gpu"], check["pool_gpu"], check["rerun"], check["gpus"]) == ("A800-80GB", "H20", True, 8)
    assert check["same"]["gpus"] == 8 and check["same"]["hours"] == pytest.approx(wall * a800 / h20)
    needed = math.ceil(8 * a800 / h20)  # 17 GPUs keep the time; whole 8-GPU nodes beyond one node
    assert check["matching"]["gpus"] == math.ceil(needed / 8) * 8 == 24
    assert check["matching"]["hours"] == pytest.approx(wall * 8 * a800 / h20 / 24)
    assert check["matching"]["hours"] <= wall and check["matching"]["days"] == days_of(check["matching"]["hours"])


def test_on_the_estimates_own_gpu_there_is_nothing_to_say():
    assert on_gpu(_saved_training(workload="finetune"), "A800 80GB") is None


def test_a_precision_the_pools_card_lacks_is_named_and_bf16_falls_back_to_fp16():
    fp8 = on_gpu(_saved_training(workload="finetune", gpu="H20", precision="fp8"), "A800-80GB")
    assert (fp8["rerun"], fp8["unsupported"]) == (False, "fp8")
    t4 = on_gpu(_saved_training(workload="finetune"), "T4")
    assert t4["rerun"] and t4["precision"] == "fp16"


def test_an_inference_sizing_is_not_re_run_on_another_card():
    check = on_gpu(_saved_inference(gpu="L20"), "H20")
    assert check == {"kind": "inference", "estimate_gpu": "L20", "pool_gpu": "H20", "rerun": False}
    assert on_gpu(_saved_inference(), "H20") is None  # the sizing does not say which card it measured
