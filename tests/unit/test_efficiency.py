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


# -- mixture-of-experts -------------------------------------------------------------------------------

BF16_PEAK = {"H100-SXM": 989, "H800-SXM": 989, "B200": 2250}
FP8_PEAK = {"H100-SXM": 1979, "H800-SXM": 1979, "B200": 4500}


def moe_eff(gpu_id, precision, active, total, gpus, workload="pretrain"):
    catalog = load_catalog()
    return default_efficiency(gpu=catalog.get(gpu_id), catalog=catalog, precision=precision, params=active,
                              gpus=gpus, workload=workload, total_params=total)


def is_moe_point(pid) -> bool:
    p = POINTS[pid]
    return p["active_params"] is not None and float(p["active_params"]) < float(p["params"])


def test_the_file_has_published_moe_points_each_with_source_url_and_gpu_count():
    moe = [pid for pid in POINTS if is_moe_point(pid)]
    assert len(moe) >= 8
    for pid in moe:
        p = POINTS[pid]
        assert p["source"] and p["url"].startswith("https://") and int(p["gpus"]) >= 1, pid
        assert p["table"], pid
        # mfu = published Model TFLOP/s / dense peak of peak_basis (3 decimals), when a figure is published
        if p["model_tflops_per_gpu"] is not None:
            peak = BF16_PEAK[p["gpu"]] if p["peak_basis"] == "bf16" else None
            assert p["mfu"] == pytest.approx(p["model_tflops_per_gpu"] / peak, abs=0.0005), pid


def test_deepseek_v3_point_is_derived_from_its_published_gpu_hours():
    p = POINTS["deepseek-v3-2048-h800-fp8"]
    # 180K H800 GPU-hours per trillion tokens, 37B active: 6 × 37e9 × 1e12 / (180e3 × 3600) / 989e12
    assert p["mfu"] == pytest.approx(6 * 37e9 * 1e12 / (180e3 * 3600) / 989e12, abs=0.0005)
    assert int(p["gpus"]) == 2048 and p["precision"] == "fp8"


def test_moe_and_dense_jobs_of_the_same_active_size_differ_each_with_its_own_neighbours():
    # 37B active on 2048 H800 in FP8: as DeepSeek-V3 (671B total) and as a dense 37B model
    moe = moe_eff("H800", "fp8", 3.7e10, 6.71e11, 2048)
    dense = eff("H800", "fp8", 3.7e10, 2048)
    assert moe.moe and not dense.moe
    assert moe.neighbours and dense.neighbours
    assert all(is_moe_point(n.run.id) for n in moe.neighbours)
    assert not any(is_moe_point(n.run.id) for n in dense.neighbours)
    assert moe.value < 0.6 * dense.value  # MoE runs at a much lower fraction of peak
    # the MoE default is the inverse-distance mean of its MoE neighbours, expressed against the FP8 peak
    for n in moe.neighbours:
        p = POINTS[n.run.id]
        assert n.efficiency == pytest.approx(p["mfu"] * BF16_PEAK[p["gpu"]] / FP8_PEAK[p["gpu"]])
    assert moe.neighbours[0].run.id == "deepseek-v3-2048-h800-fp8" and moe.neighbours[0].distance == 0
    assert moe.value == pytest.approx(sum(n.weight * n.efficiency for n in moe.neighbours))


def test_fp8_moe_job_takes_no_dense_fp8_point():
    for gpu_id, gpus in (("H800", 2048), ("H100-SXM", 256), ("B200", 256)):
        result = moe_eff(gpu_id, "fp8", 2.2e10, 2.35e11, gpus)
        assert result.tier == 1 and result.moe_discount is None, gpu_id
        assert all(is_moe_point(n.run.id) and POINTS[n.run.id]["precision"] == "fp8" for n in result.neighbours)


def test_dense_job_takes_no_moe_point():
    # H100 BF16 at DeepSeek-V3's active size: the AutoModel DeepSeek-V3 row would be nearest, but it is MoE
    result = eff("H100-SXM", "bf16", 3.7e10, 256)
    assert not any(is_moe_point(n.run.id) for n in result.neighbours)


