"""Views of the published board (晾晒榜单): choosing a report, the headline tiles beside the water
level (above the fold on a projector), simple charts, the red and black lists labelled by what
they rank, the tables and the downloads. Reused by the report builder's preview."""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from core import config
from core.db.changes import cache_stamp
from core.identity import Identity
from core.reports import charts, export
from core.reports import service as reports
from core.reports.figures import ZERO
from core.reports.notes import definition_notes, trend_notes
from core.reports.ranked import ranked_list
from core.reports.scope import scope_name
from core.reports.tables import RANKINGS, fmt, page_rows, tables
from core.reports.tiles import Tile, comparison_note, headline_tiles, load_targets
from core.text import plain
from ui.builtin_text import choose
from ui.charts import show
from ui.context import ctx, me
from ui.i18n import current_lang, t
from ui.sources import technical_sources
from ui.times import when


# Reads are cached under (database, newest audit event id, time slot of data/page_cache.yaml
# board_ttl_s): building, publishing or correcting a report writes an audit event, so the board
# (and the report builder's preview, which reuses these views) shows it on the next rerun.
Stamp = tuple[str, int, int]


def _stamp() -> Stamp:
    return (config.load().database_url, *cache_stamp(ctx().sessions, "board"))


@st.cache_data(max_entries=64, show_spinner=False)
def _reports(stamp: Stamp, actor: Identity) -> list[dict[str, Any]]:
    return reports.list_reports(sessions=ctx().sessions, actor=actor)


@st.cache_data(max_entries=64, show_spinner=False)
def _report(stamp: Stamp, actor: Identity, report_id: int) -> dict[str, Any]:
    """The report without its snapshot, if ``actor`` may read it (else the service's refusal)."""
    return reports.get_report(sessions=ctx().sessions, actor=actor, report_id=report_id, with_snapshot=False)


@st.cache_resource(max_entries=4, show_spinner=False)
def _snapshot(stamp: Stamp, report_id: int, _actor: Identity) -> dict[str, Any]:
    """A report's snapshot, one object shared by every reader: the views only read it. (Cached as
    data, each rerun unpickled its own copy: 0.23 s and a million objects for the 15 MB snapshot of a
    100,800-GPU fleet.) Reached only after :func:`_report` has let the reader read the report."""
    return reports.get_report(sessions=ctx().sessions, actor=_actor, report_id=report_id)["snapshot"]


def report_view(report_id: int) -> dict[str, Any]:
    """One report with its snapshot for the current identity; cached until the next change."""
    stamp, actor = _stamp(), me()
    view = _report(stamp, actor, report_id)
    return {**view, "snapshot": _snapshot(stamp, report_id, actor)}


def report_list() -> list[dict[str, Any]]:
    """Reports the current identity may read (published only, unless ops); cached until the next change."""
    return _reports(_stamp(), me())


def scope_label(scope: str) -> str:
    """The report's scope in the page's language (:func:`core.reports.scope.scope_name`)."""
    return scope_name(scope, current_lang())


def choose_report(rows: list[dict[str, Any]], *, key: str) -> dict[str, Any] | None:
    """Month, scope and version selectors; the chosen report with its snapshot."""
    months = sorted({r["month"] for r in rows}, reverse=True)
    c1, c2, c3 = st.columns(3)
    month = c1.selectbox(t("board.month"), months, placeholder=choose(), key=f"{key}_month")
    scopes = sorted({r["scope"] for r in rows if r["month"] == month})
    scope_labels = {s: scope_label(s) for s in scopes}
    scope = c2.selectbox(t("board.scope"), scopes, format_func=scope_labels.get,
                         placeholder=choose(), key=f"{key}_scope")
    versions = [r for r in rows if r["month"] == month and r["scope"] == scope]
    labels = {r["id"]: t("board.version_label", version=r["version"], status=t(f"reports.status.{r['status']}"))
              for r in versions}
    chosen = c3.selectbox(t("board.version"), list(labels), format_func=labels.get,
                          placeholder=choose(), key=f"{key}_version")
    if chosen is None:
        return None
    return report_view(chosen)


