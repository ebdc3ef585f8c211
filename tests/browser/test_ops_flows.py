"""The ops' main flows as their users do them, in Chromium on the demo data, in zh-CN:

* HQ ops (李娜) claim a pending request, read its feasibility checklist, approve it with a reason
  and open its allocation sheet; then triage a warning and run a reclaim dry run on a candidate;
* a Jiangsu request through the two provincial levels: the L1 initial review (陈静) leaves it
  waiting for the L2 assessment, which 吴昊 then approves.

Subjects are taken from the demo data as a user finds them (the first request waiting in the
approvals picker, the first warning, the first open reclaim candidate) and followed by their number:
other browser tests of the same worker share the demo database, so nothing here counts rows.
Every page passes the clean-page checks (no error box, nothing the zh-CN text detectors find)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.identity import load_personas
from tests.support.browser_checks import open_page
from tests.support.browser_flows import Words, assert_clean, choose, menu_page, table_shows

pytestmark = [pytest.mark.browser, pytest.mark.live]

LANG = "zh-CN"
HQ, L1, L2 = "li.na", "chen.jing", "wu.hao"
NAME = {p.id: p.name for p in load_personas()}  # as the pages name people (李娜, 陈静, 吴昊)
NUMBER = re.compile(r"CR-\d{4}-\d{6}")

t = Words(LANG)


def _heading(tab, text: str) -> None:
    expect(tab.get_by_role("heading", name=text)).to_be_visible()


def _success(tab, key: str, **params) -> None:
    expect(tab.get_by_test_id("stAlertContentSuccess").filter(has_text=t(key, **params))).to_be_visible()


def _decide(tab, wait_idle, reason: str) -> None:
    """Approve the open request with ``reason`` (the decision form of the approvals page)."""
    approve = tab.get_by_role("radio", name=t("lifecycle.decision.approve"), exact=True)
    approve.check(force=True)  # Streamlit draws its own dot over the (hidden) input
    expect(approve).to_be_checked()
    tab.get_by_label(t("review.reason")).fill(reason)
    tab.get_by_role("button", name=t("review.submit")).click()
    wait_idle(tab)
    _success(tab, "review.decided")


def test_hq_ops_approve_a_request_see_its_allocation_triage_a_warning_and_dry_run_a_reclaim(
        new_tab, app_url, wait_idle, error_patterns):
    hq = new_tab(LANG)
    approvals = menu_page("hq_ops", "approvals")
    open_page(hq, app_url, approvals, HQ, LANG)
    assert_clean(hq, approvals, LANG, error_patterns)

    # the first request waiting for HQ ops: submitted, not claimed yet, with its checklist
    number = NUMBER.match(choose(hq, wait_idle, t("req.pick"), 1)).group()
    _heading(hq, t("req.detail_title", number=number, status=t("status.submitted")))
    expect(hq.get_by_text(t("review.your_step", seq=1, total=1, step=t("role.hq_ops")))).to_be_visible()
    expect(hq.get_by_text(t("review.feasibility"))).to_be_visible()
    for item in ("gpu_fit", "storage_fit", "network_domain", "software", "conflict", "capacity"):
        expect(hq.get_by_text(t(f"feasibility.item.{item}"), exact=True)).to_be_visible()
    assert_clean(hq, approvals, LANG, error_patterns)

    hq.get_by_role("button", name=t("review.claim")).click()
    wait_idle(hq)
    _success(hq, "review.claimed")
    expect(hq.get_by_role("button", name=t("review.claim"))).to_have_count(0)
    _heading(hq, t("req.detail_title", number=number, status=t("status.in_review")))  # claimed: in review
    table_shows(hq, number, t("status.in_review"))
    table_shows(hq, t("queue.claimed_by", who=NAME[HQ]))

    _decide(hq, wait_idle, "资源池余量充足，可行性检查通过，同意按申请规格分配")
    assert_clean(hq, approvals, LANG, error_patterns)

    # its allocation sheet: granted, provisioned (plan mode in the demo) and in use
    allocations = menu_page("hq_ops", "allocations")
    open_page(hq, app_url, allocations, HQ, LANG, from_menu=True)
    table_shows(hq, number, t("status.active"))
    choose(hq, wait_idle, t("alloc.pick"), re.compile("^" + number))
    _heading(hq, t("alloc.sheet_title", number=number, status=t("status.active")))
    assert_clean(hq, allocations, LANG, error_patterns)

    # triage the first warning: new → acknowledged, with a note
    warnings = menu_page("hq_ops", "warnings")
    open_page(hq, app_url, warnings, HQ, LANG, from_menu=True)
    assert_clean(hq, warnings, LANG, error_patterns)
    picked = choose(hq, wait_idle, t("warn.pick"), 1)
    wid, month, resource = re.fullmatch(r"#(\d+) · ([\d-]+) · (.+)", picked).groups()
    table_shows(hq, wid, month)
    expect(hq.get_by_role("heading", name=re.compile(re.escape(resource)))).to_be_visible()
    expect(hq.get_by_role("combobox", name=t("warn.next"), exact=True)).to_have_value(t("warn.status.acknowledged"))
    note = "已核实：该命名空间上月利用率偏低，将联系负责人"
    hq.get_by_label(t("warn.note")).fill(note)
    hq.get_by_role("button", name=t("warn.apply")).click()
    wait_idle(hq)
    _success(hq, "warn.saved")
    # the note under the evidence: who, the new status, the note
    expect(hq.get_by_test_id("stMarkdown").filter(has_text=f"{NAME[HQ]} · {t('warn.status.acknowledged')}")
           .filter(has_text=note)).to_be_visible()
    # listed among the acknowledged warnings now
    choose(hq, wait_idle, t("warn.filter_status"), t("warn.status.acknowledged"))
    table_shows(hq, wid, month, None, resource)
    assert_clean(hq, warnings, LANG, error_patterns)

    # a reclaim candidate taken to an agreed plan, then its dry run
    reclaim = menu_page("hq_ops", "reclaim")
    open_page(hq, app_url, reclaim, HQ, LANG, from_menu=True)
    hq.get_by_role("radio", name=t("reclaim.tab.candidates"), exact=True).click()  # the section switcher
    wait_idle(hq)
    assert_clean(hq, reclaim, LANG, error_patterns)
    candidate = hq.get_by_role("combobox", name=t("reclaim.pick_candidate"), exact=True).input_value()
    namespace = re.fullmatch(r"#\d+ · (.+)", candidate).group(1)
    for status in ("under_review", "owner_contacted", "plan_agreed"):
        # the next step offered first is the move forward (not dismissing the candidate)
        next_step = hq.get_by_role("combobox", name=t("reclaim.next"), exact=True)
        expect(next_step).to_have_value(t(f"reclaim.cand.{status}"))
        if status == "plan_agreed":
            choose(hq, wait_idle, t("reclaim.col.plan"), t("reclaim.plan.remove"))
        hq.get_by_label(t("reclaim.note"), exact=True).fill(f"{t(f'reclaim.cand.{status}')}：峰值利用率持续偏低")
        hq.get_by_role("button", name=t("reclaim.apply")).click()
        wait_idle(hq)
        _success(hq, "reclaim.saved")
        expect(hq.get_by_role("combobox", name=t("reclaim.pick_candidate"), exact=True)).to_have_value(candidate)
    # the plan agreed: its dry run lists what executing it would delete
    hq.get_by_role("button", name=t("reclaim.dry_run")).click()
    wait_idle(hq)
    _success(hq, "reclaim.planned")
    assert_clean(hq, reclaim, LANG, error_patterns)

    hq.get_by_role("radio", name=t("reclaim.tab.records"), exact=True).click()
    wait_idle(hq)
    choose(hq, wait_idle, t("reclaim.pick_record"), re.compile(rf"^#\d+ · {re.escape(namespace)}$"))
    # its reclaim record, planned and not executed, with the objects the execution would delete
    table_shows(hq, t("reclaim.kind.candidate"), namespace, None, None, t("reclaim.rec.planned"))
    expect(hq.get_by_text(t("reclaim.deleted_now"))).to_be_visible()
    table_shows(hq, t("uitext.k8s_kind.ResourceQuota"))
    assert_clean(hq, reclaim, LANG, error_patterns)


def test_a_provincial_request_passes_the_l1_review_then_the_l2_assessment(new_tab, app_url, wait_idle, error_patterns):
    approvals, my_requests = menu_page("prov_ops", "approvals"), menu_page("prov_ops", "my_requests")
    l1_role, l2_role = t("role.prov_ops_l1"), t("role.prov_ops_l2")

    # L1: the first request waiting for the initial review, step 1 of 2
    l1 = new_tab(LANG)
    open_page(l1, app_url, approvals, L1, LANG)
    number = NUMBER.match(choose(l1, wait_idle, t("req.pick"), 1)).group()
    _heading(l1, t("req.detail_title", number=number, status=t("status.submitted")))
    expect(l1.get_by_text(t("review.your_step", seq=1, total=2, step=l1_role))).to_be_visible()
    assert_clean(l1, approvals, LANG, error_patterns)
    _decide(l1, wait_idle, "初审通过：资料齐全，需求合理")
    assert_clean(l1, approvals, LANG, error_patterns)

    # the request now waits for L2: in review, its second step pending
    open_page(l1, app_url, my_requests, L1, LANG, from_menu=True)
    choose(l1, wait_idle, t("req.pick"), re.compile("^" + number))
    _heading(l1, t("req.detail_title", number=number, status=t("status.in_review")))
    table_shows(l1, "1", l1_role, t("step_status.approved"), NAME[L1])
    table_shows(l1, "2", l2_role, t("step_status.pending"))
    assert_clean(l1, my_requests, LANG, error_patterns)

    # L2: the same request, step 2 of 2, approved
    l2 = new_tab(LANG)
    open_page(l2, app_url, approvals, L2, LANG)
    choose(l2, wait_idle, t("req.pick"), re.compile("^" + number))
    _heading(l2, t("req.detail_title", number=number, status=t("status.in_review")))
    expect(l2.get_by_text(t("review.your_step", seq=2, total=2, step=l2_role))).to_be_visible()
    assert_clean(l2, approvals, LANG, error_patterns)
    _decide(l2, wait_idle, "可行性评估通过：A800 显存满足，CUDA 12.1 兼容")
    assert_clean(l2, approvals, LANG, error_patterns)

    open_page(l2, app_url, my_requests, L2, LANG, from_menu=True)
    choose(l2, wait_idle, t("req.pick"), re.compile("^" + number))
    _heading(l2, t("req.detail_title", number=number, status=t("status.active")))  # provisioned at once (plan mode)
    table_shows(l2, "2", l2_role, t("step_status.approved"), NAME[L2])
    assert_clean(l2, my_requests, LANG, error_patterns)
