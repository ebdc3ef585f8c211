"""What a saved estimate hands to the resource application: the intake form's fields it knows, and
the same estimate on a pool's GPU model when the pool has another one.

A training estimate knows the demand subtype (pre-training is L1 foundation training, fine-tuning
and LoRA are L2 fine-tuning), the model (name, parameters), the training tokens, the GPU model and
count, and the wall-clock of one run; the application's duration is that wall-clock in whole days,
rounded up. An inference sizing (from a load test) knows the SLA it was sized for, the peak and mean
QPS, the GPUs, and — when the user gave them — the model and the GPU the load test ran on.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.errors import InputError
from core.estimation.catalog import load_catalog
from core.estimation.model import load_presets
from core.estimation.training import TrainingInput, estimate_training
from core.identity import Identity
from core.lifecycle.forms import MAX_GPUS
from core.org import load_org
from core.services.estimates import get_estimate

# training workload of the estimator -> demand subtype of the intake form (core.lifecycle.forms.DEMAND_TYPES)
SUBTYPE_OF_WORKLOAD = {"pretrain": "l1_foundation", "finetune": "l2_finetune", "lora": "l2_finetune"}
# SLA of the load-test sizing (core.estimation.loadtest_formats.LATENCY_KEYS) -> field of the intake form
SLA_FIELDS = {"p99_ms": "sla_latency_p99_ms", "mean_ms": "sla_latency_mean_ms"}


def days_of(hours: float) -> int:
    """Whole days an application must last for ``hours`` of wall-clock: rounded up, at least 1."""
    return max(1, math.ceil(round(hours, 6) / 24))


def run_hours(hours: float) -> float:
    """Hours of one run as the form takes them (tenths, rounded up, above 0)."""
    return max(0.1, math.ceil(round(hours * 10, 6)) / 10)


def _gpu_id(name: Any) -> str | None:
    """The catalog id of a GPU name (aliases and spelling resolved); None when unknown or not given."""
    if not name or name == "-":
        return None
    try:
        return load_catalog().get(str(name)).id
    except InputError:
        return None


def model_name(model: dict) -> str | None:
    """The model's name as saved, else the preset whose parameter count it has exactly (the Estimate
    page copies a preset's count; estimates saved before it kept the name had only that)."""
    if model.get("name"):
        return str(model["name"])
    params = float(model.get("params") or 0)
    return next((p.name for p in load_presets() if params and math.isclose(p.spec.params, params, rel_tol=1e-9)), None)


def _training_fields(inputs: dict, outputs: dict) -> dict[str, Any]:
    model = inputs.get("model") or {}
    wall = float(outputs.get("wall_clock_hours") or 0)
    gpus = int(outputs.get("gpus") or inputs.get("gpus") or 0)
    fields: dict[str, Any] = {
        "demand_type": "training", "demand_subtype": SUBTYPE_OF_WORKLOAD.get(inputs.get("workload") or "pretrain"),
        "model_name": model_name(model), "parameters": model.get("params"), "data_tokens": inputs.get("tokens"),
        "gpu_model": _gpu_id(outputs.get("gpu") or inputs.get("gpu")),
        "gpus_per_run": gpus or None, "requested_gpus": gpus or None,
        # one estimate is one run
        "runs_per_period": 1, "run_period": "once",
    }
    if wall > 0:
        fields["hours_per_run"] = run_hours(wall)
        fields["duration_days"] = days_of(wall)
    return fields


def _inference_fields(inputs: dict, outputs: dict) -> dict[str, Any]:
    slos = inputs.get("slos") or outputs.get("slos") or {}
    gpus = int(outputs.get("gpus") or 0)
    fields: dict[str, Any] = {
        # a load-test sizing is latency-bound: an online service (offline batch has no latency SLA)
        "demand_type": "inference", "demand_subtype": "online",
        "model_name": inputs.get("model_name") or None, "parameters": inputs.get("params") or None,
        "gpu_model": _gpu_id(inputs.get("gpu")), "requested_gpus": gpus or None,
        "qps_peak": inputs.get("peak_qps", outputs.get("peak_qps")) or None,
        "qps_mean": inputs.get("mean_qps", outputs.get("mean_qps")) or None,
    }
    for key, name in SLA_FIELDS.items():
        if slos.get(key):
            fields[name] = float(slos[key])
    return fields


