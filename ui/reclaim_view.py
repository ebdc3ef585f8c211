"""Views of reclaim (资源回收): the section switcher, expiring allocations, extension requests with
the pool's pressure, reclaim candidates with their owners and the black list beside them (why an
entry is not a candidate), reclaim records (dry run → approval → execute), the L1
pool review (ops), and the owner's return / extension section.

Only the chosen section is rendered, so only its data is read on a run (no work in hidden tabs)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.clock import utc_today
from core.identity import OPS_ROLES, Identity
from core.org import load_org
from core.reclaim import services as svc
from core.reclaim.black_list import black_list_reasons
from core.reclaim.policy import load_policy
from core.reclaim.services import REVIEW_KINDS
from core.reclaim.states import CANDIDATE, PLANS
from core.reclaim.warnings import month_bounds, previous_month
from core.reports.tables import entity_name
from ui.board_view import _stamp as board_stamp
from ui.builtin_text import choose
from ui.context import ctx, me
from ui.errors import guarded
from ui.i18n import current_lang, t
from ui.names import k8s_kind, people, person, project_name
from ui.warnings_view import owner_columns
from ui.widget_state import step_keys


def is_ops() -> bool:
    """True for ops leads and admins."""
    return me().role in OPS_ROLES


def _done(key: str) -> None:
    st.session_state["reclaim_done"] = key


SECTIONS: tuple[str, ...] = ("own", "expiring", "extensions", "candidates", "records", "pool_review")
OPS_ONLY = frozenset({"pool_review"})


def sections() -> list[str]:
    """The sections the current identity may open, in order (the pool review is for ops)."""
    return [k for k in SECTIONS if k not in OPS_ONLY or is_ops()]


def section_picker() -> str:
    """The section switcher; the chosen section (default: the first)."""
    keys = sections()
    if st.session_state.get("reclaim_section") not in keys:
        st.session_state.pop("reclaim_section", None)  # e.g. ops-only section after a persona switch
    labels = {k: t(f"reclaim.tab.{k}") for k in keys}
    chosen = st.segmented_control(t("reclaim.section"), keys, format_func=labels.get, default=keys[0],
                                  selection_mode="single", key="reclaim_section", label_visibility="collapsed")
    return chosen if chosen in keys else keys[0]


def feedback() -> None:
    """The confirmation of the last action."""
    key = st.session_state.pop("reclaim_done", None)
    if key:
        st.success(t(key))


def expiring() -> None:
    """Allocations ending within two weeks: days left, extension deadline, pool pressure."""
    rows = svc.expiring_allocations(sessions=ctx().sessions, actor=me())
    if not rows:
        st.info(t("reclaim.expiring_empty"), icon=":material/event_available:")
        return
    st.dataframe(pd.DataFrame([{
        t("reclaim.col.number"): r["number"], t("reclaim.col.owner"): person(r["owner"]), t("reclaim.col.namespace"): r["namespace"],
        t("reclaim.col.gpus"): r["gpus"], t("reclaim.col.ends_on"): r["ends_on"], t("reclaim.col.days_left"): r["days_left"],
        t("reclaim.col.deadline"): r["extension_deadline"], t("reclaim.col.free"): r["free"],
        t("reclaim.col.queue"): r["queue_length"],
    } for r in rows]), hide_index=True, width="stretch")


def _decide(extension_id: int, approve: bool) -> None:
    with guarded():
        svc.decide_extension(sessions=ctx().sessions, actor=me(), extension_id=extension_id, approve=approve,
                             reason=st.session_state.get("ext_reason", ""))
        _done("reclaim.saved")


def extensions() -> None:
    """Extension requests with the pool's free GPUs and queue; ops decide the pending ones."""
    rows = svc.list_extensions(sessions=ctx().sessions, actor=me())
    if not rows:
        st.info(t("reclaim.extensions_empty"), icon=":material/more_time:")
        return
    st.dataframe(pd.DataFrame([{
        t("reclaim.col.id"): r["id"], t("reclaim.col.owner"): person(r["requested_by"]), t("reclaim.col.days"): r["days"],
        t("reclaim.col.reason"): r["reason"], t("reclaim.col.status"): t(f"reclaim.ext.{r['status']}"),
        t("reclaim.col.ends_on"): r["ends_on_after"] or r["ends_on_before"], t("reclaim.col.free"): r["pressure_now"]["free"],
        t("reclaim.col.queue"): r["pressure_now"]["queue_length"],
    } for r in rows]), hide_index=True, width="stretch")
    pending = [r for r in rows if r["status"] == "pending"]
    if is_ops() and pending:
        labels = {r["id"]: f"#{r['id']} · {person(r['requested_by'])} · +{r['days']}" for r in pending}
        with st.form("ext_decide"):
            chosen = st.selectbox(t("reclaim.pick_extension"), list(labels), format_func=labels.get,
                                  placeholder=choose(), key="ext_pick")
            st.text_input(t("reclaim.decision_reason"), key="ext_reason")
            c1, c2 = st.columns(2)
            c1.form_submit_button(t("reclaim.approve"), on_click=lambda: _decide(st.session_state["ext_pick"], True))
            c2.form_submit_button(t("reclaim.refuse"), on_click=lambda: _decide(st.session_state["ext_pick"], False))
            _ = chosen