def report_header(view: dict[str, Any]) -> None:
    """Title, status, publication, correction reason and data coverage."""
    snap = view["snapshot"]
    st.subheader(export._title(snap, current_lang()))
    line = t("board.published_line", version=view["version"], status=t(f"reports.status.{view['status']}"),
             when=when(view.get("published_at")), coverage=fmt(snap["coverage"]["metrics"], "pct"),
             days=snap["coverage"]["days_with_data"], total=snap["coverage"]["days"])
    # one line with the de-identification note: every line above the tiles pushes them below the fold
    st.caption(f"{line} · {t('reports.deidentified_note')}" if snap.get("deidentified") else line)
    if view.get("correction_reason"):
        st.info(t("board.correction", reason=plain(view["correction_reason"]), supersedes=view["supersedes"] or "-"),
                icon=":material/edit_note:")


def tile(container: Any, view: Tile) -> None:
    """One headline tile: the figure, its change against last month (coloured by whether the
    change is good or bad) and, when data/board_targets.yaml sets one, its target met or not."""
    box = container.container(border=True, height="stretch")
    box.metric(view.label, view.value, delta=view.delta, delta_color=view.delta_color,
               delta_arrow="off" if view.delta == ZERO else "auto", help=view.help,
               delta_description=t("board.delta.vs_last_month") if view.delta else None)
    if view.target is not None:
        box.caption(f":{'green' if view.target.met else 'red'}[{plain(view.target.text)}]")


# The tiles' figures carry their unit ("920.1 万元", "352,063 卡时"); st.metric cuts a value that
# does not fit with "…". Each tile is a CSS size container and its value's font scales with the
# tile's width (Streamlit's 2.25rem at most), so a figure fits three tiles a row beside the water
# level at 1440 px as on a projector; a label ("已分配 GPU（月均）") or the change's "较上月" that
# does not fit wraps instead of being cut. Tied to Streamlit 1.67's data-testid names (stMetric,
# stMetricValue) and the st-key-<key> class of a keyed container.
_TILE_STYLE = """<style>
.st-key-{key} [data-testid="stMetric"] {{ container-type: inline-size; }}
.st-key-{key} [data-testid="stMetricValue"] {{ font-size: clamp(1.1rem, 15cqi, 2.25rem); }}
.st-key-{key} [data-testid="stMetricLabel"] p,
.st-key-{key} [data-testid="stMetricDeltaDescription"] p {{ white-space: normal; overflow: visible; text-overflow: clip; }}
.st-key-{key} div:has(> [data-testid="stMetricDelta"]) {{ flex-wrap: wrap; row-gap: 0.25rem; }}
</style>"""


def big_numbers(snap: dict[str, Any], *, key: str) -> None:
    """The headline tiles in their groups (capacity, health, economics), three a row; the note on
    placeholder prices and, when there is no change against last month, why."""
    lang = current_lang()
    st.html(_TILE_STYLE.format(key=f"{key}_tiles"))
    with st.container(key=f"{key}_tiles"):
        for group in headline_tiles(snap, lang, load_targets()):
            st.markdown(f"**{group.title}**")
            for col, view in zip(st.columns(len(group.tiles)), group.tiles):
                tile(col, view)
    note = comparison_note(snap, lang)
    if note:
        st.caption(note)
    if snap["economics"]["placeholder_prices"]:
        st.caption(t("reports.placeholder_prices"))


def definitions(snap: dict[str, Any]) -> None:
    """What the figures mean and how changes are compared, folded away under the charts."""
    lang = current_lang()
    with st.expander(t("board.definitions")):
        for note in [*definition_notes(snap, lang), *trend_notes(snap, lang)]:
            st.caption(note)


def overview(snap: dict[str, Any], *, key: str) -> None:
    """What an executive takes in at a glance: the tiles beside the water level (one screen on a
    projector; stacked on a phone)."""
    figures_col, water_col = st.columns([3, 2], gap="medium")
    with figures_col:
        big_numbers(snap, key=key)
    show(charts.water_chart(snap, current_lang(), reports.settings().get("fonts")), water_col)


