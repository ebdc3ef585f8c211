"""What the browser flow tests (tests/browser/test_*_flow*.py) share: a page of a role's menu, the
clean-page check at one step of a flow, and waiting for table cells to be shown."""

from __future__ import annotations

import re
import time

from core.identity import ROLE_MENU
from tests.support.browser_checks import error_findings, text_findings, visible_text
from ui.navigation import PageSpec, pages_for

Cell = str | re.Pattern[str] | None


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