def _move(candidate_id: int, keys: dict[str, str]) -> None:
    s = st.session_state
    with guarded():
        plan = s.get(keys["plan"])
        svc.move_candidate(sessions=ctx().sessions, actor=me(), candidate_id=candidate_id, to=s[keys["to"]],
                           note=s.get(keys["note"], ""), plan=plan,
                           plan_gpus=s.get(keys["gpus"]) if plan == "scale_down" else None)
        _done("reclaim.saved")


def _plan_candidate(candidate_id: int) -> None:
    with guarded():
        svc.plan_candidate(sessions=ctx().sessions, actor=me(), candidate_id=candidate_id)
        _done("reclaim.planned")


def candidates() -> None:
    """Inference reclaim candidates with their owners; ops move them along review → contact → plan
    → execute. Below them, the month's black list and why each entry is not a candidate."""
    rows = svc.list_candidates(sessions=ctx().sessions, actor=me())
    if not rows:
        st.info(t("reclaim.candidates_empty"), icon=":material/recycling:")
    else:
        st.dataframe(pd.DataFrame([{
            t("reclaim.col.id"): r["id"], t("reclaim.col.month"): r["month"], t("reclaim.col.namespace"): r["namespace"],
            **owner_columns(r), t("reclaim.col.gpus"): r["gpus"], t("reclaim.col.days_counted"): r["days_counted"],
            t("reclaim.col.peak_util"): f"{(r['max_peak_util'] or 0):.0%}", t("reclaim.col.peak_mem"): f"{(r['max_peak_mem'] or 0):.0%}",
            t("reclaim.col.status"): t(f"reclaim.cand.{r['status']}"), t("reclaim.col.plan"): t(f"reclaim.plan.{r['plan']}") if r["plan"] else "-",
        } for r in rows]), hide_index=True, width="stretch")
        if is_ops():
            _candidate_actions(rows)
    black_list_section()


