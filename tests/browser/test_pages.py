"""Every page of every distinct menu, in zh-CN and in English, as a user sees it on the demo data.

A menu is a list of pages (ui.navigation, by role group and role); personas whose roles see the same
list share a menu, and the first of them (data/personas.yaml order) walks it. One test per menu and
language opens the first page of the menu by URL (``?persona=…&lang=…``) and every other page by
its link in the sidebar menu, as a user moves between pages (Home last, since a new session may land
on the role's daily page), in one tab, and runs
``tests.support.browser_checks.check_page`` on it: no exception, no error box, the page asked for,
in zh-CN nothing the detectors of tests/support/visible_text.py find (English built-in texts, raw
identifiers, raw values, login ids) outside code blocks, with every expander open and every tab
shown, and no chart or table wider than its box at 1440 px and at 390 px. Every page is checked before the test fails, and the
failure lists each page with what is wrong; screenshots of failing pages are saved as
test-artifacts/screenshots/<lang>-<persona>-<page>-<width>.png.

Which persona sees which page (and nothing else) is tested for every persona in AppTest
(tests/app/test_navigation.py).
"""

from __future__ import annotations

import time

import pytest

from core.i18n import LANGS
from tests.support.browser_checks import DEFAULT_PAGE, PageResult, check_page, open_page
from tests.support.menus import distinct_menus
from ui.navigation import PageSpec

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _cases() -> list:
    return [pytest.param(personas, specs, lang, id=f"{lang}-{'+'.join(personas)}")
            for personas, specs in distinct_menus() for lang in LANGS]


@pytest.mark.parametrize(("personas", "specs", "lang"), _cases())
def test_every_page_of_the_menu_shows_cleanly(new_tab, app_url, screenshot, error_patterns,
                                              personas: tuple[str, ...], specs: list[PageSpec], lang: str) -> None:
    persona = personas[0]
    tab = new_tab(lang)
    results: list[PageResult] = []
    # The first page by URL, every other one from the menu of the page before it (see open_page).
    for n, spec in enumerate(sorted(specs, key=lambda s: s.key == DEFAULT_PAGE)):
        result = PageResult(spec, persona, lang)
        result.seconds = open_page(tab, app_url, spec, persona, lang, from_menu=n > 0)
        name = f"{lang}-{persona}-{spec.key}"
        started = time.monotonic()
        result.findings, result.screenshots = check_page(
            tab, spec, lang, patterns=error_patterns,
            shoot=lambda view, name=name: str(screenshot(tab, f"{name}-{view}")))
        result.check_seconds = time.monotonic() - started
        results.append(result)

    print("\n".join(f"shown in {r.seconds:5.2f} s, checked in {r.check_seconds:5.2f} s: {r.label}" for r in results))
    failing = [r for r in results if r.findings]
    if failing:
        report = [f"{len(failing)} of {len(results)} pages of {'/'.join(personas)}'s menu ({lang}) fail:"]
        for r in failing:
            report.append(f"- {r.label}:")
            report += [f"    {f}" for f in r.findings]
            report += [f"    screenshot: {path}" for path in r.screenshots]
        pytest.fail("\n".join(report), pytrace=False)
