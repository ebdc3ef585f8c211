"""Views of resource applications: my requests, the approval queue with its claim timer, one
request's detail (route, steps, flags, timeline), the feasibility checklist and the decision."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

import pandas as pd
import streamlit as st

from core.clock import utc_now
from core.lifecycle import services as lifecycle
from core.lifecycle.forms import IntakeForm
from core.lifecycle.labels import action_name, event_change, reason_text, step_status_name, tier_name
from core.lifecycle.services import DECISIONS
from core.notifications.links import REQUEST_PARAM
from core.text import plain
from ui.builtin_text import choose
from ui.context import ctx, me
from ui.errors import show_outcome
from ui.i18n import current_lang, render, t
from ui.names import department_name, person, project_name
from ui.times import when

STATUS_ICON = {"ok": "✅", "warn": "⚠️", "fail": "❌"}


def claim_timer(deadline: datetime | None, now: datetime | None = None) -> str:
    """Time left to claim, or how long it is overdue (ops queue's claim timer)."""
    if deadline is None:
        return "-"
    now = now or utc_now()
    seconds = int((deadline - now).total_seconds())
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return t("queue.left" if seconds >= 0 else "queue.overdue", hours=hours, minutes=minutes)


def requests_frame(rows: list[dict], *, with_timer: bool = False) -> pd.DataFrame:
    """A table of requests with translated headers and statuses."""
    return pd.DataFrame([{
        t("req.col.id"): r["id"], t("req.col.number"): r["number"] or t("req.draft_no_number"),
        t("req.col.status"): t(f"status.{r['status']}"), t("req.col.project"): project_name(r["project"]),
        t("req.col.pool"): r["pool"], t("req.col.gpus"): r["approved_gpus"] or r["requested_gpus"],
        t("req.col.days"): r["approved_days"] or r["duration_days"],
        t("req.col.tier"): tier_name(r["tier"], current_lang(), r["tier_message"]),
        t("req.col.created"): when(r["created_at"]),
        **({t("req.col.claim"): claim_timer(r["claim_deadline"]) if not r["claimed_by"] else t("queue.claimed_by", who=person(r["claimed_by"]))}
           if with_timer else {}),
    } for r in rows])


def my_requests() -> list[dict]:
    """Requests the current identity may see (their own and their department's)."""
    return lifecycle.list_requests(sessions=ctx().sessions, actor=me())


def approval_queue() -> list[dict]:
    """Requests whose current step waits for the current identity's role."""
    return lifecycle.pending_approvals(sessions=ctx().sessions, actor=me())


def select_request(rows: list[dict], frame: pd.DataFrame, key: str) -> int | None:
    """Show the table and a picker of its requests; the chosen request id or None."""
    st.dataframe(frame, hide_index=True, width="stretch")
    labels = {None: t("req.pick_none")} | {
        r["id"]: f"{r['number'] or t('req.draft_no_number')} · #{r['id']} · {project_name(r['project'])}" for r in rows}
    linked = st.query_params.pop(REQUEST_PARAM, None)  # a link from the inbox or an e-mail: open that request once
    if linked is not None and linked.isdigit() and int(linked) in labels:
        st.session_state[key] = int(linked)
    return st.selectbox(t("req.pick"), list(labels), format_func=labels.get, placeholder=choose(), key=key)


def request_detail(request_id: int) -> dict:
    """Number, status, route, approval steps, compliance flags, capacity and the timeline."""
    view = lifecycle.get_request(sessions=ctx().sessions, actor=me(), request_id=request_id)
    st.subheader(t("req.detail_title", number=view["number"] or f"#{view['id']}", status=t(f"status.{view['status']}")))
    if view.get("tier_message"):
        st.info(t("apply.route", rule=tier_name(view["tier"], current_lang()), text=render(view["tier_message"]),
                  days=view["expected_review_working_days"] or 0), icon=":material/alt_route:")
    for flag in view["flags"]:
        st.warning(render(flag))
    if view["decision_reason"]:
        st.markdown(t("req.decision", decision=t(f"lifecycle.decision.{view['decision']}") if view["decision"] else "-",
                      reason=plain(view["decision_reason"])))
    if view["steps"]:
        st.dataframe(pd.DataFrame([{
            t("req.col.step"): s["seq"], t("req.col.role"): t(f"role.{s['role']}"),
            t("req.col.status"): step_status_name(s["status"], current_lang()),
            t("req.col.by"): person(s["decided_by"]), t("req.col.at"): when(s["decided_at"]), t("req.col.reason"): s["reason"] or "",
        } for s in view["steps"]]), hide_index=True, width="stretch")
    with st.expander(t("req.timeline")):
        events, lang = lifecycle.timeline(sessions=ctx().sessions, actor=me(), request_id=request_id), current_lang()
        st.dataframe(pd.DataFrame([{
            t("req.col.at"): when(e["at"]), t("req.col.by"): person(e["actor"]), t("req.col.action"): action_name(e["action"], lang),
            t("req.col.reason"): reason_text(e, lang), t("req.col.change"): event_change(e, lang),
        } for e in events]), hide_index=True, width="stretch")
    with st.expander(t("req.form")):
        st.dataframe(intake_form_table(view["form"]), hide_index=True, width="stretch")
    return view


_CODED = {"demand_type": "demand", "demand_subtype": "subtype", "data_type": "data_type", "run_period": "run_period",
          "priority": "priority"}  # field -> catalog prefix of its codes


def _form_value(name: str, value) -> str:  # noqa: ANN001 - any value of an intake form field
    """One field of the intake form as a person reads it: codes in words, names for ids, 是/否."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return t("uitext.yes") if value else t("uitext.no")
    if name in _CODED:
        return t(f"{_CODED[name]}.{value}")
    if name == "project":
        return project_name(value)
    if name == "department":
        return department_name(value)
    if name in ("parameters", "data_tokens"):  # shown in billions, as their labels say
        return f"{float(value) / 1e9:g}"
    if name == "key_libraries":
        return ", ".join(f"{k}=={v}" if v else k for k, v in dict(value).items())
    if name == "extra_pools":
        return ", ".join(value)
    if name == "estimate_id":
        return f"#{value}"
    return str(value)


def intake_form_table(form: dict) -> pd.DataFrame:
    """The intake form (算力需求受理单) as a labelled form: every field's label and its value."""
    label = {"parameters": "form.parameters_b", "data_tokens": "form.data_tokens_b"}
    return pd.DataFrame([{
        t("uitext.form.field"): t(label.get(f.name, f"form.{f.name}")),
        t("uitext.form.value"): _form_value(f.name, form.get(f.name)),
    } for f in fields(IntakeForm) if f.name in form])


def _cancel(request_id: int) -> None:
    try:
        lifecycle.cancel(sessions=ctx().sessions, actor=me(), request_id=request_id,
                         reason=st.session_state.get("req_cancel_reason", ""))
        st.session_state["req_done"] = "req.cancelled"
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        st.session_state["req_error"] = exc


def _resume(view: dict) -> None:
    st.session_state["apply_prefill"] = {"form": view["form"], "draft_id": view["id"]}


def owner_actions(view: dict) -> None:
    """Resume a draft in the Apply page, or cancel an open request (with a reason)."""
    if view["status"] == "draft" and view["created_by"] == me().id:
        if st.button(t("req.resume"), on_click=_resume, args=(view,)):
            st.switch_page("app_pages/apply.py")
    if view["status"] in ("draft", "submitted", "in_review", "queued") and view["created_by"] == me().id:
        with st.form("cancel_request"):
            st.text_input(t("req.cancel_reason"), key="req_cancel_reason", max_chars=500)
            st.form_submit_button(t("req.cancel"), on_click=_cancel, args=(view["id"],))


def feedback() -> None:
    """The outcome of the last action on this page (shown at the top: the request may have left the list)."""
    show_outcome("req")


def feasibility_checklist(request_id: int) -> None:
    """The system-filled feasibility checklist for the reviewer."""
    items = lifecycle.feasibility(sessions=ctx().sessions, actor=me(), request_id=request_id)
    st.markdown("**" + t("review.feasibility") + "**")
    for item in items:
        st.markdown(f"{STATUS_ICON.get(item['status'], '•')} **{t('feasibility.item.' + item['id'])}** — "
                    f"{render(_with_words(item))}")


STORAGE_KINDS = ("parallel_fs", "local_ssd", "object")  # a pool's storage (data/org.yaml), in words: uitext.storage.*


def _with_words(item: dict) -> dict:
    """A checklist message whose parameters carry codes (a pool's storage kind) said in words."""
    params = dict(item.get("params") or {})
    if params.get("storage") in STORAGE_KINDS:
        params["storage"] = t(f"uitext.storage.{params['storage']}")
    return {**item, "params": params}


def _claim(request_id: int) -> None:
    try:
        lifecycle.claim(sessions=ctx().sessions, actor=me(), request_id=request_id)
        st.session_state["req_done"] = "review.claimed"
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        st.session_state["req_error"] = exc


def _decide(request_id: int, step: int | None = None) -> None:
    s = st.session_state
    try:
        decision = s["rv_decision"]
        lifecycle.decide(sessions=ctx().sessions, actor=me(), request_id=request_id, decision=decision,
                         reason=s.get("rv_reason", ""),
                         adjusted_gpus=int(s["rv_gpus"]) if decision == "approve_adjusted" else None,
                         adjusted_days=int(s["rv_days"]) if decision == "approve_adjusted" else None,
                         step=step)  # the step shown: refused if it was decided meanwhile
        s["req_done"] = "review.decided"
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        s["req_error"] = exc


def decision_form(view: dict) -> None:
    """Claim, then approve / approve with an adjusted shape / reject — always with a reason."""
    step = next((st_ for st_ in view["steps"] if st_["status"] == "pending"), None)
    if step is not None:
        st.caption(t("review.your_step", step=t(f"role.{step['role']}"), seq=step["seq"], total=len(view["steps"])))
    if not view["claimed_by"]:
        st.button(t("review.claim"), on_click=_claim, args=(view["id"],))
    decisions = {d: t(f"lifecycle.decision.{d}") for d in DECISIONS}
    with st.form("decision"):
        st.radio(t("review.decision"), list(decisions), format_func=decisions.get, key="rv_decision", horizontal=True)
        c1, c2 = st.columns(2)
        c1.number_input(t("review.adjusted_gpus"), min_value=1, max_value=100000, value=max(1, view["requested_gpus"] or 1), key="rv_gpus")
        c2.number_input(t("review.adjusted_days"), min_value=1, max_value=3660, value=max(1, view["duration_days"] or 1), key="rv_days")
        st.text_area(t("review.reason"), key="rv_reason", max_chars=1000)
        st.form_submit_button(t("review.submit"), type="primary", on_click=_decide,
                              args=(view["id"], step["seq"] if step else None))


# --------------------------------------------------------------------------- training results (训练结果)


def _record_result(request_id: int) -> None:
    from core.reports.results import record_result

    s = st.session_state
    try:
        record_result(sessions=ctx().sessions, actor=me(), request_id=request_id, metric=s.get("tr_metric", ""),
                      value=s.get("tr_value", ""), higher_is_better=bool(s.get("tr_higher", True)),
                      dataset=s.get("tr_dataset", ""), baseline=s.get("tr_baseline", ""), run=s.get("tr_run", ""),
                      note=s.get("tr_note", ""))
        s["req_done"] = "quality.recorded"
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        s["req_error"] = exc


def metric_label(name: str) -> str:
    """An evaluation metric's name in words (the ones data/quality_metrics.yaml lists); any other
    metric as its owner typed it."""
    from core.reports.results import known_metrics

    return t(f"uitext.quality_metric.{name}") if name in known_metrics() else name


def training_results(view: dict) -> None:
    """Recorded results of a training request; the owner records a new one once the allocation ran."""
    from core.reports.results import RECORDABLE, known_metrics, list_results

    if view["demand_type"] != "training":
        return
    st.markdown(f"#### {t('quality.section')}")
    rows = list_results(sessions=ctx().sessions, actor=me(), request_id=view["id"])
    if rows:
        st.dataframe(pd.DataFrame([{
            t("quality.run"): r["run"] or "-", t("quality.metric"): metric_label(r["metric"]), t("quality.value"): r["value"],
            t("quality.col.direction"): t("quality.higher" if r["higher_is_better"] else "quality.lower"),
            t("quality.dataset"): r["dataset"], t("quality.baseline"): r["baseline"],
            t("reports.col.improvement"): r["improvement"], t("quality.col.recorded_at"): when(r["recorded_at"]),
            t("quality.col.recorded_by"): person(r["recorded_by"]),
        } for r in rows]), hide_index=True, width="stretch")
    else:
        st.caption(t("quality.none_yet"))
    if view["created_by"] != me().id or view["status"] not in RECORDABLE:
        st.caption(t("quality.only_training"))
        return
    with st.form("training_result"):
        st.caption(t("quality.section_help"))
        c1, c2, c3 = st.columns(3)
        c1.text_input(t("quality.metric"), key="tr_metric", max_chars=80,
                      help=t("quality.metric_help") + " — " + ", ".join(f"{n}（{metric_label(n)}）" for n in known_metrics()))
        c2.text_input(t("quality.value"), key="tr_value", max_chars=40)
        c3.checkbox(t("quality.higher_is_better"), value=True, key="tr_higher")
        c1, c2, c3 = st.columns(3)
        c1.text_input(t("quality.dataset"), key="tr_dataset", max_chars=120)
        c2.text_input(t("quality.baseline"), key="tr_baseline", max_chars=40)
        c3.text_input(t("quality.run"), key="tr_run", max_chars=120)
        st.text_input(t("quality.note"), key="tr_note", max_chars=1000)
        st.form_submit_button(t("quality.record"), type="primary", on_click=_record_result, args=(view["id"],))
