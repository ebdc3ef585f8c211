"""Choosing a parallel layout (TP × PP × EP × ZeRO × recomputation) that fits a GPU's memory, and
whether a layout's step is dominated by communication.

Candidates are tried in order of communication cost — the first that fits wins: tensor
parallelism only inside a node and only on NVLink-class GPUs (over PCIe its all-reduces on every
layer dominate), then pipeline stages, ZeRO-1 before ZeRO-3, selective before full recomputation.
For a mixture-of-experts model, expert parallelism (EP, a divisor of the data-parallel degree, up
to ``max_expert_parallel``) is tried from 1 upwards inside each (TP, PP) pair, i.e. before more
TP or PP: Megatron-Core's MoE guide prefers EP to tensor-parallel experts.

The global batch is a setting in tokens (``tokens_per_global_batch`` for pre-training,
``tokens_per_global_batch_finetune`` for fine-tuning and LoRA); a layout must give every
data-parallel replica at least one micro-batch per step.

Communication and waiting per step (:func:`step_communication`), against the compute of the step
(6 · N_active · batch tokens / (GPUs × peak × efficiency); 4 · N for LoRA, whose frozen weights get no
gradients — :mod:`core.estimation.flops`):

* data-parallel gradient all-reduce (ring: 2·(n − 1)/n × the bytes each GPU holds), 16-bit
  gradients of the parameters the GPU trains — shared ones over DP, expert ones over DP / EP;
* tensor-parallel activation all-reduces: 4 per layer and micro-batch (2 forward, 2 backward;
  6 with full recomputation) of s·b·h 16-bit values, ring factor 2·(t − 1)/t;
* the pipeline bubble, (p − 1)/m × the compute with m micro-batches per pipeline (Narayanan et
  al. 2021 §2.2: stages wait for each other's activations at the start and end of each step).

Bandwidth per direction: half the GPU's ``interconnect_gbps`` (vendors quote NVLink/PCIe as the
sum of both directions) inside a node, and at most ``inter_node_gbps_per_gpu`` when a group spans
nodes. Pipeline sends and expert all-to-all are not counted (the MoE runs behind the efficiency
already include theirs). A step whose communication and waiting exceed
``max_step_overhead_to_compute`` × its compute is dominated by them and not offered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

from core.errors import InputError
from core.estimation import defaults
from core.estimation.catalog import GPU
from core.estimation.flops import flops_per_param_token
from core.estimation.memory import (
    Layout, MemoryEstimate, estimate_memory, lora_adapter_params, moe_split, states_exceed_capacity,
)
from core.estimation.model import ModelSpec

TP_SIZES = (1, 2, 4, 8)
PP_SIZES = (1, 2, 4, 8, 16, 32, 64)
EP_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def global_batch_tokens(workload: str, d: dict) -> float:
    """Tokens per optimizer step: the pre-training or the fine-tuning setting."""
    key = "tokens_per_global_batch_finetune" if workload in ("finetune", "lora") else "tokens_per_global_batch"
    return d[key].value


def max_data_parallel(model: ModelSpec, base: Layout, d: dict, batch_tokens: float | None = None) -> int:
    """Most data-parallel replicas the global batch allows: sequences per batch / micro-batch.

    Beyond it a replica would get no full micro-batch (the global batch would have to grow past
    what the run was tuned for), so such layouts are not offered.
    """
    seq = base.seq_len or model.seq_len or int(d["default_seq_len"].value)
    tokens = batch_tokens if batch_tokens is not None else d["tokens_per_global_batch"].value
    return max(1, int(tokens // seq) // base.micro_batch)


def candidate_layouts(
    model: ModelSpec, gpu: GPU, gpus: int, base: Layout, d: dict, batch_tokens: float | None = None
) -> Iterator[Layout]:
    """Layouts for ``gpus`` × ``gpu`` in order of preference (least communication first)."""
    per_node = int(d["gpus_per_node"].value)
    dp_cap = max_data_parallel(model, base, d, batch_tokens)
    tps = [t for t in TP_SIZES if t <= min(per_node, gpus) and (t == 1 or gpu.has_fast_interconnect)]
    zeros = (0, 1, 3) if base.lora_rank is not None else (1, 3)
    max_ep = int(d["max_expert_parallel"].value) if model.is_moe else 1
    for recompute in ("selective", "full"):
        for tp in tps:
            for pp in PP_SIZES:
                if tp * pp > gpus or gpus % (tp * pp) or (model.layers and pp > model.layers):
                    continue
                if model.heads and model.heads % tp:
                    continue
                dp = gpus // (tp * pp)
                if dp > dp_cap:
                    continue
                for ep in (e for e in EP_SIZES if e <= max_ep and dp % e == 0):
                    # Pipeline stages pair with ZeRO-1 only (DeepSpeed refuses ZeRO-2/3 with its pipeline engine;
                    # Megatron's distributed optimizer is ZeRO-1).
                    for zero in (zeros if pp == 1 else tuple(z for z in zeros if z <= 1)):
                        if dp == 1 and zero > 0 and base.lora_rank is None:
                            zero = 0  # nothing to shard over; ZeRO is a no-op at data-parallel degree 1
                        yield replace(base, gpus=gpus, tp=tp, pp=pp, ep=ep, zero=zero, recompute=recompute,
                                      offload=False)


def first_fitting_layout(
    model: ModelSpec, gpu: GPU, gpus: int, base: Layout, d: dict | None = None, batch_tokens: float | None = None
) -> tuple[Layout, MemoryEstimate] | None:
    """The most preferred layout that fits in memory, with its memory estimate; None if none fits."""
    for layout, mem in fitting_layouts(model, gpu, gpus, base, d, batch_tokens):
        return layout, mem
    return None


def fitting_layouts(
    model: ModelSpec, gpu: GPU, gpus: int, base: Layout, d: dict | None = None, batch_tokens: float | None = None
) -> Iterator[tuple[Layout, MemoryEstimate]]:
    """Every candidate layout that fits in memory, most preferred first, with its memory estimate."""
    d = d or defaults.load_defaults()
    seen: set[Layout] = set()
    for layout in candidate_layouts(model, gpu, gpus, base, d, batch_tokens):
        if layout in seen:
            continue
        seen.add(layout)
        try:
            mem = estimate_memory(model, layout.validate(model), gpu, d)
        except InputError:
            continue
        if mem.fits:
            yield layout, mem


@dataclass(frozen=True)
class RunnableLayout:
    """The outcome of :func:`runnable_layout`: the layout kept (or None) and whether any fitted memory."""

    layout: Layout | None
    memory: MemoryEstimate | None
    communication: StepCommunication | None
    any_fits_memory: bool


def runnable_layout(
    model: ModelSpec, gpu: GPU, gpus: int, base: Layout, d: dict, *, batch_tokens: float, efficiency: float,
    max_ratio: float,
) -> RunnableLayout:
    """The most preferred layout that fits in memory and whose step is not dominated by
    communication and waiting (:func:`step_communication` ratio ≤ ``max_ratio``).

    The cheap communication check runs first; memory is computed for a layout that passes it (and,
    until one fits, for those that do not, to tell "does not fit" from "communication-bound").
    """
    seen: set[Layout] = set()
    any_fits = False
    for layout in candidate_layouts(model, gpu, gpus, base, d, batch_tokens):
        if layout in seen:
            continue
        seen.add(layout)
        try:
            layout.validate(model)
        except InputError:
            continue
        if states_exceed_capacity(model, layout, gpu, d):
            continue
        comm = step_communication(model, layout, gpu, efficiency, batch_tokens, d)
        if comm.ratio > max_ratio:
            if not any_fits:
                any_fits = estimate_memory(model, layout, gpu, d).fits
            continue
        mem = estimate_memory(model, layout, gpu, d)
        if mem.fits:
            return RunnableLayout(layout, mem, comm, True)
    return RunnableLayout(None, None, None, any_fits)


def smallest_footprint_layout(
    model: ModelSpec, gpu: GPU, gpus: int, base: Layout, d: dict | None = None, batch_tokens: float | None = None
) -> tuple[Layout, MemoryEstimate]:
    """The candidate layout with the least memory per GPU (used to report a job that cannot fit)."""
    d = d or defaults.load_defaults()
    best: tuple[Layout, MemoryEstimate] | None = None
    for layout in candidate_layouts(model, gpu, gpus, base, d, batch_tokens):
        try:
            mem = estimate_memory(model, layout.validate(model), gpu, d)
        except InputError:
            continue
        if best is None or mem.total_gb < best[1].total_gb:
            best = (layout, mem)
    if best is None:
        layout = replace(base, gpus=gpus, tp=1, pp=1, ep=1)
        return layout, estimate_memory(model, layout, gpu, d)
    return best


@dataclass(frozen=True)
class StepCommunication:
    """Seconds of one optimizer step: compute, data- and tensor-parallel communication, pipeline bubble."""

    compute_s: float
    data_parallel_s: float
    tensor_parallel_s: float
    pipeline_bubble_s: float = 0.0

    @property
    def ratio(self) -> float:
        """(Communication + pipeline waiting) time / compute time."""
        return (self.data_parallel_s + self.tensor_parallel_s + self.pipeline_bubble_s) / self.compute_s


def _ring(n: int) -> float:
    return 2.0 * (n - 1) / n if n > 1 else 0.0


def step_communication(
    model: ModelSpec, layout: Layout, gpu: GPU, efficiency: float, batch_tokens: float, d: dict
) -> StepCommunication:
    """Compute and communication seconds of one step of ``batch_tokens`` (see the module docstring).

    ``model`` must carry its architecture (``model.complete_architecture``).
    """
    t, p, dp, ep = layout.tp, layout.pp, layout.dp, layout.ep
    per_node = int(d["gpus_per_node"].value)
    link = gpu.interconnect_gbps / 2.0 * 1e9  # bytes/s, one direction
    between_nodes = min(link, d["inter_node_gbps_per_gpu"].value * 1e9)
    peak = gpu.peak_tflops(layout.precision) or 0.0
    per_param_token = flops_per_param_token("lora" if layout.lora_rank is not None else "finetune")
    compute = per_param_token * model.n_active * batch_tokens / (layout.gpus * peak * 1e12 * efficiency)

    if layout.lora_rank is not None:
        shared, expert = lora_adapter_params(model, layout.lora_rank), 0.0
    else:
        shared, expert = moe_split(model)
    dp_bw = link if t * dp <= per_node else between_nodes
    dp_bytes = _ring(dp) * 2.0 * shared / (t * p) + _ring(max(1, dp // ep)) * 2.0 * expert / (t * p * ep)
    data_parallel = dp_bytes / dp_bw

    seq = layout.seq_len or model.seq_len or int(d["default_seq_len"].value)
    micro_batches = max(1.0, batch_tokens / (seq * layout.micro_batch * dp))  # per pipeline and step
    tensor_parallel = 0.0
    if t > 1:
        all_reduces = 6 if layout.recompute == "full" else 4
        per_layer = all_reduces * _ring(t) * 2.0 * seq * layout.micro_batch * model.hidden
        tensor_parallel = micro_batches * (model.layers / p) * per_layer / link
    bubble = (p - 1) / micro_batches * compute
    return StepCommunication(compute, data_parallel, tensor_parallel, bubble)
