"""Streamlit's own texts and the charts follow the UI language (ui/builtin_text.py, ui/charts.py):
the pinned Streamlit version, every widget call giving the parameter that sets its text, the CSS
that replaces the texts without one, and the charts' Vega locale."""

from __future__ import annotations

import ast
from pathlib import Path

import altair as alt
import pandas as pd
import pytest
import streamlit

from core.config import PROJECT_ROOT
from core.i18n import translate
from tests.support.visible_text import english_builtins
from ui.builtin_text import PINNED_STREAMLIT, _styles_css, _uploader_css
from ui.charts import localized

UI_FILES = sorted([*(PROJECT_ROOT / "app_pages").glob("*.py"), *(PROJECT_ROOT / "ui").glob("*.py")])
# The sidebar's persona switcher always holds a persona: its placeholder never shows.
NO_PLACEHOLDER_NEEDED = {"ui/identity.py"}


def _calls(path: Path, names: set[str]) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n) in names]


def _name(call: ast.Call) -> str | None:
    """The called name: ``st.selectbox(...)`` → selectbox, ``uploader_texts(...)`` → uploader_texts."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords if k.arg}


def _rel(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


def test_the_css_is_for_the_pinned_streamlit():
    # The replacements of ui/builtin_text.py target the DOM of this version's frontend: after an
    # upgrade, check them in the browser (english_builtins on the Estimate page) and move the pin.
    assert streamlit.__version__ == PINNED_STREAMLIT


@pytest.mark.parametrize("path", UI_FILES, ids=_rel)
def test_every_select_gives_its_placeholder_and_multiselects_no_select_all(path: Path):
    if _rel(path) in NO_PLACEHOLDER_NEEDED:
        return
    missing = [f"line {c.lineno}: {_name(c)} without placeholder="
               for c in _calls(path, {"selectbox", "multiselect"}) if "placeholder" not in _keywords(c)]
    select_all = [f"line {c.lineno}: multiselect without select_all=False" for c in _calls(path, {"multiselect"})
                  if getattr(_keywords(c).get("select_all"), "value", None) is not False]
    assert missing + select_all == []


@pytest.mark.parametrize("path", UI_FILES, ids=_rel)
def test_every_date_input_gives_its_format(path: Path):
    assert [c.lineno for c in _calls(path, {"date_input"}) if "format" not in _keywords(c)] == []


@pytest.mark.parametrize("path", UI_FILES, ids=_rel)
def test_every_file_uploader_has_its_texts_in_the_ui_language(path: Path):
    uploaders = [_keywords(c).get("key") for c in _calls(path, {"file_uploader"})]
    texts = [c.args[0] for c in _calls(path, {"uploader_texts"}) if c.args]
    keys = {k.value for k in texts if isinstance(k, ast.Constant)}
    assert all(isinstance(k, ast.Constant) and k.value in keys for k in uploaders), \
        "each st.file_uploader(key=...) needs uploader_texts(<same key>, <types>) beside it"


@pytest.mark.parametrize("path", UI_FILES, ids=_rel)
def test_charts_are_shown_through_ui_charts(path: Path):
    if _rel(path) == "ui/charts.py":
        return
    assert [c.lineno for c in _calls(path, {"altair_chart", "vega_lite_chart"})] == [], \
        "show altair charts with ui.charts.show(chart, container): it sets the chart's locale"


def test_the_chinese_css_replaces_every_hint_and_hides_the_quick_select():
    css = _styles_css("zh-CN")
    for key in ("uitext.enter_apply", "uitext.enter_submit", "uitext.ctrl_enter_apply", "uitext.ctrl_enter_submit"):
        assert f'content: "{translate(key, "zh-CN")}"' in css
    assert '[data-testid="InputInstructions"]' in css
    assert '[data-testid="stDateInputQuickSelect"] { display: none' in css
    assert english_builtins(css.replace("InputInstructions", "")) == []
    assert _styles_css("en") == ""


def test_the_uploader_css_is_scoped_to_its_key_and_says_size_and_types_in_chinese():
    css = _uploader_css("inf_files", ["json", "csv"], 200, "zh-CN")
    rules = [line for line in css.splitlines() if line.strip()]
    assert rules and all(line.startswith(".st-key-inf_files ") for line in rules)
    assert translate("uitext.upload", "zh-CN") in css
    assert translate("uitext.upload_limit", "zh-CN", size=200, types="JSON、CSV") in css
    for testid in ("stFileUploaderDropzone", "stFileUploaderDropzoneInstructions", "stMarkdownContainer"):
        assert f'[data-testid="{testid}"]' in css
    assert _uploader_css("inf_files", ["json"], 200, "en") == ""


def _time_chart() -> alt.Chart:
    frame = pd.DataFrame({"day": pd.date_range("2026-01-01", periods=3, freq="D"), "v": [1, 2, 3]})
    return alt.Chart(frame).mark_line().encode(x="day:T", y="v:Q")


def test_chinese_charts_carry_the_chinese_time_and_number_locale():
    config = localized(_time_chart(), "zh-CN").to_dict()["config"]
    assert config["locale"]["time"]["shortMonths"][11] == "12月"
    assert config["locale"]["time"]["shortDays"][6] == "周六"
    assert config["locale"]["number"]["currency"] == ["¥", ""]
    fmt = config["axisTemporal"]["format"]
    assert fmt["date"] == "%-m月%-d日" and fmt["month"] == "%-m月" and fmt["hours"] == "%H:%M"
    assert english_builtins(str(config)) == []


def test_english_charts_are_left_as_they_are_and_the_original_is_not_changed():
    chart = _time_chart().configure(font="sans-serif")
    assert localized(chart, "en").to_dict() == chart.to_dict()
    localized(chart, "zh-CN")
    assert "locale" not in chart.to_dict()["config"]
    layered = localized((_time_chart() + _time_chart()).properties(height=80), "zh-CN").to_dict()
    assert "locale" in layered["config"]
