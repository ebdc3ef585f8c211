"""Training estimate (core/estimation/training.py): FLOPs -> effective FLOP/s -> wall-clock, GPU-hours,
energy and cost; validation; the JSON contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from core.errors import InputError
from core.estimation.calibration import Correction
from core.estimation.memory import Layout
from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training

DATA = Path(__file__).resolve().parents[2] / "data"
DEFAULTS = yaml.safe_load((DATA / "estimation_defaults.yaml").read_text(encoding="utf-8"))
CORRECTION = DEFAULTS["correction_factor"]["value"]            # 1.11
PUE = DEFAULTS["pue"]["value"]                                 # 1.3
POWER_FRACTION = DEFAULTS["gpu_power_fraction_of_tdp"]["value"]  # 1.0

CONTRACT_KEYS = {"total_flops", "effective_tflops_per_gpu", "gpu_hours", "wall_clock_hours", "energy_kwh",
                 "cost", "memory_per_gpu_gb", "fits_in_memory", "assumptions"}


def run(**kw):
    args = dict(model=ModelSpec(params=70e9), tokens=2e12, gpu="A100-80GB", gpus=1024)
    args.update(kw)
    calibration = args.pop("calibration", None)
    return estimate_training(TrainingInput(**args), calibration=calibration)


# -- the arithmetic, by hand --------------------------------------------------------------------


def test_wall_clock_gpu_hours_energy_cost_by_hand_with_default_correction_and_pue():
    est = run(efficiency=0.4)
    # FLOPs = 6 × 70e9 × 2e12 = 8.4e23
    flops = 8.4e23
    # effective = 312 TFLOP/s (A100 bf16 dense) × 0.4 = 124.8 TFLOP/s per GPU
    effective = 124.8e12
    # ideal = 8.4e23 / (124.8e12 × 1024) s = 6,573,068 s = 1825.85 h; wall = ideal × 1.11
    wall_h = flops / (effective * 1024) / 3600 * CORRECTION
    assert CORRECTION == 1.11
    assert est.total_flops == pytest.approx(flops)
    assert est.effective_tflops_per_gpu == pytest.approx(124.8)
    assert est.wall_clock_hours == pytest.approx(wall_h)
    assert est.wall_clock_hours == pytest.approx(2026.69, rel=1e-5)
    # GPU-hours = wall × 1024
    gpu_h = wall_h * 1024
    assert est.gpu_hours == pytest.approx(gpu_h)
    # energy = GPU-h × 0.400 kW (TDP) × 1.0 (fraction of TDP) × 1.3 (PUE)
    assert est.energy_kwh == pytest.approx(gpu_h * 0.4 * POWER_FRACTION * PUE)
    # cost = GPU-h × 15 CNY (placeholder price)
    assert est.cost_cny == pytest.approx(gpu_h * 15.0)


def test_explicit_correction_and_pue_are_used():
    est = run(gpu="H100-SXM", gpus=512, efficiency=0.35, correction_factor=1.25, pue=1.5)
    # 8.4e23 / (989e12 × 0.35 × 512) / 3600 × 1.25
    wall_h = 8.4e23 / (989e12 * 0.35 * 512) / 3600 * 1.25
    assert est.wall_clock_hours == pytest.approx(wall_h)
    # H100 SXM: 700 W, 30 CNY/h
    assert est.energy_kwh == pytest.approx(wall_h * 512 * 0.7 * POWER_FRACTION * 1.5)
    assert est.cost_cny == pytest.approx(wall_h * 512 * 30.0)


def test_moe_flops_use_active_parameters():
    est = run(model=ModelSpec(params=6.71e11, active_params=3.7e10), tokens=1.48e13, gpu="H800", gpus=2048,
              efficiency=0.3)
    # 6 × 3.7e10 × 1.48e13 = 3.2856e24
    assert est.total_flops == pytest.approx(3.2856e24)
    assert est.wall_clock_hours == pytest.approx(3.2856e24 / (989e12 * 0.3 * 2048) / 3600 * CORRECTION)


def test_fp16_on_v100_uses_the_fp16_peak():
    est = run(model=ModelSpec(params=1.3e9), tokens=2.6e10, gpu="V100", gpus=8, precision="fp16", efficiency=0.3)
    # 6 × 1.3e9 × 2.6e10 = 2.028e20 over 125e12 × 0.3 × 8
    assert est.peak_tflops == 125
    assert est.wall_clock_hours == pytest.approx(2.028e20 / (125e12 * 0.3 * 8) / 3600 * CORRECTION)


def test_calibration_factor_multiplies_wall_clock_and_everything_after_it():
    base = run(efficiency=0.4)
    corr = Correction("A100-80GB", "pretrain", factor=1.25, runs=4, error_before=0.2, error_after=0.05)
    cal = run(efficiency=0.4, calibration=corr)
    assert cal.wall_clock_hours == pytest.approx(base.wall_clock_hours * 1.25)
    assert cal.gpu_hours == pytest.approx(base.gpu_hours * 1.25)
    assert cal.cost_cny == pytest.approx(base.cost_cny * 1.25)
    assert cal.energy_kwh == pytest.approx(base.energy_kwh * 1.25)
    assert cal.as_dict()["calibration_factor"] == 1.25
    assert base.as_dict()["calibration_factor"] is None


def test_default_efficiency_comes_from_measured_runs():
    est = run()
    points = {p["id"] for p in yaml.safe_load((DATA / "efficiency.yaml").read_text(encoding="utf-8"))["points"]}
    src = est.as_dict()["efficiency_source"]
    assert isinstance(src, list) and src
    assert {s["id"] for s in src} <= points
    assert sum(s["weight"] for s in src) == pytest.approx(1.0)
    assert 0 < est.efficiency <= 1
    assert est.effective_tflops_per_gpu == pytest.approx(312 * est.efficiency)


def test_user_efficiency_is_reported_as_user():
    assert run(efficiency=0.5).as_dict()["efficiency_source"] == "user"


def test_detailed_flops_are_shown_beside_6nd_when_architecture_is_known():
    d = run(efficiency=0.4).as_dict()
    # architecture assumed from the nearest preset (70B class): detailed count within 15% of 6ND
    assert d["total_flops_detailed"] == pytest.approx(d["total_flops"], rel=0.15)
    assert "total_flops_detailed" in d["formulas"]


# -- memory and layout --------------------------------------------------------------------------


def test_chosen_layout_fits_when_a_fitting_layout_exists():
    est = run()
    assert est.memory.fits
    assert est.as_dict()["fits_in_memory"] is True
    assert est.as_dict()["memory_per_gpu_gb"] == pytest.approx(est.memory.total_gb)
    lay = est.as_dict()["layout"]
    assert lay["tp"] * lay["pp"] * lay["dp"] == 1024


def test_explicit_layout_is_respected_and_can_fail_to_fit_with_remedies():
    est = run(gpus=8, layout=Layout(gpus=8, zero=0), efficiency=0.4)
    assert est.layout.zero == 0 and est.layout.tp == 1
    assert est.memory.fits is False
    d = est.as_dict()
    assert d["fits_in_memory"] is False
    assert isinstance(d["fit_remedies"], list)


def test_explicit_layout_that_is_impossible_is_rejected():
    with pytest.raises(InputError) as info:
        run(gpus=8, layout=Layout(gpus=8, tp=3))
    assert info.value.field == "gpus"


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gpu,precision", [("V100", "bf16"), ("T4", "bf16"), ("A100-80GB", "fp8"), ("A10", "fp8")])
def test_precision_the_gpu_lacks_is_rejected(gpu, precision):
    with pytest.raises(InputError) as info:
        run(gpu=gpu, precision=precision, gpus=8)
    assert info.value.field == "precision"
    assert info.value.key == "error.precision_unsupported"


@pytest.mark.parametrize("override,field", [
    ({"tokens": 0}, "tokens"),
    ({"tokens": -1e9}, "tokens"),
    ({"tokens": 1e20}, "tokens"),
    ({"tokens": math.nan}, "tokens"),
    ({"tokens": math.inf}, "tokens"),
    ({"gpus": 0}, "gpus"),
    ({"gpus": -8}, "gpus"),
    ({"gpus": 2_000_000}, "gpus"),
    ({"gpus": 2.5}, "gpus"),
    ({"efficiency": 1.5}, "efficiency"),
    ({"efficiency": 0.0}, "efficiency"),
    ({"efficiency": -0.3}, "efficiency"),
    ({"pue": 0.5}, "pue"),
    ({"pue": 10.0}, "pue"),
    ({"correction_factor": 0.5}, "correction_factor"),
    ({"precision": "int4"}, "precision"),
    ({"gpu": "RTX-9090"}, "gpu"),
    ({"model": ModelSpec(params=-1)}, "params"),
    ({"model": ModelSpec(params=0)}, "params"),
    ({"model": ModelSpec(params=1e15)}, "params"),
    ({"model": ModelSpec(params=7e9, active_params=8e9)}, "active_params"),
    ({"model": ModelSpec(params=7e9, layers=32, hidden=4096, heads=30)}, "heads"),
    ({"workload": "rlhf"}, "workload"),
])
def test_absurd_inputs_raise_input_error_naming_the_field(override, field):
    with pytest.raises(InputError) as info:
        run(**override)
    assert info.value.field == field
    assert str(info.value)


# -- the JSON contract --------------------------------------------------------------------------


def test_as_dict_has_the_contract_keys_and_is_json():
    d = run().as_dict()
    assert CONTRACT_KEYS <= set(d)
    assert d["cost_currency"] == "CNY"
    assert d["price_is_placeholder"] is True
    assert d["wall_clock_days"] == pytest.approx(d["wall_clock_hours"] / 24)
    assert isinstance(d["assumptions"], list) and all(isinstance(a, str) and a for a in d["assumptions"])
    json.dumps(d)


@pytest.mark.parametrize("kw", [
    {},
    {"efficiency": 0.4},
    {"gpu": "T4", "precision": "fp16", "gpus": 8},             # tier 3, does not fit
    {"gpu": "B200", "precision": "bf16", "gpus": 64},          # tier 2
    {"model": ModelSpec(params=6.71e11, active_params=3.7e10), "gpu": "H100", "gpus": 2048},
    {"model": ModelSpec(params=6.71e11, active_params=3.7e10), "gpu": "A100-80GB", "gpus": 2048},  # MoE discount
    {"model": ModelSpec(params=6.71e11, active_params=3.7e10), "gpu": "H800", "gpus": 2048, "precision": "fp8"},
    {"gpus": 8, "layout": Layout(gpus=8, zero=3, offload=True, lora_rank=16, qlora=True), "precision": "fp16"},
])
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_assumption_renders_in_both_languages(kw, lang):
    # strict i18n (tests/conftest.py): a missing key or bad parameter raises
    d = run(**kw).as_dict(lang)
    assert d["assumptions"]
    corr = Correction("A100-80GB", "pretrain", factor=1.1, runs=3, error_before=0.2, error_after=0.1)
    assert run(efficiency=0.4, calibration=corr).as_dict(lang)["assumptions"]


# -- mixture-of-experts ---------------------------------------------------------------------------

DSV3 = ModelSpec(params=6.71e11, active_params=3.7e10)


def test_moe_default_efficiency_comes_from_moe_runs_and_says_so():
    est = run(model=DSV3, tokens=1.48e13, gpu="H800", gpus=2048, precision="fp8")
    d = est.as_dict()
    points = {p["id"]: p for p in yaml.safe_load((DATA / "efficiency.yaml").read_text(encoding="utf-8"))["points"]}
    assert all(points[s["id"]]["active_params"] is not None for s in d["efficiency_source"])
    assert d["efficiency_tier"] == 1 and d["moe_discount"] is None
    assert any(a.key == "assume.efficiency_moe" for a in est.assumptions)
    # the dense model of the same active size gets a different (higher) efficiency
    dense = run(model=ModelSpec(params=3.7e10), tokens=1.48e13, gpu="H800", gpus=2048, precision="fp8")
    assert dense.efficiency > est.efficiency
    assert est.total_flops == pytest.approx(dense.total_flops)  # FLOPs count active parameters


def test_moe_without_moe_runs_on_its_gpu_family_reports_the_discount():
    est = run(model=DSV3, gpu="A100-80GB", gpus=2048)
    d = est.as_dict()
    assert d["moe_discount"] is not None and 0 < d["moe_discount"]["value"] < 1
    assert {p["id"] for p in d["moe_discount"]["pairs"]}
    assert all(p["dense"] for p in d["moe_discount"]["pairs"])
    note = next(a for a in est.assumptions if a.key == "assume.efficiency_moe_discount")
    assert note.params["family"] == "ampere" and note.params["precision"] == "bf16"
    assert est.as_dict()["efficiency_confidence"] == "medium"


def test_moe_layout_search_uses_expert_parallelism_and_counts_total_parameters_in_memory():
    est = run(model=DSV3, tokens=1.48e13, gpu="H800", gpus=2048, precision="fp8")
    assert est.memory.fits and est.layout.ep > 1
    assert est.as_dict()["layout"]["ep"] == est.layout.ep
    assert est.layout.dp % est.layout.ep == 0
    assert est.memory.trainable_params == 6.71e11


# -- LoRA compute ----------------------------------------------------------------------------------


def test_lora_job_counts_four_n_d_and_says_so():
    est = run(workload="lora", efficiency=0.4)
    full = run(workload="finetune", efficiency=0.4)
    # 4 × 70e9 × 2e12 = 5.6e23 against 6 × 70e9 × 2e12 = 8.4e23
    assert est.total_flops == pytest.approx(5.6e23)
    assert full.total_flops == pytest.approx(8.4e23)
    assert est.wall_clock_hours == pytest.approx(5.6e23 / (312e12 * 0.4 * 1024) / 3600 * CORRECTION)
    assert est.gpu_hours == pytest.approx(full.gpu_hours * 2 / 3)
    d = est.as_dict()
    assert d["formulas"]["total_flops"].startswith("4 × N × D = 4 × ")
    assert d["formulas"]["total_flops_detailed"].startswith("2 × forward/token")
    assert d["total_flops_detailed"] == pytest.approx(full.as_dict()["total_flops_detailed"] * 2 / 3)
    assert any(a.key == "assume.lora_flops" for a in est.assumptions)
    assert not any(a.key == "assume.lora_flops" for a in full.assumptions)


def test_lora_run_at_its_published_efficiency_gives_its_published_throughput():
    # NeMo 24.07, Llama 2 70B LoRA on 8 H100 in FP8: 705 Model TFLOP/s, 2,557 tokens/s per GPU. At its
    # own efficiency (705 / 1979 of the FP8 peak) the estimate must give those tokens/s back.
    point = next(p for p in yaml.safe_load((DATA / "efficiency.yaml").read_text(encoding="utf-8"))["points"]
                 if p["id"] == "nemo2407-llama2-70b-lora-8-h100-fp8")
    tokens = 1e9
    est = run(model=ModelSpec(params=float(point["params"])), tokens=tokens, gpu="H100-SXM", gpus=8,
              precision="fp8", workload="lora", efficiency=point["model_tflops_per_gpu"] / 1979,
              correction_factor=1.0)
    tokens_per_sec_per_gpu = tokens / (est.wall_clock_hours * 3600) / 8
    assert tokens_per_sec_per_gpu == pytest.approx(point["tokens_per_sec_per_gpu"], rel=0.01)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_moe_runs_set_aside_are_named_in_the_note(lang):
    # 2B active on B200 in FP8: every B200 FP8 MoE run (3.3B, 22B, 37B active) is larger
    est = run(model=ModelSpec(params=2e10, active_params=2e9), tokens=1e11, gpu="B200", gpus=64, precision="fp8")
    note = next(a for a in est.assumptions if a.key.startswith("assume.efficiency_moe"))
    assert note.key == "assume.efficiency_moe_all_larger"
    assert "mbridge-qwen3-30b-a3b-8-b200-fp8" in note.params["own"]
    assert note.params["active"] == "2e+09"
    assert "mbridge-qwen3-30b-a3b-8-b200-fp8" in note.render(lang)
    big = run(model=ModelSpec(params=2e12, active_params=1e11), tokens=1e11, gpu="B200", gpus=1024, precision="fp8")
    assert any(a.key == "assume.efficiency_moe_all_smaller" for a in big.assumptions)
    assert est.as_dict(lang)["assumptions"] and big.as_dict(lang)["assumptions"]