def test_active_total_ratio_is_a_search_dimension():
    # H100 FP8, 22B active on 256 GPUs: the Qwen3-235B row is at distance 0 for its own ratio (22/235) ...
    same = moe_eff("H100-SXM", "fp8", 2.2e10, 2.35e11, 256)
    assert same.neighbours[0].run.id == "mbridge-qwen3-235b-a22b-256-h100-fp8"
    assert same.neighbours[0].distance == pytest.approx(0.0)
    # ... and at |log10((22/235) / (22/44))| for an MoE of the same size with half its parameters active
    other = moe_eff("H100-SXM", "fp8", 2.2e10, 4.4e10, 256)
    row = next(n for n in other.neighbours if n.run.id == "mbridge-qwen3-235b-a22b-256-h100-fp8")
    assert row.distance == pytest.approx(abs(math.log10((2.2e10 / 2.35e11) / 0.5)))


def _discount_pairs() -> list[tuple[str, float]]:
    """(MoE point, MoE mfu / mean dense mfu of the same table, GPU and precision class), from the YAML."""
    out = []
    for pid, p in POINTS.items():
        if not is_moe_point(pid):
            continue
        cls = "16bit" if p["precision"] in ("bf16", "fp16") else p["precision"]
        dense = [q["mfu"] for qid, q in POINTS.items() if not is_moe_point(qid) and q.get("table") == p["table"]
                 and q["gpu"] == p["gpu"] and ("16bit" if q["precision"] in ("bf16", "fp16") else q["precision"]) == cls]
        if dense:
            out.append((pid, p["mfu"] / (sum(dense) / len(dense))))
    return out


def test_moe_discount_pairs_come_from_tables_holding_both_kinds():
    pairs = dict(_discount_pairs())
    # NVIDIA Megatron-Bridge 25.11: Qwen3-235B on 256 H100 FP8, 233 TFLOP/s vs dense 744/719/737
    assert pairs["mbridge-qwen3-235b-a22b-256-h100-fp8"] == pytest.approx(0.236 / ((0.752 + 0.727 + 0.745) / 3))
    assert "deepseek-v3-2048-h800-fp8" not in pairs        # no dense run in DeepSeek's report
    assert "mbridge-gpt-oss-120b-64-h100-bf16" not in pairs  # no dense BF16 row in that table
    assert len(pairs) >= 4


def test_moe_job_without_moe_points_of_its_kind_says_so_and_uses_the_discount():
    # A100 has no MoE point: dense A100 neighbours × MoE discount
    result = moe_eff("A100-80GB", "bf16", 3.7e10, 6.71e11, 1024)
    assert result.moe and result.moe_discount is not None
    assert result.method == "tier 1 + MoE discount" and result.confidence == "medium"
    assert not any(is_moe_point(n.run.id) for n in result.neighbours)
    dense = eff("A100-80GB", "bf16", 3.7e10, 1024)
    assert [n.run.id for n in result.neighbours] == [n.run.id for n in dense.neighbours]
    assert result.value == pytest.approx(dense.value * result.moe_discount.value)
    # the discount: inverse-distance mean of the K nearest MoE/dense ratios
    by_hand = dict(_discount_pairs())
    pairs = result.moe_discount.pairs
    assert len(pairs) == min(K, len(by_hand))
    for p in pairs:
        assert p.ratio == pytest.approx(by_hand[p.run.id])
        src = POINTS[p.run.id]
        n_run, total = float(src["active_params"]), float(src["params"])
        expected = math.hypot(math.log10(n_run / 3.7e10), math.log10(src["gpus"] / 1024),
                              math.log10((n_run / total) / (3.7e10 / 6.71e11)))
        assert p.distance == pytest.approx(expected)
    w = [1 / (p.distance + 0.05) for p in pairs]
    assert result.moe_discount.value == pytest.approx(sum(wi * p.ratio for wi, p in zip(w, pairs)) / sum(w))
    # the K chosen are the nearest of all pairs
    assert max(p.distance for p in pairs) <= min(
        (math.hypot(math.log10(float(POINTS[i]["active_params"]) / 3.7e10), math.log10(POINTS[i]["gpus"] / 1024),
                    math.log10(float(POINTS[i]["active_params"]) / float(POINTS[i]["params"]) / (3.7e10 / 6.71e11)))
         for i in by_hand if i not in {p.run.id for p in pairs}), default=math.inf)


