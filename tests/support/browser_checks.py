"""What a browser test checks on each page, as a user would see it.

:func:`check_page` looks at a loaded page (a Playwright ``Page`` showing one page of the app) and
returns the :class:`Finding` s that make it fail:

* ``exception`` — Streamlit's exception box (``stException``): an error no page caught;
* ``error box`` — any ``st.error`` (``stAlertContentError``), unless the page is listed in
  :data:`EXPECTED_ERRORS` for that message; ``unexpected error`` — the generic message of
  ``ui.errors`` (catalog key ``error.unexpected``, matched as the catalog renders it in either
  language), always a failure;
* ``wrong page`` — the URL (Streamlit's "Page not found" falls back to the root URL) or the menu
  entry st.navigation highlights is not the page asked for, app.py's sidebar is missing (the page
  ran alone), or the main area is empty;
* in zh-CN, ``english built-in``, ``raw identifier``, ``raw value`` and ``user id`` — the
  detectors of ``tests/support/visible_text.py`` run on the text a user can see (main area and
  sidebar, every expander opened and every tab shown in turn, the visible cells of every table,
  chart axes, input values and placeholders), leaving out code blocks (``stCode``, ``pre``,
  ``code``, and ``st.json``, which that module counts as code);
* ``chart overflow`` — a chart (Vega-Lite, its SVG or canvas) or a table wider than the block that
  holds it, or reaching past the window, at 1440 px and at a 390 px phone width.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from tests.support.app_run import message, unexpected_error
from tests.support.browser_app import DESKTOP, PHONE, wait_for_app_idle
from ui.navigation import PageSpec

DEFAULT_PAGE = "home"  # app.py marks it default=True: Streamlit serves it at the root URL

# Pages whose normal content, on the demo data, is an error box: page key -> catalog keys of the
# messages that may appear there. Empty: no page of the demo shows an error on purpose.
EXPECTED_ERRORS: dict[str, tuple[str, ...]] = {}

OVERFLOW_TOLERANCE_PX = 1.0
SETTLE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Finding:
    """One thing wrong on a page: which check, and what is visible."""

    check: str
    detail: str
    width: int | None = None  # the window width the check saw it at (layout checks)
    view: str = field(default="", compare=False)  # the tab it was seen in, if not the first

    def __str__(self) -> str:
        where = (f" @{self.width}px" if self.width else "") + (f" in {self.view}" if self.view else "")
        return f"[{self.check}{where}] {self.detail}"


@dataclass
class PageResult:
    """A page of a walk: where it was, how long it took to show, what was wrong."""

    spec: PageSpec
    persona: str
    lang: str
    seconds: float = 0.0  # from the URL to the app idle
    check_seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.spec.key} ({self.spec.script}, {self.persona}, {self.lang})"


def page_path(spec: PageSpec, persona: str, lang: str) -> str:
    """The URL path and query that open ``spec`` as ``persona`` in ``lang``."""
    url_path = "" if spec.key == DEFAULT_PAGE else spec.url_path
    return f"/{url_path}?persona={persona}&lang={lang}"


def open_page(page, base: str, spec: PageSpec, persona: str, lang: str, *, from_menu: bool = False) -> float:
    """Open ``spec`` in ``page`` and wait until the app is idle; returns the seconds it took.

    ``from_menu`` (the tab already shows the app as ``persona`` in ``lang``): by its link in the
    sidebar menu, as a user moves between pages — the same session, so a walk costs one script run
    per page instead of a new session each (measured on the demo data: 34 s instead of 58 s for the
    20 pages of the ops menu). Otherwise by URL (``?persona=…&lang=…``: a new session); Home is
    then still reached by its link, since a new session opened on the root URL may land on its
    role's daily page (ops on their queue).
    """
    started = time.monotonic()
    if not from_menu:
        page.goto(base + page_path(spec, persona, lang), wait_until="domcontentloaded")
        wait_for_app_idle(page)
        if spec.key != DEFAULT_PAGE:
            return time.monotonic() - started
    from core.i18n import translate

    # Clicked whatever the URL shows now: a landing switch may still be on its way, and the last
    # page asked for is the one Streamlit ends on.
    page.locator('[data-testid="stSidebar"]').get_by_role(
        "link", name=translate(spec.title_key, lang), exact=True).first.click()
    path = "/" if spec.key == DEFAULT_PAGE else f"/{spec.url_path}"
    try:
        page.wait_for_function(f"location.pathname === {path!r}", timeout=15_000)
    except Exception:  # noqa: BLE001 - identity_findings reports where the page went instead
        pass
    wait_for_app_idle(page)
    return time.monotonic() - started


# --- error boxes -------------------------------------------------------------------------------

def unexpected_error_patterns() -> list[re.Pattern[str]]:
    """``error.unexpected`` as rendered in each language. Raises when the catalogs cannot give it
    (the caller fails the test: a check without its pattern would pass everything)."""
    from core.i18n import LANGS

    return [unexpected_error(lang) for lang in LANGS]


# The text of each error box outside an exception box, without its icon's ligature name.
_ERROR_BOXES = """() => [...document.querySelectorAll('[data-testid="stAlertContentError"]')]
  .filter(box => !box.closest('[data-testid="stException"]'))
  .map(box => {
    const copy = box.cloneNode(true);
    copy.querySelectorAll('[data-testid="stIconMaterial"], [data-testid="stAlertDynamicIcon"]').forEach(i => i.remove());
    return copy.textContent.trim();
  })"""


def error_findings(page, spec: PageSpec, lang: str, patterns: list[re.Pattern[str]]) -> list[Finding]:
    """``exception``, ``unexpected error`` and ``error box`` findings of the page as it is now."""
    found = [Finding("exception", text.strip()[:1500])
             for text in page.locator('[data-testid="stException"]').all_inner_texts()]
    allowed = [message(key, lang) for key in EXPECTED_ERRORS.get(spec.key, ())]
    for text in page.evaluate(_ERROR_BOXES):
        if any(p.search(text) for p in patterns):
            found.append(Finding("unexpected error", text))
        elif not any(p.search(text) for p in allowed):
            found.append(Finding("error box", text))
    return found


# --- the page asked for ------------------------------------------------------------------------

_NAV_STATE = """() => {
  const active = [...document.querySelectorAll('[data-testid="stSidebarNavLink"][aria-current="page"]')]
    .map(a => new URL(a.href).pathname);
  return {path: location.pathname, active,
          shell: !!document.querySelector('[data-testid="stSidebar"] [data-testid="stRadio"]'),
          main: (document.querySelector('[data-testid="stMain"]') || {innerText: ''}).innerText};
}"""


def identity_findings(page, spec: PageSpec) -> list[Finding]:
    """``wrong page`` when the URL (Streamlit's "Page not found" goes back to the root URL), the
    menu entry st.navigation highlights (when its own sidebar menu is shown) or app.py's sidebar
    says this is not ``spec`` run inside the app."""
    want = "/" if spec.key == DEFAULT_PAGE else f"/{spec.url_path}"
    state = page.evaluate(_NAV_STATE)
    found = []
    if state["path"] != want:
        found.append(Finding("wrong page", f"asked for {want}, the browser shows {state['path']}"))
    if state["active"] and state["active"] != [want]:
        found.append(Finding("wrong page", f"asked for {want}, the menu highlights {state['active']}"))
    if not state["shell"]:
        found.append(Finding("wrong page", "app.py's sidebar (language switch) is missing: the page ran alone"))
    if not state["main"].strip():
        found.append(Finding("wrong page", "the main area is empty"))
    return found


# --- what is visible ---------------------------------------------------------------------------

# Text nodes a user can see (not code blocks, not icon ligatures, not visually hidden helpers),
# the value or placeholder of visible inputs (a selectbox shows its choice or "Choose an option"
# there), and, through each table's accessible grid (built when the grid has focus), the header
# and cells a table shows (they are drawn on a canvas).
_VISIBLE_TEXT = """async () => {
  const root = document.querySelector('[data-testid="stApp"]');
  const skip = 'pre, code, [data-testid="stCode"], [data-testid="stJson"], style, script, noscript, '
    + '[data-testid="stDataFrame"], [data-testid="stException"]';  // an exception is reported as one
  const shown = el => {
    if (!el.checkVisibility({checkVisibilityCSS: true, checkOpacity: true})) return false;
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1;
  };
  const out = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.nodeValue.trim();
    const el = n.parentElement;
    if (!text || !el || el.closest(skip)) continue;
    if (getComputedStyle(el).fontFamily.includes('Material')) continue;  // icon names drawn as glyphs
    if (shown(el)) out.push(text);
  }
  for (const el of root.querySelectorAll('input, textarea')) {
    if (['radio', 'checkbox', 'hidden', 'file'].includes(el.type) || !shown(el)) continue;
    if (el.value) out.push(el.value); else if (el.placeholder) out.push(el.placeholder);
  }
  for (const canvas of root.querySelectorAll('[data-testid="stDataFrame"] canvas[data-testid="data-grid-canvas"]')) {
    if (!shown(canvas)) continue;
    canvas.focus({preventScroll: true});
    let table = null;
    for (let i = 0; i < 20 && !(table = canvas.querySelector('table')); i++) await new Promise(r => setTimeout(r, 25));
    if (table) table.querySelectorAll('th, td').forEach(c => { const t = c.innerText.trim(); if (t) out.push(t); });
    canvas.blur();
  }
  return out;
}"""


def visible_text(page) -> list[str]:
    """The pieces of text a user sees on the page as it is now (see :data:`_VISIBLE_TEXT`)."""
    return page.evaluate(_VISIBLE_TEXT)


def text_findings(texts: list[str]) -> list[Finding]:
    """Findings of the zh-CN detectors of ``tests/support/visible_text.py`` on ``texts``:
    ``english built-in``, ``raw identifier``, ``raw value`` (None, NaN, True …) and ``user id``
    (a login id where a name belongs). A missing module or detector is a finding, not a pass."""
    from core.identity import load_personas

    try:
        from tests.support import visible_text as detectors
        checks = [("english built-in", detectors.english_builtins), ("raw identifier", detectors.raw_identifiers),
                  ("raw value", detectors.raw_values)]
        ids = [p.id for p in load_personas()]
        checks.append(("user id", lambda text: detectors.user_ids(text, ids)))
    except (ImportError, AttributeError) as exc:
        return [Finding("text detectors", f"tests/support/visible_text.py cannot be used ({exc}): "
                                          "the zh-CN text checks did not run")]
    text = "\n".join(dict.fromkeys(texts))
    return [Finding(name, s) for name, detect in checks for s in dict.fromkeys(detect(text))]


# --- charts and tables wider than their box ----------------------------------------------------

# Each visible chart and table, with what it is drawn on: a Vega chart's SVG/canvas may be wider
# than the chart element (the axis is cut), a table's grid scrolls inside its own box so only the
# table element counts. Compared with the nearest block above it (stVerticalBlock: the column or
# the page) and with the window.
_OVERFLOW = """(tolerance) => {
  const out = [];
  const win = document.documentElement.clientWidth;
  const charts = document.querySelectorAll(
    '[data-testid="stVegaLiteChart"], [data-testid="stArrowVegaLiteChart"], [data-testid="stPlotlyChart"], '
    + '[data-testid="stDataFrame"], [data-testid="stTable"]');
  charts.forEach((chart, index) => {
    const box = chart.getBoundingClientRect();
    if (box.width < 1 || box.height < 1 || !chart.checkVisibility({checkVisibilityCSS: true})) return;
    const block = chart.parentElement.closest('[data-testid="stVerticalBlock"]');
    const b = block.getBoundingClientRect();
    const kind = chart.dataset.testid;
    const drawn = kind === 'stDataFrame' || kind === 'stTable' ? [chart]
      : [chart, ...chart.querySelectorAll('.vega-embed, svg.marks, canvas.marks, canvas, .main-svg')];
    // what the chart is about: its own title, else the nearest heading, text or caption above it
    const title = chart.querySelector('.role-title text, .gtitle');
    let label = title ? title.textContent.trim() : '', el = chart.closest('[data-testid="stElementContainer"]');
    for (let prev = el && el.previousElementSibling; prev && !label; prev = prev.previousElementSibling) {
      if (!prev.querySelector('[data-testid="stHeading"], [data-testid="stMarkdown"], [data-testid="stCaptionContainer"]')) continue;
      label = (prev.innerText || '').trim().split('\\n')[0].slice(0, 60);
    }
    for (const part of drawn) {
      const r = part.getBoundingClientRect();
      if (r.width < 1) continue;
      const what = part === chart ? kind : `${kind} ${part.tagName.toLowerCase()}${part.getAttribute('class') ? '.' + part.getAttribute('class').split(' ')[0] : ''}`;
      if (r.right > b.right + tolerance || r.left < b.left - tolerance) {
        out.push({index, label, what, detail: `${Math.round(r.width)} px wide in a ${Math.round(b.width)} px block (x ${Math.round(r.left)}–${Math.round(r.right)} vs ${Math.round(b.left)}–${Math.round(b.right)})`});
        break;
      }
      if (r.right > win + tolerance || r.left < -tolerance) {
        out.push({index, label, what, detail: `reaches x ${Math.round(r.left)}–${Math.round(r.right)} in a ${win} px window`});
        break;
      }
    }
  });
  return out;
}"""

_CHART_SIGNATURE = """() => [...document.querySelectorAll(
    '[data-testid="stVegaLiteChart"], [data-testid="stDataFrame"], [data-testid="stVegaLiteChart"] svg, '
    + '[data-testid="stVegaLiteChart"] canvas')]
  .map(e => { const r = e.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.width), Math.round(r.height)].join(','); })
  .join(';')"""


def settle(page, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Wait until charts and tables stop changing size (Vega redraws after a resize or when its
    container becomes visible)."""
    deadline = time.monotonic() + timeout_s
    last = page.evaluate(_CHART_SIGNATURE)
    if not last:
        return
    while time.monotonic() < deadline:
        page.wait_for_timeout(120)
        now = page.evaluate(_CHART_SIGNATURE)
        if now == last:
            return
        last = now


