"""Views of the queue page (队列与调整): the queue table, the policy text and the simulation panel."""

from __future__ import annotations


import altair as alt
import pandas as pd
import streamlit as st

from core import config
from core.adjust import services as adjust
from core.db.changes import cache_stamp
from core.identity import Identity
from core.org import load_org
from ui.builtin_text import choose, choose_many
from ui.charts import show
from ui.context import ctx, me
from ui.errors import guarded, show_outcome
from ui.i18n import render, t
from ui.times import when

# Reads are cached under (database, newest audit event id, time slot of data/page_cache.yaml
# queue_ttl_s): any change anywhere in the portal — including this page's defragmentation record —
# writes an audit event and so shows on the next rerun; the clock-driven figures (aging, ETAs)
# are at most one slot old.
Stamp = tuple[str, int, int]


def _stamp() -> Stamp:
    return (config.load().database_url, *cache_stamp(ctx().sessions, "queue"))


@st.cache_data(max_entries=32, show_spinner=False)
def _queue(stamp: Stamp, actor: Identity) -> dict:
    return adjust.queue(sessions=ctx().sessions, actor=actor)


@st.cache_data(max_entries=128, show_spinner=False)
def _running(stamp: Stamp, actor: Identity, pool: str) -> list[dict]:
    return adjust.running_allocations(sessions=ctx().sessions, actor=actor, pool=pool)


@st.cache_data(max_entries=128, show_spinner=False)
def _defragmentation(stamp: Stamp, actor: Identity, pool: str) -> dict:
    return adjust.simulate_defragmentation(sessions=ctx().sessions, actor=actor, pool=pool)


def load_queue() -> dict:
    """The queue as the service computes it (cached until the next change or time slot)."""
    return _queue(_stamp(), me())


def policy_explanation(data: dict) -> None:
    """The ordering rule in words, with the figures of data/queue_policy.yaml."""
    p = data["policy"]
    w = p["weights"]
    st.info(t("adjq.policy", low=w["low"], normal=w["normal"], high=w["high"], critical=w["critical"],
              rate=p["aging_rate_per_hour"], cap=p["max_aging_hours"], normal_high=p["normal_overtakes_high_h"],
              low_normal=p["low_overtakes_normal_h"]), icon=":material/info:")


def queue_table(data: dict) -> None:
    """Position, request, pool, GPUs, priority, effective priority, ETA, blocked reason and unblock hint."""
    entries = data["entries"]
    if not entries:
        st.success(t("adjq.empty"), icon=":material/task_alt:")
        return
    st.dataframe(pd.DataFrame([{
        t("adjq.col.position"): e["position"], t("adjq.col.number"): e["number"], t("adjq.col.pool"): e["pool"],
        t("adjq.col.pool_position"): e["pool_position"], t("adjq.col.gpus"): e["gpus"],
        t("adjq.col.priority"): t(f"priority.{e['priority']}"), t("adjq.col.waited"): e["waited_hours"],
        t("adjq.col.effective"): e["effective"], t("adjq.col.eta"): when(e["eta"]),
        t("adjq.col.blocked"): t(f"adjq.blocked.{e['blocked']}"), t("adjq.col.hint"): render(e["hint"]),
    } for e in entries]), hide_index=True, width="stretch")


def _pools() -> dict[str, str]:
    """The pools the acting operator may simulate on (a provincial operator: their province's)."""
    org = load_org()
    return {pid: f"{pid} · {org.pools[pid].gpu} · {org.pools[pid].gpus}" for pid in adjust.simulation_pools(me())}


def _nodes_chart(result: dict) -> alt.Chart:
    rows = []
    for phase in ("before", "after"):
        for i, free in enumerate(result[phase]["free_per_node"]):
            rows.append({"node": f"{i + 1:03d}", "free": free, "phase": t(f"adjq.sim.{phase}")})
    frame = pd.DataFrame(rows)
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("node:N", title=t("adjq.sim.node")), y=alt.Y("free:Q", title=t("adjq.sim.free")),
        xOffset="phase:N", color=alt.Color("phase:N", title=None))


def _show_result(result: dict) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric(t("adjq.sim.free_total"), result["after"]["free"], result["after"]["free"] - result["before"]["free"])
    c2.metric(t("adjq.sim.whole_nodes"), result["after"]["whole_free_nodes"],
              result["after"]["whole_free_nodes"] - result["before"]["whole_free_nodes"])
    c3.metric(t("adjq.sim.largest"), result["after"]["largest_block"],
              result["after"]["largest_block"] - result["before"]["largest_block"])
    show(_nodes_chart(result))
    st.markdown(t("adjq.sim.fits", before=", ".join(result["fits_before"]) or "-",
                  after=", ".join(result["fits_after"]) or "-"))


def _record_defrag(pool: str) -> None:
    try:
        adjust.apply_defragmentation(sessions=ctx().sessions, actor=me(), pool=pool,
                                     reason=st.session_state.get("adjq_defrag_reason", ""))
        st.session_state["adjq_done"] = "adjq.defrag.recorded"
    except Exception as exc:  # noqa: BLE001 - shown through ui.errors
        st.session_state["adjq_error"] = exc


def feedback() -> None:
    """The outcome of the last action on this page."""
    show_outcome("adjq")


def simulation_panel() -> None:
    """Pick a pool, then simulate stopping allocations (preemption) or regrouping (defragmentation)."""
    pools = _pools()
    pool = st.selectbox(t("adjq.sim.pool"), list(pools), format_func=pools.get, placeholder=choose(), key="adjq_pool")
    # Only the open tab's simulation runs: the defragmentation plan and its node chart cost a hidden
    # tab's page a second in the browser.
    pre, defrag = st.tabs([t("adjq.sim.preemption"), t("adjq.sim.defrag")], key="adjq_sim_tab", on_change="rerun")
    with pre:
        running = _running(_stamp(), me(), pool)
        labels = {a["allocation_id"]: f"{a['number']} · {a['gpus']} GPU · {t('priority.' + a['priority'])}" for a in running}
        chosen = st.multiselect(t("adjq.sim.stop"), list(labels), format_func=labels.get,
                                placeholder=choose_many(labels),
                                select_all=False, key="adjq_stop")
        if st.button(t("adjq.sim.run_preemption"), key="adjq_run_pre", disabled=not chosen):
            with guarded():
                _show_result(adjust.simulate_preemption(sessions=ctx().sessions, actor=me(), pool=pool,
                                                        allocation_ids=chosen))
        st.caption(t("adjq.sim.preemption_note"))
    with defrag:
        st.caption(t("adjq.defrag.note"))
        if defrag.open:
            _defragmentation_plan(pool)


def _defragmentation_plan(pool: str) -> None:
    """The defragmentation plan of ``pool``: before/after figures, node chart, moves and the form
    that records the plan."""
    result = _defragmentation(_stamp(), me(), pool)
    _show_result(result)
    if result["moves"]:
        st.dataframe(pd.DataFrame([{
            t("adjq.col.number"): m["number"], t("adjq.col.gpus"): m["gpus"],
            t("adjq.defrag.from"): ", ".join(f"{i + 1:03d}" for i in m["from"]),
            t("adjq.defrag.to"): ", ".join(f"{i + 1:03d}" for i in m["to"]),
        } for m in result["moves"]]), hide_index=True, width="stretch")
        with st.form("adjq_defrag"):
            st.text_input(t("adjq.defrag.reason"), key="adjq_defrag_reason", max_chars=500)
            st.form_submit_button(t("adjq.defrag.record"), on_click=_record_defrag, args=(pool,))
    else:
        st.caption(t("adjq.defrag.nothing"))