def test_fp8_moe_job_on_a_family_without_moe_points_discounts_its_fp8_default():
    result = moe_eff("L40S", "fp8", 3.3e9, 3.05e10, 16)
    dense = eff("L40S", "fp8", 3.3e9, 16)
    assert result.moe_discount is not None and result.tier == dense.tier == 3
    assert result.value == pytest.approx(dense.value * result.moe_discount.value)
    assert result.value < dense.value


def test_moe_discount_without_any_table_pair_is_an_error_naming_the_file():
    catalog = load_catalog()
    runs = [r for r in load_runs() if not r.table.startswith("megatron-bridge")]
    with pytest.raises(InputError) as info:
        default_efficiency(gpu=catalog.get("A100-80GB"), catalog=catalog, precision="bf16", params=3.7e10,
                           gpus=1024, total_params=6.71e11, runs=runs)
    assert info.value.field == "efficiency.yaml" and info.value.key == "error.no_moe_discount"


# -- MoE runs of the job's kind must bracket its active size ---------------------------------------


def _own_kind_moe(gpu_id, precision):
    family = GPU_FAMILY[load_catalog().get(gpu_id).id]
    cls = "16bit" if precision in ("bf16", "fp16") else precision
    return {pid for pid, p in POINTS.items() if is_moe_point(pid) and p["gpu_family"] == family
            and ("16bit" if p["precision"] in ("bf16", "fp16") else p["precision"]) == cls}


def test_moe_runs_of_the_jobs_kind_that_bracket_its_size_are_used_directly():
    # B200 FP8 MoE runs: 3.3B, 22B and 37B active; a 10B-active job lies between them
    own = _own_kind_moe("B200", "fp8")
    assert {float(POINTS[i]["active_params"]) for i in own} == {3.3e9, 2.2e10, 3.7e10}
    result = moe_eff("B200", "fp8", 1e10, 1e11, 64)
    assert result.method == "tier 1 MoE" and result.moe_discount is None and result.moe_set_aside == ()
    assert {n.run.id for n in result.neighbours} <= own


@pytest.mark.parametrize("active,larger", [(2e9, True), (1e11, False)])
def test_moe_runs_all_larger_or_all_smaller_than_the_job_are_set_aside_for_the_discount(active, larger):
    own = _own_kind_moe("B200", "fp8")
    result = moe_eff("B200", "fp8", active, active * 10, 64)
    assert result.method == "tier 1 + MoE discount" and result.confidence == "medium"
    assert {r.id for r in result.moe_set_aside} == own
    assert all((r.n_active > active) == larger for r in result.moe_set_aside)
    # dense B200 FP8 default × the discount, the dense neighbours never MoE
    dense = eff("B200", "fp8", active, 64)
    assert [n.run.id for n in result.neighbours] == [n.run.id for n in dense.neighbours]
    assert result.value == pytest.approx(dense.value * result.moe_discount.value)


