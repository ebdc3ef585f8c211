"""Memory per GPU (core/estimation/memory.py): ZeRO model states, Korthikanti activations, LoRA/QLoRA,
offload, the verdict, what-would-fit, and invalid layouts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from core.errors import InputError
from core.estimation.catalog import load_catalog
from core.estimation.memory import (
    Layout,
    activation_bytes_per_layer,
    estimate_memory,
    lora_adapter_params,
    what_would_fit,
)
from core.estimation.model import ModelSpec, complete_architecture
from core.i18n import translate

DATA = Path(__file__).resolve().parents[2] / "data"
DEFAULTS = yaml.safe_load((DATA / "estimation_defaults.yaml").read_text(encoding="utf-8"))
OVERHEAD_GB = DEFAULTS["framework_overhead_gb"]["value"]          # 2.0
FRAG = DEFAULTS["allocator_fragmentation_fraction"]["value"]      # 0.05

GPT3 = ModelSpec(params=1.75e11, layers=96, hidden=12288, heads=96, kv_heads=96, ffn_hidden=49152,
                 vocab=50257, seq_len=2048)
LLAMA2_7B = ModelSpec(params=6.74e9, layers=32, hidden=4096, heads=32, kv_heads=32, ffn_hidden=11008,
                      gated_mlp=True, vocab=32000, seq_len=4096)
LLAMA2_70B = ModelSpec(params=6.898e10, layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672,
                       gated_mlp=True, vocab=32000, seq_len=4096)
# The ZeRO paper's Figure 1 model: Ψ = 7.5B parameters (a 32-layer, d 4096 shape around it).
ZERO_MODEL = ModelSpec(params=7.5e9, layers=32, hidden=4096, heads=32, kv_heads=32, ffn_hidden=16384,
                       vocab=32000, seq_len=2048)


def gpu(name: str):
    return load_catalog().get(name)


def model_states_gb(m) -> float:
    return m.weights_gb + m.gradients_gb + m.optimizer_gb


# -- ZeRO (Rajbhandari et al. 2020, Figure 1: Ψ = 7.5B, N_d = 64, K = 12) -------------------------


def test_zero0_baseline_is_16_bytes_per_param_120_gb():
    m = estimate_memory(ZERO_MODEL, Layout(gpus=64, zero=0), gpu("A100-80GB"))
    # (2 + 2 + K)·Ψ = 16 × 7.5e9 = 120 GB
    assert m.weights_gb == pytest.approx(15.0)
    assert m.gradients_gb == pytest.approx(15.0)
    assert m.optimizer_gb == pytest.approx(90.0)
    assert model_states_gb(m) == pytest.approx(120.0)


def test_mixed_precision_adamw_is_16_to_18_bytes_per_param_before_sharding():
    m = estimate_memory(LLAMA2_7B, Layout(gpus=1, zero=0), gpu("H200"))
    per_param = model_states_gb(m) * 1e9 / LLAMA2_7B.params
    assert 16.0 <= per_param <= 18.0


def test_zero1_shards_optimizer_31_4_gb():
    m = estimate_memory(ZERO_MODEL, Layout(gpus=64, zero=1), gpu("A100-80GB"))
    # 2Ψ + 2Ψ + KΨ/N_d = 15 + 15 + 90/64 = 31.40625 GB (paper: 31.4 GB)
    assert model_states_gb(m) == pytest.approx(31.40625)
    assert round(model_states_gb(m), 1) == 31.4


def test_zero2_shards_optimizer_and_gradients_16_6_gb():
    m = estimate_memory(ZERO_MODEL, Layout(gpus=64, zero=2), gpu("A100-80GB"))
    # 2Ψ + (2 + K)Ψ/N_d = 15 + 105/64 = 16.640625 GB (paper: 16.6 GB)
    assert model_states_gb(m) == pytest.approx(16.640625)
    assert round(model_states_gb(m), 1) == 16.6


def test_zero3_shards_everything_1_9_gb_plus_one_layer_gather_buffer():
    m = estimate_memory(ZERO_MODEL, Layout(gpus=64, zero=3), gpu("A100-80GB"))
    # (2 + 2 + K)Ψ/N_d = 120/64 = 1.875 GB (paper: 1.9 GB), plus the gather buffer the estimator
    # adds: 4 bytes × one layer = 4 × (7.5e9 − 2·32000·4096)/32 = 4 × 226,183,000 = 0.904732 GB
    gather_gb = 4 * (7.5e9 - 2 * 32000 * 4096) / 32 / 1e9
    assert gather_gb == pytest.approx(0.904732)
    assert model_states_gb(m) - gather_gb == pytest.approx(1.875)
    assert round(model_states_gb(m) - gather_gb, 1) == 1.9
    assert m.gradients_gb + m.optimizer_gb == pytest.approx((2 + 12) * 7.5e9 / 64 / 1e9)


def test_tensor_and_pipeline_parallel_divide_model_states():
    m = estimate_memory(ZERO_MODEL, Layout(gpus=64, tp=4, pp=2, zero=0), gpu("A100-80GB"))
    # 16 bytes × 7.5e9 / (4·2) = 15 GB
    assert model_states_gb(m) == pytest.approx(15.0)


def test_zero1_shards_over_data_parallel_degree_not_gpu_count():
    m = estimate_memory(ZERO_MODEL, Layout(gpus=64, tp=8, pp=1, zero=1), gpu("A100-80GB"))
    # per TP rank Ψ/8 = 0.9375e9 params: 2 + 2 bytes full, 12 bytes / dp 8:
    # 0.9375e9 × (4 + 12/8) = 5.15625 GB
    assert model_states_gb(m) == pytest.approx(5.15625)


def test_optimizer_bytes_per_param_by_optimizer():
    one = Layout(gpus=1)
    # K: adamw 12, adam8bit 6 (4 master + 1 + 1), sgd 8 (4 master + 4 momentum); × 6.74e9
    assert estimate_memory(LLAMA2_7B, one, gpu("H200")).optimizer_gb == pytest.approx(80.88)
    assert estimate_memory(LLAMA2_7B, replace(one, optimizer="adam8bit"), gpu("H200")).optimizer_gb == pytest.approx(40.44)
    assert estimate_memory(LLAMA2_7B, replace(one, optimizer="sgd"), gpu("H200")).optimizer_gb == pytest.approx(53.92)


# -- activations (Korthikanti et al. 2022, Table 2; GPT-3 175B, s 2048, b 1, h 12288, a 96, t 8) --

# sbh = 2048 × 12288 = 25,165,824 and 5as/(ht) = 5·96·2048/(12288·8) = 10
@pytest.mark.parametrize("recompute,sp,expected", [
    ("none", False, 578_813_952),       # sbh(10 + 24/8 + 10) = 23 sbh
    ("none", True, 358_612_992),        # sbh(34/8 + 10) = 14.25 sbh
    ("selective", False, 327_155_712),  # sbh(10 + 24/8) = 13 sbh
    ("selective", True, 106_954_752),   # sbh·34/8 = 4.25 sbh
    ("full", False, 50_331_648),        # 2 sbh
    ("full", True, 6_291_456),          # 2 sbh / 8
])
def test_korthikanti_per_layer_activations_gpt3_t8(recompute, sp, expected):
    assert activation_bytes_per_layer(2048, 1, 12288, 96, 8, sp, recompute) == pytest.approx(expected)


def test_korthikanti_no_parallelism_is_sbh_34_plus_5as_over_h():
    # t = 1: sbh(34 + 5as/h) = 25,165,824 × (34 + 80) = 2,868,903,936 bytes
    assert activation_bytes_per_layer(2048, 1, 12288, 96, 1, False, "none") == pytest.approx(2_868_903_936)


@pytest.mark.parametrize("recompute,sp,per_layer", [
    ("none", False, 578_813_952),
    ("selective", True, 106_954_752),
    ("full", True, 6_291_456),
])
def test_total_activations_are_layers_times_per_layer_plus_output_layer(recompute, sp, per_layer):
    layout = Layout(gpus=64, tp=8, pp=8, zero=1, recompute=recompute, sequence_parallel=sp)
    m = estimate_memory(GPT3, layout, gpu("A100-80GB"))
    # L × per-layer + 4·s·b·V/t = 96 × per_layer + 4 × 2048 × 50257 / 8 (= 51,463,168)
    assert m.activations_gb == pytest.approx((96 * per_layer + 51_463_168) / 1e9)


def test_sequence_parallel_flag_is_ignored_without_tensor_parallelism():
    a = estimate_memory(LLAMA2_7B, Layout(gpus=8, zero=3, sequence_parallel=True), gpu("A100-80GB"))
    b = estimate_memory(LLAMA2_7B, Layout(gpus=8, zero=3, sequence_parallel=False), gpu("A100-80GB"))
    # t = 1: 34·sbh either way = 34 × 4096 × 4096 = 570,425,344 per layer; × 32 + 4·4096·32000
    assert a.activations_gb == b.activations_gb == pytest.approx((32 * 570_425_344 + 524_288_000) / 1e9)


@pytest.mark.parametrize("pp", [1, 2, 4, 8])
def test_pipeline_size_does_not_change_activation_memory(pp):
    # 1F1B: the first stage holds p micro-batches of L/p layers = L layers' worth
    m = estimate_memory(GPT3, Layout(gpus=8 * pp * 2, tp=8, pp=pp, zero=1), gpu("A100-80GB"))
    assert m.activations_gb == pytest.approx((96 * 106_954_752 + 51_463_168) / 1e9)


def test_layout_seq_len_overrides_model_seq_len():
    m = estimate_memory(GPT3, Layout(gpus=64, tp=8, pp=8, zero=1, seq_len=4096), gpu("A100-80GB"))
    # doubles s: 96 × 2 × 106,954,752 + 4 × 4096 × 50257 / 8
    assert m.activations_gb == pytest.approx((96 * 213_909_504 + 102_926_336) / 1e9)


# -- LoRA / QLoRA (Hu et al. 2021; Dettmers et al. 2023) -----------------------------------------


def test_lora_adapter_count_llama2_7b_rank8_qkvo():
    # 32 layers × 8 × (4096 + 4096) × 4 matrices = 8,388,608
    assert lora_adapter_params(LLAMA2_7B, 8) == 8_388_608


def test_lora_adapter_count_with_grouped_query_attention():
    # Llama 2 70B, r 8: q,o: 8·(8192 + 8192); k,v: 8·(8192 + 1024)  -> 409,600 per layer × 80
    assert lora_adapter_params(LLAMA2_70B, 8) == 32_768_000


def test_lora_gradients_and_optimizer_cover_only_adapters():
    m = estimate_memory(LLAMA2_7B, Layout(gpus=1, lora_rank=8), gpu("A100-80GB"))
    assert m.trainable_params == 8_388_608
    # gradients 2 bytes, AdamW 12 bytes per adapter parameter
    assert m.gradients_gb == pytest.approx(8_388_608 * 2 / 1e9)
    assert m.optimizer_gb == pytest.approx(8_388_608 * 12 / 1e9)
    # frozen base in 16-bit plus the 16-bit adapters
    assert m.weights_gb == pytest.approx((6.74e9 * 2 + 8_388_608 * 2) / 1e9)


def test_qlora_base_is_about_0_516_bytes_per_param():
    m = estimate_memory(LLAMA2_7B, Layout(gpus=1, lora_rank=8, qlora=True), gpu("A100-80GB"))
    base_bytes = m.weights_gb * 1e9 - 8_388_608 * 2
    # NF4 + double quantisation: 4.127 bits = 0.515875 bytes per parameter
    assert base_bytes / 6.74e9 == pytest.approx(0.516, abs=5e-4)
    assert m.optimizer_gb == pytest.approx(8_388_608 * 12 / 1e9)


def test_lora_is_far_smaller_than_full_finetuning():
    full = estimate_memory(LLAMA2_7B, Layout(gpus=1), gpu("A100-80GB"))
    lora = estimate_memory(LLAMA2_7B, Layout(gpus=1, lora_rank=8), gpu("A100-80GB"))
    assert lora.total_gb < full.total_gb / 3


# -- offload --------------------------------------------------------------------------------------


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_offload_removes_optimizer_states_from_the_gpu(zero):
    m = estimate_memory(ZERO_MODEL, Layout(gpus=64, zero=zero, offload=True), gpu("A100-80GB"))
    assert m.optimizer_gb == 0.0


def test_offload_at_stage3_keeps_only_the_gather_buffer_of_weights():
    m = estimate_memory(ZERO_MODEL, Layout(gpus=64, zero=3, offload=True), gpu("A100-80GB"))
    assert m.weights_gb == pytest.approx(4 * (7.5e9 - 2 * 32000 * 4096) / 32 / 1e9)
    assert m.gradients_gb == pytest.approx(2 * 7.5e9 / 64 / 1e9)


# -- overhead, verdict, largest term ------------------------------------------------------------


def test_overhead_is_framework_allowance_plus_fragmentation_share():
    m = estimate_memory(LLAMA2_7B, Layout(gpus=8, zero=3), gpu("A100-80GB"))
    computed = m.weights_gb + m.gradients_gb + m.optimizer_gb + m.activations_gb
    assert m.overhead_gb == pytest.approx(OVERHEAD_GB + FRAG * computed)
    assert m.total_gb == pytest.approx(computed + m.overhead_gb)


def test_capacity_is_vendor_gb_read_as_gib():
    # 80 × 2^30 / 1e9 = 85.89934592 GB
    m = estimate_memory(LLAMA2_7B, Layout(gpus=8, zero=3), gpu("A100-80GB"))
    assert m.capacity_gb == pytest.approx(85.89934592)


def test_verdict_does_not_fit_and_names_optimizer_as_largest_term():
    m = estimate_memory(LLAMA2_7B, Layout(gpus=8, zero=0), gpu("A100-80GB"))
    # 16 bytes × 6.74e9 = 107.84 GB of model states alone > 85.9 GB
    assert m.fits is False
    assert m.largest_term == "optimizer"
    d = m.as_dict()
    assert d["fits_in_memory"] is False and d["largest_term"] == "optimizer"
    assert translate("memory.verdict_no_fit", "en", largest=translate("memory.term.optimizer", "en"))


def test_verdict_fits_with_zero3_on_eight_gpus():
    m = estimate_memory(LLAMA2_7B, Layout(gpus=8, zero=3), gpu("A100-80GB"))
    assert m.fits is True
    assert m.total_gb <= 85.89934592


def test_largest_term_is_activations_for_long_sequence_big_micro_batch():
    m = estimate_memory(LLAMA2_7B, Layout(gpus=8, zero=3, micro_batch=8, recompute="none"), gpu("A100-80GB"))
    assert m.largest_term == "activations"


def test_as_dict_has_the_memory_contract_keys():
    d = estimate_memory(LLAMA2_7B, Layout(gpus=8, zero=3), gpu("A100-80GB")).as_dict()
    assert {"weights_gb", "gradients_gb", "optimizer_gb", "activations_gb", "overhead_gb", "total_gb",
            "capacity_gb", "fits_in_memory", "largest_term", "trainable_params"} <= set(d)


# -- what would fit -------------------------------------------------------------------------------


def _apply(layout: Layout, key: str) -> Layout:
    """The single change each remedy key stands for, written out independently."""
    return {
        "remedy.recompute_full": lambda: replace(layout, recompute="full"),
        "remedy.zero_next": lambda: replace(layout, zero=layout.zero + 1),
        "remedy.offload": lambda: replace(layout, zero=max(layout.zero, 1), offload=True),
        "remedy.tp_double": lambda: replace(layout, tp=layout.tp * 2),
        "remedy.micro_batch_1": lambda: replace(layout, micro_batch=1),
        "remedy.lora": lambda: replace(layout, lora_rank=16),
        "remedy.qlora": lambda: replace(layout, lora_rank=16, qlora=True),
    }[key]()


@pytest.mark.parametrize("layout,expected_keys", [
    (Layout(gpus=8, zero=0, micro_batch=1),
     {"remedy.zero_next", "remedy.offload", "remedy.tp_double", "remedy.lora", "remedy.qlora"}),
    (Layout(gpus=8, zero=0, micro_batch=4), {"remedy.qlora"}),
])
def test_what_would_fit_suggestions_each_really_fit_when_applied(layout, expected_keys):
    a100 = gpu("A100-80GB")
    assert not estimate_memory(LLAMA2_7B, layout, a100).fits
    found = what_would_fit(LLAMA2_7B, layout, a100)
    assert {m.key for m in found} == expected_keys
    for msg in found:
        applied = _apply(layout, msg.key).validate(LLAMA2_7B)
        result = estimate_memory(LLAMA2_7B, applied, a100)
        assert result.fits, msg.key
        assert msg.params["total_gb"] == f"{result.total_gb:.1f}"
        assert msg.render("en") and msg.render("zh-CN")


def test_what_would_fit_is_empty_when_nothing_single_helps():
    # Llama 2 70B on one T4: no single change brings it under 16 GB
    assert what_would_fit(LLAMA2_70B, Layout(gpus=1), gpu("T4")) == []


# -- invalid layouts ------------------------------------------------------------------------------

GPT2 = ModelSpec(params=1.24e8, layers=12, hidden=768, heads=12, kv_heads=12, vocab=50257, seq_len=1024)


@pytest.mark.parametrize("layout,field", [
    (Layout(gpus=12, tp=8), "gpus"),                  # 12 not divisible by tp·pp = 8
    (Layout(gpus=16, tp=4, pp=3), "gpus"),            # 16 not divisible by 12
    (Layout(gpus=8, tp=8), "tp"),                     # 8 does not divide 12 heads
    (Layout(gpus=8, zero=0, offload=True), "offload"),
    (Layout(gpus=8, qlora=True), "lora_rank"),
    (Layout(gpus=8, lora_rank=0), "lora_rank"),
    (Layout(gpus=8, zero=5), "zero"),
    (Layout(gpus=16, pp=16), "pp"),                   # more stages than 12 layers
    (Layout(gpus=0), "gpus"),
    (Layout(gpus=8, micro_batch=0), "micro_batch"),
    (Layout(gpus=8, optimizer="adafactor"), "optimizer"),
    (Layout(gpus=8, recompute="some"), "recompute"),
])
def test_invalid_layout_raises_input_error_naming_the_field(layout, field):
    with pytest.raises(InputError) as info:
        layout.validate(GPT2)
    assert info.value.field == field
    assert str(info.value)  # renders in strict i18n mode


def test_valid_layout_validates_to_itself():
    layout = Layout(gpus=16, tp=4, pp=2, zero=1)
    assert layout.validate(GPT2) is layout
    assert layout.dp == 2


# -- bugs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("offload", [False, True])
def test_zero3_weights_are_never_negative_for_small_models(offload):
    # 1e7 params -> nearest preset BERT-large (h 1024, V 30522, 24 layers): 2·V·h = 62.5M > 1e7
    model, _ = complete_architecture(ModelSpec(params=1e7))
    m = estimate_memory(model, Layout(gpus=8, zero=3, offload=offload), gpu("A100-80GB"))
    assert all(v >= 0 for v in m.terms().values()), m.terms()


def test_zero3_gather_buffer_covers_the_largest_gathered_layer():
    llama3_8b = ModelSpec(params=8.03e9, layers=32, hidden=4096, heads=32, kv_heads=8, ffn_hidden=14336,
                          gated_mlp=True, vocab=128256, seq_len=8192)
    m = estimate_memory(llama3_8b, Layout(gpus=8, zero=3), gpu("A100-80GB"))
    # sharded 16-bit weights 2 × 8.03e9 / 8 = 2.0075 GB, plus 4 bytes × 128256 × 4096 = 2.101 GB
    assert m.weights_gb >= (2 * 8.03e9 / 8 + 4 * 128256 * 4096) / 1e9


# -- mixture-of-experts and expert parallelism ----------------------------------------------------

# DeepSeek-V3 shape (data/model_presets.yaml): 671B total, 37B active
DSV3 = ModelSpec(params=6.71e11, active_params=3.7e10, layers=61, hidden=7168, heads=128, kv_heads=128,
                 ffn_hidden=18432, gated_mlp=True, vocab=129280, seq_len=4096)
EXPERT = 6.71e11 - 3.7e10   # expert parameters taken as total − active (a lower bound)


def test_moe_model_states_count_total_parameters_and_ep_divides_the_experts():
    # ZeRO-0, no parallelism: 2 + 2 + 12 bytes × all 671B parameters (not the 37B active ones)
    m = estimate_memory(DSV3, Layout(gpus=1, zero=0), gpu("B200"))
    assert m.weights_gb == pytest.approx(2 * 6.71e11 / 1e9)
    assert m.gradients_gb == pytest.approx(2 * 6.71e11 / 1e9)
    assert m.optimizer_gb == pytest.approx(12 * 6.71e11 / 1e9)
    assert m.trainable_params == 6.71e11
    # EP 8 on 8 data-parallel GPUs: each holds the 37B shared and 1/8 of the experts
    m8 = estimate_memory(DSV3, Layout(gpus=8, zero=0, ep=8), gpu("B200"))
    assert m8.weights_gb == pytest.approx(2 * (3.7e10 + EXPERT / 8) / 1e9)
    assert m8.optimizer_gb == pytest.approx(12 * (3.7e10 + EXPERT / 8) / 1e9)


def test_zero_shards_expert_states_over_dp_over_ep_and_shared_ones_over_dp():
    # 64 GPUs, TP 1, PP 1, EP 8: DP 64, expert-data-parallel 8; ZeRO-2 shards optimizer and gradients
    layout = Layout(gpus=64, zero=2, ep=8)
    m = estimate_memory(DSV3, layout, gpu("H800"))
    shard = 3.7e10 / 64 + (EXPERT / 8) / 8
    assert m.optimizer_gb == pytest.approx(12 * shard / 1e9)
    assert m.gradients_gb == pytest.approx(2 * shard / 1e9)
    assert m.weights_gb == pytest.approx(2 * (3.7e10 + EXPERT / 8) / 1e9)
    assert "assume.moe_memory" in {a.key for a in m.assumptions}


def test_more_expert_parallelism_never_needs_more_memory():
    totals = [estimate_memory(DSV3, Layout(gpus=64, zero=1, pp=4, ep=ep), gpu("H800")).total_gb for ep in (1, 2, 4, 8, 16)]
    assert totals == sorted(totals, reverse=True) and totals[0] > totals[-1]


def test_dense_model_is_unchanged_by_the_moe_split():
    # a dense model has no expert parameters: ZeRO-1 over 8 GPUs = the ZeRO paper's formula
    m = estimate_memory(LLAMA2_7B, Layout(gpus=8, zero=1), gpu("A100-80GB"))
    assert m.weights_gb == pytest.approx(2 * 6.74e9 / 1e9)
    assert m.optimizer_gb == pytest.approx(12 * 6.74e9 / 8 / 1e9)


def test_moe_activations_come_from_the_active_architecture():
    # no architecture given: the preset nearest in ACTIVE parameters (DeepSeek-V3 for 37B active),
    # not the dense 405B preset nearest in total parameters
    model, notes = complete_architecture(ModelSpec(params=6.71e11, active_params=3.7e10))
    assert (model.layers, model.hidden) == (61, 7168)
    assert [n.params["preset"] for n in notes] == ["DeepSeek-V3 (MoE)"]
    # a dense model never takes the MoE preset's shape
    dense, _ = complete_architecture(ModelSpec(params=6.71e11))
    assert dense.hidden != 7168


@pytest.mark.parametrize("layout,field,key", [
    (Layout(gpus=8, ep=2), "ep", "error.ep_needs_moe"),             # dense model
    (Layout(gpus=8, tp=2, ep=8), "ep", "error.ep_divides_dp"),      # DP 4 not divisible by 8
    (Layout(gpus=8, ep=0), "ep", "error.out_of_range"),
])
def test_invalid_expert_parallelism_names_the_field(layout, field, key):
    model = GPT2 if key == "error.ep_needs_moe" else ModelSpec(params=1e9, active_params=2e8, layers=12,
                                                                 hidden=768, heads=12, vocab=50257, seq_len=1024)
    with pytest.raises(InputError) as info:
        layout.validate(model)
    assert (info.value.field, info.value.key) == (field, key)
    assert translate(key, "zh-CN", **info.value.params) and str(info.value)
