"""Charts in the UI's language: every altair chart of the pages is shown through :func:`show`.

Vega formats axis dates and numbers with its own locale (American English unless told: "Sat 07",
"Nov 15", "December", "03 AM"). Vega-Lite takes a locale in the chart's config
(``config.locale`` with ``number`` and ``time`` definitions, as d3-format and d3-time-format
expect them); Streamlit 1.67 passes the spec's config through to vega-embed (it drops
``usermeta.embedOptions`` other than theme, renderer and padding, so ``formatLocale`` /
``timeFormatLocale`` embed options cannot be used). In zh-CN the time axes also get explicit
per-granularity formats ("2026年", "12月", "12月7日", "14:00"), since the default multi-format
("%b %d", "%a %d", "%I %p") reads oddly even with Chinese month names.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import streamlit as st

from ui.i18n import current_lang

# d3-format's and d3-time-format's zh-CN locale files (d3/d3-format locale/zh-CN.json,
# d3/d3-time-format locale/zh-CN.json); short months as "1月" … "12月", the usual form in dates.
ZH_NUMBER = {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["¥", ""]}
ZH_TIME = {
    "dateTime": "%x %A %X",
    "date": "%Y年%-m月%-d日",
    "time": "%H:%M:%S",
    "periods": ["上午", "下午"],
    "days": ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
    "shortDays": ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
    "months": ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"],
    "shortMonths": [f"{m}月" for m in range(1, 13)],
}
# One format per granularity of a time axis (Vega-Lite's TimeFormatSpecifier, a multi-format).
ZH_TIME_AXIS = {"year": "%Y年", "quarter": "%Y年%-m月", "month": "%-m月", "week": "%-m月%-d日", "date": "%-m月%-d日",
                "day": "%-m月%-d日", "hours": "%H:%M", "minutes": "%H:%M", "seconds": "%H:%M:%S",
                "milliseconds": "%H:%M:%S.%L"}
# Default format of a date outside axes (tooltips and legends without a format of their own).
ZH_DATE = "%Y年%-m月%-d日"


def localized(chart: Any, lang: str | None = None) -> Any:
    """``chart`` (any top-level altair chart) with the number and time locale of ``lang``
    (default: the session's language). English charts are returned unchanged."""
    lang = lang or current_lang()
    if lang != "zh-CN":
        return chart
    out = chart.copy(deep=["config"])
    if out.config is alt.Undefined:
        out.config = alt.Config()
    out.config["locale"] = alt.Locale(number=ZH_NUMBER, time=ZH_TIME)
    out.config["timeFormat"] = ZH_DATE
    out.config["axisTemporal"] = alt.AxisConfig(format=alt.TimeFormatSpecifier(**ZH_TIME_AXIS))
    return out


def show(chart: Any, container: Any = None, **kwargs: Any) -> None:
    """``st.altair_chart`` of ``chart`` in the session's language, full width unless told."""
    kwargs.setdefault("width", "stretch")
    (container or st).altair_chart(localized(chart), **kwargs)
