"""A report's scope reads as a name in the reader's language — in the notice that a draft is ready
and in the report's title — never as its id ("company", "JS")."""

from __future__ import annotations

import pytest

from core.notifications.templates import render
from core.reports.export import _title
from core.reports.scope import scope_name

DRAFT = {"month": "2026-11", "version": 1, "report_id": 3}


@pytest.mark.parametrize(("scope", "lang", "name"), [
    ("company", "zh-CN", "全公司"), ("company", "en", "Whole company"),
    ("JS", "zh-CN", "江苏公司"), ("JS", "en", "Jiangsu"), ("HQ", "zh-CN", "总部"),
])
def test_the_scope_is_named_in_the_readers_language(scope, lang, name):
    assert scope_name(scope, lang) == name
    notice = render("report_draft_ready", lang, {**DRAFT, "scope": scope})
    assert f"{name}" in notice.subject and f"{name}" in notice.body
    assert scope not in notice.subject.replace(name, "")  # the id itself does not show
    assert _title({"scope": scope, "month": "2026-11"}, lang).endswith(name)


def test_a_unit_the_organisation_no_longer_lists_keeps_its_id():
    assert scope_name("XX", "zh-CN") == "XX"
