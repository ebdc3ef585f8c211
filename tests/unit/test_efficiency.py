"""Default training efficiency (core/estimation/efficiency.py) from the measured runs in data/efficiency.yaml."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from core.errors import InputError
from core.estimation.catalog import load_catalog
from core.estimation.efficiency import default_efficiency, load_runs

DATA = Path(__file__).resolve().parents[2] / "data"
POINTS = {p["id"]: p for p in yaml.safe_load((DATA / "efficiency.yaml").read_text(encoding="utf-8"))["points"]}
DEFAULTS = yaml.safe_load((DATA / "estimation_defaults.yaml").read_text(encoding="utf-8"))
HFU_FACTOR = DEFAULTS["full_recompute_flops_factor"]["value"]   # 1.333 (8ND / 6ND)
K = int(DEFAULTS["efficiency_neighbours"]["value"])             # 3
GPU_FAMILY = {g["id"]: g["family"] for g in yaml.safe_load((DATA / "gpus.yaml").read_text(encoding="utf-8"))["gpus"]}


def eff(gpu_id, precision, params, gpus, workload="pretrain"):
    catalog = load_catalog()
    return default_efficiency(gpu=catalog.get(gpu_id), catalog=catalog, precision=precision, params=params,
                              gpus=gpus, workload=workload)


def as_mfu(point) -> float:
    return point["mfu"] / HFU_FACTOR if point.get("measure") == "hfu" else point["mfu"]


# -- hfu conversion -------------------------------------------------------------------------------


def test_every_yaml_point_is_loaded():
    assert {r.id for r in load_runs()} == set(POINTS)


def test_hfu_points_are_divided_by_the_full_recompute_factor():
    runs = {r.id: r for r in load_runs()}
    hfu = [pid for pid, p in POINTS.items() if p.get("measure") == "hfu"]
    assert len(hfu) >= 5  # Narayanan Table 1 rows and BLOOM
    # e.g. Megatron 145.6B: 0.474 HFU / 1.333 = 0.35559 MFU
    assert runs["megatron-ptdp-145.6b-1536-a100"].mfu == pytest.approx(0.474 / 1.333)
    for pid in hfu:
        assert runs[pid].mfu == pytest.approx(POINTS[pid]["mfu"] / HFU_FACTOR), pid
    for pid, p in POINTS.items():
        if p.get("measure", "mfu") == "mfu":
            assert runs[pid].mfu == pytest.approx(p["mfu"]), pid


# -- tier 1 -----------------------------------------------------------------------------------------


def test_a100_bf16_175b_on_1024_gpus_is_backed_by_the_nearest_ampere_runs():
    result = eff("A100-80GB", "bf16", 1.75e11, 1024)
    assert result.tier == 1 and result.confidence == "high"
    assert len(result.neighbours) == K
    ids = [n.run.id for n in result.neighbours]
    assert all(i in POINTS for i in ids)
    assert all(POINTS[i]["gpu_family"] == "ampere" for i in ids)
    # Distances in (log10 params, log10 GPUs) from (1.75e11, 1024), by hand:
    #   opt-175b-992:        hypot(0, log10(992/1024))                       = 0.0138
    #   megatron 145.6B/1536: hypot(log10(1.456e11/1.75e11), log10(1.5))     = 0.1933
    #   bloom 176B/384:       hypot(log10(1.76/1.75), log10(384/1024))        = 0.4260
    # next would be korthikanti-530b-2240 (0.589) and megascale-175b-256 (0.602).
    dists = {
        "opt-175b-992-a100": abs(math.log10(992 / 1024)),
        "megatron-ptdp-145.6b-1536-a100": math.hypot(math.log10(1.456e11 / 1.75e11), math.log10(1.5)),
        "bloom-176b-384-a100": math.hypot(math.log10(1.76e11 / 1.75e11), math.log10(384 / 1024)),
    }
    assert set(ids) == set(dists)
    # efficiencies: OPT 0.471 (mfu); Megatron 0.474/1.333; BLOOM 0.481/1.333 (both hfu)
    effs = {"opt-175b-992-a100": 0.471, "megatron-ptdp-145.6b-1536-a100": 0.474 / 1.333,
            "bloom-176b-384-a100": 0.481 / 1.333}
    for n in result.neighbours:
        assert n.efficiency == pytest.approx(effs[n.run.id])
        assert n.distance == pytest.approx(dists[n.run.id])
    # inverse-distance weights 1/(d + 0.05), normalised
    w = {i: 1 / (d + 0.05) for i, d in dists.items()}
    expected = sum(w[i] * effs[i] for i in w) / sum(w.values())
    assert result.value == pytest.approx(expected)
    assert min(effs.values()) <= result.value <= max(effs.values())
    assert sum(n.weight for n in result.neighbours) == pytest.approx(1.0)


def test_fp16_and_bf16_share_the_16bit_class():
    assert eff("A100-80GB", "fp16", 1.75e11, 1024).value == pytest.approx(eff("A100-80GB", "bf16", 1.75e11, 1024).value)


def test_h100_fp8_is_tier1_and_expressed_against_the_fp8_peak():
    result = eff("H100-SXM", "fp8", 7.06e10, 64)
    assert result.tier == 1
    # the NeMo fp8 rows are "fraction of the BF16 peak" (989); against the FP8 peak 1979:
    # e.g. Llama3 70B on 64: 0.727 × 989 / 1979 = 0.3633
    for n in result.neighbours:
        assert n.run.precision == "fp8"
        assert n.efficiency == pytest.approx(POINTS[n.run.id]["mfu"] * 989 / 1979)
    assert "nemo-mbridge-llama3-70b-64-h100-fp8" in [n.run.id for n in result.neighbours]


def test_workload_mismatch_adds_one_unit_of_distance():
    # H100 bf16, 70.6B on 8 GPUs, LoRA: the AutoModel LoRA row (70.6B, 8 GPUs, lora) is at distance 0
    lora = eff("H100-SXM", "bf16", 7.06e10, 8, workload="lora")
    assert lora.neighbours[0].run.id == "automodel-llama3-70b-lora-8-h100-bf16"
    assert lora.neighbours[0].distance == pytest.approx(0.0)
    # every neighbour: hypot(log10(N_run / 7.06e10), log10(G_run / 8)) + (0 if LoRA else 1)
    for n in lora.neighbours:
        p = POINTS[n.run.id]
        n_run = float(p["active_params"] or p["params"])  # PyYAML reads "7.06e10" as a string
        expected = math.hypot(math.log10(n_run / 7.06e10), math.log10(p["gpus"] / 8))
        expected += 0.0 if p["workload"] == "lora" else 1.0
        assert n.distance == pytest.approx(expected), n.run.id
    # the same job as pre-training no longer sits on top of the LoRA row
    pre = eff("H100-SXM", "bf16", 7.06e10, 8, workload="pretrain")
    assert pre.value != pytest.approx(lora.value)
    assert all(n.distance >= 1.0 for n in pre.neighbours if n.run.workload != "pretrain")


# -- tier 3 (no run of the GPU's family) -----------------------------------------------------------


@pytest.mark.parametrize("gpu_id,precision", [
    ("T4", "fp16"), ("L40S", "bf16"), ("L20", "bf16"), ("Ascend-910B", "bf16"), ("V100", "fp16"),
])
def test_families_without_measurements_fall_to_tier3_low_confidence(gpu_id, precision):
    result = eff(gpu_id, precision, 7e9, 64)
    assert result.tier == 3 and result.confidence == "low"
    family = GPU_FAMILY[load_catalog().get(gpu_id).id]
    assert all(n.run.gpu_family != family for n in result.neighbours)
    assert all(n.run.precision in ("bf16", "fp16") for n in result.neighbours)
    assert 0 < result.value <= 1


def test_fp8_on_ada_uses_other_families_fp8_runs_scaled_to_the_job_peak():
    result = eff("L40S", "fp8", 4.05e11, 1024)
    assert result.tier == 3 and result.confidence == "low"
    # achieved TFLOP/s × (L40S fp8 peak 733 / run GPU fp8 peak) / 733 = achieved / run GPU fp8 peak:
    # H100 405B/1024: 0.745 × 989 / 1979 = 0.3723; B200 405B/128: 0.741 × 2250 / 4500 = 0.3705
    fp8_peak = {"H100-SXM": 1979, "B200": 4500}
    bf16_peak = {"H100-SXM": 989, "B200": 2250}
    for n in result.neighbours:
        assert n.run.precision == "fp8"
        p = POINTS[n.run.id]
        assert n.efficiency == pytest.approx(p["mfu"] * bf16_peak[p["gpu"]] / fp8_peak[p["gpu"]])
    assert result.value == pytest.approx(0.37, abs=0.01)


def test_fp8_on_a_gpu_without_fp8_has_no_efficiency():
    with pytest.raises(InputError) as info:
        eff("A100-80GB", "fp8", 7e9, 8)
    assert info.value.field == "precision"
    assert info.value.key == "error.precision_unsupported"


def test_unknown_workload_is_rejected():
    with pytest.raises(InputError) as info:
        eff("A100-80GB", "bf16", 7e9, 8, workload="rlhf")
    assert info.value.field == "workload"


SUPPORTED = [(g["id"], p) for g in yaml.safe_load((DATA / "gpus.yaml").read_text(encoding="utf-8"))["gpus"]
             for p in ("bf16", "fp16", "fp8") if g[f"{p}_tflops"]]


@pytest.mark.parametrize("gpu_id,precision", SUPPORTED)
def test_every_default_is_a_fraction_between_0_and_1(gpu_id, precision):
    result = eff(gpu_id, precision, 7e10, 256)
    assert 0 < result.value <= 1
    assert all(0 < n.efficiency <= 1 for n in result.neighbours)


# -- bugs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gpu_id", ["A10", "A30"])
def test_a10_and_a30_without_own_measurements_are_not_high_confidence(gpu_id):
    assert eff(gpu_id, "bf16", 7e9, 64).confidence != "high"


def test_bf16_default_from_fp8_only_runs_does_not_exceed_any_measured_16bit_mfu():
    best_16bit = max(as_mfu(p) for p in POINTS.values() if p["precision"] in ("bf16", "fp16"))
    assert best_16bit == pytest.approx(0.653)
    assert eff("B200", "bf16", 7e10, 256).value <= best_16bit
