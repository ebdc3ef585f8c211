"""Views of warnings (预警): the filtered list with each warning's owner, one warning's evidence
(altair chart, numbers, coverage, whose it is), its notes and replies, the triage actions (ops)
and the owner's reply. The owner columns are shared with the reclaim candidates."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.i18n import Msg
from core.identity import OPS_ROLES
from core.org import load_org
from core.reclaim import warning_service as svc
from core.reclaim.states import TRIAGE_STATUSES
from core.reclaim.warnings import LEVELS
from core.text import plain
from ui.builtin_text import choose
from ui.charts import show
from ui.context import ctx, me
from ui.errors import guarded, show_outcome
from ui.i18n import current_lang, t
from ui.names import department_name, person
from ui.widget_state import step_keys
from ui.times import when


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def owner_label(row: dict) -> str:
    """Who owns a warning or candidate: the person; else the mapped department; else "no owner"."""
    if row.get("owner"):
        return person(row["owner"])
    if row.get("owner_source") == "team_mapping":
        return t("warn.owner_team", department=department_name(row.get("department")))
    return t("warn.no_owner")


def unit_label(unit: str | None) -> str:
    """HQ or a province by its name in the page's language; "-" when not known."""
    found = load_org().units.get(unit or "")
    if found is None:
        return "-"
    return found.name_zh if current_lang() == "zh-CN" else found.name_en


def pool_label(pool_id: str | None) -> str:
    """A pool with its kind in words ("hq-inf · 推理"); "-" when not known."""
    pool = load_org().pools.get(pool_id or "")
    return f"{pool.id} · {t(f'pool_kind.{pool.kind}')}" if pool else "-"


def owner_columns(row: dict) -> dict[str, str]:
    """The owner, department, pool and HQ/province columns of a warning or candidate row."""
    return {t("warn.col.owner"): owner_label(row),
            t("warn.col.department"): department_name(row["department"]) if row.get("department") else "-",
            t("warn.col.pool"): pool_label(row.get("pool")), t("warn.col.unit"): unit_label(row.get("unit"))}


def owner_line(row: dict) -> str:
    """One sentence: whose the namespace was that month, and where that comes from."""
    source = row.get("owner_source") or "none"
    return t("warn.owner_line", owner=owner_label(row),
             department=department_name(row["department"]) if row.get("department") else "-",
             pool=pool_label(row.get("pool")), unit=unit_label(row.get("unit")),
             source=t(f"warn.source.{source}", number=row.get("number") or "-"))


def feedback() -> None:
    """The outcome of the last triage step or reply (once), above the list: under a status filter the
    warning may have left the list it was picked from."""
    show_outcome("warn")


def filters() -> dict:
    """Level and status filters; the chosen values (None = all)."""
    c1, c2 = st.columns(2)
    levels = {None: t("warn.all")} | {lv: t(f"warn.level.{lv}") for lv in LEVELS}
    statuses = {None: t("warn.all")} | {s: t(f"warn.status.{s}") for s in TRIAGE_STATUSES}
    level = c1.selectbox(t("warn.filter_level"), list(levels), format_func=levels.get,
                         placeholder=choose(), key="warn_level")
    status = c2.selectbox(t("warn.filter_status"), list(statuses), format_func=statuses.get,
                          placeholder=choose(), key="warn_status")
    return {"level": level, "status": status}


def warnings_list(level: str | None, status: str | None) -> list[dict]:
    """Warnings the current identity may read."""
    return svc.list_warnings(sessions=ctx().sessions, actor=me(), level=level, status=status)


def warnings_frame(rows: list[dict]) -> pd.DataFrame:
    """The list with translated headers."""
    return pd.DataFrame([{
        t("warn.col.id"): r["id"], t("warn.col.month"): r["month"], t("warn.col.level"): t(f"warn.level.{r['level']}"),
        t("warn.col.resource"): r["resource"], **owner_columns(r),
        t("warn.col.util"): _pct(r["util"]), t("warn.col.mem"): _pct(r["mem"]), t("warn.col.coverage"): _pct(r["coverage"]),
        t("warn.col.status"): t(f"warn.status.{r['status']}"),
    } for r in rows])


