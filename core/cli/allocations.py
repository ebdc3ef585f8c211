"""``python -m core allocations``: list, show (the allocation sheet), provision, retry, manifests,
and the green channel's plan (``green plan N``).

The acting person is a demo persona (``--as ID`` from data/personas.yaml). Bad input prints one
line on stderr and exits with code 2, like every command.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.cli import OneLineParser, add_persona_flag, emit, open_sessions, persona
from core.cli.inputs import record_id
from core.i18n import translate
from core.lifecycle.labels import backend_name


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``allocations`` group and its commands."""
    grp = groups.add_parser("allocations", help="allocations and the allocation sheet (算力资源分配清单)",
                            description="Allocations: list, show, provision, retry, manifests, green-channel plan.")
    sub = grp.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    lst = sub.add_parser("list", help="allocations the persona may see")
    lst.add_argument("--status", help="only allocations in this status (approved, provisioning, failed, active, released)")
    add_persona_flag(lst)
    lst.set_defaults(handler=_list)

    for name, help_, handler in (
            ("show", "the allocation sheet of a request", _show),
            ("provision", "provision an approved request (ops)", _provision),
            ("retry", "retry a failed provisioning (ops)", _retry),
            ("manifests", "print the stored Kubernetes manifests (YAML)", _manifests),
            ("stop", "stop a preempted allocation's GPU work on its cluster again (ops)", _stop)):
        p = sub.add_parser(name, help=help_)
        p.add_argument("id", type=record_id, help="request id")
        add_persona_flag(p)
        p.set_defaults(handler=handler)

    rec = sub.add_parser("recover", help="mark provisioning runs that died as failed, so retry can finish them "
                                         "(ops; safe from cron)")
    add_persona_flag(rec)
    rec.set_defaults(handler=_recover)

    green = sub.add_parser("green", help="the green channel (绿色通道)")
    gsub = green.add_subparsers(dest="green_command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    plan = gsub.add_parser("plan", help="where an emergency's GPUs would come from (changes nothing)")
    plan.add_argument("id", type=record_id, help="emergency request id")
    add_persona_flag(plan)
    plan.set_defaults(handler=_green_plan)


def _line(a: dict[str, Any], lang: str) -> str:
    return (f"{a['number'] or '#' + str(a['request_id'])}  {translate('status.' + a['status'], lang)}  "
            f"{a['pool']}  {a['gpus']} × {a['gpu_model']}  {a['namespace'] or '-'}  {a['start'] or ''}→{a['end'] or ''}"
            + (f"  ! {a['failed_step']}" if a.get("failed_step") else ""))


def _sheet_text(sheet: dict[str, Any], lang: str) -> str:
    q, p = sheet["quota"], sheet["provisioning"]
    lines = [
        translate("allocation.sheet.title", lang, number=sheet["number"] or sheet["request_id"]),
        translate("allocation.field.status", lang, status=translate("status." + sheet["status"], lang),
                  attempts=p["attempts"], backend=backend_name(sheet["backend"], lang)),
        translate("allocation.field.quota", lang, gpus=q["gpus"], gpu_model=q["gpu_model"], cpu=q["cpu"] or "-",
                  memory_gi=q["memory_gi"] or "-", storage_gi=q["storage_gi"] or "-"),
        translate("allocation.field.window", lang, start=sheet["window"]["start"] or "-", end=sheet["window"]["end"] or "-"),
        translate("allocation.field.namespace", lang, namespace=sheet["namespace"] or "-", cluster=sheet["cluster"] or "-"),
    ]
    if sheet["access"]["jupyter_url"]:
        lines.append(translate("allocation.field.jupyter", lang, url=sheet["access"]["jupyter_url"]))
    if sheet["access"]["kubeconfig"]:
        lines.append(translate("allocation.field.kubeconfig", lang))
    if p["failed_step"]:
        error = p["error"] or {}
        text = translate(error["key"], lang, **error.get("params", {})) if error.get("key") else ""
        lines.append(translate("allocation.field.failed", lang, step=p["failed_step"], error=" ".join(text.split())))
    if sheet.get("preempted_by"):
        lines.append(translate("allocation.preempted", lang, emergency=sheet["preempted_by"]))
    lines.append(translate(sheet["rules"]["key"], lang, **sheet["rules"]["params"]))
    lines += [f"  {s['step']}: {s['status']}" for s in p["steps"]]
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    from core.lifecycle import provisioning as prov

    rows = prov.list_allocations(sessions=open_sessions(), actor=persona(args.persona), status=args.status)
    emit(args, rows, lambda: "\n".join(_line(a, args.lang) for a in rows) or translate("allocation.none", args.lang))
    return 0


def _show(args: argparse.Namespace) -> int:
    from core.lifecycle import provisioning as prov

    sheet = prov.allocation_sheet(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)
    emit(args, sheet, lambda: _sheet_text(sheet, args.lang))
    return 0


def _provision(args: argparse.Namespace) -> int:
    from core.lifecycle import provisioning as prov

    sheet = prov.provision(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)
    emit(args, sheet, lambda: _sheet_text(sheet, args.lang))
    return 0


def _retry(args: argparse.Namespace) -> int:
    from core.lifecycle import provisioning as prov

    sheet = prov.retry(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)
    emit(args, sheet, lambda: _sheet_text(sheet, args.lang))
    return 0


def _manifests(args: argparse.Namespace) -> int:
    from core.lifecycle import provisioning as prov

    text = prov.manifests(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)
    if args.json:
        import yaml

        emit(args, list(yaml.safe_load_all(text)), lambda: text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from core.lifecycle import provisioning as prov

    out = prov.stop_preempted(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)
    emit(args, out, lambda: stop_text(out, args.lang))
    return 1 if out["error"] else 0


def stop_text(out: dict[str, Any], lang: str) -> str:
    """What stopping a preempted allocation did (or, in plan mode, what the operator applies)."""
    if out.get("error"):
        error = out["error"]
        return translate("allocation.stop_failed", lang, number=out.get("number") or out["request_id"],
                         error=translate(error["key"], lang, **error.get("params", {})))
    lines = [translate("allocation.stopped", lang, number=out.get("number") or out["request_id"],
                       namespace=out["namespace"], cluster=out["cluster"], backend=out["backend"])]
    lines += [f"  {a['verb']} {a['kind']}/{a['name'] or '*'}  {a['detail']}" for a in out["actions"]]
    return "\n".join(lines)


def _recover(args: argparse.Namespace) -> int:
    from core.lifecycle import provisioning as prov

    marked = prov.recover_stalled(sessions=open_sessions(), actor=persona(args.persona))
    emit(args, {"recovered": marked}, lambda: translate("allocation.recovered", args.lang, count=len(marked),
                                                         ids=", ".join(map(str, marked)) or "-"))
    return 0


def _green_plan(args: argparse.Namespace) -> int:
    from core.lifecycle import green_channel as gc

    plan = gc.plan_emergency(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)

    def text() -> str:
        lines = [translate(plan["message"]["key"], args.lang, **plan["message"]["params"])]
        lines += [f"  - {p['number'] or p['request_id']}  {p['gpus']} GPU  {p['priority']}  {p['owner']}  "
                  f"{p['started_at'][:16]}" for p in plan["preempt"]]
        return "\n".join(lines)

    emit(args, plan, text)
    return 0