def test_a_small_moe_job_takes_the_ratio_of_the_same_model_on_another_gpu():
    # Qwen3-30B-A3B on 8 B200 in FP8, its own row left out: the other B200 FP8 MoE runs (22B, 37B
    # active) are all larger, and the nearest table pair is the same model on 16 H100
    catalog = load_catalog()
    runs = [r for r in load_runs() if r.id != "mbridge-qwen3-30b-a3b-8-b200-fp8"]
    result = default_efficiency(gpu=catalog.get("B200"), catalog=catalog, precision="fp8", params=3.3e9, gpus=8,
                                total_params=3.05e10, runs=runs)
    assert {r.id for r in result.moe_set_aside} == {"mbridge-qwen3-235b-a22b-64-b200-fp8",
                                                     "mbridge-deepseek-v3-256-b200-fp8"}
    nearest = result.moe_discount.pairs[0]
    assert nearest.run.id == "mbridge-qwen3-30b-a3b-16-h100-fp8"
    assert nearest.ratio == pytest.approx(0.122 / ((0.752 + 0.727 + 0.745) / 3))
    # the direct mean of the two larger runs would have been above both the discount and the row itself
    own = [r.mfu * 2250 / 4500 for r in result.moe_set_aside]  # 0.1075 and 0.124 of the FP8 peak
    published = POINTS["mbridge-qwen3-30b-a3b-8-b200-fp8"]["mfu"] * 2250 / 4500
    assert result.value < min(own) and published < result.value < 2 * published


def test_the_moe_discount_prefers_ratios_of_the_jobs_precision_class():
    from dataclasses import replace

    base = [r for r in load_runs()]
    template = next(r for r in base if r.id == "mbridge-qwen3-235b-a22b-256-h100-fp8")
    dense_template = next(r for r in base if r.id == "nemo-mbridge-llama3-70b-64-h100-fp8")
    # a hypothetical BF16 table holding one MoE and one dense run: MoE/dense = 0.30 / 0.60 = 0.5
    moe_bf16 = replace(template, id="bf16-moe", precision="bf16", peak_basis="bf16", mfu=0.30, table="bf16-table")
    dense_bf16 = replace(dense_template, id="bf16-dense", precision="bf16", peak_basis="bf16", mfu=0.60,
                         table="bf16-table")
    runs = base + [moe_bf16, dense_bf16]
    catalog = load_catalog()
    bf16 = default_efficiency(gpu=catalog.get("A100-80GB"), catalog=catalog, precision="bf16", params=3.7e10,
                              gpus=1024, total_params=6.71e11, runs=runs)
    assert [p.run.id for p in bf16.moe_discount.pairs] == ["bf16-moe"]
    assert bf16.moe_discount.value == pytest.approx(0.5)
    # an FP8 job keeps the FP8 ratios; without the BF16 table a BF16 job falls back to them
    fp8 = default_efficiency(gpu=catalog.get("L40S"), catalog=catalog, precision="fp8", params=3.7e10, gpus=1024,
                             total_params=6.71e11, runs=runs)
    assert fp8.moe_discount.pairs and all(p.run.precision == "fp8" for p in fp8.moe_discount.pairs)
    fallback = default_efficiency(gpu=catalog.get("A100-80GB"), catalog=catalog, precision="bf16", params=3.7e10,
                                  gpus=1024, total_params=6.71e11, runs=base)
    assert fallback.moe_discount.pairs and all(p.run.precision == "fp8" for p in fallback.moe_discount.pairs)


# -- LoRA rows count 4·N FLOPs per token ---------------------------------------------------------------


def test_published_throughputs_show_the_flop_count_of_each_workload():
    from core.estimation.flops import flops_per_param_token

    rows = {pid: p for pid, p in POINTS.items() if p.get("tokens_per_sec_per_gpu")}
    assert {p["workload"] for p in rows.values()} >= {"lora", "finetune"}
    assert sum(p["workload"] == "lora" for p in rows.values()) == 3
    for pid, p in rows.items():
        per_param = p["model_tflops_per_gpu"] * 1e12 / float(p["tokens_per_sec_per_gpu"]) / float(p["params"])
        # NVIDIA: LoRA 3.96-4.10 N per token, SFT 5.98 N
        assert per_param == pytest.approx(flops_per_param_token(p["workload"]), rel=0.05), pid
    assert flops_per_param_token("lora") == 4.0 and flops_per_param_token("finetune") == 6.0
