"""What is being trained: parameter counts and (optionally) the transformer architecture."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from core.datafiles import load_derived
from core.errors import InputError
from core.i18n import Msg


@dataclass(frozen=True)
class ModelSpec:
    """A transformer model. Only ``params`` is required; the architecture refines the estimates.

    ``active_params`` is the per-token parameter count of a mixture-of-experts model.
    """

    params: float
    active_params: float | None = None
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    ffn_hidden: int | None = None
    gated_mlp: bool = False
    vocab: int | None = None
    seq_len: int | None = None
    name: str = ""

    @property
    def n_active(self) -> float:
        """Parameters touched per token (all of them for a dense model)."""
        return self.active_params or self.params

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model (fewer active than total parameters)."""
        return self.active_params is not None and self.active_params < self.params

    @property
    def has_architecture(self) -> bool:
        """True when layers, hidden size and heads are known."""
        return bool(self.layers and self.hidden and self.heads)

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        return (self.hidden or 0) // (self.heads or 1)

    def validate(self) -> "ModelSpec":
        """Raise :class:`InputError` on absurd values (naming the field); returns self."""
        if not (self.params > 0 and math.isfinite(self.params)) or self.params > 1e14:
            raise InputError("error.out_of_range", field="params", value=self.params, low="1", high="1e14")
        if self.active_params is not None and not (0 < self.active_params <= self.params):
            raise InputError("error.active_params_range", field="active_params", value=self.active_params)
        for name in ("layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab", "seq_len"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or v < 1 or v > 10_000_000):
                raise InputError("error.out_of_range", field=name, value=v, low="1", high="1e7")
        if self.hidden and self.heads and self.hidden % self.heads:
            raise InputError("error.hidden_heads", field="heads", hidden=self.hidden, heads=self.heads)
        if self.heads and self.kv_heads and (self.kv_heads > self.heads or self.heads % self.kv_heads):
            raise InputError("error.kv_heads", field="kv_heads", heads=self.heads, kv_heads=self.kv_heads)
        return self


@dataclass(frozen=True)
class Preset:
    """A well-known model's architecture from ``data/model_presets.yaml``."""

    id: str
    name: str
    spec: ModelSpec
    source: str


def load_presets() -> list[Preset]:
    """All model presets, in file order (treat as read-only)."""
    return load_derived("model_presets.yaml", _build_presets)


def _build_presets(raw: dict | None) -> list[Preset]:
    raw = raw or {}
    presets = []
    for m in raw.get("models", []):
        fields = {k: m.get(k) for k in ModelSpec.__dataclass_fields__ if k in m and k != "name"}
        # PyYAML reads "6.74e9" (no dot before e) as a string; counts are numbers here.
        for key in ("params", "active_params"):
            if fields.get(key) is not None:
                fields[key] = float(fields[key])
        presets.append(Preset(m["id"], m["name"], ModelSpec(name=m["name"], **fields), m.get("source", "")))
    return presets


def complete_architecture(spec: ModelSpec) -> tuple[ModelSpec, list[Msg]]:
    """Fill a missing architecture from the preset nearest in parameter count.

    A dense model takes the dense preset nearest in parameters. A mixture-of-experts model takes
    the preset nearest in ACTIVE parameters (the per-token architecture sets the activations and
    the detailed FLOPs; its total parameters are kept for weights and optimizer states).

    Returns the completed spec and the assumptions made (empty when nothing was assumed).
    """
    if spec.has_architecture:
        filled = replace(
            spec,
            kv_heads=spec.kv_heads or spec.heads,
            ffn_hidden=spec.ffn_hidden or 4 * (spec.hidden or 0),
            vocab=spec.vocab or 32000,
            seq_len=spec.seq_len,
        )
        notes = [] if spec.vocab else [Msg("assume.vocab_default", {"vocab": 32000})]
        return filled, notes
    presets = load_presets() if spec.is_moe else [p for p in load_presets() if not p.spec.is_moe]
    nearest = min(presets or load_presets(), key=lambda p: abs(math.log(p.spec.n_active / spec.n_active)))
    p = nearest.spec
    filled = replace(
        spec, layers=p.layers, hidden=p.hidden, heads=p.heads, kv_heads=p.kv_heads,
        ffn_hidden=p.ffn_hidden, gated_mlp=p.gated_mlp, vocab=spec.vocab or p.vocab,
        seq_len=spec.seq_len or p.seq_len,
    )
    return filled, [Msg("assume.architecture_from_preset", {"preset": nearest.name})]
