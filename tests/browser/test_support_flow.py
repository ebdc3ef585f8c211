"""The two-level scale-out as its users do it, in Chromium on the demo data: a provincial ops user
(陈静, Jiangsu) asks HQ for GPUs from the support page, HQ ops (李娜) see the request with the
suggested donor and approve the transfer, and both sides then see it running; the province's inbox
has the notice. In zh-CN, the language its users work in (every page of both menus is also walked in
English by test_pages.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser_checks import open_page
from tests.support.browser_flows import Words, assert_clean, menu_page, starting_with, table_shows

pytestmark = [pytest.mark.browser, pytest.mark.live]

LANG = "zh-CN"
PROVINCE, HQ = "chen.jing", "li.na"

t = Words(LANG)


def test_a_province_asks_hq_for_gpus_and_hq_approves_the_transfer(new_tab, app_url, wait_idle, error_patterns):
    support_page = menu_page("prov_ops", "support")
    province = new_tab(LANG)
    open_page(province, app_url, support_page, PROVINCE, LANG)
    # the form is on the province's own pool, its GPU model said in words
    expect(province.get_by_text(t("support.field.model", model="A800-80GB"))).to_be_visible()
    province.get_by_label(t("support.field.gpus")).fill("4")
    province.get_by_label(t("support.field.namespace")).fill("js-llm-serving")
    province.get_by_label(t("support.field.reason")).fill("推理服务副本已占满江苏集群，省内储备池已用尽")
    province.get_by_role("button", name=t("support.raise_button")).click()
    wait_idle(province)
    expect(province.get_by_text(t("support.raised"))).to_be_visible()
    assert_clean(province, support_page, LANG, error_patterns)
    table_shows(province, starting_with(t("support.status.open")))

    hq = new_tab(LANG)
    open_page(hq, app_url, menu_page("hq_ops", "support"), HQ, LANG)
    # the request to decide is the province's, on js-pool, for 4 × A800; the suggested donor is marked
    picked = hq.get_by_role("combobox", name=t("support.pick")).first
    expect(picked).to_have_value(re.compile(r"#\d+ · js-pool · .* · 4 × A800-80GB · " + t("support.status.open")))
    table_shows(hq, starting_with(t("support.suggested_mark")))
    hq.get_by_label(t("support.decision_reason")).fill("总部多模态池本周空闲，先调拨一周")
    hq.get_by_role("button", name=t("support.approve")).click()
    wait_idle(hq)
    expect(hq.get_by_text(t("support.approved"), exact=True)).to_be_visible()
    assert_clean(hq, menu_page("hq_ops", "support"), LANG, error_patterns)
    running = t("support.status.active")
    table_shows(hq, starting_with(running))

    # the province sees it running, and has the notice in its inbox
    open_page(province, app_url, support_page, PROVINCE, LANG)
    table_shows(province, starting_with(running))
    inbox = menu_page("prov_ops", "inbox")
    open_page(province, app_url, inbox, PROVINCE, LANG, from_menu=True)
    assert_clean(province, inbox, LANG, error_patterns)
    expect(province.get_by_text(re.compile(r"紧急资源支援请求 #\d+.*已批准"))).to_be_visible()