def overflow_findings(page, width: int) -> list[Finding]:
    """``chart overflow`` findings of the page as laid out now."""
    return [Finding("chart overflow", f"chart #{o['index']} {o['what']}"
                                      f"{' under ' + repr(o['label']) if o['label'] else ''}: {o['detail']}", width)
            for o in page.evaluate(_OVERFLOW, OVERFLOW_TOLERANCE_PX)]


# --- walking what a user can open on a page ----------------------------------------------------

_OPEN_EXPANDERS = """() => {
  let n = 0;
  document.querySelectorAll('[data-testid="stExpander"] details:not([open]) > summary').forEach(s => { s.click(); n++; });
  return n;
}"""


def _after_click(page) -> None:
    """Let a click on an expander or tab take effect (and any run it started finish)."""
    page.wait_for_timeout(50)
    page.wait_for_function(_IDLE, timeout=60_000, polling=50)


_IDLE = """() => !!document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]')
  && !document.querySelector('[data-testid="stSkeleton"]')"""

_HAS_LAYOUT = """() => !!document.querySelector('[data-testid="stVegaLiteChart"], [data-testid="stArrowVegaLiteChart"], '
  + '[data-testid="stPlotlyChart"], [data-testid="stDataFrame"], [data-testid="stTable"]')"""


