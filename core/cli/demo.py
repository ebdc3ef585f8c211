"""``python -m core demo seed``: fill an empty database with the demo estimates and applications, and the
allocations of the demo fleet's namespaces.
``python -m core demo metrics [--days N]``: the demo GPU samples and their daily rollups, made once.
``python -m core demo history [--months 13]``: older months of rollups and last month's training jobs, once."""

from __future__ import annotations

import argparse

from core import context
from core.cli import add_json_flag, emit
from core.cli.inputs import sample_step, whole
from core.demo import seed


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``demo`` group."""
    demo = groups.add_parser("demo", help="demo data for the embedded defaults", description="Demo data.")
    sub = demo.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmd = sub.add_parser("seed", help="create demo estimates and applications once (no-op when data exists)")
    add_json_flag(cmd)
    cmd.set_defaults(handler=_seed)
    metrics = sub.add_parser("metrics", help="write demo GPU samples (when the metrics folder is empty) and roll "
                                             "up every day without a stored rollup (no-op when done)")
    metrics.add_argument("--days", type=whole("days"), default=7, help="days of samples ending yesterday (default 7)")
    metrics.add_argument("--step", type=sample_step("sample_step"), default=300, help="seconds between samples (default 300)")
    add_json_flag(metrics)
    board = sub.add_parser("board", help="run the daily job and publish last month's report from the demo rollups "
                                         "(no-op when it is published)")
    add_json_flag(board)
    board.set_defaults(handler=_board)
    metrics.set_defaults(handler=_metrics)
    history = sub.add_parser("history", help="older months of demo rollups at a coarse step, back to the same month "
                                             "last year, and last month's demo training jobs with recorded results "
                                             "(run after 'demo metrics'; no-op when done)")
    history.add_argument("--months", type=whole("months"), default=13,
                         help="months back from the current one to fill (default 13: last month and a year before it)")
    history.add_argument("--step", type=sample_step("sample_step"), default=3600,
                         help="seconds between the generated samples of the older days (default 3600)")
    add_json_flag(history)
    history.set_defaults(handler=_history)


def _seed(args: argparse.Namespace) -> int:
    from core.demo_fleet import seed_fleet_allocations

    ctx = context.build()
    made = seed(ctx.sessions)
    if made:  # a fresh demo: the fleet's namespaces get their allocations too (core.demo_fleet)
        made["fleet_allocations"] = seed_fleet_allocations(ctx.sessions)["granted"]
    emit(args, made, lambda: ", ".join(f"{k}: {v}" for k, v in made.items()) if made else "database not empty: nothing to do")
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from core.cli.jobs import check_fleet_samples, fleet_gpus
    from core.metrics.demo_metrics import ensure_demo_metrics

    check_fleet_samples(gpus=fleet_gpus(1.0), days=args.days, step_s=args.step, field="--days")
    ctx = context.build()
    try:
        made = ensure_demo_metrics(ctx.sessions, days=args.days, step_s=args.step)
        made["serving_rollups"] = _serving_rollups(ctx.sessions, made["root"])
    finally:
        ctx.engine.dispose()
    emit(args, made, lambda: (f"{made['generated_days']} days of samples written, {made['rolled_up_days']} days rolled up "
                              f"({made['rows']} rows), {made['serving_rollups']['days']} days of service requests "
                              f"rolled up in {made['root']}"
                              if made["generated_days"] or made["rolled_up_days"] or made["serving_rollups"]["days"]
                              else "demo metrics already in place: nothing to do"))
    return 0


def _serving_rollups(sessions, root: str) -> dict:
    """The demo services' request samples rolled up for every day without a stored service rollup
    (nothing when the demo metrics are not offline: ``root`` empty)."""
    from pathlib import Path

    from core.metrics.serving import SERVING_SUBDIR, OfflineServingSource
    from core.metrics.serving_rollup import ensure_serving_rollups

    if not root:
        return {"days": 0, "rows": 0}
    source = OfflineServingSource(Path(root) / SERVING_SUBDIR)
    return ensure_serving_rollups(sessions, source, source.days())


def _board(args: argparse.Namespace) -> int:
    from core.demo import publish_demo_board

    ctx = context.build()
    try:
        made = publish_demo_board(ctx.sessions)
    finally:
        ctx.engine.dispose()
    emit(args, made, lambda: f"report {made['month']}: {made['status']}")
    return 0


def _history(args: argparse.Namespace) -> int:
    from core.cli.jobs import check_fleet_samples, fleet_gpus
    from core.demo_history import ensure_history, seed_training_runs

    # the older months are generated at the demo fleet's size (scale 1) and rolled up in memory
    check_fleet_samples(gpus=fleet_gpus(1.0), days=args.months * 31, step_s=args.step, field="--months")
    ctx = context.build()
    try:
        made = {"history": ensure_history(ctx.sessions, months=args.months, step_s=args.step),
                "training_runs": seed_training_runs(ctx.sessions)}
    finally:
        ctx.engine.dispose()
    h, r = made["history"], made["training_runs"]
    emit(args, made, lambda: (f"{h['days']} older days rolled up ({h['rows']} rows, from {h['first']}); "
                              f"{r['jobs']} demo training jobs of {r['month']} with {r['results']} recorded results"))
    return 0
