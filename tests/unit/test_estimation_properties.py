"""Monotonicity properties of the estimator (hypothesis): what must move in one direction only."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import assume, HealthCheck, given, settings
from hypothesis import strategies as st

from core.estimation.catalog import load_catalog
from core.estimation.flops import detailed_training_flops, simple_training_flops
from core.estimation.memory import largest_layer_params, Layout, activation_bytes_per_layer, estimate_memory
from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GPU_IDS = ["V100", "A100-80GB", "H100-SXM", "H20", "B200", "L40S", "T4", "Ascend-910B"]


@st.composite
def architectures(draw):
    """A self-consistent transformer: params = 12·L·d² + 2·V·d (blocks plus untied embeddings)."""
    layers = draw(st.integers(4, 96))
    heads = draw(st.sampled_from([8, 16, 32, 64, 128]))
    head_dim = draw(st.sampled_from([64, 128]))
    hidden = heads * head_dim
    vocab = draw(st.integers(1000, 256_000))
    seq = draw(st.sampled_from([512, 1024, 2048, 4096, 8192]))
    params = 12 * layers * hidden**2 + 2 * vocab * hidden
    return ModelSpec(params=float(params), layers=layers, hidden=hidden, heads=heads, kv_heads=heads,
                     ffn_hidden=4 * hidden, vocab=vocab, seq_len=seq)


@st.composite
def model_and_layout(draw):
    model = draw(architectures())
    tp = draw(st.sampled_from([t for t in (1, 2, 4, 8) if model.heads % t == 0]))
    dp = draw(st.integers(2, 64))
    layout = Layout(
        gpus=tp * dp, tp=tp, pp=1,
        sequence_parallel=draw(st.booleans()),
        recompute=draw(st.sampled_from(["none", "selective", "full"])),
        micro_batch=draw(st.integers(1, 8)),
        optimizer=draw(st.sampled_from(["adamw", "adam8bit", "sgd"])),
    )
    return model, layout.validate(model)


@FAST
@given(
    params=st.floats(1e8, 1e12),
    tokens=st.floats(1e9, 1e13),
    gpu=st.sampled_from(GPU_IDS),
    gpus=st.integers(1, 2048),
    factor=st.integers(2, 8),
    efficiency=st.floats(0.05, 0.9),
)
def test_more_gpus_never_take_longer_at_fixed_efficiency(params, tokens, gpu, gpus, factor, efficiency):
    precision = "bf16" if load_catalog().get(gpu).bf16_tflops else "fp16"

    def wall(n):
        return estimate_training(TrainingInput(model=ModelSpec(params=params), tokens=tokens, gpu=gpu, gpus=n,
                                               precision=precision, efficiency=efficiency)).wall_clock_hours

    few, many = wall(gpus), wall(gpus * factor)
    assert many <= few
    # and with efficiency fixed the speed-up is exactly linear: ideal time ∝ 1/GPUs
    assert many == pytest.approx(few / factor)


@FAST
@given(model_and_layout())
def test_higher_zero_stage_never_needs_more_memory_per_gpu(case):
    # ZeRO-3 saves 2Ψ(1 − 1/dp)/t bytes of weights and adds a 4-byte buffer of the largest module
    # (a block or the embedding). That buffer can outweigh the saving for a tiny model whose
    # embedding is a large share of it (DeepSpeed's estimator shows the same), so the property is
    # stated where the saving is larger than the buffer.
    model, layout = case
    dp = layout.gpus // (layout.tp * layout.pp)
    assume(2 * model.params * (1 - 1 / dp) > 4 * largest_layer_params(model))
    gpu = load_catalog().get("H200")
    totals = [estimate_memory(model, replace(layout, zero=z), gpu).total_gb for z in (0, 1, 2, 3)]
    for lower, higher in zip(totals, totals[1:]):
        assert higher <= lower * (1 + 1e-12)


@FAST
@given(model_and_layout(), st.integers(1, 3))
def test_offload_never_needs_more_gpu_memory(case, zero):
    model, layout = case
    gpu = load_catalog().get("A100-80GB")
    on = estimate_memory(model, replace(layout, zero=zero), gpu)
    off = estimate_memory(model, replace(layout, zero=zero, offload=True), gpu)
    assert off.total_gb <= on.total_gb
    assert off.optimizer_gb == 0.0


@FAST
@given(architectures(), st.floats(1e6, 1e14), st.floats(1.0001, 100.0))
def test_more_tokens_mean_more_flops(model, tokens, ratio):
    more = tokens * ratio
    assert simple_training_flops(model, more) > simple_training_flops(model, tokens)
    assert detailed_training_flops(model, more).training_total > detailed_training_flops(model, tokens).training_total


@FAST
@given(model_and_layout(), st.integers(1, 8))
def test_larger_micro_batch_means_more_activation_memory(case, extra):
    model, layout = case
    gpu = load_catalog().get("A100-80GB")
    small = estimate_memory(model, layout, gpu)
    large = estimate_memory(model, replace(layout, micro_batch=layout.micro_batch + extra), gpu)
    assert large.activations_gb > small.activations_gb
    # activations are linear in b (every Korthikanti term and the logits carry one factor b)
    assert large.activations_gb == pytest.approx(
        small.activations_gb * (layout.micro_batch + extra) / layout.micro_batch)


@FAST
@given(
    s=st.integers(128, 32768), b=st.integers(1, 16),
    heads=st.sampled_from([8, 16, 32, 64, 96, 128]), head_dim=st.sampled_from([64, 80, 128]),
    t=st.sampled_from([1, 2, 4, 8]), sp=st.booleans(),
)
def test_more_recomputation_never_keeps_more_activations_per_layer(s, b, heads, head_dim, t, sp):
    h = heads * head_dim
    none, selective, full = (activation_bytes_per_layer(s, b, h, heads, t, sp, r) for r in ("none", "selective", "full"))
    assert none >= selective >= full > 0


@FAST
@given(model_and_layout())
def test_more_recomputation_never_needs_more_memory_per_gpu(case):
    model, layout = case
    gpu = load_catalog().get("A100-80GB")
    acts = [estimate_memory(model, replace(layout, recompute=r), gpu).activations_gb
            for r in ("none", "selective", "full")]
    assert acts[0] >= acts[1] >= acts[2] > 0


@FAST
@given(model_and_layout())
def test_every_memory_term_is_non_negative_for_consistent_architectures(case):
    model, layout = case
    gpu = load_catalog().get("A100-80GB")
    for zero in (0, 1, 2, 3):
        m = estimate_memory(model, replace(layout, zero=zero), gpu)
        assert all(v >= 0 for v in m.terms().values())