def _views(page):
    """Yield (name, label) once per view of the page a user can reach without typing: every
    expander open ("", the page as it opens otherwise), then each other tab of each tab group in
    turn ("tab2", "tab '推理算力'"); the first tabs are shown again at the end."""
    if page.evaluate(_OPEN_EXPANDERS):
        _after_click(page)
    settle(page)
    yield "", ""
    tabs = page.locator('[data-testid="stTab"]')
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        if tab.get_attribute("aria-selected") == "true" or not tab.is_visible():
            continue
        tab.click()
        _after_click(page)
        settle(page)
        yield f"tab{i + 1}", f"tab {tab.inner_text().strip()!r}"
    clicked = False
    for group in page.locator('[data-testid="stTabs"]').all():
        first = group.locator('[data-testid="stTab"]').first
        if first.is_visible() and first.get_attribute("aria-selected") != "true":
            first.click()
            clicked = True
    if clicked:
        _after_click(page)


def check_page(page, spec: PageSpec, lang: str, *, patterns: list[re.Pattern[str]],
               shoot: Callable[[str], str] | None = None, widths: tuple[dict, ...] = (DESKTOP, PHONE),
               text_checks: bool | None = None) -> tuple[list[Finding], list[str]]:
    """Every finding of :mod:`this module <tests.support.browser_checks>` on ``page``, which shows
    ``spec`` in ``lang`` at the first of ``widths``: errors and the page's identity as loaded, then
    at each width and in each view (:func:`_views`) the layout and (first width, zh-CN unless
    ``text_checks`` says otherwise) the text, then errors again (opening things may run the page).
    ``shoot(name)``, if given, saves a screenshot of each view in which something new was found
    ("1440px", "390px-tab2") and returns its path. The page is left at the first width.
    Returns (findings, screenshot paths)."""
    text_checks = (lang == "zh-CN") if text_checks is None else text_checks
    findings: list[Finding] = []
    shots: list[str] = []

    def add(new: list[Finding], shot: str | None) -> None:
        new = [f for f in new if f not in findings]
        findings.extend(new)
        if new and shoot is not None and shot is not None:
            shots.append(shoot(shot))

    add(error_findings(page, spec, lang, patterns) + identity_findings(page, spec), None)
    for n, size in enumerate(widths):
        width = size["width"]
        if n and not page.evaluate(_HAS_LAYOUT):
            break  # nothing whose width could overflow: the other widths show the same
        if n:
            page.set_viewport_size(size)
            settle(page)
        for name, label in _views(page):
            new = overflow_findings(page, width)
            if n == 0:
                new += error_findings(page, spec, lang, patterns)
                if text_checks:
                    new += text_findings(visible_text(page))
            add([replace(f, view=label) for f in new], f"{width}px{'-' + name if name else ''}")
    if len(widths) > 1:
        page.set_viewport_size(widths[0])
    if findings and shoot is not None and not shots:  # found on the page as loaded only
        shots.append(shoot(f"{widths[0]['width']}px" if widths else "page"))
    return findings, shots
