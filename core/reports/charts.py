"""The report's charts (altair): water level by GPU model, utilisation per project, trend.

Used by the pages (``st.altair_chart``) and by the HTML/PDF export (rendered to SVG with
vl-convert). Labels come from the catalogs; the font list puts a CJK font first so Chinese
renders in exports.
"""

from __future__ import annotations

import json
from typing import Any

import altair as alt
import pandas as pd

from core.i18n import translate
from core.reports.tables import entity_name


def _font(fonts: list[str] | None) -> str:
    return ", ".join(fonts or ["WenQuanYi Micro Hei", "sans-serif"])


def _config(chart: alt.Chart, fonts: list[str] | None) -> alt.Chart:
    # "fit-x": the whole chart, axis labels, title and legend included ("padding"), fits the width
    # it is given (the page's column on a projector or a phone, 520 px in exports), while the height
    # is padded as with "pad": the height is the plot's, and title, axes and legend come on top of it.
    # "pad" alone let the axis labels and legend run past the column (cut at the window's edge);
    # "fit" squeezed the water-level bars and the trend line into a few pixels under their titles.
    return (chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
            .configure(font=_font(fonts)).configure_axis(labelFontSize=13, titleFontSize=13))


# Colours by meaning, the same in every language: the scale's domain is the stable keys below and
# the legend translates them (labelExpr). A domain of translated labels sorted them by their text,
# so "已分配"/"可用" and "allocated"/"available" swapped colours between zh-CN and en.
# Reserved (reserve pools' unallocated GPUs) is in reports of schema 4 and later.
WATER_COLOURS = {"allocated": "#1f5fa8", "reserved": "#b8b8b8", "available": "#9cc7ee"}
_WATER_LABELS = {"allocated": "reports.col.allocated", "reserved": "pools.level.reserved",
                 "available": "reports.col.available"}


def _legend_labels(labels: dict[str, str]) -> str:
    """A Vega expression showing each stable key's translated label (JSON-quoted for the expression)."""
    expr = "datum.label"
    for key, label in labels.items():
        expr = f"datum.label === {json.dumps(key)} ? {json.dumps(label, ensure_ascii=False)} : ({expr})"
    return expr


def water_chart(report: dict[str, Any], lang: str, fonts: list[str] | None = None) -> alt.Chart:
    """Stacked bars per GPU model: allocated, reserved (when the report has it) and available GPUs,
    in that order, each part in the same colour in every language."""
    by_model = report["water_level"]["by_model"]
    parts = [p for p in WATER_COLOURS if p != "reserved" or any("reserved" in m for m in by_model)]
    labels = {p: translate(_WATER_LABELS[p], lang) for p in parts}
    rows = []
    for m in by_model:
        for order, part in enumerate(parts):
            rows.append({"model": m["model"], "part": part, "label": labels[part], "order": order,
                         "gpus": float(m[part] or 0)})
    frame = pd.DataFrame(rows, columns=["model", "part", "label", "order", "gpus"])
    chart = alt.Chart(frame).mark_bar().encode(
        y=alt.Y("model:N", title=translate("reports.col.model", lang)),
        x=alt.X("gpus:Q", title=translate("reports.col.total", lang)),
        color=alt.Color("part:N", title=None,
                        scale=alt.Scale(domain=parts, range=[WATER_COLOURS[p] for p in parts]),
                        # two a row: three parts side by side ran past a phone's width (390 px)
                        legend=alt.Legend(orient="bottom", columns=2, labelExpr=_legend_labels(labels))),
        order=alt.Order("order:Q"),
        tooltip=[alt.Tooltip("model:N", title=translate("reports.col.model", lang)),
                 alt.Tooltip("label:N", title=translate("board.chart.water_part", lang)),
                 alt.Tooltip("gpus:Q", title=translate("reports.col.total", lang), format=",.0f")],
    ).properties(title=translate("reports.chart.water", lang), width=520, height=max(80, 28 * len(by_model)))
    return _config(chart, fonts)


def util_chart(report: dict[str, Any], lang: str, fonts: list[str] | None = None, limit: int = 15) -> alt.Chart:
    """Horizontal bars: GPU-hour-weighted utilisation of the projects with the most GPU-hours."""
    ents = sorted(report.get("entities", []), key=lambda e: -(e["gpu_hours_allocated"] or 0))[:limit]
    frame = pd.DataFrame([{"project": entity_name(e, lang), "util": e["util"] or 0.0} for e in ents],
                         columns=["project", "util"])
    chart = alt.Chart(frame).mark_bar().encode(
        y=alt.Y("project:N", sort="-x", title=None),
        x=alt.X("util:Q", axis=alt.Axis(format="%"), title=translate("reports.col.util", lang),
                scale=alt.Scale(domain=[0, 1])),
        color=alt.condition(alt.datum.util < 0.2, alt.value("#d98c00"), alt.value("#2e7d32")),
    ).properties(title=translate("reports.chart.util", lang), width=520, height=max(80, 24 * len(frame)))
    return _config(chart, fonts)


def trend_chart(report: dict[str, Any], lang: str, fonts: list[str] | None = None) -> alt.Chart:
    """Line of the allocated GPUs' utilisation over the trend months and this month."""
    t = report["trends"]
    points = [(m["month"], m["summary"]) for m in t["months"]] + [(report["month"], t["current"])]
    frame = pd.DataFrame([{"month": m, "util": (s or {}).get("util_allocated")} for m, s in points],
                         columns=["month", "util"])
    chart = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("month:O", title=translate("reports.col.month", lang)),
        y=alt.Y("util:Q", axis=alt.Axis(format="%"), title=translate("reports.col.util_allocated", lang)),
    ).properties(title=translate("reports.chart.trend", lang), width=520, height=220)
    return _config(chart, fonts)


def all_charts(report: dict[str, Any], lang: str, fonts: list[str] | None = None) -> list[alt.Chart]:
    """Every chart of the report, in display order."""
    return [water_chart(report, lang, fonts), util_chart(report, lang, fonts), trend_chart(report, lang, fonts)]
