"""Memory per GPU of a training job.

Model states follow Rajbhandari et al. 2020 (ZeRO, §3): mixed-precision training holds 2 bytes of
16-bit weights, 2 bytes of 16-bit gradients and K bytes of optimizer state per parameter
(AdamW: fp32 master weights, momentum and variance, K = 12). Tensor and pipeline parallelism
divide the parameters among t·p GPUs; ZeRO stage 1/2/3 then shards optimizer states / gradients
/ weights over the data-parallel degree; offload moves optimizer states (and, at stage 3, the
weights) to CPU memory.

Activations follow Korthikanti et al. 2022 (arXiv:2205.05198), per layer with s = sequence,
b = micro-batch, h = hidden, a = heads, t = tensor-parallel size:
  no recompute, no SP : s·b·h·(10 + 24/t + 5·a·s/(h·t))
  no recompute, SP    : s·b·h·(34/t + 5·a·s/(h·t))
  selective recompute : s·b·h·(10 + 24/t) without SP, s·b·h·34/t with SP
  full recompute      : 2·s·b·h (÷t with SP) — only each layer's input is kept
With 1F1B pipelining the first stage keeps p micro-batches of L/p layers, i.e. L layers' worth,
so the total is L × per-layer whatever the pipeline size; the output layer adds 4·s·b·v/t.

Mixture-of-experts: weights, gradients and optimizer states count ALL (total) parameters;
activations come from the per-token (active) architecture. The expert parameters are taken as
total − active — a lower bound (the routed experts a token uses are part of the active count), so
the rest, active, is an upper bound on the parameters every GPU of a tensor × pipeline group
holds. Expert parallelism (EP, carved out of the data-parallel degree as in Megatron-Core)
divides the expert parameters by EP; ZeRO shards the expert states over the expert-data-parallel
group (DP / EP) and the others over DP.

LoRA/QLoRA (Hu et al. 2021; Dettmers et al. 2023): the base stays frozen in 16-bit (LoRA) or
4-bit NF4 with double quantisation, 4.127 bits/parameter (QLoRA); only the adapters
(r·(d_in + d_out) per adapted matrix; q, k, v, o by default) carry gradients and optimizer state.

Sizes are bytes; results are in GB (1e9 bytes). GPU capacity is the vendor's "GB" figure, which
for HBM/GDDR boards is binary (an "80 GB" A100 has 80 GiB), so capacity = memory_gb × 2^30.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.errors import InputError
from core.estimation import defaults
from core.estimation.catalog import GPU
from core.estimation.model import ModelSpec
from core.i18n import Msg

GB = 1e9

OPTIMIZER_BYTES = {"adamw": 12.0, "adam8bit": 6.0, "sgd": 8.0}
"""K: optimizer bytes per trainable parameter (fp32 master weights included).
adamw: 4 master + 4 m + 4 v (ZeRO paper K=12); adam8bit: 4 master + 1 m + 1 v (Dettmers et al.
2022, 8-bit optimizers); sgd: 4 master + 4 momentum."""

QLORA_BYTES_PER_PARAM = 4.127 / 8  # NF4 + double-quantised constants (Dettmers et al. 2023, §3)
RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class Layout:
    """How a job is spread and what it keeps in memory."""

    gpus: int = 1
    precision: str = "bf16"
    optimizer: str = "adamw"
    zero: int = 0
    offload: bool = False
    tp: int = 1
    pp: int = 1
    ep: int = 1
    sequence_parallel: bool = True
    recompute: str = "selective"
    micro_batch: int = 1
    seq_len: int | None = None
    lora_rank: int | None = None
    qlora: bool = False

    @property
    def dp(self) -> int:
        """Data-parallel degree: GPUs / (tp · pp)."""
        return self.gpus // (self.tp * self.pp)

    @property
    def expert_dp(self) -> int:
        """Data-parallel degree of the expert parameters: DP / EP."""
        return max(1, self.dp // self.ep)

    def validate(self, model: ModelSpec) -> "Layout":
        """Raise :class:`InputError` naming the field for an impossible layout; returns self."""
        if not 1 <= self.gpus <= 1_000_000:
            raise InputError("error.out_of_range", field="gpus", value=self.gpus, low="1", high="1000000")
        for name in ("tp", "pp", "micro_batch"):
            if getattr(self, name) < 1:
                raise InputError("error.out_of_range", field=name, value=getattr(self, name), low="1", high="-")
        if self.gpus % (self.tp * self.pp):
            raise InputError("error.layout_divisible", field="gpus", gpus=self.gpus, tp=self.tp, pp=self.pp)
        if self.ep < 1 or int(self.ep) != self.ep:
            raise InputError("error.out_of_range", field="ep", value=self.ep, low="1", high="-")
        if self.ep > 1 and not model.is_moe:
            raise InputError("error.ep_needs_moe", field="ep", ep=self.ep)
        if self.dp % self.ep:
            raise InputError("error.ep_divides_dp", field="ep", ep=self.ep, dp=self.dp)
        if self.zero not in (0, 1, 2, 3):
            raise InputError("error.out_of_range", field="zero", value=self.zero, low="0", high="3")
        if self.optimizer not in OPTIMIZER_BYTES:
            raise InputError("error.choice", field="optimizer", value=self.optimizer, choices=", ".join(OPTIMIZER_BYTES))
        if self.recompute not in RECOMPUTE:
            raise InputError("error.choice", field="recompute", value=self.recompute, choices=", ".join(RECOMPUTE))
        if self.offload and self.zero == 0:
            raise InputError("error.offload_needs_zero", field="offload")
        if model.heads and model.heads % self.tp:
            raise InputError("error.tp_heads", field="tp", tp=self.tp, heads=model.heads)
        if model.layers and self.pp > model.layers:
            raise InputError("error.pp_layers", field="pp", pp=self.pp, layers=model.layers)
        if self.lora_rank is not None and not 1 <= self.lora_rank <= 4096:
            raise InputError("error.out_of_range", field="lora_rank", value=self.lora_rank, low="1", high="4096")
        if self.qlora and self.lora_rank is None:
            raise InputError("error.qlora_needs_rank", field="lora_rank")
        return self


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory per GPU by term (GB = 1e9 bytes) and the verdict against the GPU's capacity."""

    weights_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    overhead_gb: float
    capacity_gb: float
    trainable_params: float
    assumptions: tuple[Msg, ...] = ()

    @property
    def total_gb(self) -> float:
        """Sum of every term."""
        return self.weights_gb + self.gradients_gb + self.optimizer_gb + self.activations_gb + self.overhead_gb

    @property
    def fits(self) -> bool:
        """True when the total is within the GPU's memory."""
        return self.total_gb <= self.capacity_gb

    @property
    def largest_term(self) -> str:
        """Name of the biggest term (weights, gradients, optimizer, activations, overhead)."""
        terms = self.terms()
        return max(terms, key=terms.get)

    def terms(self) -> dict[str, float]:
        """The five terms by name, in GB."""
        return {
            "weights": self.weights_gb, "gradients": self.gradients_gb, "optimizer": self.optimizer_gb,
            "activations": self.activations_gb, "overhead": self.overhead_gb,
        }

    def as_dict(self) -> dict:
        """The JSON contract of ``estimate memory``."""
        return {
            "weights_gb": self.weights_gb, "gradients_gb": self.gradients_gb,
            "optimizer_gb": self.optimizer_gb, "activations_gb": self.activations_gb,
            "overhead_gb": self.overhead_gb, "total_gb": self.total_gb, "capacity_gb": self.capacity_gb,
            "fits_in_memory": self.fits, "largest_term": self.largest_term,
            "trainable_params": self.trainable_params,
        }