def _candidate_actions(rows: list[dict]) -> None:
    open_rows = {r["id"]: r for r in rows if CANDIDATE[r["status"]]}
    if not open_rows:
        return
    labels = {i: f"#{i} · {r['namespace']}" for i, r in open_rows.items()}
    chosen = st.selectbox(t("reclaim.pick_candidate"), list(labels), format_func=labels.get,
                          placeholder=choose(), key="cand_pick")
    row = open_rows[chosen]
    keys = step_keys("cand", chosen, row["status"], names=("to", "plan", "gpus", "note"))
    # the move forward first (the default), dismissing last: a dismissed candidate is closed for good
    nexts = sorted((s for s in CANDIDATE[row["status"]] if s != "executed"), key=lambda s: (s == "dismissed", s))
    if nexts:
        with st.form("cand_move"):
            to_labels = {s: t(f"reclaim.cand.{s}") for s in nexts}
            plan_labels = {p: t(f"reclaim.plan.{p}") for p in PLANS}
            st.selectbox(t("reclaim.next"), list(to_labels), format_func=to_labels.get,
                         placeholder=choose(), key=keys["to"])
            st.selectbox(t("reclaim.col.plan"), list(plan_labels), format_func=plan_labels.get,
                         placeholder=choose(), key=keys["plan"])
            st.number_input(t("reclaim.release_gpus"), min_value=1, value=1, step=1, key=keys["gpus"])
            st.text_input(t("reclaim.note"), key=keys["note"])
            st.form_submit_button(t("reclaim.apply"), on_click=_move, args=(chosen, keys))
    if row["status"] == "plan_agreed" and not row["reclaim_record_id"] and row["request_id"] is not None:
        st.button(t("reclaim.dry_run"), on_click=_plan_candidate, args=(chosen,))


def reasons_text(reasons: list[dict]) -> str:
    """Why a service is not a reclaim candidate, in words (core.reclaim.candidates reason keys)."""
    return t("reclaim.why.separator").join(
        t(f"reclaim.why.{r['key']}", **{k: v for k, v in r.items() if k != "key"}) for r in reasons)


def why_frame(rows: list[dict]) -> pd.DataFrame:
    """The black-list namespaces: entry, lists, utilisation, owner, candidate or why not."""
    lang = current_lang()
    return pd.DataFrame([{
        t("reclaim.why.col.entry"): entity_name(r["entity"], lang), t("reclaim.col.namespace"): r["namespace"],
        t("reclaim.why.col.lists"): t("uitext.list_separator").join(t(f"reports.list.{x}") for x in r["lists"]),
        t("reclaim.why.col.util"): "-" if r["util"] is None else f"{r['util']:.1%}", **owner_columns(r),
        t("reclaim.why.col.candidate"): (t(f"reclaim.cand.{r['candidate']['status']}") if r["candidate"]
                                         else t("reclaim.why.not_candidate")),
        t("reclaim.why.col.reasons"): reasons_text(r["reasons"]) or "-",
    } for r in rows])


@st.cache_data(max_entries=32, show_spinner=False)
def _black_list(stamp: tuple, actor: Identity, month: str) -> dict:
    # cached like the board (under the newest change and the board's time slot): it reads the
    # month's rollups of every black-listed namespace
    return black_list_reasons(sessions=ctx().sessions, actor=actor, month=month)


def black_list_section() -> None:
    """The month's published black list: each namespace a reclaim candidate, or why not."""
    st.subheader(t("reclaim.why.title"))
    st.caption(t("reclaim.why.caption", threshold=load_policy().candidate_peak_below))
    month = st.selectbox(t("reclaim.why.month"), _months(), placeholder=choose(), key="why_month")
    out = _black_list(board_stamp(), me(), month)
    if out["report"] is None:
        st.info(t("reclaim.why.no_board", month=month), icon=":material/campaign:")
        return
    st.caption(t("reclaim.why.board", month=month, version=out["report"]["version"]))
    if not out["rows"]:
        st.info(t("reclaim.why.empty", month=month), icon=":material/checklist:")
        return
    st.dataframe(why_frame(out["rows"]), hide_index=True, width="stretch")