def pick(rows: list[dict]) -> int | None:
    """A picker of the listed warnings; the chosen id."""
    labels = {None: t("warn.pick_none")} | {r["id"]: f"#{r['id']} · {r['month']} · {r['resource']}" for r in rows}
    return st.selectbox(t("warn.pick"), list(labels), format_func=labels.get, placeholder=choose(), key="warn_pick")


def evidence(warning_id: int) -> dict:
    """The numbers, the coverage and the daily series chart of one warning, and its notes."""
    w = svc.get_warning(sessions=ctx().sessions, actor=me(), warning_id=warning_id)
    st.subheader(t("warn.detail", level=t(f"warn.level.{w['level']}"), resource=w["resource"], month=w["month"]))
    st.caption(owner_line(w))
    c = st.columns(4)
    c[0].metric(t("warn.col.util"), _pct(w["util"]))
    c[1].metric(t("warn.col.mem"), _pct(w["mem"]))
    c[2].metric(t("warn.gpu_hours"), f"{w['gpu_hours']:.0f}")
    c[3].metric(t("warn.col.coverage"), _pct(w["coverage"]))
    st.caption(t("warn.coverage_note", observed=w["days_observed"], days=w["days_in_scope"]))
    if w["series"]:
        frame = pd.DataFrame(w["series"])
        long = pd.concat([
            pd.DataFrame({"day": frame["day"], "value": frame["util"], "series": t("warn.col.util")}),
            pd.DataFrame({"day": frame["day"], "value": frame["mem"], "series": t("warn.col.mem")}),
        ])
        chart = alt.Chart(long).mark_line(point=True).encode(
            x=alt.X("day:T", title=t("warn.day")), y=alt.Y("value:Q", title=t("warn.ratio"), axis=alt.Axis(format="%")),
            color=alt.Color("series:N", title=None))
        show(chart)
    for n in w.get("notes", []):
        kind = t(f"warn.status.{n['after']}") if n["kind"] == "transition" else t("warn.reply")
        st.markdown(f"**{person(n['actor'])}** · {kind} · {when(n['at'])}  \n{plain(n['text'])}")
    return w


def _triage(warning_id: int, keys: dict[str, str]) -> None:
    with guarded():
        to = st.session_state[keys["to"]]
        svc.triage(sessions=ctx().sessions, actor=me(), warning_id=warning_id, to=to,
                   note=st.session_state.get(keys["note"], ""))
        # named: under a status filter the warning leaves the list it was picked from
        st.session_state["warn_done"] = Msg("warn.moved", {"id": warning_id, "status": t(f"warn.status.{to}")})


def _reply(warning_id: int) -> None:
    with guarded():
        svc.reply(sessions=ctx().sessions, actor=me(), warning_id=warning_id, text=st.session_state.get("warn_reply", ""))
        st.session_state["warn_reply"] = ""
        st.session_state["warn_done"] = "warn.saved"


def actions(w: dict) -> None:
    """Ops: the next triage step with a note. The owner: a reply."""
    if me().role in OPS_ROLES and w["next"]:
        keys = step_keys("warn", w["id"], w["status"], names=("to", "note"))
        with st.form("warn_triage"):
            labels = {s: t(f"warn.status.{s}") for s in w["next"]}
            st.selectbox(t("warn.next"), list(labels), format_func=labels.get, placeholder=choose(), key=keys["to"])
            st.text_area(t("warn.note"), key=keys["note"])
            st.form_submit_button(t("warn.apply"), on_click=_triage, args=(w["id"], keys), key="warn_apply")
    if me().id == w["owner"] or me().role == "dept_head":
        with st.form("warn_reply_form"):
            st.text_area(t("warn.reply"), key="warn_reply")
            st.form_submit_button(t("warn.send_reply"), on_click=_reply, args=(w["id"],), key="warn_send")
