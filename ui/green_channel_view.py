"""The green channel (绿色通道): raising an emergency from the Apply form, and the emergency
approver's desk — the plan (dynamic reserve first, then least-disruptive preemption) shown before
anything happens, the decision, and the post-emergency reviews."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.lifecycle import green_channel
from core.lifecycle import services as lifecycle
from core.text import plain
from ui.builtin_text import choose
from ui.allocations_view import stop_outcome
from ui.apply_form import form_from_widgets
from ui.context import ctx, me
from ui.errors import guarded, show_outcome
from ui.i18n import render, t
from ui.names import person
from ui.times import when


def _category_labels() -> dict[str, str]:
    return {c: t(f"green.category.{c}") for c in ("grid_safety_incident", "national_strategic_task", "production_model_outage")}


def _raise() -> None:
    s = st.session_state
    s.pop("green_outcome", None)
    try:
        s["green_outcome"] = ("ok", green_channel.submit_emergency(
            sessions=ctx().sessions, actor=me(), form=form_from_widgets(),
            justification=s.get("gc_justification", ""), category=s["gc_category"]))
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        s["green_outcome"] = ("error", exc)


def emergency_box() -> None:
    """On the Apply page: send the same form through the green channel with a justification."""
    with st.expander(t("green.box_title"), icon=":material/emergency:"):
        st.caption(t("green.box_caption"))
        labels = _category_labels()
        st.selectbox(t("green.category"), list(labels), format_func=labels.get, placeholder=choose(), key="gc_category")
        st.text_area(t("green.justification"), key="gc_justification", max_chars=2000)
        st.button(t("green.raise"), type="primary", on_click=_raise)
        kind, value = st.session_state.get("green_outcome", (None, None))
        if kind == "ok":
            st.success(t("green.raised", number=value["number"]))
        elif kind == "error":
            with guarded():
                raise value


def pending_emergencies() -> list[dict]:
    """Emergency requests waiting for the emergency approver."""
    return [r for r in lifecycle.pending_approvals(sessions=ctx().sessions, actor=me()) if r.get("emergency")]


def _decide(request_id: int, approve: bool) -> None:
    s = st.session_state
    try:
        done = green_channel.decide_emergency(sessions=ctx().sessions, actor=me(), request_id=request_id,
                                              approve=approve, reason=s.get("gc_reason", ""),
                                              execute_preemption=bool(s.get("gc_confirm")))
        s["gc_done"] = "green.decided"
        s["gc_stopped"] = done.get("stopped") or []
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        s["gc_error"] = exc


def plan_and_decide(request_id: int) -> None:
    """The plan for one emergency, then approve (confirming any preemption) or reject."""
    view = lifecycle.get_request(sessions=ctx().sessions, actor=me(), request_id=request_id)
    st.subheader(t("green.request", number=view["number"], category=t(f"green.category.{view['emergency_category']}")))
    st.markdown(t("green.justification_shown", text=plain(view["justification"])))
    plan = green_channel.plan_emergency(sessions=ctx().sessions, actor=me(), request_id=request_id)
    (st.info if plan["enough"] else st.warning)(render(plan["message"]), icon=":material/route:")
    if plan["reserve"]:
        st.caption(t("green.reserve_pools"))
        st.dataframe(pd.DataFrame([{
            t("alloc.col.pool"): r["pool"], t("pools.col.model"): r["gpu"], t("alloc.col.cluster"): r["cluster"],
            t("pools.col.free_gpus"): r["free"], t("uitext.green.match"): t(f"uitext.green.match.{r['match']}"),
        } for r in plan["reserve"]]), hide_index=True, width="stretch")
    if plan["preempt"]:
        st.markdown("**" + t("green.preempt_list", freed=plan["freed"], needed=plan["needed"]) + "**")
        st.dataframe(pd.DataFrame([{
            t("req.col.number"): p["number"], t("alloc.col.gpus"): p["gpus"], t("form.priority"): t(f"priority.{p['priority']}"),
            t("green.owner"): person(p["owner"]), t("green.started"): when(p["started_at"]),
        } for p in plan["preempt"]]), hide_index=True, width="stretch")
        if not plan.get("exact", True):
            st.caption(t("green.greedy"))
    with st.form("green_decision"):
        st.text_area(t("review.reason"), key="gc_reason", max_chars=1000)
        if plan["preempt"]:
            st.checkbox(t("green.confirm_preemption", count=len(plan["preempt"])), key="gc_confirm")
        c1, c2 = st.columns(2)
        c1.form_submit_button(t("green.approve"), type="primary", on_click=_decide, args=(request_id, True))
        c2.form_submit_button(t("green.reject"), on_click=_decide, args=(request_id, False))


def feedback() -> None:
    """The outcome of the last decision or review (at the top: the emergency may have left the list)."""
    if show_outcome("gc"):
        for out in st.session_state.pop("gc_stopped", []):
            stop_outcome(out)


def _complete(request_id: int) -> None:
    try:
        green_channel.complete_review(sessions=ctx().sessions, actor=me(), request_id=request_id,
                                      notes=st.session_state.get(f"gc_review_{request_id}", ""))
        st.session_state["gc_done"] = "green.reviewed"
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        st.session_state["gc_error"] = exc


def reviews() -> None:
    """Approved emergencies whose post-emergency review is due, with the form to record it."""
    rows = green_channel.reviews_due(sessions=ctx().sessions, actor=me())
    if not rows:
        st.caption(t("green.no_reviews"))
        return
    for r in rows:
        label = t("green.review_row", number=r["number"], due=str(r.get("review_due") or "-"),
                  overdue=t("green.overdue") if r["overdue"] else "")
        with st.expander(label):
            st.text_area(t("green.review_notes"), key=f"gc_review_{r['id']}", max_chars=2000)
            st.button(t("green.complete_review"), key=f"gc_review_btn_{r['id']}", on_click=_complete, args=(r["id"],))

