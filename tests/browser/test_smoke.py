"""The app shell in a real browser: the language switch changes what is shown, and the first visit
after a start runs app.py around the page asked for.

Every page of every menu is checked in test_pages.py.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.i18n import translate
from core.identity import ROLE_MENU, load_personas
from tests.support.browser_checks import DEFAULT_PAGE, page_path
from ui.navigation import pages_for

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _runs_in_app_shell(page) -> bool:
    """True when app.py ran around the page: its sidebar language switch is there."""
    return page.locator('[data-testid="stSidebar"] [data-testid="stRadio"]').count() > 0


def test_language_switch_changes_visible_text(open_page, wait_idle) -> None:
    persona = load_personas()[0]
    page = open_page(f"?persona={persona.id}&lang=zh-CN", "zh-CN")
    sidebar = page.locator('[data-testid="stSidebar"]')

    keys = ["app.title", "sidebar.language", "sidebar.persona"]
    keys += [spec.title_key for spec in pages_for(ROLE_MENU[persona.role], persona.role)]
    pairs = [(key, translate(key, "zh-CN"), translate(key, "en")) for key in keys]
    differing = [(key, zh, en) for key, zh, en in pairs if zh != en]
    assert differing, f"no sidebar text differs between zh-CN and en among {keys}"

    for _, zh, _ in differing:
        expect(sidebar).to_contain_text(zh)
    exceptions = page.locator('[data-testid="stException"]')
    broken_before = exceptions.count() > 0  # the page's own failure is reported by test_pages

    sidebar.locator('[data-testid="stRadio"] label').filter(has_text="English").click()
    for _, _, en in differing:
        expect(sidebar).to_contain_text(en)
    wait_idle(page)
    assert broken_before or not exceptions.count(), "after switching to English the page shows an exception:\n" + "\n---\n".join(
        exceptions.all_inner_texts()
    )

    sidebar.locator('[data-testid="stRadio"] label').filter(has_text="中文").click()
    for _, zh, _ in differing:
        expect(sidebar).to_contain_text(zh)


def test_first_visit_after_start_runs_the_app_shell(open_page, fresh_app_url) -> None:
    """The first visitor after a (re)start deep-links to a page and still gets app.py around it.

    Streamlit runs the first script run of a process as a v1 multipage app when a folder named
    ``pages/`` sits next to the main script (PagesManager.uses_pages_directory, reset only once
    st.navigation has been called): a deep link then runs the page file alone, without identity,
    role menu or sidebar.
    """
    persona = load_personas()[0]
    spec = next(s for s in pages_for(ROLE_MENU[persona.role], persona.role) if s.key != DEFAULT_PAGE)
    page = open_page(page_path(spec, persona.id, "en"), "en", base=fresh_app_url)
    assert _runs_in_app_shell(page), (
        f"first visit of /{spec.url_path} after the server started ran {spec.script} without app.py "
        "(no sidebar language switch): Streamlit treats the pages/ folder as a v1 multipage app "
        "until st.navigation has run once"
    )
    assert page.evaluate("location.pathname") == f"/{spec.url_path}", "the deep link fell back to another page"
