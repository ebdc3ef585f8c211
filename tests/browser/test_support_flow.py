"""The two-level scale-out as its users do it, in Chromium on the demo data: a provincial ops user
(陈静, Jiangsu) asks HQ for GPUs from the support page, HQ ops (李娜) see the request with the
suggested donor and approve the transfer, and both sides then see it running; the province's inbox
has the notice. In zh-CN, the language its users work in (every page of both menus is also walked in
English by test_pages.py)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from core.i18n import translate
from tests.support.browser_checks import error_findings, open_page, text_findings, visible_text
from ui.navigation import PageSpec, pages_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

LANG = "zh-CN"
PROVINCE, HQ = "chen.jing", "li.na"


def t(key: str, **params) -> str:
    return translate(key, LANG, **params)


def _spec(role: str, key: str) -> PageSpec:
    from core.identity import ROLE_MENU

    return next(s for s in pages_for(ROLE_MENU[role], role) if s.key == key)


def _clean(tab, spec: PageSpec, patterns) -> None:
    """No error box and nothing the zh-CN text detectors find on the page as it is now."""
    findings = error_findings(tab, spec, LANG, patterns) + text_findings(visible_text(tab))
    assert not findings, "\n".join(map(str, findings))


def _table_shows(tab, starts: str, timeout_s: float = 15) -> None:
    """A table cell starting with ``starts`` is shown within ``timeout_s`` (a table's cells are read
    through its accessible table, which the grid builds once it has drawn)."""
    deadline = time.monotonic() + timeout_s
    while True:
        texts = visible_text(tab)
        if any(cell.startswith(starts) for cell in texts):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no cell starting with {starts!r} among:\n" + "\n".join(texts))
        tab.wait_for_timeout(250)


def test_a_province_asks_hq_for_gpus_and_hq_approves_the_transfer(new_tab, app_url, wait_idle, error_patterns):
    support_page = _spec("prov_ops", "support")
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
    _clean(province, support_page, error_patterns)
    _table_shows(province, t("support.status.open"))

    hq = new_tab(LANG)
    open_page(hq, app_url, _spec("hq_ops", "support"), HQ, LANG)
    # the request to decide is the province's, on js-pool, for 4 × A800; the suggested donor is marked
    picked = hq.get_by_role("combobox", name=t("support.pick")).first
    expect(picked).to_have_value(re.compile(r"#\d+ · js-pool · .* · 4 × A800-80GB · " + t("support.status.open")))
    _table_shows(hq, t("support.suggested_mark"))
    hq.get_by_label(t("support.decision_reason")).fill("总部多模态池本周空闲，先调拨一周")
    hq.get_by_role("button", name=t("support.approve")).click()
    wait_idle(hq)
    expect(hq.get_by_text(t("support.approved"), exact=True)).to_be_visible()
    _clean(hq, _spec("hq_ops", "support"), error_patterns)
    running = t("support.status.active")
    _table_shows(hq, running)

    # the province sees it running, and has the notice in its inbox
    open_page(province, app_url, support_page, PROVINCE, LANG)
    _table_shows(province, running)
    inbox = _spec("prov_ops", "inbox")
    open_page(province, app_url, inbox, PROVINCE, LANG, from_menu=True)
    _clean(province, inbox, error_patterns)
    expect(province.get_by_text(re.compile(r"紧急资源支援请求 #\d+.*已批准"))).to_be_visible()
