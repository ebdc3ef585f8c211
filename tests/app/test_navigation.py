"""AppTest: menus by role, the demo banner, the language and persona switches."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.identity import ROLE_MENU, load_personas
from tests.app.conftest import APP, no_exceptions
from ui.navigation import pages_for


def _start(persona: str, lang: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["persona"] = persona
    at.query_params["lang"] = lang
    return at.run()


@pytest.mark.parametrize("persona", [p.id for p in load_personas()])
def test_each_role_sees_exactly_its_menu(persona):
    at = _start(persona, "en")
    no_exceptions(at)
    role = next(p.role for p in load_personas() if p.id == persona)
    allowed = {spec.script for spec in pages_for(ROLE_MENU[role], role)}
    for spec in pages_for("admin"):
        if spec.script in allowed:
            at.switch_page(spec.script).run()
            no_exceptions(at)
    assert ("app_pages/settings.py" in allowed) == (role == "admin")
    assert ("app_pages/calibration.py" in allowed) == (role in {"hq_ops", "prov_ops", "admin"})
    assert ("app_pages/estimate.py" in allowed) != (role in {"executive", "committee"})
    assert ("app_pages/apply.py" in allowed) == (role in {"applicant", "prov_ops", "hq_ops", "dept_head", "admin"})
    # usage sheets: everyone who holds or runs allocations (each in their scope); executives read the board
    assert ("app_pages/usage.py" in allowed) == (role in {"applicant", "prov_ops", "hq_ops", "dept_head", "admin"})


def test_the_applicants_menu_has_usage_beside_their_allocations():
    from ui.navigation import sections_for

    apply = dict((title, [p.key for p in pages]) for title, pages in sections_for("applicant"))["nav.section.apply"]
    assert apply == ["apply", "my_requests", "allocations", "usage", "warnings", "reclaim"]


def test_demo_mode_shows_a_banner_and_the_persona_switcher():
    at = _start("li.na", "en")
    assert any("Demo mode" in w.value for w in at.warning)
    switcher = at.sidebar.selectbox(key="_persona_choice")
    assert switcher.value == "li.na"
    assert [o.split(" · ")[1] for o in switcher.options] == [
        "Applicant", "HQ ops", "Provincial ops L1", "Provincial ops L2", "Department head", "Committee", "Executive", "Administrator"]


# AppTest drops the entrypoint's sidebar from the element tree on reruns, so the language is
# driven through the session key the sidebar radio writes; the browser smoke test clicks it.
def test_language_switch_changes_every_text():
    at = _start("zhang.wei", "zh-CN")
    assert at.title[0].value == "ComputeLoop 算力服务门户"
    assert at.sidebar.radio(key="_lang_choice").label == "语言"
    at.session_state["lang"] = "en"
    at.run()
    no_exceptions(at)
    assert at.title[0].value == "ComputeLoop — compute service portal"


def test_without_a_url_language_the_default_is_chinese_first():
    at = AppTest.from_file(APP, default_timeout=60).run()
    no_exceptions(at)
    assert at.session_state["lang"] == "zh-CN"


def test_oidc_mode_without_sign_in_asks_to_sign_in(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_AUTH", "oidc")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("请先登录" in i.value for i in at.info)
    assert not [x for x in at.title if "门户" in x.value and x.tag == "h1" and x not in at.sidebar.title]
    assert any("[auth]" in e.value for e in at.sidebar.error), "says how to configure sign-in"
