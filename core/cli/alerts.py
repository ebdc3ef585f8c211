"""``python -m core alerts``: the Prometheus alert rules of the dual thresholds and the pools.

* ``alerts render [--cluster C] [--format prometheusrule|rules] [--out FILE] [--json]`` — every
  cluster's (or one cluster's) alerts: scale-out, scale-in and memory pressure per autoscaling
  policy, saturation per pool (core/cluster/alert_rules.py). ``prometheusrule`` (default) writes one
  ``monitoring.coreos.com/v1`` PrometheusRule per cluster (multi-document YAML, rendered by the plan
  backend for GitOps); ``rules`` writes one plain Prometheus rules file. Policies whose namespace no
  allocation holds are listed in a comment at the top (they have no cluster to go to).

It changes nothing and runs as the system job ``system:alert-rules``, so a GitOps pipeline or a
CronJob can run it. Bad input prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.cli import OneLineParser, add_json_flag, emit, open_sessions
from core.cli.inputs import writable_file
from core.errors import InputError
from core.i18n import translate

FORMATS = ("prometheusrule", "rules")


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``alerts`` group."""
    grp = groups.add_parser("alerts", help="Prometheus alert rules of the dual thresholds and the pools (告警规则)",
                            description="Prometheus alert rules: scale-out, scale-in and memory pressure per "
                                        "autoscaling policy, saturation per pool, routed by team/province.")
    sub = grp.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    render = sub.add_parser("render", help="render the alert rules (PrometheusRule per cluster, or a rules file)",
                            description="Render the alert rules of every cluster (or --cluster C) from the saved "
                                        "autoscaling policies, data/org.yaml's pools and data/alert_rules.yaml. "
                                        "Changes nothing.")
    render.add_argument("--cluster", help="only this cluster (an id of data/org.yaml)")
    render.add_argument("--format", choices=FORMATS, default="prometheusrule",
                        help="prometheusrule (default: one monitoring.coreos.com/v1 object per cluster) or rules "
                             "(a plain Prometheus rules file)")
    render.add_argument("--out", help="write the YAML to this file (default: stdout)")
    add_json_flag(render)
    render.set_defaults(handler=_render)


def _clusters(wanted: str | None) -> list[str]:
    from core.org import load_org

    org = load_org()
    if wanted is None:
        return list(org.clusters)
    if wanted not in org.clusters:
        raise InputError("error.choice", field="--cluster", value=wanted, choices=", ".join(org.clusters))
    return [wanted]


def _render(args: argparse.Namespace) -> int:
    from core.adjust.policy_placement import ALERT_RULES_JOB, placed_policies
    from core.cluster import alert_rules
    from core.cluster.backends import PlanBackend

    clusters = _clusters(args.cluster)
    out = writable_file(args.out, field="--out") if args.out is not None else None
    placement = placed_policies(sessions=open_sessions(), actor=ALERT_RULES_JOB)
    if args.format == "rules":
        docs = [alert_rules.rules_file(clusters, placement.placed)]
        groups = docs[0]["groups"]
    else:
        plan = PlanBackend()
        docs = [plan.alert_rules(c, placement.placed) for c in clusters]
        groups = [g for d in docs for g in d["spec"]["groups"]]
    skipped = ", ".join(placement.unplaced)
    header = [translate("cli.alerts.skipped", args.lang, policies=skipped)] if skipped else []
    text = alert_rules.dump(docs, header)
    alerts = sum(len(g["rules"]) for g in groups)
    if out is not None:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            detail = exc.strerror or type(exc).__name__
            raise InputError("cli.report.out_unwritable", field="--out", detail=detail) from None
    payload: dict[str, Any] = {"format": args.format, "clusters": clusters, "alerts": alerts,
                               "unplaced": list(placement.unplaced), "path": str(out) if out else None,
                               "documents": docs}
    if out is None and not args.json:
        sys.stdout.write(text)
        return 0
    emit(args, payload, lambda: translate("cli.alerts.written", args.lang, path=out, alerts=alerts,
                                          clusters=len(clusters), format=args.format))
    return 0
