"""Complete intake forms the tests start from, dated relative to the frozen clock.

Every test that needs a valid application builds it from here (``{**TRAINING, "requested_gpus": 16}``
or :func:`training_form`), never from another test module, and never with a calendar date: the
start date is the frozen today (``tests/support/clock.py``), so an approval is provisioned at once
(nothing is provisioned before its start date; a later start waits as a scheduled allocation).
"""

from __future__ import annotations

from core.lifecycle.forms import IntakeForm
from tests.support import clock

TRAINING = dict(
    applicant="张伟", department="digital", project="P-LLM-01", contact="zhang.wei@example.com",
    demand_type="training", demand_subtype="l2_finetune", business_background="调度规程问答微调",
    expected_value="减少人工查询", model_name="Qwen-14B", framework="PyTorch", parameters="14B",
    data_size_gb=200, data_type="text", gpu_model="H20", gpus_per_run=4, hours_per_run=20, runs_per_period=1,
    run_period="week", cuda_version="12.1", python_version="3.10", key_libraries={"torch": "2.3.1"},
    pool="hq-ft", requested_gpus=4, start_date=clock.iso(0), duration_days=7,
)
INFERENCE = dict(
    applicant="张伟", department="digital", project="P-LLM-01", contact="zhang.wei@example.com",
    demand_type="inference", demand_subtype="online", business_background="智能客服上线",
    expected_value="7x24 应答", model_location="s3://models/cs-7b", input_format="json", output_format="json",
    sla_latency_mean_ms=300, sla_latency_p99_ms=900, qps_peak=200, qps_mean=50, high_availability=True,
    canary=False, parameters="7B", pool="hq-inf", requested_gpus=2, start_date=clock.iso(0), duration_days=30,
)

SMALL = {**TRAINING}                                             # 4 GPUs × 7 days on hq-ft: auto
MEDIUM = {**TRAINING, "requested_gpus": 16, "duration_days": 10}  # HQ ops
LARGE = {**TRAINING, "requested_gpus": 40, "duration_days": 10, "demand_subtype": "l1_foundation",
         "pool": "hq-lang", "estimate_id": None}                 # HQ ops, then department head
RESERVE = {**TRAINING, "requested_gpus": 8, "duration_days": 10, "pool": "hq-reserve",
           "demand_subtype": "l1_foundation"}                    # committee, then management
JS_FORM = {**TRAINING, "department": "js-it", "project": "P-JS-06", "pool": "js-pool", "requested_gpus": 8}


def training_form(**over) -> IntakeForm:
    """A complete training form (L2 fine-tuning, 4 GPUs × 7 days on hq-ft from today) with changes."""
    return IntakeForm.from_dict({**TRAINING, **over})


def inference_form(**over) -> IntakeForm:
    """A complete online-inference form (2 GPUs × 30 days on hq-inf from today) with changes."""
    return IntakeForm.from_dict({**INFERENCE, **over})