def objects_table(refs: list[dict]) -> pd.DataFrame:
    """The Kubernetes objects a reclaim deletes (or deleted): kind in words, name, namespace."""
    return pd.DataFrame([{
        t("uitext.k8s.kind"): k8s_kind(r.get("kind")),
        t("uitext.k8s.name"): r.get("name") or t("uitext.k8s.all"), t("reclaim.col.namespace"): r.get("namespace") or "-",
    } for r in refs], columns=[t("uitext.k8s.kind"), t("uitext.k8s.name"), t("reclaim.col.namespace")])


def record_reason(reason: str | None) -> str:
    """A reclaim record's reason: the system's ("expired", "candidate:<month>") in words, a person's as written."""
    if not reason:
        return "-"
    if reason == "expired":
        return t("uitext.reclaim_reason.expired")
    if reason.startswith("candidate:"):
        return t("uitext.reclaim_reason.candidate", month=reason.partition(":")[2])
    return reason


def _approve(record_id: int) -> None:
    with guarded():
        svc.approve_reclaim(sessions=ctx().sessions, actor=me(), record_id=record_id,
                            note=st.session_state.get("rec_note", ""))
        _done("reclaim.saved")


def _execute(record_id: int) -> None:
    with guarded():
        svc.execute_reclaim(sessions=ctx().sessions, actor=me(), record_id=record_id)
        _done("reclaim.executed")


def records() -> None:
    """Reclaim records (回收清单); a planned one shows its dry run, approvals and the execute button."""
    rows = svc.list_records(sessions=ctx().sessions, actor=me())
    if not rows:
        st.info(t("reclaim.records_empty"), icon=":material/inventory:")
        return
    st.dataframe(pd.DataFrame([{
        t("reclaim.col.id"): r["id"], t("reclaim.col.kind"): t(f"reclaim.kind.{r['kind']}"),
        t("reclaim.col.namespace"): r["namespace"], t("reclaim.col.owner"): person(r["owner"]),
        t("reclaim.col.gpus"): r["release_gpus"], t("reclaim.col.status"): t(f"reclaim.rec.{r['status']}"),
        t("reclaim.col.reason"): record_reason(r["reason"]), t("reclaim.col.voluntary"): "✓" if r["voluntary"] else "",
        t("reclaim.col.approvals"): people(a["actor"] for a in r["approvals"]),
        t("reclaim.col.created"): f"{r['created_at']:%Y-%m-%d}",
    } for r in rows]), hide_index=True, width="stretch")
    labels = {r["id"]: f"#{r['id']} · {r['namespace']}" for r in rows}
    chosen = st.selectbox(t("reclaim.pick_record"), list(labels), format_func=labels.get,
                          placeholder=choose(), key="rec_pick")
    rec = next(r for r in rows if r["id"] == chosen)
    st.markdown(t("reclaim.deleted_now"))
    st.dataframe(objects_table(rec["deleted"] or rec["planned"]), hide_index=True, width="stretch")
    if rec["data_planned"]:
        st.markdown(t("reclaim.deleted_later", due=rec["data_due_on"] or "-"))
        st.dataframe(objects_table(rec["data_deleted"] or rec["data_planned"]), hide_index=True, width="stretch")
    if is_ops() and rec["status"] == "planned":
        st.text_input(t("reclaim.note"), key="rec_note")
        c1, c2 = st.columns(2)
        c1.button(t("reclaim.approve"), on_click=_approve, args=(chosen,))
        c2.button(t("reclaim.execute"), on_click=_execute, args=(chosen,), type="primary")


def _extend(request_id: int) -> None:
    with guarded():
        svc.request_extension(sessions=ctx().sessions, actor=me(), request_id=request_id,
                              days=int(st.session_state.get("own_days", 1)), reason=st.session_state.get("own_reason", ""))
        _done("reclaim.extension_filed")


def _preview_return(request_id: int) -> None:
    with guarded():
        st.session_state["own_return_preview"] = svc.preview_return(sessions=ctx().sessions, actor=me(),
                                                                    request_id=request_id)


