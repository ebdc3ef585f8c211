"""``python -m core estimate``: the calculator from the command line (contract in the README)."""

from __future__ import annotations

import argparse

from core.cli import OneLineParser, add_json_flag, emit, positive_float, positive_int
from core.estimation.catalog import PRECISIONS, load_catalog
from core.estimation.memory import OPTIMIZER_BYTES, RECOMPUTE, Layout, estimate_memory, what_would_fit
from core.estimation.model import ModelSpec, complete_architecture
from core.estimation.recommend import recommend
from core.estimation.training import TrainingInput, estimate_training
from core.i18n import translate


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``estimate`` group and its commands."""
    est = groups.add_parser("estimate", help="size training and inference before applying",
                            description="Estimation calculator (需求测算).")
    sub = est.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    gpus = sub.add_parser("gpus", help="list the hardware catalog")
    add_json_flag(gpus)
    gpus.set_defaults(handler=_gpus)

    tr = sub.add_parser("training", help="FLOPs, wall-clock, GPU-hours, energy, cost and memory of a training job")
    _model_args(tr)
    tr.add_argument("--tokens", type=positive_float, required=True, help="training tokens D, e.g. 2e12")
    tr.add_argument("--gpu", required=True, help="GPU model id or alias (see `estimate gpus`)")
    tr.add_argument("--gpus", type=positive_int, required=True, help="number of GPUs")
    tr.add_argument("--precision", choices=PRECISIONS, default="bf16")
    tr.add_argument("--workload", choices=["pretrain", "finetune", "lora"], default="pretrain")
    tr.add_argument("--efficiency", type=positive_float, help="override the efficiency (MFU, 0–1)")
    tr.add_argument("--correction", type=positive_float, help="override the correction factor (修正系数, ≥ 1)")
    tr.add_argument("--pue", type=positive_float, help="override the data-centre PUE")
    add_json_flag(tr)
    tr.set_defaults(handler=_training)

    mem = sub.add_parser("memory", help="memory per GPU: weights, gradients, optimizer, activations, overhead")
    _model_args(mem)
    mem.add_argument("--gpus", type=positive_int, required=True, help="number of GPUs")
    mem.add_argument("--gpu", default="A100-80GB", help="GPU model for the fits/does-not-fit verdict")
    mem.add_argument("--precision", choices=PRECISIONS, default="bf16")
    mem.add_argument("--optimizer", choices=list(OPTIMIZER_BYTES), default="adamw")
    mem.add_argument("--zero", type=int, choices=[0, 1, 2, 3], default=0, help="ZeRO stage")
    mem.add_argument("--offload", action="store_true", help="offload optimizer states (and stage-3 weights) to CPU")
    mem.add_argument("--tp", type=positive_int, default=1, help="tensor-parallel size")
    mem.add_argument("--pp", type=positive_int, default=1, help="pipeline-parallel size")
    mem.add_argument("--no-sequence-parallel", action="store_true", help="tensor parallelism without sequence parallelism")
    mem.add_argument("--micro-batch", type=positive_int, default=1)
    mem.add_argument("--recompute", choices=RECOMPUTE, default="selective")
    mem.add_argument("--lora-rank", type=positive_int, help="LoRA fine-tuning with this adapter rank")
    mem.add_argument("--qlora", action="store_true", help="QLoRA: 4-bit NF4 frozen base (needs --lora-rank)")
    add_json_flag(mem)
    mem.set_defaults(handler=_memory)

    rec = sub.add_parser("recommend", help="rank GPU models × counts × layouts by time and cost")
    _model_args(rec)
    rec.add_argument("--tokens", type=positive_float, required=True)
    rec.add_argument("--precision", choices=PRECISIONS, default="bf16")
    rec.add_argument("--workload", choices=["pretrain", "finetune", "lora"], default="pretrain")
    rec.add_argument("--deadline-hours", type=positive_float)
    rec.add_argument("--budget", type=positive_float, help="budget in CNY")
    rec.add_argument("--max-gpus", type=positive_int, default=4096)
    add_json_flag(rec)
    rec.set_defaults(handler=_recommend)

    from core.cli.estimate_inference import add_inference_command

    add_inference_command(sub)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=positive_float, required=True, help="total parameters N, e.g. 7e9")
    p.add_argument("--active-params", type=positive_float, help="active parameters per token (mixture-of-experts)")
    p.add_argument("--layers", type=positive_int)
    p.add_argument("--hidden", type=positive_int, help="hidden size")
    p.add_argument("--heads", type=positive_int, help="attention heads")
    p.add_argument("--kv-heads", type=positive_int, help="key/value heads (grouped-query attention)")
    p.add_argument("--ffn-hidden", type=positive_int, help="MLP width")
    p.add_argument("--gated-mlp", action="store_true", help="SwiGLU-style MLP (three matrices)")
    p.add_argument("--vocab", type=positive_int, help="vocabulary size")
    p.add_argument("--seq-len", type=positive_int, help="sequence length")


def _model(args: argparse.Namespace) -> ModelSpec:
    return ModelSpec(
        params=args.params, active_params=args.active_params, layers=args.layers, hidden=args.hidden,
        heads=args.heads, kv_heads=args.kv_heads, ffn_hidden=args.ffn_hidden, gated_mlp=args.gated_mlp,
        vocab=args.vocab, seq_len=args.seq_len,
    ).validate()


def _gpus(args: argparse.Namespace) -> int:
    gpus = [g.as_dict() for g in load_catalog().gpus]
    emit(args, gpus, lambda: "\n".join(
        f"{g['id']:<16} bf16 {g['bf16_tflops'] or '-':>6}  fp8 {g['fp8_tflops'] or '-':>6}  "
        f"{g['memory_gb']:>4} GB  {g['memory_bandwidth_gbps']:>5} GB/s  {g['price_cny_per_gpu_hour']:>5} CNY/h"
        f"{' (placeholder)' if g['price_is_placeholder'] else ''}" for g in gpus))
    return 0


def _training(args: argparse.Namespace) -> int:
    est = estimate_training(TrainingInput(
        model=_model(args), tokens=args.tokens, gpu=args.gpu, gpus=args.gpus, precision=args.precision,
        workload=args.workload, efficiency=args.efficiency, correction_factor=args.correction, pue=args.pue,
    ))
    out = est.as_dict(args.lang)
    emit(args, out, lambda: "\n".join(
        [f"{line.name:<26} {line.value:>14.4g} {line.unit:<8} {line.formula}" for line in est.lines]
        + [f"memory per GPU: {est.memory.total_gb:.1f} GB of {est.memory.capacity_gb:.1f} GB "
           f"({'fits' if est.memory.fits else 'does NOT fit'}; largest term: {est.memory.largest_term})"]
        + out["fit_remedies"] + [f"- {a}" for a in out["assumptions"]]))
    return 0


def _memory(args: argparse.Namespace) -> int:
    model, notes = complete_architecture(_model(args))
    layout = Layout(
        gpus=args.gpus, precision=args.precision, optimizer=args.optimizer, zero=args.zero, offload=args.offload,
        tp=args.tp, pp=args.pp, sequence_parallel=not args.no_sequence_parallel, recompute=args.recompute,
        micro_batch=args.micro_batch, seq_len=args.seq_len, lora_rank=args.lora_rank, qlora=args.qlora,
    ).validate(model)
    gpu = load_catalog().get(args.gpu)
    mem = estimate_memory(model, layout, gpu)
    remedies = [] if mem.fits else [m.render(args.lang) for m in what_would_fit(model, layout, gpu)]
    out = mem.as_dict() | {
        "gpu": gpu.id, "fit_remedies": remedies,
        "assumptions": [m.render(args.lang) for m in (*notes, *mem.assumptions)],
    }
    emit(args, out, lambda: "\n".join(
        [f"{k:<16} {v:>10.2f} GB" for k, v in mem.terms().items()]
        + [f"{'total':<16} {mem.total_gb:>10.2f} GB of {mem.capacity_gb:.1f} GB on {gpu.id}: "
           + translate("memory.verdict_fits" if mem.fits else "memory.verdict_no_fit", args.lang,
                       largest=translate(f"memory.term.{mem.largest_term}", args.lang))]
        + remedies + [f"- {a}" for a in out["assumptions"]]))
    return 0


def _recommend(args: argparse.Namespace) -> int:
    rec = recommend(model=_model(args), tokens=args.tokens, precision=args.precision, workload=args.workload,
                    deadline_hours=args.deadline_hours, budget_cny=args.budget, max_gpus=args.max_gpus)
    out = {
        "options": [o.as_dict() for o in rec.options],
        "pareto": [o.as_dict() for o in rec.pareto],
        "choice": rec.choice.as_dict() if rec.choice else None,
        "reasons": [m.render(args.lang) for m in rec.reasons],
    }
    emit(args, out, lambda: "\n".join(
        [f"{o.gpu:<16} ×{o.gpus:<6} tp{o.layout.tp} pp{o.layout.pp} zero{o.layout.zero} "
         f"{o.wall_clock_hours / 24:8.1f} d {o.cost_cny:14,.0f} CNY" for o in rec.pareto] + out["reasons"]))
    return 0
