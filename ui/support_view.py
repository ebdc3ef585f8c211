"""Support requests (紧急资源支援请求): provincial ops ask HQ for GPUs (the form prefilled from a
pool), HQ ops see every pool's headroom with the suggested donor and decide. The services are in
:mod:`core.adjust.support`; this module only lays them out."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from core.adjust import support
from core.clock import utc_today
from core.i18n import Msg
from core.org import load_org
from ui.builtin_text import DATE_FORMAT, choose
from ui.context import ctx, me
from ui.errors import show_outcome
from ui.i18n import t
from ui.names import person
from ui.warnings_view import pool_label, unit_label
from ui.times import when

DECIDERS = support.DECIDE_ROLES


def _call(done_key: str, call) -> None:  # noqa: ANN001 - a service call
    try:
        out = call()
        cluster = (out or {}).get("cluster") if isinstance(out, dict) else None
        # the message names the request (its number is what HQ ops and the inbox call it by)
        done = Msg(done_key, {"id": out["id"]}) if isinstance(out, dict) and "id" in out else done_key
        st.session_state["sup_done"] = "support.cluster_failed" if cluster and not cluster.get("ok") else done
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        st.session_state["sup_error"] = exc


def feedback() -> None:
    """The outcome of the last action (once)."""
    show_outcome("sup")


def _raise() -> None:
    s = st.session_state
    _call("support.raised", lambda: support.raise_request(
        sessions=ctx().sessions, actor=me(), pool=s.get("sup_pool"), gpus=int(s.get("sup_gpus") or 0),
        starts_on=s.get("sup_start"), ends_on=s.get("sup_end"), reason=s.get("sup_reason", ""),
        namespace=s.get("sup_namespace", ""), deployment=s.get("sup_deployment", "")))
    if "sup_error" not in s:  # sent: the form is emptied, so a second click does not send it again
        for key in ("sup_namespace", "sup_deployment", "sup_reason"):
            s[key] = ""


def raise_form(prefill_pool: str | None) -> None:
    """The form a provincial (or HQ) ops user sends to HQ, on one of their pools."""
    rows = support.pool_headroom(sessions=ctx().sessions, actor=me())
    pools = [r["pool"] for r in rows]
    if not pools:
        return
    st.subheader(t("support.raise_title"))
    index = pools.index(prefill_pool) if prefill_pool in pools else 0
    labels = {p: pool_label(p) for p in pools}  # labels made now: the widget's format_func is called later too
    pool = st.selectbox(t("support.field.pool"), pools, index=index, format_func=labels.get, placeholder=choose(),
                        key="sup_pool")
    st.caption(t("support.field.model", model=load_org().pools[pool].gpu))
    today = utc_today()
    with st.form("sup_raise"):
        st.number_input(t("support.field.gpus"), min_value=1, max_value=100_000, value=8, step=1, key="sup_gpus")
        c1, c2 = st.columns(2)
        c1.date_input(t("support.field.starts_on"), value=today, min_value=today, format=DATE_FORMAT,
                      key="sup_start")
        c2.date_input(t("support.field.ends_on"), value=today + timedelta(days=7), min_value=today,
                      format=DATE_FORMAT, key="sup_end")
        c1.text_input(t("support.field.namespace"), max_chars=63, key="sup_namespace")
        c2.text_input(t("support.field.deployment"), max_chars=253, key="sup_deployment")
        st.text_area(t("support.field.reason"), max_chars=support.MAX_TEXT, key="sup_reason")
        st.form_submit_button(t("support.raise_button"), type="primary", on_click=_raise)
    if me().role not in DECIDERS:
        st.caption(t("support.headroom_title"))
        st.dataframe(pd.DataFrame([{
            t("support.col.pool"): pool_label(r["pool"]), t("support.col.model"): r["gpu_model"],
            t("support.col.size"): r["size"], t("support.col.headroom"): r["headroom"]} for r in rows]),
            hide_index=True, width="stretch")


def requests_table() -> list[dict]:
    """The requests in the user's scope, newest first; returns them."""
    rows = support.list_requests(sessions=ctx().sessions, actor=me())
    st.subheader(t("support.list_title"))
    if not rows:
        st.info(t("support.none"), icon=":material/support:")
        return rows
    st.dataframe(pd.DataFrame([{
        t("support.col.id"): f"#{r['id']}",
        t("support.col.status"): t(f"support.status.{r['status']}") + (f" · {t('support.overdue')}" if r["overdue"] else ""),
        t("support.col.pool"): pool_label(r["pool"]), t("support.col.unit"): unit_label(r["unit"]),
        t("support.col.gpus"): f"{r['gpus']} × {r['gpu_model']}",
        t("support.col.window"): t("support.window", start=r["starts_on"], end=r["ends_on"]),
        t("support.col.donor"): pool_label(r["donor_pool"]),
        t("support.col.service"): "/".join(x for x in (r["namespace"], r["deployment"]) if x),
        t("support.col.raised_by"): person(r["raised_by"]),
        t("support.col.respond_by"): when(r["respond_by"]),
    } for r in rows]), hide_index=True, width="stretch")
    return rows