def moe_split(model: ModelSpec) -> tuple[float, float]:
    """(shared, expert) parameters: (params, 0) for a dense model; for a mixture-of-experts model
    expert = total − active (a lower bound) and shared = active."""
    if not model.is_moe:
        return model.params, 0.0
    return float(model.n_active), model.params - model.n_active


def largest_layer_params(model: ModelSpec, ep: int = 1) -> float:
    """Parameters of the biggest single module ZeRO-3 gathers at once on one GPU: a transformer
    block (its experts divided by expert parallelism) or the embedding (or output) matrix,
    whichever is larger."""
    embedding = model.vocab * model.hidden
    shared, expert = moe_split(model)
    block = max(0.0, shared - 2 * embedding + expert / ep) / model.layers
    return max(block, float(embedding))


def lora_adapter_params(model: ModelSpec, rank: int) -> float:
    """Trainable parameters of LoRA adapters on q, k, v and o of every layer."""
    d, kv_dim = model.hidden, (model.kv_heads or model.heads) * model.head_dim
    per_layer = rank * ((d + d) + (d + kv_dim) + (d + kv_dim) + (d + d))
    return model.layers * per_layer


def activation_bytes_per_layer(s: int, b: int, h: int, a: int, t: int, sp: bool, recompute: str) -> float:
    """Korthikanti et al. 2022 per-layer activation memory in bytes (16-bit activations)."""
    if recompute == "full":
        return 2.0 * s * b * h / (t if sp else 1)
    attention_scores = 5.0 * a * s / (h * t)
    if recompute == "selective":
        attention_scores = 0.0
    if sp:
        return s * b * h * (34.0 / t + attention_scores)
    return s * b * h * (10.0 + 24.0 / t + attention_scores)


