"""Views of the report builder (ops): choose month and scope, preview, build the draft, publish
with or without de-identification, correct a published version with a reason, and the analysis
report's drill-downs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core import config
from core.clock import utc_today
from core.db.changes import cache_stamp
from core.identity import Identity
from core.org import load_org
from core.reports import analysis
from core.reports import service as reports
from core.reports.build import shift_month
from core.reports.notes import trend_notes
from core.reports.scope import COMPANY
from core.reports.tables import fmt
from ui.builtin_text import choose
from ui.board_view import scope_label, show_report
from ui.context import ctx, me
from ui.i18n import current_lang, t
from ui.names import person


def _default_month() -> str:
    return shift_month(utc_today().strftime("%Y-%m"), -1)


def scopes_for_me() -> list[str]:
    """Scopes the current identity may build: a provincial lead only their province."""
    actor = me()
    if actor.role == "prov_ops":
        return [actor.province]
    return [COMPANY, *load_org().units]


def feedback() -> None:
    """The message left by the last action."""
    msg = st.session_state.pop("rb_feedback", None)
    if msg:
        st.success(t(msg[0], **msg[1]), icon=":material/check_circle:")


def month_and_scope() -> tuple[str, str, bool]:
    """Month, scope and the de-identification choice."""
    c1, c2, c3 = st.columns(3)
    month = c1.text_input(t("builder.month"), value=_default_month(), key="rb_month", help=t("builder.month_help"))
    options = scopes_for_me()
    labels = {s: scope_label(s) for s in options}
    scope = c2.selectbox(t("board.scope"), options, format_func=labels.get, placeholder=choose(), key="rb_scope")
    deid = c3.checkbox(t("builder.deidentify"), value=bool(reports.settings().get("deidentify_by_default", True)),
                       key="rb_deid", help=t("builder.deidentify_help"))
    return month.strip(), scope, deid


def build_actions(month: str, scope: str, deid: bool) -> None:
    """Preview (nothing saved) and build the draft (saved, ops notified)."""
    c1, c2 = st.columns(2)
    # A report reads a month of rollups and a year of history: seconds, so each says it is working.
    if c1.button(t("builder.preview"), icon=":material/visibility:", key="rb_preview_btn"):
        with st.spinner(t("waiting.report.preview")):
            st.session_state["rb_preview"] = reports.preview(sessions=ctx().sessions, actor=me(), month=month,
                                                             scope=scope)
    if c2.button(t("builder.build_draft"), icon=":material/draft:", type="primary", key="rb_build_btn"):
        with st.spinner(t("waiting.report.build")):
            view = reports.build_draft(sessions=ctx().sessions, actor=me(), month=month, scope=scope,
                                       deidentify_on_publish=deid)
        st.session_state.pop("rb_preview", None)
        st.session_state["rb_feedback"] = ("builder.built", {"version": view["version"], "id": view["id"]})
        st.rerun()


def preview_panel() -> None:
    """The last preview, if any (not saved)."""
    snap = st.session_state.get("rb_preview")
    if snap:
        st.info(t("builder.preview_note"), icon=":material/visibility:")
        show_report({"id": 0, "version": 0, "status": "draft", "snapshot": snap, "published_at": None,
                     "correction_reason": "", "supersedes": None}, key="rb_prev")


def versions_table(rows: list[dict[str, Any]]) -> None:
    """Every version of every month and scope with its status."""
    st.dataframe(pd.DataFrame([{
        t("builder.col.id"): r["id"], t("reports.col.month"): r["month"], t("board.scope"): scope_label(r["scope"]),
        t("board.version"): r["version"], t("builder.col.status"): t(f"reports.status.{r['status']}"),
        t("builder.col.deidentified"): "✓" if r["deidentified"] else "", t("reports.col.coverage"): fmt(r["coverage"], "pct"),
        t("builder.col.reason"): r["correction_reason"] or "",
    } for r in rows]), hide_index=True, width="stretch")


def publish_or_correct(view: dict[str, Any]) -> None:
    """Publish a draft; or correct a published version (new version with the reason)."""
    if view["status"] == "draft":
        deid = st.checkbox(t("builder.deidentify"), value=view["deidentified"], key=f"rb_pub_deid_{view['id']}")
        if st.button(t("builder.publish"), type="primary", icon=":material/publish:", key=f"rb_pub_{view['id']}"):
            done = reports.publish(sessions=ctx().sessions, actor=me(), report_id=view["id"], deidentified=deid)
            st.session_state["rb_feedback"] = ("builder.published", {"version": done["version"], "id": done["id"]})
            st.rerun()
        return
    with st.form(f"rb_correct_{view['id']}"):
        reason = st.text_area(t("builder.correction_reason"), key=f"rb_reason_{view['id']}")
        if st.form_submit_button(t("builder.correct"), icon=":material/edit_note:"):
            done = reports.correct(sessions=ctx().sessions, actor=me(), report_id=view["id"], reason=reason)
            st.session_state["rb_feedback"] = ("builder.corrected", {"version": done["version"], "id": done["id"]})
            st.rerun()


def change_text(value: float | None, status: str) -> str:
    """A change as a signed percentage, or "insufficient data" when a month's coverage is too low."""
    if status == "insufficient_data":
        return t("reportfix.insufficient_data")
    return "—" if value is None else f"{value * 100:+.1f}%"


def warnings_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    """The month's warnings with translated headers, levels and statuses (no raw identifiers)."""
    return pd.DataFrame([{
        t("warn.col.level"): t(f"warn.level.{w['level']}"), t("warn.col.resource"): w["resource"],
        t("warn.col.owner"): person(w.get("owner")), t("reports.col.pool"): w.get("pool") or "—",
        t("warn.col.util"): fmt(w.get("util"), "pct"), t("warn.col.mem"): fmt(w.get("mem"), "pct"),
        t("warn.col.coverage"): fmt(w.get("coverage"), "pct"), t("warn.col.status"): t(f"warn.status.{w['status']}"),
    } for w in items])


