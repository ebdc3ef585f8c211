"""``python -m core scheduler``: the batch scheduler's queues per pool (Kueue or Volcano, chosen in
data/batch_scheduler.yaml).

* ``scheduler objects [--pool P] [--json]`` — the YAML of every cluster's (or pool P's)
  flavours, priority classes and queues, as the plan backend renders them for GitOps. Changes nothing.
* ``scheduler apply [--pool P] --as PERSONA`` — apply them through the backend the settings choose
  (plan: the planned steps; live: created / unchanged / updated per object). Ops and admins.
* ``scheduler workloads [--pool P] --as PERSONA`` — per pool, the workloads the scheduler admitted
  and keeps pending and the GPUs they hold (live backend; plan mode says there is nothing to read).

Each allocation namespace's LocalQueue is applied with the allocation (``allocations provision``).
Bad input prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.cli import OneLineParser, add_json_flag, add_persona_flag, emit, persona
from core.errors import InputError
from core.i18n import translate


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``scheduler`` group."""
    grp = groups.add_parser("scheduler", help="the batch scheduler's queues per pool (Kueue or Volcano)",
                            description="The batch scheduler's objects per pool: flavours, priority classes and "
                                        "queues (data/batch_scheduler.yaml), and the workloads they admit.")
    sub = grp.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    objects = sub.add_parser("objects", help="print the scheduler objects (YAML for GitOps; changes nothing)")
    objects.add_argument("--pool", help="only this pool's cluster and queue (an id of data/org.yaml)")
    add_json_flag(objects)
    objects.set_defaults(handler=_objects)

    apply = sub.add_parser("apply", help="apply the scheduler objects through the configured backend (ops)")
    apply.add_argument("--pool", help="only this pool's cluster and queue")
    add_persona_flag(apply)
    apply.set_defaults(handler=_apply)

    workloads = sub.add_parser("workloads", help="admitted and pending workloads per pool (live backend)")
    workloads.add_argument("--pool", help="only this pool")
    add_persona_flag(workloads)
    workloads.set_defaults(handler=_workloads)


def _pool(wanted: str | None) -> str | None:
    from core.org import load_org

    pools = load_org().pools
    if wanted is not None and wanted not in pools:
        raise InputError("error.choice", field="--pool", value=wanted, choices=", ".join(pools))
    return wanted


def _objects(args: argparse.Namespace) -> int:
    from core.cluster.backends import PlanBackend
    from core.cluster.scheduler_queues import load_scheduler_settings, scheduler_objects
    from core.org import load_org

    pool = _pool(args.pool)
    plan = PlanBackend()
    rendered = {c: m for c, m in scheduler_objects(load_org(), pool=pool).items() if m}
    if args.json:
        emit(args, {"scheduler": load_scheduler_settings().scheduler, "clusters": rendered}, str)
        return 0
    sys.stdout.write("---\n".join(f"# cluster: {c}\n{plan.apply_cluster_objects(c, m).manifests_yaml}"
                                   for c, m in rendered.items()))
    return 0


def _error_text(error: dict[str, Any] | None, lang: str) -> str:
    return " ".join(translate(error["key"], lang, **error.get("params", {})).split()) if error else ""


def _apply(args: argparse.Namespace) -> int:
    from core.adjust.scheduler import apply_scheduler_objects
    from core.lifecycle.labels import backend_name

    pool = _pool(args.pool)
    out = apply_scheduler_objects(actor=persona(args.persona), pool=pool)

    def text() -> str:
        lines = [translate("scheduler.cli.applied", args.lang, scheduler=out["scheduler"],
                           backend=backend_name(out["backend"], args.lang),
                           clusters=len(out["clusters"]))]
        for c in out["clusters"]:
            for st in c["steps"]:
                lines.append(f"  {c['cluster']}  {st['step']}: {translate('cluster.status.' + st['status'], args.lang)}"
                             + (f"  {_error_text(st['error'], args.lang)}" if st["error"] else ""))
        return "\n".join(lines)

    emit(args, out, text)
    return 0 if all(c["ok"] for c in out["clusters"]) else 1


def _workloads(args: argparse.Namespace) -> int:
    from core.adjust.scheduler import scheduler_workloads

    pool = _pool(args.pool)
    out = scheduler_workloads(actor=persona(args.persona), pool=pool)

    def line(r: dict[str, Any]) -> str:
        if r["error"]:
            return translate("scheduler.workloads.unread", args.lang, pool=r["pool"], cluster=r["cluster"],
                             error=_error_text(r["error"], args.lang))
        if not r["found"]:
            return translate("scheduler.workloads.not_applied", args.lang, pool=r["pool"], cluster=r["cluster"],
                             queue=r["queue"])
        return translate("scheduler.workloads.row", args.lang, pool=r["pool"], cluster=r["cluster"], queue=r["queue"],
                         admitted=r["admitted"], pending=r["pending"], gpus=r["gpus_in_use"])

    def text() -> str:
        if not out["live"]:
            return translate("scheduler.workloads.plan_mode", args.lang)
        return "\n".join(line(r) for r in out["pools"])

    emit(args, out, text)
    return 0