def model_states(model: ModelSpec, layout: Layout) -> tuple[float, float, float, float]:
    """(weights, gradients, optimizer) bytes per GPU and the trainable parameters (see the module
    docstring); ``model`` must carry its architecture."""
    t, p, dp = layout.tp, layout.pp, layout.dp
    mp = t * p
    shared, expert = moe_split(model)
    s_local, e_local = shared / mp, expert / (mp * layout.ep)  # per GPU before ZeRO
    sharded = s_local / dp + e_local / layout.expert_dp  # one ZeRO shard of the local parameters
    if layout.lora_rank is not None:
        trainable = lora_adapter_params(model, layout.lora_rank)
        base_bytes = QLORA_BYTES_PER_PARAM if layout.qlora else 2.0
        weights = (sharded if layout.zero == 3 else s_local + e_local) * base_bytes
        trainable_local = trainable / mp
        weights += trainable_local * 2.0
        gradients = trainable_local * 2.0
        optimizer = trainable_local * OPTIMIZER_BYTES[layout.optimizer]
    else:
        trainable = model.params
        n_local = s_local + e_local
        weights = n_local * 2.0
        gradients = (sharded if layout.zero >= 2 else n_local) * 2.0
        optimizer = (sharded if layout.zero >= 1 else n_local) * OPTIMIZER_BYTES[layout.optimizer]
        if layout.zero == 3:
            # ZeRO-3 gathers one layer's full 16-bit weights (and gradients) at a time.
            weights = sharded * 2.0 + 4.0 * largest_layer_params(model, layout.ep) / t
    if layout.offload:
        optimizer = 0.0
        if layout.zero == 3 and layout.lora_rank is None:
            weights = 4.0 * largest_layer_params(model, layout.ep) / t
    return weights, gradients, optimizer, trainable


def states_exceed_capacity(model: ModelSpec, layout: Layout, gpu: GPU, d: dict) -> bool:
    """True when the model states alone (with the fixed overhead and fragmentation) exceed the GPU's
    memory — the layout cannot fit whatever its activations (a quick test before :func:`estimate_memory`)."""
    weights, gradients, optimizer, _ = model_states(model, layout)
    states = (weights + gradients + optimizer) * (1 + d["allocator_fragmentation_fraction"].value)
    return states + d["framework_overhead_gb"].value * GB > gpu.memory_bytes


