"""Training compute (core/estimation/flops.py): 6·N·D and the Chinchilla Appendix F count."""

from __future__ import annotations

import pytest

from core.estimation.flops import detailed_training_flops, simple_training_flops
from core.estimation.model import ModelSpec

# GPT-3 175B (Brown et al. 2020, Table 2.1): 96 layers, d_model 12288, 96 heads (head size 128),
# context 2048, vocabulary 50257, MLP 4·d, non-gated.
GPT3 = ModelSpec(params=1.75e11, layers=96, hidden=12288, heads=96, kv_heads=96, ffn_hidden=49152,
                 gated_mlp=False, vocab=50257, seq_len=2048)


def test_simple_flops_is_six_n_d():
    # 6 × 7e9 × 1e12 = 4.2e22
    assert simple_training_flops(ModelSpec(params=7e9), 1e12) == pytest.approx(4.2e22, rel=1e-12)


def test_simple_flops_of_moe_counts_only_active_parameters():
    # DeepSeek-V3: 671B total, 37B active; 14.8T tokens -> 6 × 3.7e10 × 1.48e13 = 3.2856e24
    moe = ModelSpec(params=6.71e11, active_params=3.7e10)
    assert simple_training_flops(moe, 1.48e13) == pytest.approx(3.2856e24, rel=1e-12)


def test_simple_flops_is_linear_in_tokens():
    m = ModelSpec(params=1e9)
    # 6 × 1e9 × 3e9 = 1.8e19
    assert simple_training_flops(m, 3e9) == pytest.approx(1.8e19, rel=1e-12)


def test_gpt3_forward_terms_match_chinchilla_appendix_f_by_hand():
    # Hoffmann et al. 2022, Appendix F, per sequence; divided by the sequence length (per token),
    # summed over L = 96 layers; d = 12288, k = 128 (key size), H = 96 heads, s = 2048, V = 50257.
    b = detailed_training_flops(GPT3, tokens=1.0)
    # QKV: 2 × 3 × d × (k·H) = 2 × 3 × 12288 × 12288 = 905,969,664 per layer -> × 96
    assert b.qkv_projection == 86_973_087_744
    # K@Q logits: 2 × s × (k·H) = 2 × 2048 × 12288 = 50,331,648 per layer -> × 96
    assert b.attention_logits == 4_831_838_208
    # softmax: 3 × H × s = 3 × 96 × 2048 = 589,824 per layer -> × 96
    assert b.softmax == 56_623_104
    # softmax @ V reduction: 2 × s × (k·H) = 50,331,648 per layer -> × 96
    assert b.attention_reduction == 4_831_838_208
    # output projection: 2 × (k·H) × d = 301,989,888 per layer -> × 96
    assert b.output_projection == 28_991_029_248
    # dense block: 2 × (d·ffw + d·ffw) = 4 × 12288 × 49152 = 2,415,919,104 per layer -> × 96
    assert b.mlp == 231_928_233_984
    # final logits: 2 × d × V = 2 × 12288 × 50257 = 1,235,116,032
    assert b.final_logits == 1_235_116_032
    # total forward per token (Chinchilla also lists the embedding lookup; this count leaves it out,
    # as its docstring says): 358,847,766,528
    assert b.forward_per_token == 358_847_766_528


def test_gpt3_training_total_is_three_forwards_per_token():
    b = detailed_training_flops(GPT3, tokens=3e11)
    # 3 × 358,847,766,528 × 3e11 = 3.22962989875e23
    assert b.training_total == pytest.approx(3.229629898752e23, rel=1e-12)


def test_gpt3_detailed_count_agrees_with_narayanan_within_2_percent():
    # Narayanan et al. 2021 (arXiv 2104.04473) eq. (3): FLOPs per iteration with activation
    # recomputation = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)); without recomputation 3/4 of it,
    # i.e. per token 72·l·h²·(1 + s/(6h) + V/(16·l·h)).
    # l = 96, h = 12288, s = 2048, V = 50257:
    #   72 × 96 × 12288² = 1,043,677,052,928
    #   1 + 2048/73728 + 50257/18874368 = 1.030440...
    #   -> 1.075447093248e12 FLOPs per token
    narayanan_per_token = 1.075447093248e12
    b = detailed_training_flops(GPT3, tokens=1.0)
    assert b.training_total == pytest.approx(narayanan_per_token, rel=0.02)


