"""AppTest: the support requests page (紧急资源支援) — Jiangsu's ops ask HQ for GPUs from the form,
HQ ops see the donor pools' headroom with the suggestion and approve the transfer; in both languages."""

from __future__ import annotations

import pytest

from tests.support.app_run import no_exceptions, open_page, shows, text

PAGE = "app_pages/support.py"


def _click(at, key: str, lang: str):
    label = text(key, lang)
    next(b for b in at.button if b.label == label).click().run()
    no_exceptions(at)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_provincial_ops_raise_and_hq_ops_approve_the_suggested_donor(lang):
    at = open_page(PAGE, persona="chen.jing", lang=lang)
    no_exceptions(at)
    assert shows(at.info, "support.none", lang)
    assert at.selectbox(key="sup_pool").options == [f"js-pool · {text('pool_kind.provincial', lang)}"]  # Jiangsu's only
    at.number_input(key="sup_gpus").set_value(16)
    at.text_input(key="sup_namespace").set_value("js-chat")
    at.text_area(key="sup_reason").set_value("推理服务副本已占满GPU节点")
    _click(at, "support.raise_button", lang)
    assert shows(at.success, "support.raised", lang)
    assert len(at.dataframe[-1].value) == 1
    # sent: the form is empty again, so a second click sends nothing (the reason is required)
    assert at.text_input(key="sup_namespace").value == "" and at.text_area(key="sup_reason").value == ""

    hq = open_page(PAGE, persona="li.na", lang=lang)
    no_exceptions(hq)
    donors = hq.dataframe[1].value  # after the requests table
    suggested = donors[donors[text("support.col.suggested", lang)] == text("support.suggested_mark", lang)]
    assert list(suggested[text("support.col.pool", lang)]) == [f"hq-mm · {text('pool_kind.training_multimodal', lang)}"]
    donor = hq.selectbox(key="sup_donor")
    assert donor.options[donor.index] == f"hq-mm · {text('pool_kind.training_multimodal', lang)}"
    _click(hq, "support.approve", lang)
    assert shows(hq.success, "support.approved", lang)
    table = hq.dataframe[0].value
    assert list(table[text("support.col.status", lang)]) == [text("support.status.active", lang)]