def estimate_memory(model: ModelSpec, layout: Layout, gpu: GPU, d: dict | None = None) -> MemoryEstimate:
    """Memory per GPU for training ``model`` with ``layout`` on ``gpu``.

    The model must carry its architecture (see ``model.complete_architecture``). ``d`` are the
    defaults (:func:`defaults.load_defaults`), passed in by callers that evaluate many layouts.
    """
    d = d or defaults.load_defaults()
    t = layout.tp
    sp = layout.sequence_parallel and t > 1
    seq = layout.seq_len or model.seq_len or int(d["default_seq_len"].value)
    weights, gradients, optimizer, trainable = model_states(model, layout)
    notes: list[Msg] = []
    if model.is_moe:
        notes.append(Msg("assume.moe_memory", {"total": f"{model.params:.3g}", "active": f"{model.n_active:.3g}",
                                               "expert": f"{moe_split(model)[1]:.3g}", "ep": layout.ep}))
    if layout.lora_rank is not None:
        notes.append(Msg("assume.lora", {"rank": layout.lora_rank, "trainable": f"{trainable:.3g}",
                                         "base_bits": "4.127 (NF4)" if layout.qlora else "16"}))
    elif layout.zero == 3:
        notes.append(Msg("assume.zero3_gather", {}))
    if layout.offload:
        notes.append(Msg("assume.offload", {"stage": layout.zero}))
    if layout.precision == "fp8":
        notes.append(Msg("assume.fp8_master", {}))

    per_layer = activation_bytes_per_layer(seq, layout.micro_batch, model.hidden, model.heads, t, sp, layout.recompute)
    activations = per_layer * model.layers + 4.0 * seq * layout.micro_batch * model.vocab / t
    notes.append(Msg("assume.activations", {"seq": seq, "micro_batch": layout.micro_batch,
                                            "recompute": layout.recompute, "sp": "on" if sp else "off"}))

    frag = d["allocator_fragmentation_fraction"].value
    overhead = d["framework_overhead_gb"].value * GB + frag * (weights + gradients + optimizer + activations)
    return MemoryEstimate(
        weights_gb=weights / GB, gradients_gb=gradients / GB, optimizer_gb=optimizer / GB,
        activations_gb=activations / GB, overhead_gb=overhead / GB,
        capacity_gb=gpu.memory_bytes / GB, trainable_params=trainable, assumptions=tuple(notes),
    )


FIT_REMEDIES: tuple[tuple[str, dict], ...] = (
    ("remedy.recompute_full", {"recompute": "full"}),
    ("remedy.zero_next", {}),
    ("remedy.offload", {"offload": True}),
    ("remedy.tp_double", {}),
    ("remedy.micro_batch_1", {"micro_batch": 1}),
    ("remedy.lora", {"lora_rank": 16}),
    ("remedy.qlora", {"lora_rank": 16, "qlora": True}),
)


def _remedy_layout(layout: Layout, key: str, change: dict) -> Layout | None:
    if key == "remedy.zero_next":
        return replace(layout, zero=layout.zero + 1) if layout.zero < 3 else None
    if key == "remedy.tp_double":
        t = layout.tp * 2
        return replace(layout, tp=t) if t <= 8 and layout.gpus % (t * layout.pp) == 0 else None
    if key == "remedy.offload" and layout.zero == 0:
        return replace(layout, zero=1, offload=True)
    new = replace(layout, **change)
    return None if new == layout else new


def what_would_fit(model: ModelSpec, layout: Layout, gpu: GPU, d: dict | None = None) -> list[Msg]:
    """Single changes to ``layout`` that make the job fit, each with the total it would need.

    Computed by re-running the estimate for each candidate change, so every suggestion is real.
    """
    found: list[Msg] = []
    for key, change in FIT_REMEDIES:
        candidate = _remedy_layout(layout, key, change)
        if candidate is None:
            continue
        try:
            result = estimate_memory(model, candidate.validate(model), gpu, d)
        except InputError:
            continue
        if result.fits:
            found.append(Msg(key, {"total_gb": f"{result.total_gb:.1f}", "zero": candidate.zero, "tp": candidate.tp}))
    return found
