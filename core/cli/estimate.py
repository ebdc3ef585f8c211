"""``python -m core estimate``: the calculator from the command line (contract in the README)."""

from __future__ import annotations

import argparse

from core.cli import OneLineParser, add_json_flag, emit
from core.cli.inputs import real, whole
from core.estimation import validation
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
    tr.add_argument("--tokens", type=real("tokens"), required=True, help="training tokens D, e.g. 2e12")
    tr.add_argument("--gpu", required=True, help="GPU model id or alias (see `estimate gpus`)")
    tr.add_argument("--gpus", type=whole("gpus"), required=True, help="number of GPUs")
    tr.add_argument("--precision", choices=PRECISIONS, default="bf16")
    tr.add_argument("--workload", choices=["pretrain", "finetune", "lora"], default="pretrain")
    tr.add_argument("--efficiency", type=real("efficiency"), help="override the efficiency (MFU, 0–1)")
    tr.add_argument("--correction", type=real("correction"), help="override the correction factor (修正系数, ≥ 1)")
    tr.add_argument("--pue", type=real("pue"), help="override the data-centre PUE")
    add_json_flag(tr)
    tr.set_defaults(handler=_training)

    mem = sub.add_parser("memory", help="memory per GPU: weights, gradients, optimizer, activations, overhead")
    _model_args(mem)
    mem.add_argument("--gpus", type=whole("gpus"), required=True, help="number of GPUs")
    mem.add_argument("--gpu", default="A100-80GB", help="GPU model for the fits/does-not-fit verdict")
    mem.add_argument("--precision", choices=PRECISIONS, default="bf16")
    mem.add_argument("--optimizer", choices=list(OPTIMIZER_BYTES), default="adamw")
    mem.add_argument("--zero", type=int, choices=[0, 1, 2, 3], default=0, help="ZeRO stage")
    mem.add_argument("--offload", action="store_true", help="offload optimizer states (and stage-3 weights) to CPU")
    mem.add_argument("--tp", type=whole("tp"), default=1, help="tensor-parallel size")
    mem.add_argument("--pp", type=whole("pp"), default=1, help="pipeline-parallel size")
    mem.add_argument("--ep", type=whole("ep"), default=1,
                     help="expert-parallel size (mixture-of-experts, with --active-params; divides the data-parallel size)")
    mem.add_argument("--no-sequence-parallel", action="store_true", help="tensor parallelism without sequence parallelism")
    mem.add_argument("--micro-batch", type=whole("micro_batch"), default=1)
    mem.add_argument("--recompute", choices=RECOMPUTE, default="selective")
    mem.add_argument("--lora-rank", type=whole("lora_rank"), help="LoRA fine-tuning with this adapter rank")
    mem.add_argument("--qlora", action="store_true", help="QLoRA: 4-bit NF4 frozen base (needs --lora-rank)")
    add_json_flag(mem)
    mem.set_defaults(handler=_memory)

    rec = sub.add_parser("recommend", help="rank GPU models × counts × layouts by time and cost")
    _model_args(rec)
    rec.add_argument("--tokens", type=real("tokens"), required=True)
    rec.add_argument("--precision", choices=PRECISIONS, default="bf16")
    rec.add_argument("--workload", choices=["pretrain", "finetune", "lora"], default="pretrain")
    rec.add_argument("--deadline-hours", type=real("deadline_hours"))
    rec.add_argument("--budget", type=real("budget"), help="budget in CNY")
    rec.add_argument("--max-gpus", type=whole("max_gpus"), default=4096)
    rec.add_argument("--whole-catalog", action="store_true",
                     help="consider every catalog GPU, not only the GPU models of the organisation's pools")
    add_json_flag(rec)
    rec.set_defaults(handler=_recommend)

    val = sub.add_parser("validate", help="leave-one-out error of the efficiency model over the published runs")
    val.add_argument("--published-only", action="store_true", help="do not read recorded outcomes from the database")
    add_json_flag(val)
    val.set_defaults(handler=_validate)

    from core.cli.estimate_inference import add_inference_command

    add_inference_command(sub)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=real("params"), required=True, help="total parameters N, e.g. 7e9")
    p.add_argument("--active-params", type=real("active_params"), help="active parameters per token (mixture-of-experts)")
    p.add_argument("--layers", type=whole("layers"))
    p.add_argument("--hidden", type=whole("hidden"), help="hidden size")
    p.add_argument("--heads", type=whole("heads"), help="attention heads")
    p.add_argument("--kv-heads", type=whole("kv_heads"), help="key/value heads (grouped-query attention)")
    p.add_argument("--ffn-hidden", type=whole("ffn_hidden"), help="MLP width")
    p.add_argument("--gated-mlp", action="store_true", help="SwiGLU-style MLP (three matrices)")
    p.add_argument("--vocab", type=whole("vocab"), help="vocabulary size")
    p.add_argument("--seq-len", type=whole("seq_len"), help="sequence length")


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
        tp=args.tp, pp=args.pp, ep=args.ep, sequence_parallel=not args.no_sequence_parallel,
        recompute=args.recompute, micro_batch=args.micro_batch, seq_len=args.seq_len, lora_rank=args.lora_rank,
        qlora=args.qlora,
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
                    deadline_hours=args.deadline_hours, budget_cny=args.budget, max_gpus=args.max_gpus,
                    whole_catalog=args.whole_catalog)
    out = {
        "options": [o.as_dict() for o in rec.options],
        "pareto": [o.as_dict() for o in rec.pareto],
        "choice": rec.choice.as_dict() if rec.choice else None,
        "reasons": [m.render(args.lang) for m in rec.reasons],
    }
    emit(args, out, lambda: "\n".join(
        [f"{o.gpu:<16} ×{o.gpus:<6} tp{o.layout.tp} pp{o.layout.pp} ep{o.layout.ep} zero{o.layout.zero} "
         f"{o.duration.render(args.lang):>12} {o.cost_cny:14,.0f} CNY  {' '.join(o.pools)}" for o in rec.pareto]
        + out["reasons"]))
    return 0


def _validate(args: argparse.Namespace) -> int:
    result = validation.published_accuracy()
    outcomes, unread = None, None
    if not args.published_only:
        outcomes, unread = _recorded_outcomes()
    out = result.as_dict() | {
        "outcomes_read": not args.published_only and unread is None,
        "outcomes": outcomes.as_dict() if outcomes else None,
        "outcomes_not_read": unread.render(args.lang) if unread else None,
    }
    emit(args, out, lambda: validation.report_text(result, outcomes, unread, args.lang,
                                                   outcomes_read=not args.published_only))
    return 0


def _recorded_outcomes():
    """(accuracy over recorded outcomes or None, why they could not be read or None)."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.cli import open_sessions
    from core.errors import ComputeLoopError
    from core.i18n import Msg
    from core.services import estimates as estimates_svc

    try:
        pairs = estimates_svc.recorded_pairs(sessions=open_sessions())
    except ComputeLoopError as exc:
        return None, Msg(exc.key, exc.params)
    except SQLAlchemyError as exc:
        return None, Msg("estvalid.outcomes_db_error", {"kind": type(exc).__name__})
    return validation.outcome_accuracy(pairs), None
