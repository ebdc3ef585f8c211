"""``python -m core requests``: submit, list, show and decide resource applications.

The acting person is a demo persona (``--as ID`` from data/personas.yaml). Bad input prints one
line on stderr and exits with code 2, like every command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.cli import OneLineParser, add_json_flag, emit, positive_int
from core.errors import InputError
from core.i18n import translate
from core.identity import Identity, load_personas
from core.lifecycle import services as svc


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``requests`` group and its commands."""
    req = groups.add_parser("requests", help="resource applications (申请与分配)",
                            description="Resource applications: submit, list, show, decide.")
    sub = req.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    submit = sub.add_parser("submit", help="submit a demand intake form (JSON file)")
    submit.add_argument("--file", required=True, help="the form as a JSON object (fields of IntakeForm)")
    submit.add_argument("--queue", action="store_true", help="queue the request if the pool lacks the GPUs")
    submit.add_argument("--draft", action="store_true", help="save as a draft instead of submitting")
    _as(submit)
    submit.set_defaults(handler=_submit)

    lst = sub.add_parser("list", help="requests the persona may see")
    lst.add_argument("--status", help="only requests in this status")
    _as(lst)
    lst.set_defaults(handler=_list)

    show = sub.add_parser("show", help="one request with its timeline")
    show.add_argument("id", type=positive_int, help="request id (the number after CR-YYYY-)")
    _as(show)
    show.set_defaults(handler=_show)

    decide = sub.add_parser("decide", help="take the current approval step of a request")
    decide.add_argument("id", type=positive_int)
    decide.add_argument("--decision", required=True, choices=list(svc.DECISIONS))
    decide.add_argument("--reason", required=True)
    decide.add_argument("--gpus", type=positive_int, help="adjusted GPU count (approve_adjusted)")
    decide.add_argument("--days", type=positive_int, help="adjusted duration in days (approve_adjusted)")
    _as(decide)
    decide.set_defaults(handler=_decide)

    result = sub.add_parser("result", help="record the evaluation result of a training run (owner of the request)",
                            description="Record how a training run of this request scored; the monthly report shows "
                                        "it beside the job's time, GPU-hours and energy.")
    result.add_argument("id", type=positive_int, help="request id of the training allocation")
    result.add_argument("--metric", required=True, help="evaluation metric, e.g. eval_loss, accuracy, bleu")
    result.add_argument("--value", required=True, help="the metric's value")
    direction = result.add_mutually_exclusive_group(required=True)
    direction.add_argument("--higher-is-better", dest="higher_is_better", action="store_true", default=None)
    direction.add_argument("--lower-is-better", dest="higher_is_better", action="store_false")
    result.add_argument("--dataset", required=True, help="dataset or benchmark the metric was measured on")
    result.add_argument("--baseline", help="the value before this run (e.g. the base model's)")
    result.add_argument("--run", default="", help="which run (name or id)")
    result.add_argument("--note", default="")
    _as(result)
    result.set_defaults(handler=_result)

    results = sub.add_parser("results", help="training results recorded for a request")
    results.add_argument("id", type=positive_int)
    _as(results)
    results.set_defaults(handler=_results)


