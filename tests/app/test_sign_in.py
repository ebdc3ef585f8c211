"""AppTest: sign-in fails closed, and a signed-in (OIDC) user acts with the role, department and
province of their claims."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.i18n import translate
from core.identity import ROLE_MENU
from tests.support.app_run import APP, no_exceptions
from ui.navigation import pages_for


def _run(lang: str = "en", **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["lang"] = lang
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


@pytest.mark.parametrize("value", [None, "", "odic", "sso", "none", "Demo-mode"])
def test_unset_or_unknown_sign_in_refuses_to_start_naming_the_variable(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("COMPUTELOOP_AUTH", raising=False)
    else:
        monkeypatch.setenv("COMPUTELOOP_AUTH", value)
    at = _run(persona="zhao.min")  # ?persona= of the admin must not be honoured
    no_exceptions(at)
    assert [e.value for e in at.error] == [translate("app.auth_mode_invalid", "en", variable="COMPUTELOOP_AUTH",
                                                     value=(value or "").strip().lower() or "-")]
    assert not at.sidebar.selectbox, "no persona switcher"
    assert not at.warning, "no demo banner"
    assert "identity" not in at.session_state or at.session_state["identity"] is None


def test_demo_mode_must_be_asked_for_and_then_shows_the_banner_with_the_switcher(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_AUTH", "demo")
    at = _run(persona="zhao.min")
    no_exceptions(at)
    assert at.sidebar.selectbox(key="_persona_choice_en").value == "zhao.min"
    assert [w.value for w in at.warning] == [translate("app.demo_banner", "en")]


class _User(dict):
    """What st.user gives a page: the ID token's claims, signed in."""

    is_logged_in = True

    def to_dict(self):
        return dict(self)


def _signed_in(monkeypatch, **claims) -> AppTest:
    monkeypatch.setenv("COMPUTELOOP_AUTH", "oidc")
    monkeypatch.setattr(st, "user", _User(claims))
    at = _run(persona="zhao.min")  # ignored: not demo mode
    no_exceptions(at)
    return at


@pytest.mark.parametrize(("group", "role", "province"), [
    ("computeloop-admins", "admin", "HQ"), ("computeloop-hq-ops", "hq_ops", "HQ"),
    ("computeloop-js-ops-l1", "prov_ops", "JS"), ("computeloop-dept-heads", "dept_head", "HQ"),
    ("computeloop-committee", "committee", "HQ"), ("computeloop-executives", "executive", "HQ"),
    (None, "applicant", "HQ"),
])
def test_a_signed_in_user_of_each_role_gets_the_menu_and_scope_of_their_claims(monkeypatch, group, role, province):
    at = _signed_in(monkeypatch, email="wang.fang@example.com", name="王芳", department="digital",
                    groups=[group] if group else [])
    me = at.session_state["identity"]
    assert (me.id, me.role, me.province, me.department) == ("wang.fang@example.com", role, province, "数字化部")
    assert not at.sidebar.selectbox, "no persona switcher when signed in"
    assert not at.warning, "no demo banner"
    menu = pages_for(ROLE_MENU[role], role)
    assert [link.proto.label for link in at.sidebar.get("page_link")] == [translate(s.title_key, "en") for s in menu]
    for spec in menu:
        at.switch_page(spec.script).run()
        no_exceptions(at)


def test_a_signed_in_applicant_without_a_department_may_estimate_but_is_told_why_they_cannot_apply(monkeypatch):
    at = _signed_in(monkeypatch, email="new.hire@example.com", name="新员工")
    assert at.session_state["identity"].department == ""
    at.switch_page("app_pages/apply.py").run()
    no_exceptions(at)
    assert [i.value for i in at.info] == [translate("access.no_department", "en")]
    assert not at.main.button, "no form, no submit"
    at.switch_page("app_pages/estimate.py").run()
    no_exceptions(at)


def test_a_sign_in_without_email_or_subject_is_refused(monkeypatch):
    at = _signed_in(monkeypatch, name="nobody")
    assert [i.value for i in at.info] == [translate("access.no_stable_id", "en")]
    assert not at.main.title


def test_a_signed_in_person_is_remembered_by_name_and_others_see_the_name_not_the_id(monkeypatch, app_ctx):
    """Sign-in records the person's name (core.people), so another user's page shows "王芳" where
    the services hold her id: here the request list of HQ ops, for a request she submitted."""
    from core.lifecycle import services as lifecycle
    from core.people import names
    from tests.support.forms import MEDIUM

    at = _signed_in(monkeypatch, email="wang.fang@example.com", name="王芳", department="digital")
    me = at.session_state["identity"]
    assert names(app_ctx.sessions)["wang.fang@example.com"] == "王芳"
    request = lifecycle.submit(sessions=app_ctx.sessions, actor=me, form=MEDIUM)

    monkeypatch.setenv("COMPUTELOOP_AUTH", "demo")
    at = _run(persona="li.na")
    at.query_params["request"] = str(request["id"])  # opened on the request, as a notice's link does
    at.switch_page("app_pages/approvals.py").run()
    no_exceptions(at)
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "王芳" in shown and "wang.fang@example.com" not in shown, shown[:400]
