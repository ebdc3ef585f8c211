"""The two-level scale-out as its users do it, in Chromium on the demo data: a provincial ops user
(陈静, Jiangsu) asks HQ for GPUs from the support page, HQ ops (李娜) see the request with the
suggested donor and approve the transfer, and both sides then see it running; the province's inbox
has the notice. In zh-CN and in English; the request is followed by the number the province is told
(the other language's walk shares the demo database)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser_checks import open_page
from tests.support.browser_flows import Words, assert_clean, choose, menu_page, starting_with, table_shows, text_matching

pytestmark = [pytest.mark.browser, pytest.mark.live]

PROVINCE, HQ = "chen.jing", "li.na"
# what the users type, in their language
TYPED = {
    "zh-CN": {"reason": "推理服务副本已占满江苏集群，省内储备池已用尽", "decision": "总部多模态池本周空闲，先调拨一周"},
    "en": {"reason": "The serving replicas fill the Jiangsu cluster and the provincial reserve is used up",
           "decision": "HQ's multimodal pool is idle this week: lend for one week"},
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_province_asks_hq_for_gpus_and_hq_approves_the_transfer(lang, new_tab, app_url, wait_idle, error_patterns):
    t, typed = Words(lang), TYPED[lang]
    support_page = menu_page("prov_ops", "support")
    province = new_tab(lang)
    open_page(province, app_url, support_page, PROVINCE, lang)
    # the form is on the province's own pool, its GPU model said in words
    expect(province.get_by_text(t("support.field.model", model="A800-80GB"))).to_be_visible()
    province.get_by_label(t("support.field.gpus")).fill("4")
    province.get_by_label(t("support.field.namespace")).fill("js-llm-serving")
    province.get_by_label(t("support.field.reason")).fill(typed["reason"])
    province.get_by_role("button", name=t("support.raise_button")).click()
    wait_idle(province)
    raised = text_matching(province, t.pattern("support.raised", id=r"\d+"))
    expect(raised).to_be_visible()
    sid = t.pattern("support.raised", id=r"\d+").search(raised.inner_text()).group("id")
    assert_clean(province, support_page, lang, error_patterns)
    table_shows(province, f"#{sid}", starting_with(t("support.status.open")))

    hq = new_tab(lang)
    open_page(hq, app_url, menu_page("hq_ops", "support"), HQ, lang)
    # the request to decide is the province's, on js-pool, for 4 × A800; the suggested donor is marked
    choose(hq, wait_idle, t("support.pick"), re.compile(f"^#{sid} · "))
    picked = hq.get_by_role("combobox", name=t("support.pick")).first
    expect(picked).to_have_value(re.compile(rf"#{sid} · js-pool · .* · 4 × A800-80GB · " + t("support.status.open")))
    table_shows(hq, starting_with(t("support.suggested_mark")))
    hq.get_by_label(t("support.decision_reason")).fill(typed["decision"])
    hq.get_by_role("button", name=t("support.approve")).click()
    wait_idle(hq)
    expect(hq.get_by_text(t("support.approved", id=sid), exact=True)).to_be_visible()
    assert_clean(hq, menu_page("hq_ops", "support"), lang, error_patterns)
    running = t("support.status.active")
    table_shows(hq, f"#{sid}", starting_with(running))

    # the province sees it running, and has the notice in its inbox
    open_page(province, app_url, support_page, PROVINCE, lang)
    table_shows(province, f"#{sid}", starting_with(running))
    inbox = menu_page("prov_ops", "inbox")
    open_page(province, app_url, inbox, PROVINCE, lang, from_menu=True)
    assert_clean(province, inbox, lang, error_patterns)
    approved = t.pattern("notify.support_approved.subject", support_id=sid, donor=".+", gpus="4", pool=".+")
    expect(text_matching(province, approved).first).to_be_visible()