def _return(request_id: int, reason: str) -> None:
    st.session_state.pop("own_return_preview", None)
    with guarded():
        svc.return_allocation(sessions=ctx().sessions, actor=me(), request_id=request_id, reason=reason)
        _done("reclaim.returned")


def _return_preview() -> None:
    """The dry run of a return: what goes now, what goes after the retention notice; confirm or keep."""
    preview = st.session_state.get("own_return_preview")
    if not preview:
        return
    st.warning(t("reclaim.return_preview", namespace=preview["namespace"], gpus=preview["gpus"]))
    st.dataframe(objects_table(preview["planned"]), hide_index=True, width="stretch")
    if preview["data_planned"]:
        st.markdown(t("reclaim.deleted_later", due=preview["data_due_on"] or "-"))
        st.dataframe(objects_table(preview["data_planned"]), hide_index=True, width="stretch")
    reason = st.session_state.get("own_reason", "")
    c1, c2 = st.columns(2)
    c1.button(t("reclaim.return_confirm"), type="primary", on_click=_return, args=(preview["request_id"], reason))
    c2.button(t("reclaim.return_keep"), on_click=lambda: st.session_state.pop("own_return_preview", None))


def owner_section() -> None:
    """The owner's own active allocations: request an extension, or return them (退订)."""
    from core.lifecycle import provisioning

    mine = [r for r in provisioning.list_allocations(sessions=ctx().sessions, actor=me(), status="active")
            if r["created_by"] == me().id]
    if not mine:
        st.info(t("reclaim.own_empty"), icon=":material/inventory_2:")
        return
    labels = {r["request_id"]: f"{r['number']} · {r['namespace']} · {r['gpus']} GPU · → {r['end']}" for r in mine}
    with st.form("own_form"):
        chosen = st.selectbox(t("reclaim.pick_own"), list(labels), format_func=labels.get,
                              placeholder=choose(), key="own_pick")
        longest = load_policy().extension_max_days
        st.number_input(t("reclaim.col.days"), min_value=1, max_value=longest, value=1, step=1,
                        key="own_days")
        st.text_area(t("reclaim.col.reason"), key="own_reason")
        c1, c2 = st.columns(2)
        c1.form_submit_button(t("reclaim.request_extension"), on_click=lambda: _extend(st.session_state["own_pick"]))
        c2.form_submit_button(t("reclaim.return"), on_click=lambda: _preview_return(st.session_state["own_pick"]))
        _ = chosen
    _return_preview()


# --------------------------------------------------------------------------- L1 pool review (ops)


def _months(today=None, count: int = 12) -> list[str]:
    """The last ``count`` complete months, newest first."""
    day = today or utc_today()
    out = []
    for _ in range(count):
        month = previous_month(day)
        out.append(month)
        day = month_bounds(month)[0]
    return out


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _add_review(pool_id: str, month: str) -> None:
    with guarded():
        kind = st.session_state.get("pr_kind", "note")
        svc.add_pool_review(sessions=ctx().sessions, actor=me(), pool_id=pool_id, month=month, kind=kind,
                            text=st.session_state.get("pr_text", ""),
                            request_id=st.session_state.get("pr_request") if kind != "note" else None,
                            gpus=int(st.session_state.get("pr_gpus") or 0) if kind != "note" else None,
                            target_pool=st.session_state.get("pr_target") if kind == "transfer" else None)
        _done("reclaim.saved")


