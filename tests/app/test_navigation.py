"""AppTest: every page of every persona's menu in both languages, the menus by role, the demo
banner, the language and persona switches.

The browser tests walk one menu per distinct menu and language; the role × page × language
coverage is here, where a page costs a fraction of a second."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from core.i18n import LANGS
from core.identity import ROLE_MENU, load_personas
from core.org import load_org
from tests.support.app_run import APP, no_exceptions, shows, start, text
from ui.navigation import pages_for, sections_for

PERSONAS = {p.id: p for p in load_personas()}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _speaks(title: str, lang: str) -> bool:
    """A page title in ``lang``: Chinese characters in zh-CN; in English, English first (an English
    title may carry the Chinese name in brackets)."""
    return bool(CJK.search(title)) if lang == "zh-CN" else bool(re.match(r"[A-Za-z]", title))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("persona", list(PERSONAS))
@pytest.mark.parametrize("data", ["empty", "demo"])  # every empty walk first: the demo data is made once, later
def test_every_page_of_the_personas_menu_opens_without_an_error(request, persona, lang, data):
    """Each page of the persona's menu, opened in turn, on an empty database and on the demo data of
    ``make run``: no exception, no error box of any kind (a page opened from its own menu has
    nothing to refuse), the title in the page's language, and every switch on a page of its own."""
    if data == "demo":
        request.getfixturevalue("demo_database")
    role = PERSONAS[persona].role
    menu = [spec.script for _title, specs in sections_for(role) for spec in specs]
    assert menu
    at = start(persona, lang)
    no_exceptions(at)
    titles: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for script in menu:
        at.switch_page(script).run()
        no_exceptions(at)
        if at.error:
            errors[script] = [e.value for e in at.error]
        [title] = [x.value for x in at.main.title]
        assert _speaks(title, lang), (script, title)
        titles[script] = title
        if script == "app_pages/board.py":  # the walk reads the data it was given: demo data has a published report
            assert shows(at.info, "board.empty", lang) == (data == "empty"), [i.value for i in at.info]
    assert not errors, errors
    # each switch landed on its own page (a refused switch would leave the previous page's title)
    assert len(set(titles.values())) == len(menu), titles


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_each_role_sees_exactly_its_menu(persona):
    role = PERSONAS[persona].role
    allowed = {spec.script for spec in pages_for(ROLE_MENU[role], role)}
    assert allowed == {spec.script for _title, specs in sections_for(role) for spec in specs}
    assert ("app_pages/settings.py" in allowed) == (role == "admin")
    assert ("app_pages/calibration.py" in allowed) == (role in {"hq_ops", "prov_ops", "admin"})
    assert ("app_pages/estimate.py" in allowed) != (role in {"executive", "committee"})
    assert ("app_pages/apply.py" in allowed) == (role in {"applicant", "prov_ops", "hq_ops", "dept_head", "admin"})
    # usage sheets: everyone who holds or runs allocations (each in their scope); executives read the board
    assert ("app_pages/usage.py" in allowed) == (role in {"applicant", "prov_ops", "hq_ops", "dept_head", "admin"})


def test_the_applicants_menu_has_usage_beside_their_allocations():
    apply = dict((title, [p.key for p in pages]) for title, pages in sections_for("applicant"))["nav.section.apply"]
    assert apply == ["apply", "my_requests", "allocations", "usage", "warnings", "reclaim"]


@pytest.mark.parametrize("lang", LANGS)
def test_demo_mode_shows_a_banner_and_the_persona_switcher(lang):
    at = start("li.na", lang)
    no_exceptions(at)
    assert any(text("app.demo_banner", lang) in w.value for w in at.warning)
    switcher = at.sidebar.selectbox(key=f"_persona_choice_{lang}")  # the key follows the language (ui/identity.py)
    assert switcher.value == "li.na"
    roles = [p.role for p in PERSONAS.values()]
    levels = [p.level for p in PERSONAS.values()]
    expected = [text("persona.level", lang, role=text(f"role.{r}", lang), level=lv) if lv else text(f"role.{r}", lang)
                for r, lv in zip(roles, levels)]
    assert [o.split(" · ")[1] for o in switcher.options] == expected
    assert len(set(expected)) == len(expected)  # every persona's role reads differently


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("persona", ["wang.qiang", "zhao.min", "chen.jing"])
def test_the_sidebar_names_the_personas_department_in_the_pages_language(persona, lang):
    at = start(persona, lang)
    no_exceptions(at)
    org = load_org()
    dept = org.departments[org.department_id(PERSONAS[persona].department)]
    shown = [c.value for c in at.sidebar.caption if c.value.startswith(text("sidebar.department", lang, department=""))]
    assert shown == [text("sidebar.department", lang, department=dept.name_zh if lang == "zh-CN" else dept.name_en)]
    assert lang == "zh-CN" or not CJK.search(shown[0])


# AppTest drops the entrypoint's sidebar from the element tree on reruns, so the language is
# driven through the session key the sidebar radio writes; the browser smoke test clicks it.
def test_language_switch_changes_every_text():
    at = start("zhang.wei", "zh-CN")
    assert at.title[0].value == text("home.title", "zh-CN")
    assert at.sidebar.radio(key="_lang_choice").label == text("sidebar.language", "zh-CN")
    at.session_state["lang"] = "en"
    at.run()
    no_exceptions(at)
    assert at.title[0].value == text("home.title", "en") != text("home.title", "zh-CN")


def test_without_a_url_language_the_default_is_chinese_first():
    at = start()
    no_exceptions(at)
    assert at.session_state["lang"] == "zh-CN"


def test_oidc_mode_without_sign_in_asks_to_sign_in(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_AUTH", "oidc")
    at = AppTest.from_file(APP, default_timeout=60).run()
    no_exceptions(at)
    assert any(text("app.sign_in_required", "zh-CN") in i.value for i in at.info)
    assert not at.main.title, "no page is shown before sign-in"
    assert [e.value for e in at.sidebar.error] == [text("sidebar.oidc_not_configured", "zh-CN")], "says how to configure sign-in"

