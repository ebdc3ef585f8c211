"""``python -m core report``: the monthly transparency report — the job and the Report builder's
operations.

* ``report monthly --month YYYY-MM [--scope company|HQ|<province>] [--json]`` — build (or rebuild)
  the month's draft from the stored daily rollups and the lifecycle tables, and notify ops
  (outbox) that it waits for preview and publishing. Safe to re-run: the draft is rebuilt in
  place and each ops lead is notified once per draft.
* ``report list [--month M] [--scope S] --as P`` — the reports the persona may read (ops: drafts
  too), newest month and version first.
* ``report show N --as P`` — one report: its headline numbers (``--json``: the whole snapshot).
* ``report publish N [--deidentify | --no-deidentify] --as P`` — publish a draft (ops); without
  either flag the draft's own de-identification choice holds.
* ``report correct N --reason TEXT --as P`` — a new draft version correcting published report N.
* ``report export N --format html|pdf|xlsx|csv --out FILE [--table KEY] [--lang en|zh-CN] --as P``
  — write a report's export (CSV: one table, ``projects`` by default).

Permissions are the services' (core/reports/service.py): the CLI only names who acts.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from core.cli import OneLineParser, add_json_flag, add_persona_flag, emit, persona
from core.cli.inputs import check_month, record_id, writable_file
from core.errors import InputError
from core.i18n import translate

FORMATS = ("html", "pdf", "xlsx", "csv")


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``report`` group."""
    grp = groups.add_parser("report", help="monthly transparency report (算力资源晾晒报告)",
                            description="The monthly transparency report: the monthly job, and list, show, publish, "
                                        "correct and export of built reports.")
    sub = grp.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    monthly = sub.add_parser("monthly", help="build the month's draft report and notify ops")
    monthly.add_argument("--month", required=True, help="the month, YYYY-MM")
    monthly.add_argument("--scope", default="company", help="company (default), HQ or a province unit id")
    add_json_flag(monthly)
    monthly.set_defaults(handler=_monthly)

    lst = sub.add_parser("list", help="reports the persona may read (ops: drafts too)")
    lst.add_argument("--month", help="only this month, YYYY-MM")
    lst.add_argument("--scope", help="only this scope (company, HQ or a province unit id)")
    add_persona_flag(lst)
    lst.set_defaults(handler=_list)

    show = sub.add_parser("show", help="one report: headline numbers (--json: the whole snapshot)")
    show.add_argument("id", type=record_id, help="report id (report list)")
    add_persona_flag(show)
    show.set_defaults(handler=_show)

    publish = sub.add_parser("publish", help="publish a draft as an immutable snapshot (ops)")
    publish.add_argument("id", type=record_id, help="draft report id")
    publish.add_argument("--deidentify", action=argparse.BooleanOptionalAction, default=None,
                         help="mask people's names and show projects by code (default: the draft's choice)")
    add_persona_flag(publish)
    publish.set_defaults(handler=_publish)

    correct = sub.add_parser("correct", help="start a correction of a published report: a new draft version (ops)")
    correct.add_argument("id", type=record_id, help="published report id")
    correct.add_argument("--reason", required=True, help="what the correction fixes (required)")
    add_persona_flag(correct)
    correct.set_defaults(handler=_correct)

    export = sub.add_parser("export", help="write a report as HTML, PDF, Excel or CSV",
                            description="Write a report as HTML, PDF, Excel or CSV in the language of --lang.")
    export.add_argument("id", type=record_id, help="report id")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--table", default="projects", help="CSV only: which table (default projects)")
    add_persona_flag(export)
    export.set_defaults(handler=_export)


def _run(work: Callable[[Any], Any]) -> Any:
    """Call ``work(sessions)`` on a fresh context and release its connections afterwards."""
    from core import context

    ctx = context.build()
    try:
        return work(ctx.sessions)
    finally:
        ctx.engine.dispose()


def _scope(scope: str, lang: str) -> str:
    return translate("reports.scope.company", lang) if scope == "company" else scope


def _pct(value: Any) -> str:
    from core.reports.tables import fmt

    return fmt(value, "pct")