Stamp = tuple[str, int, int]  # database, newest audit event id, time slot (data/page_cache.yaml)


@st.cache_data(max_entries=16, show_spinner=False)
def _analysis(stamp: Stamp, actor: Identity, month: str, scope: str, dim: str, value: str | None,
              year: int) -> dict[str, Any]:
    return analysis.analysis_report(sessions=ctx().sessions, actor=actor, month=month, scope=scope,
                                    drill={dim: value} if dim and value else None, year=year)


def run_analysis(month: str, scope: str, dim: str, value: str | None, year: int) -> dict[str, Any]:
    """The analysis report, cached until the next change or time slot; while it is computed (several
    seconds on a year of rollups) a status box says what it is doing, and goes once it is done."""
    stamp = (config.load().database_url, *cache_stamp(ctx().sessions, "report_builder"))
    slot = st.empty()
    with slot.status(t("waiting.analysis.running"), expanded=True):
        st.caption(t("waiting.analysis.steps", year=year))
        result = _analysis(stamp, me(), month, scope, dim, value, year)
    slot.empty()
    return result


def analysis_panel(month: str, scope: str) -> None:
    """The analysis report: trend table, warnings of the month, a drill-down, the annual summary —
    shown from the click of its button for as long as month, scope, drill-down and year stay."""
    org, lang = load_org(), current_lang()
    dims = {"": t("builder.drill_none"), **{d: t(f"builder.drill.{d}") for d in analysis.DRILL_DIMENSIONS}}
    c1, c2, c3 = st.columns(3)
    dim = c1.selectbox(t("builder.drill_dimension"), list(dims), format_func=dims.get,
                       placeholder=choose(), key="rb_dim")
    values = {"cluster": sorted(org.clusters), "model": sorted({p.gpu for p in org.pools.values()}),
              "department": sorted(org.departments)}.get(dim, [])
    value_labels = {v: (org.departments[v].name_en if lang == "en" else org.departments[v].name_zh)
                    if dim == "department" else v for v in values}
    value = c2.selectbox(t("builder.drill_value"), values, format_func=value_labels.get,
                         placeholder=choose(values), key="rb_dim_value",
                         disabled=not values)
    year = c3.number_input(t("builder.year"), min_value=2000, max_value=2100, value=int(month[:4]) if month[:4].isdigit() else utc_today().year,
                           step=1, key="rb_year")
    asked = (month, scope, dim, value, int(year))
    if st.button(t("builder.run_analysis"), icon=":material/analytics:", key="rb_analysis_btn"):
        st.session_state["rb_analysis_for"] = asked
    if st.session_state.get("rb_analysis_for") != asked:
        return
    result = run_analysis(*asked)
    st.markdown(f"#### {t('builder.trend')}")
    st.dataframe(pd.DataFrame([{
        t("builder.col.metric"): t(f"reports.col.{r['metric']}"), t("builder.col.current"): fmt(r["current"], "num"),
        t("builder.col.previous"): fmt(r["previous"], "num"), t("builder.col.last_year"): fmt(r["last_year"], "num"),
        t("builder.col.vs_previous"): change_text(r["vs_previous"], r["vs_previous_status"]),
        t("builder.col.vs_last_year"): change_text(r["vs_last_year"], r["vs_last_year_status"]),
    } for r in result["trend"]]), hide_index=True, width="stretch")
    for note in trend_notes(result["report"], current_lang()):
        st.caption(note)
    st.markdown(f"#### {t('builder.warnings')}")
    if not result["warnings"]["available"]:
        st.caption(t("reports.warnings_not_available"))
    else:
        st.dataframe(warnings_frame(result["warnings"]["items"]), hide_index=True, width="stretch")
    if result["drill_down"] is not None:
        d = result["drill_down"]
        st.markdown(f"#### {t('builder.drill_title', dimension=dims[dim], value=value_labels.get(value, value))}")
        c1, c2, c3, c4 = st.columns(4)
        c1.metric(t("reports.metric.gpus_total"), fmt(d["water_level"]["total"], "int"), border=True)
        c2.metric(t("reports.metric.util_allocated"), fmt(d["health"]["util_allocated"], "pct"), border=True)
        c3.metric(t("reports.metric.gpu_hours_used"), fmt(d["economics"]["gpu_hours_used"], "num"), border=True)
        c4.metric(t("reports.metric.coverage"), fmt(d["coverage"]["metrics"], "pct"), border=True)
    a = result["annual"]
    st.markdown(f"#### {t('builder.annual', year=a['year'])}")
    st.caption(t("builder.annual_line", months=a["months_with_data"], util=fmt(a["util_allocated"], "pct"),
                 hours=fmt(a["gpu_hours_used"], "num"), energy=fmt(a["energy_kwh"], "num"), cost=fmt(a["cost"], "num"),
                 best=a["best_month"] or "—", worst=a["worst_month"] or "—"))
    st.dataframe(pd.DataFrame([{
        t("reports.col.month"): m["month"], t("reports.col.gpu_hours_used"): fmt((m["summary"] or {}).get("gpu_hours_used"), "num"),
        t("reports.col.util_allocated"): fmt((m["summary"] or {}).get("util_allocated"), "pct"),
        t("reports.col.energy_kwh"): fmt((m["summary"] or {}).get("energy_kwh"), "num"),
        t("reports.col.cost"): fmt((m["summary"] or {}).get("cost"), "num"),
    } for m in a["months"]]), hide_index=True, width="stretch")
