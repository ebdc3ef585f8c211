"""Browser smoke test: every page each demo persona may open renders in both languages.

The cases come from the same tables the app uses (data/personas.yaml, core.identity.ROLE_MENU,
ui.navigation), so a new page or persona is covered without touching this file. Screenshots go to
test-artifacts/screenshots/<lang>/<persona>__<page>.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import expect

from core.i18n import LANGS, translate
from core.identity import ROLE_MENU
from ui.navigation import PageSpec, pages_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_PAGE = "home"  # app.py marks it default=True: Streamlit serves it at the root URL


def _personas() -> list[dict]:
    raw = yaml.safe_load((PROJECT_ROOT / "data" / "personas.yaml").read_text(encoding="utf-8")) or {}
    return list(raw.get("personas") or [])


def _cases() -> list:
    return [
        pytest.param(p["id"], spec, lang, id=f"{lang}-{p['id']}-{spec.key}")
        for p in _personas()
        for spec in pages_for(ROLE_MENU[p["role"]], p["role"])
        for lang in LANGS
    ]


def _path(spec: PageSpec, persona: str, lang: str) -> str:
    url_path = "" if spec.key == DEFAULT_PAGE else spec.url_path
    return f"{url_path}?persona={persona}&lang={lang}"


def _text(key: str, lang: str, **params) -> str | None:
    """Catalog text, or None when the key is missing (strict mode raises)."""
    try:
        return translate(key, lang, **params)
    except Exception:  # noqa: BLE001 - a missing key is reported by the page itself
        return None


def _unexpected_error_pattern(lang: str) -> re.Pattern[str] | None:
    """Regex for ui.errors' generic "unexpected error" alert, which replaces a traceback."""
    template = _text("error.unexpected", lang, kind="\x00")
    if not template:
        return None
    return re.compile(".+".join(re.escape(part) for part in template.split("\x00")))


def _runs_in_app_shell(page) -> bool:
    """True when app.py ran around the page: its sidebar language switch is there."""
    return page.locator('[data-testid="stSidebar"] [data-testid="stRadio"]').count() > 0


@pytest.mark.parametrize(("persona", "spec", "lang"), _cases())
def test_page_renders_without_exception(open_page, screenshot, persona: str, spec: PageSpec, lang: str) -> None:
    page = open_page(_path(spec, persona, lang), lang)
    screenshot(page, f"{lang}/{persona}__{spec.key}.png")

    exceptions = page.locator('[data-testid="stException"]')
    if exceptions.count():
        details = "\n---\n".join(exceptions.all_inner_texts())
        pytest.fail(f"{spec.script} ({persona}, {lang}) shows an exception:\n{details}", pytrace=False)

    assert _runs_in_app_shell(page), (
        f"{spec.script} ({persona}, {lang}) rendered without app.py's sidebar (language switch missing)"
    )

    main = page.locator('[data-testid="stMain"]')
    main_text = main.inner_text().strip()
    banner = _text("app.demo_banner", lang)
    assert main_text.replace(banner or "\x00", "").strip(), (
        f"{spec.script} ({persona}, {lang}) shows no text besides the demo banner"
    )

    # The page must actually be the one asked for, not Streamlit's "page not found" fallback.
    not_found = page.get_by_text(re.compile(r"Page not found|You have requested page", re.I))
    assert not not_found.count(), f"{spec.url_path!r} is not a page of the app: {not_found.all_inner_texts()}"

    pattern = _unexpected_error_pattern(lang)
    if pattern is not None:
        errors = [t for t in page.locator('[data-testid="stAlertContentError"]').all_inner_texts() if pattern.search(t)]
        assert not errors, f"{spec.script} ({persona}, {lang}) hit an unexpected error: {errors}"


def test_language_switch_changes_visible_text(open_page, wait_idle) -> None:
    persona = _personas()[0]
    page = open_page(f"?persona={persona['id']}&lang=zh-CN", "zh-CN")
    sidebar = page.locator('[data-testid="stSidebar"]')

    keys = ["app.title", "sidebar.language", "sidebar.persona"]
    keys += [spec.title_key for spec in pages_for(ROLE_MENU[persona["role"]], persona["role"])]
    pairs = [(key, _text(key, "zh-CN"), _text(key, "en")) for key in keys]
    differing = [(key, zh, en) for key, zh, en in pairs if zh and en and zh != en]
    assert differing, f"no sidebar text differs between zh-CN and en among {keys}"

    for _, zh, _ in differing:
        expect(sidebar).to_contain_text(zh)
    exceptions = page.locator('[data-testid="stException"]')
    broken_before = exceptions.count() > 0  # the page's own failure is reported by the page test

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
    persona = _personas()[0]
    spec = next(s for s in pages_for(ROLE_MENU[persona["role"]], persona["role"]) if s.key != DEFAULT_PAGE)
    page = open_page(_path(spec, persona["id"], "en"), "en", base=fresh_app_url)
    assert _runs_in_app_shell(page), (
        f"first visit of /{spec.url_path} after the server started ran {spec.script} without app.py "
        "(no sidebar language switch): Streamlit treats the pages/ folder as a v1 multipage app "
        "until st.navigation has run once"
    )
