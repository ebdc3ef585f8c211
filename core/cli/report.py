"""``python -m core report``: the monthly transparency report job.

* ``report monthly --month YYYY-MM [--scope company|HQ|<province>] [--json]`` — build (or rebuild)
  the month's draft from the stored daily rollups and the lifecycle tables, and notify ops
  (outbox) that it waits for preview and publishing. Safe to re-run: the draft is rebuilt in
  place and each ops lead is notified once per draft.
"""

from __future__ import annotations

import argparse

from core.cli import OneLineParser, add_json_flag, emit


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``report`` group."""
    grp = groups.add_parser("report", help="monthly transparency report (算力资源晾晒报告)",
                            description="The monthly transparency report.")
    sub = grp.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    monthly = sub.add_parser("monthly", help="build the month's draft report and notify ops")
    monthly.add_argument("--month", required=True, help="the month, YYYY-MM")
    monthly.add_argument("--scope", default="company", help="company (default), HQ or a province unit id")
    add_json_flag(monthly)
    monthly.set_defaults(handler=_monthly)


def _monthly(args: argparse.Namespace) -> int:
    from core import context
    from core.reports import service

    ctx = context.build()
    try:
        view = service.build_draft(sessions=ctx.sessions, actor=service.REPORT_JOB, month=args.month, scope=args.scope)
    finally:
        ctx.engine.dispose()
    snap = view.pop("snapshot")
    payload = {**view, "coverage": snap["coverage"], "health": {k: snap["health"][k] for k in ("util_allocated", "util_fleet")},
               "water_level": {k: snap["water_level"][k] for k in ("total", "allocated", "available")},
               "economics": {k: snap["economics"][k] for k in ("gpu_hours_used", "energy_kwh", "cost")}}
    emit(args, payload, lambda: (f"report {view['month']} {view['scope']} v{view['version']} (draft #{view['id']}): "
                                 f"coverage {snap['coverage']['metrics']}, util {snap['health']['util_allocated']}; ops notified"))
    return 0
