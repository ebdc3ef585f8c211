"""What the browser flow tests (tests/browser/test_*_flow*.py) share: the words of the UI in the
flow's language, a page of a role's menu, the clean-page check at one step of a flow, and waiting
for table cells to be shown."""

from __future__ import annotations

import re
import time

from core.identity import ROLE_MENU
from tests.support.browser_checks import error_findings, text_findings, visible_text
from ui.navigation import PageSpec, pages_for

Cell = str | re.Pattern[str] | None


class Words:
    """The catalog texts of one language, as a flow looks for them on the page: ``t(key, **params)``
    and :meth:`pattern`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, **params) -> str:
        from core.i18n import translate

        return translate(key, self.lang, **params)

    def pattern(self, key: str, **groups: str) -> re.Pattern[str]:
        """The text of ``key`` as a regular expression, each placeholder in ``groups`` a named group
        matching its regex (``t.pattern("estimate.saved", id=r"\\d+")``)."""
        marks = {name: f"\x00{name}\x00" for name in groups}
        text = re.escape(self(key, **marks))
        for name, regex in groups.items():
            text = text.replace(re.escape(marks[name]), f"(?P<{name}>{regex})")
        return re.compile(text)


def text_matching(tab, pattern: re.Pattern[str]):
    """The element whose text ``pattern`` (a :meth:`Words.pattern`) matches (its named groups, which
    JavaScript spells otherwise, made plain groups)."""
    return tab.get_by_text(re.compile(re.sub(r"\(\?P<\w+>", "(", pattern.pattern)))


def menu_page(role: str, key: str) -> PageSpec:
    """The page ``key`` as it is in the menu of ``role``."""
    return next(s for s in pages_for(ROLE_MENU[role], role) if s.key == key)


def assert_clean(tab, spec: PageSpec, lang: str, patterns) -> None:
    """No error box and (zh-CN) nothing the text detectors find on the page as it is now."""
    findings = error_findings(tab, spec, lang, patterns)
    if lang == "zh-CN":
        findings += text_findings(visible_text(tab))
    assert not findings, f"{spec.key}:\n" + "\n".join(map(str, findings))


def _matches(text: str, cell: Cell) -> bool:
    if cell is None:
        return True
    if isinstance(cell, re.Pattern):
        return cell.fullmatch(text) is not None
    return text == cell


def table_shows(tab, *cells: Cell, timeout_s: float = 15) -> None:
    """Consecutive table cells (one row, left to right) reading ``cells`` — a text, a pattern the
    whole cell matches, or None for any — are shown within ``timeout_s``. A table's cells are read
    through its accessible table, which the grid builds once it has drawn: hence the polling."""
    deadline = time.monotonic() + timeout_s
    while True:
        texts = visible_text(tab)
        if any(all(_matches(texts[i + k], c) for k, c in enumerate(cells))
               for i in range(len(texts) - len(cells) + 1)):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no cells {cells!r} in a row among:\n" + "\n".join(texts))
        tab.wait_for_timeout(250)


def starting_with(text: str) -> re.Pattern[str]:
    """A cell that starts with ``text`` (a status followed by a note, say)."""
    return re.compile(re.escape(text) + ".*", re.S)


def choose(tab, wait_idle, label: str, option: str | re.Pattern[str] | int, attempts: int = 3) -> str:
    """Pick ``option`` (its text, a pattern of it, or its position) in the visible selectbox
    ``label``; returns what the box shows afterwards.

    The box is scrolled into view before it is clicked (a click that scrolls the page may see the
    list close again on that scroll), and a text is typed into the box first: the list shows only the
    options that match, so an option far down a long list (which the list draws only when scrolled
    to) is drawn. A list that did not open, or closed before the option was clicked, is opened again.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    box = tab.get_by_role("combobox", name=label, exact=True).filter(visible=True).first
    for _ in range(attempts):
        box.scroll_into_view_if_needed()
        box.click()
        try:
            expect(box).to_have_attribute("aria-expanded", "true", timeout=2_000)
        except AssertionError:
            continue
        if isinstance(option, str):
            box.fill(option)
        options = tab.get_by_role("option")
        if isinstance(option, int):
            target = options.nth(option)
        elif isinstance(option, str):
            target = tab.get_by_role("option", name=option, exact=True).first
        else:
            target = options.filter(has_text=option).first
        try:
            target.click(timeout=5_000)
        except PlaywrightError:
            tab.keyboard.press("Escape")
            continue
        wait_idle(tab)
        return box.input_value()
    raise AssertionError(f"could not pick {option!r} in the selectbox {label!r}")