def _as(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as", dest="persona", required=True, metavar="PERSONA_ID", help="who acts (data/personas.yaml)")
    add_json_flag(p)


def _actor(persona_id: str) -> Identity:
    for p in load_personas():
        if p.id == persona_id:
            return p
    raise InputError("lifecycle.unknown_persona", field="--as", value=persona_id)


def _sessions():
    from core.context import build

    return build().sessions


def _read_form(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("lifecycle.form_file_invalid", field=path, detail=type(exc).__name__) from None
    except json.JSONDecodeError as exc:
        raise InputError("lifecycle.form_file_invalid", field=path, detail=f"line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError("lifecycle.form_not_object", field=path)
    return data


def _line(r: dict[str, Any], lang: str) -> str:
    return (f"{r['number'] or '#' + str(r['id'])}  {translate('status.' + r['status'], lang)}  {r['pool']}  "
            f"{r['approved_gpus'] or r['requested_gpus']} GPU × {r['approved_days'] or r['duration_days']} d  "
            f"{r['created_by']}")


def _detail(r: dict[str, Any], lang: str) -> str:
    lines = [_line(r, lang)]
    if r.get("tier_message"):
        lines.append(translate(r["tier_message"]["key"], lang, **r["tier_message"]["params"]))
    for flag in r.get("flags") or []:
        lines.append(f"! {translate(flag['key'], lang, **flag['params'])}")
    for step in r.get("steps") or []:
        lines.append(f"  step {step['seq']} {step['role']}: {step['status']} {step['decided_by'] or ''} {step['reason']}")
    if r.get("claim_deadline"):
        lines.append(f"  claim by {r['claim_deadline']:%Y-%m-%d %H:%M} UTC")
    return "\n".join(lines)


def _submit(args: argparse.Namespace) -> int:
    actor = _actor(args.persona)
    form = _read_form(args.file)
    sessions = _sessions()
    if args.draft:
        rid = svc.save_draft(sessions=sessions, actor=actor, form=form)
        result = svc.get_request(sessions=sessions, actor=actor, request_id=rid)
    else:
        result = svc.submit(sessions=sessions, actor=actor, form=form, queue_if_short=args.queue)
    emit(args, result, lambda: _detail(result, args.lang))
    return 0


def _list(args: argparse.Namespace) -> int:
    actor = _actor(args.persona)
    rows = svc.list_requests(sessions=_sessions(), actor=actor, status=args.status)
    emit(args, rows, lambda: "\n".join(_line(r, args.lang) for r in rows) or "-")
    return 0


def _show(args: argparse.Namespace) -> int:
    actor = _actor(args.persona)
    sessions = _sessions()
    result = svc.get_request(sessions=sessions, actor=actor, request_id=args.id)
    result["timeline"] = svc.timeline(sessions=sessions, actor=actor, request_id=args.id)

    def text() -> str:
        events = [f"  {e['at']:%Y-%m-%d %H:%M} {e['actor']} {e['action']} "
                  f"{(e['before'] or {}).get('status', '')}→{(e['after'] or {}).get('status', '')} {e['reason']}"
                  for e in result["timeline"]]
        return "\n".join([_detail(result, args.lang), *events])

    emit(args, result, text)
    return 0


def _decide(args: argparse.Namespace) -> int:
    actor = _actor(args.persona)
    result = svc.decide(sessions=_sessions(), actor=actor, request_id=args.id, decision=args.decision,
                        reason=args.reason, adjusted_gpus=args.gpus, adjusted_days=args.days)
    emit(args, result, lambda: _detail(result, args.lang))
    return 0


def _result_line(r: dict[str, Any]) -> str:
    direction = "higher is better" if r["higher_is_better"] else "lower is better"
    base = "" if r["baseline"] is None else f" (baseline {r['baseline']:g}, improvement {r['improvement']:g})"
    return f"#{r['id']} {r['run'] or '-'}  {r['metric']} = {r['value']:g} on {r['dataset']} [{direction}]{base}"


def _result(args: argparse.Namespace) -> int:
    from core.reports.results import record_result

    row = record_result(sessions=_sessions(), actor=_actor(args.persona), request_id=args.id, metric=args.metric,
                        value=args.value, higher_is_better=args.higher_is_better, dataset=args.dataset,
                        baseline=args.baseline, run=args.run, note=args.note)
    emit(args, row, lambda: _result_line(row))
    return 0


def _results(args: argparse.Namespace) -> int:
    from core.reports.results import list_results

    rows = list_results(sessions=_sessions(), actor=_actor(args.persona), request_id=args.id)
    emit(args, rows, lambda: "\n".join(_result_line(r) for r in rows) or "-")
    return 0
