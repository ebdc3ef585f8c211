"""``python -m core requests``: the operations of the Apply, My requests and Approvals pages —
precheck, draft (save, form, submit), submit, list, show, timeline, cancel; pending (my approval
queue), claim, feasibility, decide; training results.

The acting person is a demo persona (``--as ID`` from data/personas.yaml). Bad input prints one
line on stderr and exits with code 2, like every command.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.cli import OneLineParser, add_persona_flag, emit, open_sessions, persona
from core.cli.inputs import choice, limit, loads_json, read_file, record_id, whole
from core.errors import InputError
from core.errors import ComputeLoopError
from core.i18n import Msg, translate
from core.identity import Identity
from core.lifecycle import services as svc
from core.lifecycle.states import STATUSES
from core.lifecycle.labels import action_name, event_change, reason_text, role_name, step_status_name, tier_name


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``requests`` group and its commands."""
    req = groups.add_parser("requests", help="resource applications (申请与分配)",
                            description="Resource applications: precheck, draft, submit, list, show, timeline, "
                                        "cancel; pending, claim, feasibility, decide; training results.")
    sub = req.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    submit = sub.add_parser("submit", help="submit a demand intake form (JSON file)")
    submit.add_argument("--file", required=True, help="the form as a JSON object (fields of IntakeForm)")
    submit.add_argument("--queue", action="store_true", help="queue the request if the pool lacks the GPUs")
    submit.add_argument("--draft", action="store_true", help="save as a draft instead of submitting")
    add_persona_flag(submit)
    submit.set_defaults(handler=_submit)

    lst = sub.add_parser("list", help="requests the persona may see")
    lst.add_argument("--status", type=choice(STATUSES), help="only requests in this status (" + ", ".join(STATUSES) + ")")
    add_persona_flag(lst)
    lst.set_defaults(handler=_list)

    show = sub.add_parser("show", help="one request with its timeline")
    show.add_argument("id", type=record_id, help="request id (the number after CR-YYYY-)")
    add_persona_flag(show)
    show.set_defaults(handler=_show)

    decide = sub.add_parser("decide", help="take the current approval step of a request")
    decide.add_argument("id", type=record_id)
    decide.add_argument("--decision", required=True, choices=list(svc.DECISIONS))
    decide.add_argument("--reason", required=True)
    decide.add_argument("--gpus", type=whole("adjusted_gpus"), help="adjusted GPU count (approve_adjusted)")
    decide.add_argument("--days", type=whole("adjusted_days"), help="adjusted duration in days (approve_adjusted)")
    decide.add_argument("--step", required=True,
                        help="the step you decide: its number (1, 2, …) or role (hq_ops, prov_ops_l1, …) as `show` "
                             "lists it; refused when it was decided meanwhile or is not the current step")
    add_persona_flag(decide)
    decide.set_defaults(handler=_decide)

    result = sub.add_parser("result", help="record the evaluation result of a training run (owner of the request)",
                            description="Record how a training run of this request scored; the monthly report shows "
                                        "it beside the job's time, GPU-hours and energy.")
    result.add_argument("id", type=record_id, help="request id of the training allocation")
    result.add_argument("--metric", required=True, help="evaluation metric, e.g. eval_loss, accuracy, bleu")
    result.add_argument("--value", required=True, help="the metric's value")
    direction = result.add_mutually_exclusive_group(required=True)
    direction.add_argument("--higher-is-better", dest="higher_is_better", action="store_true", default=None)
    direction.add_argument("--lower-is-better", dest="higher_is_better", action="store_false")
    result.add_argument("--dataset", required=True, help="dataset or benchmark the metric was measured on")
    result.add_argument("--baseline", help="the value before this run (e.g. the base model's)")
    result.add_argument("--run", default="", help="which run (name or id)")
    result.add_argument("--note", default="")
    add_persona_flag(result)
    result.set_defaults(handler=_result)

    results = sub.add_parser("results", help="training results recorded for a request")
    results.add_argument("id", type=record_id)
    add_persona_flag(results)
    results.set_defaults(handler=_results)

    precheck = sub.add_parser("precheck", help="check a form without saving it: missing fields, compliance, "
                                               "capacity, approval route")
    precheck.add_argument("--file", required=True, help="the form as a JSON object (fields of IntakeForm)")
    add_persona_flag(precheck)
    precheck.set_defaults(handler=_precheck)

    draft = sub.add_parser("draft", help="drafts: save (new or resumed), print the form, submit",
                           description="Save a form as a draft (complete or not), print a draft's form to edit it, "
                                       "save it again under the same id, submit it.")
    dsub = draft.add_subparsers(dest="draft_command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    dsave = dsub.add_parser("save", help="save a form (JSON file) as a new draft, or over draft --id N")
    dsave.add_argument("--file", required=True, help="the form as a JSON object (fields of IntakeForm)")
    dsave.add_argument("--id", type=record_id, help="the draft to resume (its form is replaced)")
    add_persona_flag(dsave)
    dsave.set_defaults(handler=_draft_save)
    dform = dsub.add_parser("form", help="print a draft's form as JSON (edit it, then draft save --id N)")
    dform.add_argument("id", type=record_id, help="draft id")
    add_persona_flag(dform)
    dform.set_defaults(handler=_draft_form)
    dsubmit = dsub.add_parser("submit", help="submit a draft (optionally with a new form first)")
    dsubmit.add_argument("id", type=record_id, help="draft id")
    dsubmit.add_argument("--file", help="replace the draft's form with this JSON file before submitting")
    dsubmit.add_argument("--queue", action="store_true", help="queue the request if the pool lacks the GPUs")
    add_persona_flag(dsubmit)
    dsubmit.set_defaults(handler=_draft_submit)

    for name, help_, handler in (
            ("timeline", "the audit events of a request: who did what, when, why", _timeline),
            ("claim", "take a submitted or queued request into review (ops)", _claim),
            ("feasibility", "the pre-filled feasibility checklist of a request (reviewers)", _feasibility)):
        p = sub.add_parser(name, help=help_)
        p.add_argument("id", type=record_id, help="request id")
        add_persona_flag(p)
        p.set_defaults(handler=handler)

    cancel = sub.add_parser("cancel", help="withdraw your request, or cancel one (ops); a granted allocation is released")
    cancel.add_argument("id", type=record_id, help="request id")
    cancel.add_argument("--reason", required=True, help="why (required)")
    add_persona_flag(cancel)
    cancel.set_defaults(handler=_cancel)

    pending = sub.add_parser("pending", help="my approval queue: open requests whose current step waits for my role")
    add_persona_flag(pending)
    pending.set_defaults(handler=_pending)


def _read_form(path: str) -> dict[str, Any]:
    """The form in the JSON file ``path``: a regular file of at most ``max_form_file_bytes``, JSON
    within the limits of :func:`core.cli.inputs.loads_json`, an object. InputError naming the file."""
    data = loads_json(read_file(path, field=path, max_bytes=int(limit("max_form_file_bytes"))), field=path)
    if not isinstance(data, dict):
        raise InputError("lifecycle.form_not_object", field=path)
    return data


def _line(r: dict[str, Any], lang: str) -> str:
    return (f"{r['number'] or '#' + str(r['id'])}  {translate('status.' + r['status'], lang)}  {r['pool']}  "
            f"{r['approved_gpus'] or r['requested_gpus']} GPU × {r['approved_days'] or r['duration_days']} d  "
            f"{r['created_by']}")


def _step_line(step: dict[str, Any], lang: str) -> str:
    return translate("cli.req.step", lang, seq=step["seq"], role=role_name(step["role"], lang),
                     status=step_status_name(step["status"], lang), by=step["decided_by"] or "", reason=step["reason"] or "")


def _route(r: dict[str, Any], lang: str) -> str:
    message = r["tier_message"]
    return translate("apply.route", lang, rule=tier_name(r["tier"], lang, message),
                     text=translate(message["key"], lang, **message["params"]), days=r["expected_review_working_days"] or 0)


def _detail(r: dict[str, Any], lang: str) -> str:
    lines = [_line(r, lang)]
    if r.get("tier_message"):
        lines.append(_route(r, lang))
    for flag in r.get("flags") or []:
        lines.append(f"! {translate(flag['key'], lang, **flag['params'])}")
    lines += [_step_line(step, lang).rstrip() for step in r.get("steps") or []]
    if r.get("claim_deadline"):
        lines.append(translate("cli.req.claim_by", lang, deadline=f"{r['claim_deadline']:%Y-%m-%d %H:%M}"))
    return "\n".join(lines)


def _event_line(e: dict[str, Any], lang: str) -> str:
    parts = [f"{e['at']:%Y-%m-%d %H:%M}", e["actor"], action_name(e["action"], lang), event_change(e, lang), reason_text(e, lang)]
    return "  " + " ".join(p for p in parts if p)


def _submit(args: argparse.Namespace) -> int:
    actor = persona(args.persona)
    form = _read_form(args.file)
    sessions = open_sessions()
    if args.draft:
        rid = svc.save_draft(sessions=sessions, actor=actor, form=form)
        result = svc.get_request(sessions=sessions, actor=actor, request_id=rid)
    else:
        result = svc.submit(sessions=sessions, actor=actor, form=form, queue_if_short=args.queue)
    emit(args, result, lambda: _detail(result, args.lang))
    return 0


def _list(args: argparse.Namespace) -> int:
    actor = persona(args.persona)
    rows = svc.list_requests(sessions=open_sessions(), actor=actor, status=args.status)
    emit(args, rows, lambda: "\n".join(_line(r, args.lang) for r in rows) or translate("cli.req.none", args.lang))
    return 0


def _show(args: argparse.Namespace) -> int:
    actor = persona(args.persona)
    sessions = open_sessions()
    result = svc.get_request(sessions=sessions, actor=actor, request_id=args.id)
    result["timeline"] = svc.timeline(sessions=sessions, actor=actor, request_id=args.id)

    def text() -> str:
        return "\n".join([_detail(result, args.lang), *(_event_line(e, args.lang) for e in result["timeline"])])

    emit(args, result, text)
    return 0


def _decide(args: argparse.Namespace) -> int:
    actor = persona(args.persona)
    result = svc.decide(sessions=open_sessions(), actor=actor, request_id=args.id, decision=args.decision,
                        reason=args.reason, adjusted_gpus=args.gpus, adjusted_days=args.days, step=args.step)
    emit(args, result, lambda: _detail(result, args.lang))
    return 0


def _result_line(r: dict[str, Any], lang: str) -> str:
    line = translate("cli.result.line", lang, id=r["id"], run=r["run"] or "-", metric=r["metric"], value=f"{r['value']:g}",
                     dataset=r["dataset"], direction=translate("quality.higher" if r["higher_is_better"] else "quality.lower", lang))
    if r["baseline"] is not None:
        line += translate("cli.result.baseline", lang, baseline=f"{r['baseline']:g}", improvement=f"{r['improvement']:g}")
    return line


def _result(args: argparse.Namespace) -> int:
    from core.reports.results import record_result

    row = record_result(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id, metric=args.metric,
                        value=args.value, higher_is_better=args.higher_is_better, dataset=args.dataset,
                        baseline=args.baseline, run=args.run, note=args.note)
    emit(args, row, lambda: _result_line(row, args.lang))
    return 0


def _results(args: argparse.Namespace) -> int:
    from core.reports.results import list_results

    rows = list_results(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)
    emit(args, rows, lambda: "\n".join(_result_line(r, args.lang) for r in rows) or translate("cli.results.none", args.lang))
    return 0


# --------------------------------------------------------------------------- precheck and drafts


def _field_names(names: list[str], lang: str) -> str:
    return ("、" if lang == "zh-CN" else ", ").join(translate(f"form.{n}", lang) for n in names)


def _precheck_text(out: dict[str, Any], lang: str) -> str:
    lines = [translate("apply.missing", lang, fields=_field_names(out["missing"], lang)) if out["missing"]
             else translate("apply.complete", lang)]
    lines += [f"!! {translate(e['key'], lang, **e['params'])}" for e in out.get("errors", [])]  # what submit refuses
    lines += [f"{'!!' if fl.get('block') else '!'} [{fl['id']}] {translate(fl['key'], lang, **fl['params'])}"
              for fl in out["flags"]]
    cap = out["capacity"]
    if cap:
        alternatives = ", ".join(f"{a['pool']} ({a['free']})" for a in cap["alternatives"]) or "-"
        lines.append(translate("lifecycle.capacity_ok" if cap["fits"] else "lifecycle.capacity_short", lang,
                               pool=cap["pool"], free=cap["free"], requested=cap["requested"],
                               largest=cap["largest_fit"], alternatives=alternatives))
    if out["tier"]:
        tier = out["tier"]
        lines.append(translate("apply.route", lang, rule=tier_name(tier["id"], lang, tier),
                               text=translate(tier["key"], lang, **tier["params"]),
                               days=tier["expected_review_working_days"]))
    return "\n".join(lines)


def _precheck(args: argparse.Namespace) -> int:
    actor = persona(args.persona)
    out = svc.precheck(sessions=open_sessions(), actor=actor, form=_read_form(args.file))
    emit(args, out, lambda: _precheck_text(out, args.lang))
    return 0


def _draft_save(args: argparse.Namespace) -> int:
    actor = persona(args.persona)
    form = _read_form(args.file)
    sessions = open_sessions()
    rid = svc.save_draft(sessions=sessions, actor=actor, form=form, request_id=args.id)
    view = svc.get_request(sessions=sessions, actor=actor, request_id=rid)
    emit(args, view, lambda: translate("cli.draft.saved", args.lang, id=rid, persona=actor.id))
    return 0


def _a_draft(sessions, actor: Identity, request_id: int) -> dict[str, Any]:
    """The draft ``request_id`` of ``actor``'s; refused (exit 2) when it is no longer a draft."""
    view = svc.get_request(sessions=sessions, actor=actor, request_id=request_id)
    if view["status"] != "draft":
        raise ComputeLoopError("lifecycle.not_a_draft", number=view["number"] or view["id"],
                               status=Msg(f"status.{view['status']}"))
    return view


def _draft_form(args: argparse.Namespace) -> int:
    view = _a_draft(open_sessions(), persona(args.persona), args.id)
    # always JSON: the form is what one edits and saves again with ``draft save --id N``
    args.json = True
    emit(args, view["form"], lambda: "")
    return 0


def _draft_submit(args: argparse.Namespace) -> int:
    actor = persona(args.persona)
    form = _read_form(args.file) if args.file else None
    sessions = open_sessions()
    _a_draft(sessions, actor, args.id)
    result = svc.submit(sessions=sessions, actor=actor, form=form, request_id=args.id, queue_if_short=args.queue)
    emit(args, result, lambda: _detail(result, args.lang))
    return 0


# --------------------------------------------------------------------------- review and the request's life


def _timeline(args: argparse.Namespace) -> int:
    events = svc.timeline(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)
    emit(args, events, lambda: "\n".join(_event_line(e, args.lang) for e in events)
         or translate("cli.req.no_events", args.lang))
    return 0


def _claim(args: argparse.Namespace) -> int:
    result = svc.claim(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)
    emit(args, result, lambda: _detail(result, args.lang))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    result = svc.cancel(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id, reason=args.reason)
    emit(args, result, lambda: _detail(result, args.lang))
    return 0


def _feasibility_text(items: list[dict[str, Any]], lang: str) -> str:
    return "\n".join(f"[{translate('cli.feasibility.' + i['status'], lang)}] {translate('feasibility.item.' + i['id'], lang)}: "
                     f"{translate(i['key'], lang, **i['params'])}" for i in items)


def _feasibility(args: argparse.Namespace) -> int:
    items = svc.feasibility(sessions=open_sessions(), actor=persona(args.persona), request_id=args.id)
    emit(args, items, lambda: _feasibility_text(items, args.lang))
    return 0


def _pending_text(r: dict[str, Any], lang: str) -> str:
    lines = [_line(r, lang)]
    step = next((st for st in r["steps"] if st["status"] == "pending"), None)
    if step is not None:
        lines.append(translate("cli.req.waiting_for", lang, seq=step["seq"], total=len(r["steps"]),
                               role=role_name(step["role"], lang)))
    if r["claimed_by"]:
        lines.append(translate("cli.req.claimed_by", lang, who=r["claimed_by"]))
    elif r["claim_deadline"]:
        lines.append(translate("cli.req.claim_by", lang, deadline=f"{r['claim_deadline']:%Y-%m-%d %H:%M}"))
    return "\n".join(lines)


def _pending(args: argparse.Namespace) -> int:
    rows = svc.pending_approvals(sessions=open_sessions(), actor=persona(args.persona))
    emit(args, rows, lambda: "\n".join(_pending_text(r, args.lang) for r in rows) or translate("cli.req.none", args.lang))
    return 0
