"""``python -m core reclaim``: the daily warnings-and-reclaim job.

* ``reclaim daily [--today YYYY-MM-DD] [--json]`` — expiry notices (7/3/1 days, each once),
  automatic reclaim at expiry, release of retained data, the last complete month's warnings and
  inference reclaim candidates. Idempotent: safe to run twice or after a failed run.
"""

from __future__ import annotations

import argparse

from core.cli import add_json_flag, emit
from core.cli.inputs import day as _day


def add_daily(sub: argparse._SubParsersAction) -> None:
    """Add the ``daily`` command to a group (``reclaim``; the lead may alias it under ``jobs``)."""
    daily = sub.add_parser("daily", help="expiry notices, expiries, warnings and reclaim candidates (idempotent)")
    daily.add_argument("--today", type=_day, default=None, help="the day to run for, YYYY-MM-DD (default: today, UTC)")
    add_json_flag(daily)
    daily.set_defaults(handler=_daily)


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``reclaim`` group."""
    group = groups.add_parser("reclaim", help="warnings and reclaim: the daily job", description="Warnings and reclaim.")
    sub = group.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_daily(sub)


def _daily(args: argparse.Namespace) -> int:
    from core import context
    from core.reclaim.common import now
    from core.reclaim.daily import run_daily

    ctx = context.build()
    try:
        result = run_daily(sessions=ctx.sessions, today=args.today or now().date())
    finally:
        ctx.engine.dispose()
    emit(args, result, lambda: summary(result))
    return 1 if result["errors"] else 0


def summary(result: dict) -> str:
    """One line of what the daily job did (``run_daily``'s result), or that another run held its lock."""
    if result.get("locked"):
        from core.i18n import translate

        return translate(result["message"]["key"], "en", **result["message"]["params"])
    return (f"{result['today']}: {len(result.get('notices', {}).get('queued', []))} notices, "
            f"{len(result.get('expiries', {}).get('reclaimed', []))} reclaimed, "
            f"{len(result.get('data_release', {}).get('released', []))} data released, "
            f"{len(result.get('warnings', {}).get('raised', []))} warnings for {result['month']}, "
            f"{len(result.get('candidates', {}).get('detected', []))} candidates, "
            f"{len(result.get('stalled_provisioning', []))} stalled provisioning runs marked failed; "
            f"errors: {sorted(result['errors']) or 'none'}")
