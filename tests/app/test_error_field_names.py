"""AppTest: a refused action names the field the way the form labels it, in the UI's language —
never the field's id (``namespace``, ``business_background``)."""

from __future__ import annotations

import re

import pytest

from tests.support.app_run import lead, no_exceptions, open_page, shows, text

SNAKE_ID = re.compile(r"\b[a-z]+_[a-z_]+\b")  # what a field id looks like (business_background)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_support_request_without_a_namespace_names_the_namespace_field_in_words(lang):
    at = open_page("app_pages/support.py", persona="chen.jing", lang=lang)
    no_exceptions(at)
    at.number_input(key="sup_gpus").set_value(16)
    at.text_area(key="sup_reason").set_value("推理服务副本已占满GPU节点")
    # the namespace is left empty
    next(b for b in at.button if b.label == text("support.raise_button", lang)).click().run()
    no_exceptions(at)
    label = text("fieldname.namespace", lang)
    expected = text("error.field_prefix", lang, field=label) + " " + text("support.bad_name", lang, value="")
    errors = [e.value for e in at.error]
    assert expected in errors, errors
    raw = text("error.field_prefix", lang, field="namespace")
    assert not [e for e in errors if raw in e], errors
    if lang == "zh-CN":
        assert label != "namespace" and not [e for e in errors if "namespace" in e], errors


def test_an_incomplete_application_lists_the_missing_fields_by_their_labels_not_their_ids():
    at = open_page("app_pages/apply.py", lang="zh-CN")
    next(b for b in at.button if b.label == text("apply.submit", "zh-CN")).click().run()
    no_exceptions(at)
    errors = [e.value for e in at.error]
    assert shows(at.error, "lifecycle.incomplete", "zh-CN"), errors
    refusal = [e for e in errors if e.startswith(lead("error.field_prefix", "zh-CN"))]
    assert refusal, errors
    assert text("fieldname.business_background", "zh-CN") in refusal[0]
    assert text("fieldname.pool", "zh-CN") in refusal[0]
    assert not [e for e in errors if SNAKE_ID.search(e)], errors
