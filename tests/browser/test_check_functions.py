"""The layout and text checks of tests/support/browser_checks.py on small pages of known shape, in
Chromium: each check reports what it must and nothing else. (The error check is proved on the real
app in test_error_check.py.)"""

from __future__ import annotations

import pytest

from tests.support.browser_checks import overflow_findings, visible_text

pytestmark = [pytest.mark.browser, pytest.mark.live]

# Streamlit's markup, reduced to the test ids the checks read: a 600 px page block holding a chart
# whose SVG is wider than the chart (its axis cut), a chart that fits, and a table wider than the
# block.
LAYOUT = """
<div data-testid="stVerticalBlock" style="width: 600px; margin-left: 20px">
  <div data-testid="stElementContainer"><div data-testid="stHeading">Cut chart</div></div>
  <div data-testid="stElementContainer">
    <div data-testid="stVegaLiteChart" style="width: 600px; overflow: visible">
      <svg class="marks" width="720" height="100"></svg>
    </div>
  </div>
  <div data-testid="stElementContainer"><div data-testid="stHeading">Fitting chart</div></div>
  <div data-testid="stElementContainer">
    <div data-testid="stVegaLiteChart" style="width: 600px"><svg class="marks" width="600" height="100"></svg></div>
  </div>
  <div data-testid="stElementContainer">
    <div data-testid="stDataFrame" style="width: 650px; height: 50px"></div>
  </div>
</div>
"""

TEXT = """
<div data-testid="stApp">
  <p>可见文字 shown_identifier</p>
  <pre>code_in_pre</pre>
  <div data-testid="stCode">code_in_st_code</div>
  <p><code>inline_code</code></p>
  <p style="display: none">hidden_text</p>
  <span data-testid="stIconMaterial" style="font-family: 'Material Symbols Rounded'">edit_document</span>
  <input placeholder="Choose an option">
  <input value="typed_value">
</div>
"""


def test_overflow_reports_the_chart_and_the_table_wider_than_their_block(new_tab) -> None:
    page = new_tab("en")
    page.set_content(LAYOUT)
    found = overflow_findings(page, 1440)
    details = [f.detail for f in found]
    assert len(found) == 2, details
    assert "svg.marks under 'Cut chart'" in details[0] and "720 px wide in a 600 px block" in details[0]
    assert details[1].startswith("chart #2 stDataFrame") and "650 px wide" in details[1]


def test_visible_text_leaves_out_code_hidden_text_and_icons(new_tab) -> None:
    page = new_tab("zh-CN")
    page.set_content(TEXT)
    text = "\n".join(visible_text(page))
    assert "shown_identifier" in text and "Choose an option" in text and "typed_value" in text
    for absent in ("code_in_pre", "code_in_st_code", "inline_code", "hidden_text", "edit_document"):
        assert absent not in text, absent
