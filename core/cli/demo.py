"""``python -m core demo seed``: fill an empty database with the demo estimates and applications."""

from __future__ import annotations

import argparse

from core import context
from core.cli import add_json_flag, emit
from core.demo import seed


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``demo`` group."""
    demo = groups.add_parser("demo", help="demo data for the embedded defaults", description="Demo data.")
    sub = demo.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmd = sub.add_parser("seed", help="create demo estimates and applications once (no-op when data exists)")
    add_json_flag(cmd)
    cmd.set_defaults(handler=_seed)


def _seed(args: argparse.Namespace) -> int:
    ctx = context.build()
    made = seed(ctx.sessions)
    emit(args, made, lambda: ", ".join(f"{k}: {v}" for k, v in made.items()) if made else "database not empty: nothing to do")
    return 0
