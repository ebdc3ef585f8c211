"""Choosing a parallel layout (TP × PP × ZeRO × recomputation) that fits a GPU's memory.

Candidates are tried in order of communication cost — the first that fits wins: tensor
parallelism only inside a node and only on NVLink-class GPUs (over PCIe its all-reduces on every
layer dominate), then pipeline stages, ZeRO-1 before ZeRO-3, selective before full recomputation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from core.errors import InputError
from core.estimation import defaults
from core.estimation.catalog import GPU
from core.estimation.memory import Layout, MemoryEstimate, estimate_memory
from core.estimation.model import ModelSpec

TP_SIZES = (1, 2, 4, 8)
PP_SIZES = (1, 2, 4, 8, 16, 32, 64)


def max_data_parallel(model: ModelSpec, base: Layout, d: dict) -> int:
    """Most data-parallel replicas the global batch allows: sequences per batch / micro-batch.

    Beyond it a replica would get no full micro-batch (the global batch would have to grow past
    what the run was tuned for), so such layouts are not offered.
    """
    seq = base.seq_len or model.seq_len or int(d["default_seq_len"].value)
    return max(1, int(d["tokens_per_global_batch"].value // seq) // base.micro_batch)


def candidate_layouts(model: ModelSpec, gpu: GPU, gpus: int, base: Layout, d: dict) -> Iterator[Layout]:
    """Layouts for ``gpus`` × ``gpu`` in order of preference (least communication first)."""
    per_node = int(d["gpus_per_node"].value)
    dp_cap = max_data_parallel(model, base, d)
    tps = [t for t in TP_SIZES if t <= min(per_node, gpus) and (t == 1 or gpu.has_fast_interconnect)]
    zeros = (0, 1, 3) if base.lora_rank is not None else (1, 3)
    for recompute in ("selective", "full"):
        for tp in tps:
            for pp in PP_SIZES:
                if tp * pp > gpus or gpus % (tp * pp) or (model.layers and pp > model.layers):
                    continue
                if model.heads and model.heads % tp:
                    continue
                if gpus // (tp * pp) > dp_cap:
                    continue
                # Pipeline stages pair with ZeRO-1 only (DeepSpeed refuses ZeRO-2/3 with its pipeline engine;
                # Megatron's distributed optimizer is ZeRO-1).
                for zero in (zeros if pp == 1 else tuple(z for z in zeros if z <= 1)):
                    if gpus // (tp * pp) == 1 and zero > 0 and base.lora_rank is None:
                        zero = 0  # nothing to shard over; ZeRO is a no-op at data-parallel degree 1
                    yield replace(base, gpus=gpus, tp=tp, pp=pp, zero=zero, recompute=recompute, offload=False)


def first_fitting_layout(
    model: ModelSpec, gpu: GPU, gpus: int, base: Layout, d: dict | None = None
) -> tuple[Layout, MemoryEstimate] | None:
    """The most preferred layout that fits in memory, with its memory estimate; None if none fits."""
    d = d or defaults.load_defaults()
    seen: set[Layout] = set()
    for layout in candidate_layouts(model, gpu, gpus, base, d):
        if layout in seen:
            continue
        seen.add(layout)
        try:
            mem = estimate_memory(model, layout.validate(model), gpu, d)
        except InputError:
            continue
        if mem.fits:
            return layout, mem
    return None


def smallest_footprint_layout(
    model: ModelSpec, gpu: GPU, gpus: int, base: Layout, d: dict | None = None
) -> tuple[Layout, MemoryEstimate]:
    """The candidate layout with the least memory per GPU (used to report a job that cannot fit)."""
    d = d or defaults.load_defaults()
    best: tuple[Layout, MemoryEstimate] | None = None
    for layout in candidate_layouts(model, gpu, gpus, base, d):
        try:
            mem = estimate_memory(model, layout.validate(model), gpu, d)
        except InputError:
            continue
        if best is None or mem.total_gb < best[1].total_gb:
            best = (layout, mem)
    if best is None:
        layout = replace(base, gpus=gpus, tp=1, pp=1)
        return layout, estimate_memory(model, layout, gpu, d)
    return best
