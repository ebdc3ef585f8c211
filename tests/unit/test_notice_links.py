"""Notices about a request lead to it: the pages they name exist in the app's navigation, the e-mail
link is made from the public URL setting (or left out), and every template has a kind the inbox
filters by, named in both languages."""

from __future__ import annotations

import pytest

from core.errors import InputError
from core.i18n import LANGS, catalog
from core.notifications import links, render
from core.notifications.templates import KIND_OF, KINDS, OTHER_KIND, TEMPLATES
from tests.support import clock
from ui.navigation import PAGES

NEEDS_REVIEW = {"number": "CR-2026-000042", "title": "t", "applicant": "张伟", "request_id": 42}


def test_the_pages_a_notice_opens_are_the_apps_pages_with_the_same_url_paths():
    assert {key: PAGES[key].url_path for key in links.REQUEST_PAGES} == links.REQUEST_PAGES
    assert links.request_page("request_needs_review") == "approvals"
    assert links.request_page("request_needs_review", action_needed=False) == "my_requests"
    assert links.request_page("request_approved") == "my_requests"


def test_every_template_has_one_kind_and_every_kind_is_named_in_both_languages():
    assert set(KIND_OF) == set(TEMPLATES)
    assert sum(len(names) for names in KINDS.values()) == len(TEMPLATES)
    for lang in LANGS:
        assert {f"inbox.kind.{k}" for k in (*KINDS, OTHER_KIND)} <= set(catalog(lang))


@pytest.mark.parametrize("lang", LANGS)
def test_the_email_body_ends_with_the_link_when_a_public_url_is_given(lang):
    body = render("request_needs_review", lang, NEEDS_REVIEW, base_url="https://portal.example.com/cl").body
    assert f"https://portal.example.com/cl/approvals?request=42&lang={lang}" in body
    plain = render("request_needs_review", lang, NEEDS_REVIEW).body
    assert "http" not in plain and "CR-2026-000042" in plain
    # a notice about no request has no link, base URL or not
    expiry = {"namespace": "ns", "days_left": 3, "expires_on": clock.iso(24)}
    assert "http" not in render("expiry_notice", lang, expiry, base_url="https://portal.example.com").body


@pytest.mark.parametrize("value, expected", [
    ("", ""), ("  ", ""), ("https://portal.example.com/", "https://portal.example.com"),
    ("http://10.0.0.5:8501/computeloop", "http://10.0.0.5:8501/computeloop"),
])
def test_the_public_url_setting_is_read_and_trimmed(value, expected):
    assert links.public_url({links.PUBLIC_URL_SETTING: value}) == expected
    assert links.public_url({}) == ""


@pytest.mark.parametrize("value", ["portal.example.com", "ftp://portal.example.com", "https://", "https://x.cn/?a=1"])
def test_a_public_url_that_is_no_web_address_is_refused_naming_the_setting(value):
    with pytest.raises(InputError) as err:
        links.public_url({links.PUBLIC_URL_SETTING: value})
    assert err.value.field == "COMPUTELOOP_PUBLIC_URL"
