"""The report's charts (altair): water level by GPU model, utilisation per project, trend.

Used by the pages (``st.altair_chart``) and by the HTML/PDF export (rendered to SVG with
vl-convert). Labels come from the catalogs; the font list puts a CJK font first so Chinese
renders in exports.
"""

from __future__ import annotations

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


def water_chart(report: dict[str, Any], lang: str, fonts: list[str] | None = None) -> alt.Chart:
    """Stacked bars per GPU model: allocated and available GPUs."""
    rows = []
    for m in report["water_level"]["by_model"]:
        rows.append({"model": m["model"], "part": translate("reports.col.allocated", lang), "gpus": m["allocated"]})
        rows.append({"model": m["model"], "part": translate("reports.col.available", lang), "gpus": m["available"]})
    frame = pd.DataFrame(rows, columns=["model", "part", "gpus"])
    chart = alt.Chart(frame).mark_bar().encode(
        y=alt.Y("model:N", title=translate("reports.col.model", lang)),
        x=alt.X("gpus:Q", title=translate("reports.col.total", lang)),
        color=alt.Color("part:N", title=None, legend=alt.Legend(orient="bottom")),
    ).properties(title=translate("reports.chart.water", lang), width=520, height=max(80, 28 * len(frame) // 2))
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