def board_charts(snap: dict[str, Any]) -> None:
    """Utilisation per project and the trend, side by side (stacked on a phone)."""
    lang = current_lang()
    fonts = reports.settings().get("fonts")
    util_col, trend_col = st.columns(2, gap="medium")
    if snap.get("entities"):
        show(charts.util_chart(snap, lang, fonts), util_col)
    show(charts.trend_chart(snap, lang, fonts), trend_col)


def ranked_lists(container: Any, snap: dict[str, Any], section: str) -> None:
    """The lists of one section, each with the figure it is ordered by."""
    lang = current_lang()
    for sec, name in RANKINGS:
        if sec != section:
            continue
        view = ranked_list(snap, section, name, lang)
        container.markdown(f"**{view.title}**")
        container.caption(view.basis)
        if not view.lines:
            container.caption(t("reports.empty_table"))
        for line in view.lines:
            container.markdown(plain(line))


def red_black_lists(snap: dict[str, Any]) -> None:
    """Red list (表扬) and black list (点名预警) side by side."""
    lang = current_lang()
    red, black = st.columns(2)
    for col, section, title in ((red, "red_list", "board.red_list"), (black, "black_list", "board.black_list")):
        col.markdown(f"### {t(title)}")
        ranked_lists(col, snap, section)
    cpu = (snap.get("top") or {}).get("cpu") or {}
    if cpu.get("available"):
        # In words here; the metric names behind it are ops' technical sources.
        st.caption(t("uitext.board.cpu_definition", coverage=fmt(cpu.get("coverage"), "pct")))
        technical_sources([export.cpu_note(snap, lang)])
    else:
        st.caption(export.cpu_note(snap, lang))
    for section in ("warnings", "reclaims"):
        if not snap[section]["available"]:
            st.caption(t(f"reports.{section}_not_available"))


def report_tables(snap: dict[str, Any]) -> None:
    """Every table in an expander each; a long one cut to its first rows (the downloads hold all)."""
    lang = current_lang()
    limit = int(reports.settings()["page_table_rows"])
    for table in tables(snap, lang):
        with st.expander(table.title(lang), expanded=table.key == "projects"):
            rows = page_rows(table, limit)
            frame = pd.DataFrame([[fmt(r.get(c), kind) for c, kind in table.columns] for r in rows],
                                 columns=table.headers(lang))
            st.dataframe(frame, hide_index=True, width="stretch")
            if len(rows) < len(table.rows):
                st.caption(t(f"board.table_cut.{'projects' if table.key == 'projects' else 'rows'}",
                             shown=fmt(len(rows), "int"), total=fmt(len(table.rows), "int")))


def downloads(view: dict[str, Any], *, key: str) -> None:
    """HTML, PDF, Excel and CSV of the report in the page's language (made when clicked)."""
    snap, lang = view["snapshot"], current_lang()
    stem = f"report-{snap['month']}-{snap['scope']}-v{view['version']}-{lang}"
    kw = {"version": view["version"], "status": view["status"]}
    c1, c2, c3, c4 = st.columns(4)
    c1.download_button(t("board.download_html"), partial(export.to_html, snap, lang, **kw), f"{stem}.html", "text/html",
                       key=f"{key}_html", on_click="ignore")
    c2.download_button(t("board.download_pdf"), partial(export.to_pdf, snap, lang, **kw), f"{stem}.pdf",
                       "application/pdf", key=f"{key}_pdf", on_click="ignore")
    c3.download_button(t("board.download_excel"), partial(export.to_excel, snap, lang), f"{stem}.xlsx",
                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key=f"{key}_xlsx",
                       on_click="ignore")
    c4.download_button(t("board.download_csv"), partial(export.to_csv, snap, lang, "projects"), f"{stem}-projects.csv",
                       "text/csv", key=f"{key}_csv", on_click="ignore")


def show_report(view: dict[str, Any], *, key: str) -> None:
    """The whole report: header, tiles beside the water level, charts, definitions, lists, downloads, tables."""
    snap = view["snapshot"]
    report_header(view)
    overview(snap, key=key)
    board_charts(snap)
    definitions(snap)
    red_black_lists(snap)
    downloads(view, key=key)
    report_tables(snap)
