"""``python -m core support``: emergency resource support requests between provinces and HQ
(紧急资源支援请求, :mod:`core.adjust.support`).

* ``support raise --pool P --gpus N --from D --to D --namespace NS [--deployment D] --reason R --as PERSONA``
  — provincial ops (of the pool's province) or HQ ops ask for GPUs for a window.
* ``support list [--status S] --as PERSONA`` / ``support show ID --as PERSONA`` — in the persona's scope.
* ``support donors ID --as PERSONA`` — every pool that could give, with its headroom and the suggestion (HQ ops).
* ``support approve ID --donor P [--from D] [--to D] [--reason R] --as PERSONA`` — HQ ops; the scheduler
  queues of both pools are re-sized through the configured backend when the window has started.
* ``support reject ID --reason R --as PERSONA`` / ``support return ID --reason R --as PERSONA`` (HQ ops).
* ``support node-added --pool P --nodes N --gpus N --approved-by ID --reason R --as PERSONA`` — record reserve
  nodes added to a cluster by hand, with who approved it.

The window's end is handled by ``jobs daily`` (the quota goes back). Bad input prints one line on
stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.cli import OneLineParser, add_persona_flag, emit, open_sessions, persona
from core.cli.inputs import day, record_id, whole
from core.i18n import translate


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``support`` group."""
    grp = groups.add_parser("support", help="emergency resource support requests between provinces and HQ",
                            description="Support requests (紧急资源支援请求): raise, list, decide, return; "
                                        "quota moves between pools for a window.")
    sub = grp.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    r = sub.add_parser("raise", help="ask HQ for GPUs for a pool for a window (provincial or HQ ops)")
    r.add_argument("--pool", required=True, help="the pool that needs GPUs (an id of data/org.yaml)")
    r.add_argument("--gpus", type=whole("gpus"), required=True, help="GPUs needed")
    r.add_argument("--from", dest="starts_on", type=day, required=True, help="first day, YYYY-MM-DD (today or later)")
    r.add_argument("--to", dest="ends_on", type=day, required=True, help="the day the GPUs go back, YYYY-MM-DD")
    r.add_argument("--namespace", required=True, help="namespace of the service affected")
    r.add_argument("--deployment", default="", help="deployment of the service affected")
    r.add_argument("--reason", required=True, help="why (the alert, the water level)")
    add_persona_flag(r)
    r.set_defaults(handler=_raise)

    lst = sub.add_parser("list", help="support requests in the persona's scope")
    lst.add_argument("--status", help="only this status (open, approved, rejected, active, returned)")
    add_persona_flag(lst)
    lst.set_defaults(handler=_list)

    for name, help_, handler in (("show", "one support request", _show),
                                 ("donors", "pools that could give, with headroom and the suggestion (HQ ops)",
                                  _donors)):
        p = sub.add_parser(name, help=help_)
        p.add_argument("id", type=record_id, help="support request id")
        add_persona_flag(p)
        p.set_defaults(handler=handler)

    a = sub.add_parser("approve", help="approve a transfer from a donor pool (HQ ops)")
    a.add_argument("id", type=record_id, help="support request id")
    a.add_argument("--donor", required=True, help="the pool that gives (same GPU model)")
    a.add_argument("--from", dest="starts_on", type=day, help="first day (default: as requested)")
    a.add_argument("--to", dest="ends_on", type=day, help="the day the GPUs go back (default: as requested)")
    a.add_argument("--reason", default="", help="decision note")
    add_persona_flag(a)
    a.set_defaults(handler=_approve)

    for name, help_, handler in (("reject", "reject with a reason (HQ ops)", _reject),
                                 ("return", "give the GPUs back before the window ends (HQ ops)", _return)):
        p = sub.add_parser(name, help=help_)
        p.add_argument("id", type=record_id, help="support request id")
        p.add_argument("--reason", required=True, help="why")
        add_persona_flag(p)
        p.set_defaults(handler=handler)

    n = sub.add_parser("node-added", help="record reserve nodes added to a pool's cluster by hand, with the approval")
    n.add_argument("--pool", required=True, help="the pool whose cluster got the nodes")
    n.add_argument("--nodes", type=whole("gpus"), required=True, help="nodes added (bounded like --gpus)")
    n.add_argument("--gpus", type=whole("gpus"), required=True, help="GPUs they carry")
    n.add_argument("--approved-by", dest="approved_by", required=True, help="who approved it (not yourself)")
    n.add_argument("--reason", required=True, help="why")
    n.add_argument("--support-request", dest="support_request", type=record_id, help="the support request it answers")
    add_persona_flag(n)
    n.set_defaults(handler=_node_added)