def _label(r: dict) -> str:
    status = t(f"support.status.{r['status']}")
    return f"#{r['id']} · {pool_label(r['pool'])} · {r['gpus']} × {r['gpu_model']} · {status}"


def _approve(request_id: int) -> None:
    s = st.session_state
    _call("support.approved", lambda: support.approve(
        sessions=ctx().sessions, actor=me(), request_id=request_id, donor_pool=s.get("sup_donor"),
        reason=s.get("sup_decision", "")))


def _reject(request_id: int) -> None:
    _call("support.rejected", lambda: support.reject(
        sessions=ctx().sessions, actor=me(), request_id=request_id, reason=st.session_state.get("sup_decision", "")))


def _give_back(request_id: int) -> None:
    _call("support.returned", lambda: support.return_transfer(
        sessions=ctx().sessions, actor=me(), request_id=request_id, reason=st.session_state.get("sup_return", "")))


def decide(rows: list[dict]) -> None:
    """HQ ops: for an open request, every pool that could give with its headroom and the suggested
    donor, then approve or reject; for a running transfer, give it back early."""
    if me().role not in DECIDERS:
        return
    st.subheader(t("support.decide_title"))
    open_rows = [r for r in rows if r["status"] == "open"]
    if not open_rows:
        st.caption(t("support.no_open"))
    else:
        by_id = {r["id"]: r for r in open_rows}
        picks = {i: _label(r) for i, r in by_id.items()}
        chosen = st.selectbox(t("support.pick"), list(picks), format_func=picks.get, placeholder=choose(), key="sup_pick")
        options = support.donor_options(sessions=ctx().sessions, actor=me(), request_id=chosen)
        st.caption(t("support.donors_caption", model=by_id[chosen]["gpu_model"]))
        st.dataframe(pd.DataFrame([{
            t("support.col.pool"): pool_label(r["pool"]), t("support.col.unit"): unit_label(r["unit"]),
            t("support.col.size"): r["size"], t("support.col.headroom"): r["headroom"],
            t("support.col.suggested"): t("support.suggested_mark") if r["pool"] == options["suggested"] else "",
        } for r in options["pools"]]), hide_index=True, width="stretch")
        if options["suggested"] is None:
            st.warning(t("support.suggested_none"), icon=":material/warning:")
        donors = [r["pool"] for r in options["pools"]]
        with st.form("sup_decide"):
            names = {p: pool_label(p) for p in donors}
            st.selectbox(t("support.donor"), donors, format_func=names.get, key="sup_donor", placeholder=choose(),
                         index=donors.index(options["suggested"]) if options["suggested"] in donors else 0)
            st.text_area(t("support.decision_reason"), max_chars=support.MAX_TEXT, key="sup_decision")
            c1, c2 = st.columns(2)
            c1.form_submit_button(t("support.approve"), type="primary", on_click=_approve, args=(chosen,))
            c2.form_submit_button(t("support.reject"), on_click=_reject, args=(chosen,))
    running = {r["id"]: r for r in rows if r["status"] in ("approved", "active")}
    if running:
        with st.expander(t("support.return_title")):
            picks = {i: _label(r) for i, r in running.items()}
            pick = st.selectbox(t("support.pick"), list(picks), format_func=picks.get, placeholder=choose(),
                                key="sup_return_pick")
            st.text_input(t("support.return_reason"), max_chars=support.MAX_TEXT, key="sup_return")
            st.button(t("support.return_button"), on_click=_give_back, args=(pick,))