def form_fields(estimate: dict) -> dict[str, Any]:
    """The intake form's fields a saved estimate (as :func:`core.services.estimates.get_estimate`
    returns it) fills in, by field name; fields it does not know are left out, so what the user
    typed elsewhere stays. Values are those :meth:`core.lifecycle.forms.IntakeForm.from_dict` takes."""
    inputs, outputs = estimate.get("inputs") or {}, estimate.get("outputs") or {}
    if estimate.get("kind") == "training":
        fields = _training_fields(inputs, outputs)
    else:
        fields = _inference_fields(inputs, outputs)
    fields["estimate_id"] = estimate.get("id")
    return {name: value for name, value in fields.items() if value is not None}


def estimate_gpu(estimate: dict) -> str | None:
    """The catalog id of the GPU model an estimate was made for (None when it does not say)."""
    if estimate.get("kind") == "training":
        return _gpu_id((estimate.get("outputs") or {}).get("gpu") or estimate.get("gpu_id"))
    return _gpu_id((estimate.get("inputs") or {}).get("gpu") or estimate.get("gpu_id"))


def _run(inp: TrainingInput, gpus: int) -> dict[str, Any]:
    est = estimate_training(replace(inp, gpus=gpus))
    return {"gpus": gpus, "hours": est.wall_clock_hours, "days": days_of(est.wall_clock_hours),
            "fits": est.memory.fits}


def _precision_on(gpu_id: str, precision: str) -> str | None:
    """The precision the job runs at on ``gpu_id``: its own, or FP16 for BF16 on a card without
    BF16 (as the recommendation does); None when the card has neither."""
    gpu = load_catalog().get(gpu_id)
    if gpu.peak_tflops(precision):
        return precision
    if precision == "bf16" and gpu.fp16_tflops:
        return "fp16"
    return None


def _whole_nodes(count: int, per_node: int) -> int:
    """``count`` GPUs rounded up to whole nodes of ``per_node`` once it spans more than one node."""
    return count if count <= per_node else math.ceil(count / per_node) * per_node


def on_gpu(estimate: dict, gpu_id: str, *, gpus_per_node: int = 8) -> dict[str, Any] | None:
    """The estimate against a pool's GPU model ``gpu_id``; None when it is the estimate's own (or
    the estimate does not say which GPU it was made for).

    Training: the estimator re-run on ``gpu_id`` (layout chosen anew, the estimate's precision or
    FP16 for BF16) with the estimate's GPU count (``same``), and with the count scaled to finish in
    the estimated wall-clock (``matching``: whole nodes of ``gpus_per_node`` beyond one node, at
    most :data:`core.lifecycle.forms.MAX_GPUS`). ``unsupported`` names a
    precision the card cannot run. Inference: only the two models (``rerun`` False): a load test
    measures its own card, so sizing another needs a load test on it.
    """
    own, target = estimate_gpu(estimate), _gpu_id(gpu_id)
    if own is None or target is None or own == target:
        return None
    out: dict[str, Any] = {"kind": estimate.get("kind"), "estimate_gpu": own, "pool_gpu": target, "rerun": False}
    if estimate.get("kind") != "training":
        return out
    inp = TrainingInput.from_dict(estimate["inputs"])
    outputs = estimate.get("outputs") or {}
    precision = _precision_on(target, inp.precision)
    if precision is None:
        return out | {"unsupported": inp.precision}
    inp = replace(inp, gpu=target, precision=precision, layout=None)
    hours = float(outputs.get("wall_clock_hours") or 0)
    same = _run(inp, inp.gpus)
    count = inp.gpus
    if hours > 0:
        count = min(MAX_GPUS, _whole_nodes(max(1, math.ceil(inp.gpus * same["hours"] / hours)), gpus_per_node))
    matching = same if count == inp.gpus else _run(inp, count)
    return out | {"rerun": True, "precision": precision, "gpus": inp.gpus, "hours": hours,
                  "same": same, "matching": matching}


def pool_gpu_check(*, sessions: sessionmaker[Session], actor: Identity, estimate_id: int | None,
                   pool_id: str | None) -> dict[str, Any] | None:
    """:func:`on_gpu` for a saved estimate and a pool of the organisation; None when either is not
    given, the pool is unknown or it has the estimate's GPU model.

    Raises:
        NotFound: no estimate ``estimate_id`` that ``actor`` may see.
        InputError: the estimate cannot be re-run on the pool's GPU (names the field).
    """
    pool = load_org().pools.get(pool_id or "")
    if not estimate_id or pool is None:
        return None
    estimate = get_estimate(sessions=sessions, actor=actor, estimate_id=int(estimate_id))
    result = on_gpu(estimate, pool.gpu, gpus_per_node=pool.gpus_per_node)
    return result | {"pool": pool.id} if result else None
