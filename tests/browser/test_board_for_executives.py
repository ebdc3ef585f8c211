"""The published board as the executive (王强) reads it, in Chromium on the demo data: on a projector
(1920×1080) the headline tiles, with their changes against last month, and the first chart are on
the first screen; on a phone (390×844) nothing is wider than the screen; in both, no error box and no
English or raw identifier in the Chinese UI. In zh-CN, the language its readers work in, and in en."""

from __future__ import annotations

import pytest

from core.i18n import LANGS, translate
from core.identity import ROLE_MENU
from tests.support.browser_checks import check_page, open_page, settle
from ui.navigation import pages_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

PROJECTOR = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1440, "height": 900}  # where the tiles are narrowest beside the water level
PHONE = {"width": 390, "height": 844}

# Where the tiles, their changes and the charts are on the page (Streamlit 1.67's test ids).
_LAYOUT = """() => {
  const top = el => el.getBoundingClientRect().top + (document.querySelector('[data-testid="stMain"]') || document.body).scrollTop;
  const metrics = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stMetric"]')];
  const charts = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stVegaLiteChart"]')];
  return {
    tiles: metrics.length,
    deltas: metrics.filter(m => m.querySelector('[data-testid="stMetricDelta"]')).length,
    cut: metrics.filter(m => { const v = m.querySelector('[data-testid="stMetricValue"] div, [data-testid="stMetricValue"]');
                                return v && v.scrollWidth > v.clientWidth + 1; }).length,
    // a label or the change's description cut with "…": its text is wider than its box (by a fraction
    // of a pixel is enough for the ellipsis, so the boxes' unrounded widths are compared)
    cut_text: metrics.flatMap(m => [...m.querySelectorAll(
                '[data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"], [data-testid="stMetricDeltaDescription"] [data-testid="stCaptionContainer"]')])
              .filter(box => { const p = box.querySelector('p');
                               return p && p.getBoundingClientRect().width > box.getBoundingClientRect().width + 0.01; })
              .map(box => box.textContent),
    last_tile_bottom: Math.max(0, ...metrics.map(m => m.getBoundingClientRect().bottom)),
    first_chart_top: charts.length ? Math.min(...charts.map(top)) : null,
  };
}"""


def _tiles_with_a_change(database_url: str, lang: str) -> tuple[int, int]:
    """(tiles, tiles with a change against last month) of the report the board opens on (the latest
    month, the first scope and version shown), computed by core from the demo database."""
    from sqlalchemy.orm import sessionmaker

    from core.db.session import make_engine
    from core.identity import load_personas
    from core.reports import service as reports
    from core.reports.tiles import headline_tiles, load_targets

    engine = make_engine(database_url)
    try:
        sessions = sessionmaker(engine)
        reader = next(p for p in load_personas() if p.id == "wang.qiang")
        rows = [r for r in reports.list_reports(sessions=sessions, actor=reader) if r["status"] == "published"]
        month = max(r["month"] for r in rows)
        scope = sorted({r["scope"] for r in rows if r["month"] == month})[0]
        first = next(r for r in rows if r["month"] == month and r["scope"] == scope)
        report = reports.get_report(sessions=sessions, actor=reader, report_id=first["id"])["snapshot"]
    finally:
        engine.dispose()
    tiles = [t for g in headline_tiles(report, lang, load_targets()) for t in g.tiles]
    return len(tiles), sum(1 for t in tiles if t.delta is not None)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("screen", [PROJECTOR, LAPTOP, PHONE], ids=["projector-1920x1080", "laptop-1440x900", "phone-390x844"])
def test_the_executive_takes_the_board_in_at_a_glance(new_tab, app_url, app_env, error_patterns, screenshot, screen,
                                                      lang):
    board = next(s for s in pages_for(ROLE_MENU["executive"], "executive") if s.key == "board")
    tab = new_tab(lang)
    tab.set_viewport_size(dict(screen))
    open_page(tab, app_url, board, "wang.qiang", lang)
    settle(tab)
    layout = tab.evaluate(_LAYOUT)
    name = f"{lang}-wang.qiang-board-{screen['width']}"
    findings, shots = check_page(tab, board, lang, patterns=error_patterns, widths=(screen,),
                                 shoot=lambda view: str(screenshot(tab, f"{name}-{view}")))
    assert not findings, "\n".join(map(str, findings)) + f"\nscreenshots: {shots}"
    tiles, changed = _tiles_with_a_change(app_env["COMPUTELOOP_DATABASE_URL"], lang)
    assert changed >= tiles // 2, f"the demo's board compares too little with last month: {changed} of {tiles}"
    # every tile core gives a change shows it (the others say why in their help)
    assert (layout["tiles"], layout["deltas"]) == (tiles, changed), layout
    assert layout["cut"] == 0, f"a tile's figure is cut: {layout}"
    assert layout["cut_text"] == [], f"a tile's label or change is cut: {layout}"
    assert translate("board.delta.vs_last_month", lang) in tab.locator('[data-testid="stMain"]').inner_text()
    if screen is PROJECTOR:
        assert layout["last_tile_bottom"] <= screen["height"], f"the tiles run below the first screen: {layout}"
        assert layout["first_chart_top"] is not None and layout["first_chart_top"] < screen["height"], (
            f"the first chart is below the first screen of a projector: {layout}")