def pool_review_section() -> None:
    """Monthly review per L1 model-family pool: allocated vs used GPU-hours (daily rollups), the
    allocations behind them, the month's notes and proposals, and a form to add one."""
    months = _months()
    month = st.selectbox(t("reclaim.review.month"), months, placeholder=choose(), key="pr_month")
    pools = svc.pool_review(sessions=ctx().sessions, actor=me(), month=month)
    if not pools:
        st.info(t("reclaim.review.empty"), icon=":material/hub:")
        return
    st.dataframe(pd.DataFrame([{
        t("reclaim.review.pool"): p["pool"], t("reclaim.review.kind"): t(f"pool_kind.{p['kind']}"),
        t("reclaim.review.size"): p["gpus"], t("reclaim.review.held"): p["held"],
        t("reclaim.review.allocated_h"): round(p["allocated_gpu_hours"], 1),
        t("reclaim.review.used_h"): round(p["used_gpu_hours"], 1), t("reclaim.review.ratio"): _ratio(p["use_ratio"]),
        t("reclaim.review.entries"): len(p["entries"]),
    } for p in pools]), hide_index=True, width="stretch")
    kind_of = {p["pool"]: t(f"pool_kind.{p['kind']}") for p in pools}
    labels = {pool_id: f"{pool_id} · {kind}" for pool_id, kind in kind_of.items()}
    chosen = st.selectbox(t("reclaim.review.pick_pool"), list(labels), format_func=labels.get,
                          placeholder=choose(), key="pr_pool")
    pool = next(p for p in pools if p["pool"] == chosen)
    c1, c2, c3 = st.columns(3)
    c1.metric(t("reclaim.review.allocated_h"), f"{pool['allocated_gpu_hours']:,.0f}")
    c2.metric(t("reclaim.review.used_h"), f"{pool['used_gpu_hours']:,.0f}")
    c3.metric(t("reclaim.review.ratio"), _ratio(pool["use_ratio"]))
    if pool["allocations"]:
        st.dataframe(pd.DataFrame([{
            t("reclaim.col.number"): a["number"], t("reclaim.col.namespace"): a["namespace"],
            t("reclaim.review.project"): project_name(a["project"]), t("reclaim.col.owner"): person(a["owner"]), t("reclaim.col.gpus"): a["gpus"],
            t("reclaim.review.allocated_h"): round(a["allocated_gpu_hours"], 1),
            t("reclaim.review.used_h"): round(a["used_gpu_hours"], 1), t("reclaim.review.ratio"): _ratio(a["use_ratio"]),
        } for a in pool["allocations"]]), hide_index=True, width="stretch")
    else:
        st.caption(t("reclaim.review.no_allocations"))
    st.markdown(t("reclaim.review.log"))
    if pool["entries"]:
        st.dataframe(pd.DataFrame([{
            t("reclaim.review.entry_kind"): t(f"reclaim.review.kind_{e['kind']}"), t("reclaim.col.gpus"): e["gpus"] or "",
            t("reclaim.review.target"): e["target_pool"] or "", t("reclaim.note"): e["text"],
            t("reclaim.col.owner"): person(e["actor"]), t("reclaim.col.created"): f"{e['at']:%Y-%m-%d}",
        } for e in pool["entries"]]), hide_index=True, width="stretch")
    else:
        st.caption(t("reclaim.review.no_entries"))
    kinds = {k: t(f"reclaim.review.kind_{k}") for k in REVIEW_KINDS}
    requests = {a["request_id"]: f"{a['number']} · {a['namespace']} · {a['gpus']} GPU" for a in pool["allocations"]}
    targets = {pool_id: pool_id for pool_id in load_org().pools if pool_id != chosen}
    with st.form("pool_review_form"):
        st.radio(t("reclaim.review.entry_kind"), list(kinds), format_func=kinds.get, horizontal=True, key="pr_kind")
        st.selectbox(t("reclaim.review.request"), list(requests), format_func=requests.get, index=None,
                     placeholder=choose(), key="pr_request")
        st.number_input(t("reclaim.release_gpus"), min_value=0, value=0, step=1, key="pr_gpus")
        st.selectbox(t("reclaim.review.target"), list(targets), format_func=targets.get, index=None,
                     placeholder=choose(), key="pr_target")
        st.text_area(t("reclaim.review.text"), key="pr_text")
        st.form_submit_button(t("reclaim.review.add"), on_click=_add_review, args=(chosen, month))