def test_gpt3_detailed_count_is_close_to_six_n_d_with_attention_correction():
    # Kaplan-style: N_nonembedding = 12·l·h² = 173,946,175,488; 6·N·(1 + s/(6h)) per token
    # = 6 × 173,946,175,488 × (1 + 2048/73728) = 1.072668082176e12. Large d: within a few %.
    b = detailed_training_flops(GPT3, tokens=1.0)
    assert b.training_total == pytest.approx(1.072668082176e12, rel=0.03)
    # and plain 6·N·D with the published N = 175e9 (1.05e12 per token) is within 3% as well
    assert b.training_total == pytest.approx(6 * 1.75e11, rel=0.03)


def test_llama2_7b_projection_flops_are_twice_the_non_embedding_params():
    # Llama 2 7B: L 32, d 4096, 32 heads, SwiGLU MLP 11008 (three matrices), V 32000, 6.74e9 params.
    # Per token forward, the matrix multiplies are 2 FLOPs per weight:
    #   per layer 2·(4·d²) + 2·3·d·ffn = 134,217,728 + 270,532,608 = 404,750,336 -> × 32
    #   = 12,952,010,752; plus logits 2·d·V = 262,144,000 -> 13,214,154,752
    # which is 2·(N − V·d) = 2·(6.74e9 − 131,072,000) = 13,217,856,000 within 0.1%.
    m = ModelSpec(params=6.74e9, layers=32, hidden=4096, heads=32, kv_heads=32, ffn_hidden=11008,
                  gated_mlp=True, vocab=32000, seq_len=4096)
    b = detailed_training_flops(m, tokens=1.0)
    matmuls = b.qkv_projection + b.output_projection + b.mlp + b.final_logits
    assert matmuls == 13_214_154_752
    assert matmuls == pytest.approx(2 * (6.74e9 - 32000 * 4096), rel=1e-3)


def test_grouped_query_attention_shrinks_k_and_v_projections():
    # Llama 2 70B: d 8192, 64 heads of 128, 8 KV heads: QKV = 2·d·(d + 2·8·128) per layer
    # = 2 × 8192 × 10240 = 167,772,160 -> × 80 layers = 13,421,772,800
    m = ModelSpec(params=6.898e10, layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672,
                  gated_mlp=True, vocab=32000, seq_len=4096)
    assert detailed_training_flops(m, 1.0).qkv_projection == 13_421_772_800
    mha = ModelSpec(params=6.898e10, layers=80, hidden=8192, heads=64, kv_heads=64, ffn_hidden=28672,
                    gated_mlp=True, vocab=32000, seq_len=4096)
    # MHA: 2 × 8192 × 24576 × 80 = 32,212,254,720
    assert detailed_training_flops(mha, 1.0).qkv_projection == 32_212_254_720


def test_gated_mlp_counts_three_matrices():
    base = dict(params=1e9, layers=2, hidden=1024, heads=8, kv_heads=8, ffn_hidden=4096, vocab=1000, seq_len=128)
    # 2 layers × 2 FLOPs × matrices × 1024 × 4096: 2 matrices -> 33,554,432; 3 matrices -> 50,331,648
    assert detailed_training_flops(ModelSpec(**base, gated_mlp=False), 1.0).mlp == 33_554_432
    assert detailed_training_flops(ModelSpec(**base, gated_mlp=True), 1.0).mlp == 50_331_648


def test_attention_terms_grow_with_sequence_length_but_projections_do_not():
    short = detailed_training_flops(GPT3, 1.0)
    long = detailed_training_flops(ModelSpec(**{**GPT3.__dict__, "seq_len": 8192}), 1.0)
    assert long.attention_logits == 4 * short.attention_logits
    assert long.softmax == 4 * short.softmax
    assert long.qkv_projection == short.qkv_projection
    assert long.mlp == short.mlp


def test_lora_flops_are_four_n_d():
    # frozen base: forward 2N + activation gradients 2N, no weight gradients -> 4 × 7e9 × 1e12 = 2.8e22
    assert simple_training_flops(ModelSpec(params=7e9), 1e12, "lora") == pytest.approx(2.8e22, rel=1e-12)
    assert simple_training_flops(ModelSpec(params=7e9), 1e12, "finetune") == pytest.approx(4.2e22, rel=1e-12)


def test_lora_detailed_count_is_two_forwards_per_token():
    full = detailed_training_flops(GPT3, tokens=3e11)
    lora = detailed_training_flops(GPT3, tokens=3e11, workload="lora")
    assert lora.forward_per_token == full.forward_per_token
    # 2 × 358,847,766,528 × 3e11
    assert lora.training_total == pytest.approx(2.153086599168e23, rel=1e-12)
    assert lora.training_total == pytest.approx(full.training_total * 2 / 3, rel=1e-12)