def _monthly(args: argparse.Namespace) -> int:
    from core.reports import service

    month = check_month(args.month, field="--month")
    view = _run(lambda sessions: service.build_draft(sessions=sessions, actor=service.REPORT_JOB, month=month,
                                                     scope=args.scope))
    snap = view.pop("snapshot")
    payload = {**view, "coverage": snap["coverage"], "health": {k: snap["health"][k] for k in ("util_allocated", "util_fleet")},
               "water_level": {k: snap["water_level"][k] for k in ("total", "allocated", "available")},
               "economics": {k: snap["economics"][k] for k in ("gpu_hours_used", "energy_kwh", "cost")}}
    emit(args, payload, lambda: translate("cli.report.monthly", args.lang, month=view["month"],
                                          scope=_scope(view["scope"], args.lang), version=view["version"], id=view["id"],
                                          coverage=_pct(snap["coverage"]["metrics"]),
                                          util=_pct(snap["health"]["util_allocated"])))
    return 0


def _line(r: dict[str, Any], lang: str) -> str:
    when = r["published_at"] or r["built_at"]
    text = translate("cli.report.line", lang, id=r["id"], month=r["month"], scope=_scope(r["scope"], lang),
                     version=r["version"], status=translate(f"reports.status.{r['status']}", lang),
                     when=f"{when:%Y-%m-%d %H:%M}" if when else "-")
    if r["deidentified"]:
        text += "  " + translate("cli.report.deidentified", lang)
    if r["supersedes"]:
        text += "  " + translate("cli.report.corrects", lang, supersedes=r["supersedes"], reason=r["correction_reason"])
    return text


def _list(args: argparse.Namespace) -> int:
    from core.reports import service

    actor = persona(args.persona)
    month = check_month(args.month, field="--month") if args.month is not None else None
    rows = _run(lambda sessions: service.list_reports(sessions=sessions, actor=actor, month=month, scope=args.scope))
    emit(args, rows, lambda: "\n".join(_line(r, args.lang) for r in rows) or translate("cli.report.none", args.lang))
    return 0


def _detail(view: dict[str, Any], lang: str) -> str:
    from core.reports.tables import fmt, headline

    lines = [_line(view, lang)]
    lines += [f"  {translate(f'reports.metric.{key}', lang)}: {fmt(value, kind)}"
              for key, value, kind in headline(view["snapshot"])]
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    from core.reports import service

    actor = persona(args.persona)
    view = _run(lambda sessions: service.get_report(sessions=sessions, actor=actor, report_id=args.id))
    emit(args, view, lambda: _detail(view, args.lang))
    return 0


def _publish(args: argparse.Namespace) -> int:
    from core.reports import service

    actor = persona(args.persona)
    view = _run(lambda sessions: service.publish(sessions=sessions, actor=actor, report_id=args.id,
                                                 deidentified=args.deidentify))
    emit(args, view, lambda: _detail(view, args.lang))
    return 0


def _correct(args: argparse.Namespace) -> int:
    from core.reports import service

    actor = persona(args.persona)
    view = _run(lambda sessions: service.correct(sessions=sessions, actor=actor, report_id=args.id, reason=args.reason))
    emit(args, view, lambda: _detail(view, args.lang))
    return 0


def _export_bytes(view: dict[str, Any], fmt: str, lang: str, table: str) -> bytes:
    from core.reports import export

    snap = view["snapshot"]
    if fmt == "html":
        return export.to_html(snap, lang, version=view["version"], status=view["status"]).encode("utf-8")
    if fmt == "pdf":
        return export.to_pdf(snap, lang, version=view["version"], status=view["status"])
    if fmt == "xlsx":
        return export.to_excel(snap, lang)
    return export.to_csv(snap, lang, table)


def _export(args: argparse.Namespace) -> int:
    from core.reports import service

    actor = persona(args.persona)
    out = writable_file(args.out, field="--out")
    view = _run(lambda sessions: service.get_report(sessions=sessions, actor=actor, report_id=args.id))
    data = _export_bytes(view, args.format, args.lang, args.table)
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise InputError("cli.report.out_unwritable", field="--out", detail=exc.strerror or type(exc).__name__) from None
    result = {"id": view["id"], "format": args.format, "path": str(out), "bytes": len(data), "lang": args.lang}
    emit(args, result, lambda: translate("cli.report.exported", args.lang, path=out, size=len(data), format=args.format))
    return 0