def _line(r: dict[str, Any], lang: str) -> str:
    return translate("support.cli.row", lang, id=r["id"], status=translate(f"support.status.{r['status']}", lang),
                     pool=r["pool"], gpus=r["gpus"], model=r["gpu_model"], start=r["starts_on"], end=r["ends_on"],
                     donor=r["donor_pool"] or "-")


def _run(args: argparse.Namespace, call) -> int:  # noqa: ANN001 - a service call taking sessions
    sessions = open_sessions()
    out = call(sessions)
    emit(args, out, lambda: _line(out, args.lang) + _cluster_text(out, args.lang))
    return 0 if not out.get("cluster") or out["cluster"].get("ok") else 1


def _cluster_text(out: dict[str, Any], lang: str) -> str:
    c = out.get("cluster")
    if not c:
        return ""
    key = "support.cli.cluster_ok" if c.get("ok") else "support.cli.cluster_failed"
    return "\n" + translate(key, lang, backend=c.get("backend") or "-",
                            sizes=", ".join(f"{p}={n}" for p, n in c.get("sizes", {}).items()))


def _raise(args: argparse.Namespace) -> int:
    from core.adjust import support

    actor = persona(args.persona)
    return _run(args, lambda s: support.raise_request(
        sessions=s, actor=actor, pool=args.pool, gpus=args.gpus, starts_on=args.starts_on, ends_on=args.ends_on,
        reason=args.reason, namespace=args.namespace, deployment=args.deployment))


def _list(args: argparse.Namespace) -> int:
    from core.adjust import support

    rows = support.list_requests(sessions=open_sessions(), actor=persona(args.persona), status=args.status)
    emit(args, rows, lambda: "\n".join(_line(r, args.lang) for r in rows) or translate("support.none", args.lang))
    return 0


def _show(args: argparse.Namespace) -> int:
    from core.adjust import support

    actor = persona(args.persona)
    return _run(args, lambda s: support.get_request(sessions=s, actor=actor, request_id=args.id))


def _donors(args: argparse.Namespace) -> int:
    from core.adjust import support

    out = support.donor_options(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)

    def text() -> str:
        lines = [translate("support.cli.donor_row", args.lang, pool=r["pool"], unit=r["unit"], headroom=r["headroom"],
                           mark="*" if r["pool"] == out["suggested"] else " ") for r in out["pools"]]
        return "\n".join(lines) or translate("support.suggested_none", args.lang)

    emit(args, out, text)
    return 0


def _approve(args: argparse.Namespace) -> int:
    from core.adjust import support

    actor = persona(args.persona)
    return _run(args, lambda s: support.approve(sessions=s, actor=actor, request_id=args.id, donor_pool=args.donor,
                                                starts_on=args.starts_on, ends_on=args.ends_on, reason=args.reason))


def _reject(args: argparse.Namespace) -> int:
    from core.adjust import support

    actor = persona(args.persona)
    return _run(args, lambda s: support.reject(sessions=s, actor=actor, request_id=args.id, reason=args.reason))


def _return(args: argparse.Namespace) -> int:
    from core.adjust import support

    actor = persona(args.persona)
    return _run(args, lambda s: support.return_transfer(sessions=s, actor=actor, request_id=args.id,
                                                        reason=args.reason))


def _node_added(args: argparse.Namespace) -> int:
    from core.adjust import support

    out = support.record_node_addition(sessions=open_sessions(), actor=persona(args.persona), pool=args.pool,
                                       nodes=args.nodes, gpus=args.gpus, approved_by=args.approved_by,
                                       reason=args.reason, support_request=args.support_request)
    emit(args, out, lambda: translate("support.cli.node_added", args.lang, **{k: out[k] for k in
                                                                               ("id", "pool", "nodes", "gpus")}))
    return 0
