"""Training compute: 6·N·D (4·N·D for LoRA), and the fuller count with attention and logits.

The fuller count follows Hoffmann et al. 2022 (Chinchilla), Appendix F: per token and layer,
the QKV and output projections, the attention logits and their reduction over the sequence,
the softmax, the MLP; plus the final logits over the vocabulary. Backward ≈ 2 × forward, so a
training token costs 3 × forward. Grouped-query attention shrinks the K and V projections.

LoRA (Hu et al. 2021, arXiv:2106.09685) freezes the base weights: the backward pass still
propagates activation gradients through every layer (one forward's worth of FLOPs) but computes no
weight gradients for the frozen matrices (the other forward's worth; Hu et al. §4.2 see a 25 %
training speed-up on GPT-3 175B for that reason), so a token costs 2 × forward, i.e. 4·N instead
of 6·N. The adapters add about 2·r/d of the adapted square matrices' own FLOPs (0.8 % at rank 16
and width 4,096) and are left out. NVIDIA counts LoRA the same way in its published benchmarks: Model TFLOP/s /
tokens/s = 3.96·N (Llama 2 7B) and 4.00·N (70B) for LoRA against 5.98·N for SFT of the same 70B
model in the NeMo 24.07 fine-tuning table, 4.10·N for the AutoModel Llama 3 70B LoRA row (the
figures and sources are the ``tokens_per_sec_per_gpu`` rows of ``data/efficiency.yaml``), so the
efficiencies of those runs are on this same basis.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.estimation.model import ModelSpec

# Forward-pass equivalents per training token: forward + backward (activation and weight gradients)
# for full training; forward + activation gradients only for LoRA (frozen weights, see above).
FORWARD_PASSES = {"pretrain": 3.0, "finetune": 3.0, "lora": 2.0}


def forward_passes(workload: str) -> float:
    """Forward-pass equivalents a training token of ``workload`` costs (3, or 2 for LoRA)."""
    return FORWARD_PASSES[workload]


def flops_per_param_token(workload: str) -> float:
    """Model FLOPs per active parameter and token: 6 (pretrain, finetune) or 4 (LoRA)."""
    return 2.0 * forward_passes(workload)


@dataclass(frozen=True)
class FlopsBreakdown:
    """Forward FLOPs per token by part, and the training total for ``tokens``."""

    qkv_projection: float
    attention_logits: float
    softmax: float
    attention_reduction: float
    output_projection: float
    mlp: float
    final_logits: float
    tokens: float
    passes: float = 3.0  # forward-pass equivalents per token: 3, or 2 for LoRA

    @property
    def forward_per_token(self) -> float:
        """Forward FLOPs per token (all layers and the logits)."""
        return (self.qkv_projection + self.attention_logits + self.softmax + self.attention_reduction
                + self.output_projection + self.mlp + self.final_logits)

    @property
    def training_total(self) -> float:
        """Training FLOPs for all tokens: 3 × forward (forward + backward), 2 × forward for LoRA."""
        return self.passes * self.forward_per_token * self.tokens


def simple_training_flops(model: ModelSpec, tokens: float, workload: str = "pretrain") -> float:
    """6 · N · D with N the active parameters (Kaplan et al. 2020); 4 · N · D for LoRA."""
    return flops_per_param_token(workload) * model.n_active * tokens


def detailed_training_flops(model: ModelSpec, tokens: float, workload: str = "pretrain") -> FlopsBreakdown:
    """The Chinchilla-style count; needs layers, hidden, heads, seq_len and vocab in ``model``.

    For a mixture-of-experts model, ``ffn_hidden`` is read as the MLP width active per token
    (the routed plus shared experts' widths), so the count is of active FLOPs.
    """
    L, d, s = model.layers, model.hidden, model.seq_len
    heads, kv = model.heads, model.kv_heads or model.heads
    k = d // heads
    ffn = model.ffn_hidden or 4 * d
    vocab = model.vocab or 32000
    mlp_matrices = 3 if model.gated_mlp else 2
    return FlopsBreakdown(
        qkv_projection=L * 2 * d * (heads * k + 2 * kv * k),
        attention_logits=L * 2 * s * k * heads,
        softmax=L * 3 * heads * s,
        attention_reduction=L * 2 * s * k * heads,
        output_projection=L * 2 * heads * k * d,
        mlp=L * 2 * mlp_matrices * d * ffn,
        final_logits=2 * d * vocab,
        tokens=tokens,
        passes=forward_passes(workload),
    )
