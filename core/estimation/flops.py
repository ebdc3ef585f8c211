"""Training compute: 6·N·D, and the fuller count with attention and logits.

The fuller count follows Hoffmann et al. 2022 (Chinchilla), Appendix F: per token and layer,
the QKV and output projections, the attention logits and their reduction over the sequence,
the softmax, the MLP; plus the final logits over the vocabulary. Backward ≈ 2 × forward, so a
training token costs 3 × forward. Grouped-query attention shrinks the K and V projections.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.estimation.model import ModelSpec


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

    @property
    def forward_per_token(self) -> float:
        """Forward FLOPs per token (all layers and the logits)."""
        return (self.qkv_projection + self.attention_logits + self.softmax + self.attention_reduction
                + self.output_projection + self.mlp + self.final_logits)

    @property
    def training_total(self) -> float:
        """Training FLOPs for all tokens: 3 × forward (forward + backward)."""
        return 3.0 * self.forward_per_token * self.tokens


def simple_training_flops(model: ModelSpec, tokens: float) -> float:
    """6 · N · D with N the active parameters (Kaplan et al. 2020)."""
    return 6.0 * model.n_active * tokens


def detailed_training_flops(model: ModelSpec, tokens: float) -> FlopsBreakdown:
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
    )
