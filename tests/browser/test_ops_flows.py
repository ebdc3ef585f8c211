"""The ops' main flows as their users do them, in Chromium on the demo data, in zh-CN and in English:

* HQ ops (李娜) claim a pending request, read its feasibility checklist, approve it with a reason
  and open its allocation sheet; then triage a warning and run a reclaim dry run on a candidate;
* a Jiangsu request through the two provincial levels: the L1 initial review (陈静) leaves it
  waiting for the L2 assessment, which 吴昊 then approves.

Subjects are taken from the demo data as a user finds them (the first request still waiting for a
decision, the first new warning, the first candidate nobody has reviewed) and followed by their
number: other browser tests of the same worker share the demo database, the other language's walk
among them, so nothing here counts rows or takes "the first" of a list the other walk changes (the
demo has two requests waiting for HQ ops and two for the L1 review, one for each walk).
Every page passes the clean-page checks (no error box; in zh-CN, nothing the text detectors find)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.identity import load_personas
from tests.support.browser_checks import open_page, visible_text
from tests.support.browser_flows import Words, assert_clean, choose, menu_page, table_shows

pytestmark = [pytest.mark.browser, pytest.mark.live]

HQ, L1, L2 = "li.na", "chen.jing", "wu.hao"
NAME = {p.id: p.name for p in load_personas()}  # as the pages name people (李娜, 陈静, 吴昊)
NUMBER = re.compile(r"CR-\d{4}-\d{6}")
LANGS = ("zh-CN", "en")
# what the users type, in their language
TYPED = {
    "zh-CN": {"approve": "资源池余量充足，可行性检查通过，同意按申请规格分配",
              "warning": "已核实：该命名空间上月利用率偏低，将联系负责人", "reclaim": "峰值利用率持续偏低",
              "l1": "初审通过：资料齐全，需求合理", "l2": "可行性评估通过：A800 显存满足，CUDA 12.1 兼容"},
    "en": {"approve": "The pool has room and the feasibility checks pass; granted as requested",
           "warning": "Checked: the namespace was under-used last month; contacting its owner",
           "reclaim": "peak utilisation stays low", "l1": "Initial review passed: complete and reasonable",
           "l2": "Feasible: A800 memory suffices, CUDA 12.1 compatible"},
}


def _heading(tab, text: str) -> None:
    expect(tab.get_by_role("heading", name=text)).to_be_visible()


def _success(tab, t: Words, key: str, **params) -> None:
    expect(tab.get_by_test_id("stAlertContentSuccess").filter(has_text=t(key, **params))).to_be_visible()


def _first_waiting(tab, wait_idle, t: Words, status: str) -> str:
    """Open the first request of the approvals table in ``status`` (its number)."""
    texts = []
    for _ in range(60):  # the grid's accessible table is built once it has drawn
        texts = visible_text(tab)
        numbers = [x for x, after in zip(texts, texts[1:]) if NUMBER.fullmatch(x) and after == t(f"status.{status}")]
        if numbers:
            choose(tab, wait_idle, t("req.pick"), re.compile("^" + numbers[0]))
            return numbers[0]
        tab.wait_for_timeout(250)
    raise AssertionError(f"no request in status {status} among:\n" + "\n".join(texts))


def _first_unreviewed(tab, wait_idle, t: Words) -> str:
    """Open the first reclaim candidate nobody has reviewed yet (the first whose next step is the
    review), as a user goes down the picker; its label."""
    box = tab.get_by_role("combobox", name=t("reclaim.pick_candidate"), exact=True)
    next_step = tab.get_by_role("combobox", name=t("reclaim.next"), exact=True)
    seen = []
    for position in range(5):
        if position:
            choose(tab, wait_idle, t("reclaim.pick_candidate"), position)
        seen.append((box.input_value(), next_step.input_value() if next_step.count() else None))
        if seen[-1][1] == t("reclaim.cand.under_review"):
            return seen[-1][0]
    raise AssertionError(f"none of the first five reclaim candidates waits for its review: {seen}")


def _decide(tab, wait_idle, t: Words, reason: str) -> None:
    """Approve the open request with ``reason`` (the decision form of the approvals page)."""
    approve = tab.get_by_role("radio", name=t("lifecycle.decision.approve"), exact=True)
    approve.check(force=True)  # Streamlit draws its own dot over the (hidden) input
    expect(approve).to_be_checked()
    tab.get_by_label(t("review.reason")).fill(reason)
    tab.get_by_role("button", name=t("review.submit")).click()
    wait_idle(tab)
    _success(tab, t, "review.decided")


@pytest.mark.parametrize("lang", LANGS)
def test_hq_ops_approve_a_request_see_its_allocation_triage_a_warning_and_dry_run_a_reclaim(
        lang, new_tab, app_url, wait_idle, error_patterns):
    t, typed = Words(lang), TYPED[lang]
    hq = new_tab(lang)
    approvals = menu_page("hq_ops", "approvals")
    open_page(hq, app_url, approvals, HQ, lang)
    assert_clean(hq, approvals, lang, error_patterns)

    # the first request waiting for HQ ops: submitted, not claimed yet, with its checklist
    number = _first_waiting(hq, wait_idle, t, "submitted")
    _heading(hq, t("req.detail_title", number=number, status=t("status.submitted")))
    expect(hq.get_by_text(t("review.your_step", seq=1, total=1, step=t("role.hq_ops")))).to_be_visible()
    expect(hq.get_by_text(t("review.feasibility"))).to_be_visible()
    for item in ("gpu_fit", "storage_fit", "network_domain", "software", "conflict", "capacity"):
        expect(hq.get_by_text(t(f"feasibility.item.{item}"), exact=True)).to_be_visible()
    assert_clean(hq, approvals, lang, error_patterns)

    hq.get_by_role("button", name=t("review.claim")).click()
    wait_idle(hq)
    _success(hq, t, "review.claimed")
    expect(hq.get_by_role("button", name=t("review.claim"))).to_have_count(0)
    _heading(hq, t("req.detail_title", number=number, status=t("status.in_review")))  # claimed: in review
    table_shows(hq, number, t("status.in_review"))
    table_shows(hq, t("queue.claimed_by", who=NAME[HQ]))

    _decide(hq, wait_idle, t, typed["approve"])
    assert_clean(hq, approvals, lang, error_patterns)

    # its allocation sheet: granted, provisioned (plan mode in the demo) and in use
    allocations = menu_page("hq_ops", "allocations")
    open_page(hq, app_url, allocations, HQ, lang, from_menu=True)
    table_shows(hq, number, t("status.active"))
    choose(hq, wait_idle, t("alloc.pick"), re.compile("^" + number))
    _heading(hq, t("alloc.sheet_title", number=number, status=t("status.active")))
    assert_clean(hq, allocations, lang, error_patterns)

    # triage the first new warning (the list filtered to the new ones): new → acknowledged, with a note
    warnings = menu_page("hq_ops", "warnings")
    open_page(hq, app_url, warnings, HQ, lang, from_menu=True)
    assert_clean(hq, warnings, lang, error_patterns)
    new, acknowledged = t("warn.status.new"), t("warn.status.acknowledged")
    choose(hq, wait_idle, t("warn.filter_status"), new)
    picked = choose(hq, wait_idle, t("warn.pick"), 1)
    wid, month, resource = re.fullmatch(r"#(\d+) · ([\d-]+) · (.+)", picked).groups()
    table_shows(hq, wid, month)
    expect(hq.get_by_role("heading", name=re.compile(re.escape(resource)))).to_be_visible()
    expect(hq.get_by_role("combobox", name=t("warn.next"), exact=True)).to_have_value(acknowledged)
    hq.get_by_label(t("warn.note")).fill(typed["warning"])
    hq.get_by_role("button", name=t("warn.apply")).click()
    wait_idle(hq)
    _success(hq, t, "warn.moved", id=wid, status=acknowledged)  # said above the list, which the warning has left
    # listed among the acknowledged warnings now, the note under its evidence: who, the new status, the note
    choose(hq, wait_idle, t("warn.filter_status"), acknowledged)
    table_shows(hq, wid, month, None, resource)
    choose(hq, wait_idle, t("warn.pick"), picked)
    expect(hq.get_by_test_id("stMarkdown").filter(has_text=f"{NAME[HQ]} · {acknowledged}")
           .filter(has_text=typed["warning"])).to_be_visible()
    assert_clean(hq, warnings, lang, error_patterns)

    # a reclaim candidate taken to an agreed plan, then its dry run
    reclaim = menu_page("hq_ops", "reclaim")
    open_page(hq, app_url, reclaim, HQ, lang, from_menu=True)
    hq.get_by_role("radio", name=t("reclaim.tab.candidates"), exact=True).click()  # the section switcher
    wait_idle(hq)
    assert_clean(hq, reclaim, lang, error_patterns)
    candidate = _first_unreviewed(hq, wait_idle, t)
    namespace = re.fullmatch(r"#\d+ · (.+)", candidate).group(1)
    for status in ("under_review", "owner_contacted", "plan_agreed"):
        # the next step offered first is the move forward (not dismissing the candidate)
        next_step = hq.get_by_role("combobox", name=t("reclaim.next"), exact=True)
        expect(next_step).to_have_value(t(f"reclaim.cand.{status}"))
        if status == "plan_agreed":
            choose(hq, wait_idle, t("reclaim.col.plan"), t("reclaim.plan.remove"))
        hq.get_by_label(t("reclaim.note"), exact=True).fill(f"{t(f'reclaim.cand.{status}')}: {typed['reclaim']}")
        hq.get_by_role("button", name=t("reclaim.apply")).click()
        wait_idle(hq)
        _success(hq, t, "reclaim.saved")
        expect(hq.get_by_role("combobox", name=t("reclaim.pick_candidate"), exact=True)).to_have_value(candidate)
    # the plan agreed: its dry run lists what executing it would delete
    hq.get_by_role("button", name=t("reclaim.dry_run")).click()
    wait_idle(hq)
    _success(hq, t, "reclaim.planned")
    assert_clean(hq, reclaim, lang, error_patterns)

    hq.get_by_role("radio", name=t("reclaim.tab.records"), exact=True).click()
    wait_idle(hq)
    choose(hq, wait_idle, t("reclaim.pick_record"), re.compile(rf"^#\d+ · {re.escape(namespace)}$"))
    # its reclaim record, planned and not executed, with the objects the execution would delete
    table_shows(hq, t("reclaim.kind.candidate"), namespace, None, None, t("reclaim.rec.planned"))
    expect(hq.get_by_text(t("reclaim.deleted_now"))).to_be_visible()
    table_shows(hq, t("uitext.k8s_kind.ResourceQuota"))
    assert_clean(hq, reclaim, lang, error_patterns)


@pytest.mark.parametrize("lang", LANGS)
def test_a_provincial_request_passes_the_l1_review_then_the_l2_assessment(
        lang, new_tab, app_url, wait_idle, error_patterns):
    t, typed = Words(lang), TYPED[lang]
    approvals, my_requests = menu_page("prov_ops", "approvals"), menu_page("prov_ops", "my_requests")
    l1_role, l2_role = t("role.prov_ops_l1"), t("role.prov_ops_l2")

    # L1: the first request waiting for the initial review, step 1 of 2
    l1 = new_tab(lang)
    open_page(l1, app_url, approvals, L1, lang)
    number = _first_waiting(l1, wait_idle, t, "submitted")
    _heading(l1, t("req.detail_title", number=number, status=t("status.submitted")))
    expect(l1.get_by_text(t("review.your_step", seq=1, total=2, step=l1_role))).to_be_visible()
    assert_clean(l1, approvals, lang, error_patterns)
    _decide(l1, wait_idle, t, typed["l1"])
    assert_clean(l1, approvals, lang, error_patterns)

    # the request now waits for L2: in review, its second step pending
    open_page(l1, app_url, my_requests, L1, lang, from_menu=True)
    choose(l1, wait_idle, t("req.pick"), re.compile("^" + number))
    _heading(l1, t("req.detail_title", number=number, status=t("status.in_review")))
    table_shows(l1, "1", l1_role, t("step_status.approved"), NAME[L1])
    table_shows(l1, "2", l2_role, t("step_status.pending"))
    assert_clean(l1, my_requests, lang, error_patterns)

    # L2: the same request, step 2 of 2, approved
    l2 = new_tab(lang)
    open_page(l2, app_url, approvals, L2, lang)
    choose(l2, wait_idle, t("req.pick"), re.compile("^" + number))
    _heading(l2, t("req.detail_title", number=number, status=t("status.in_review")))
    expect(l2.get_by_text(t("review.your_step", seq=2, total=2, step=l2_role))).to_be_visible()
    assert_clean(l2, approvals, lang, error_patterns)
    _decide(l2, wait_idle, t, typed["l2"])
    assert_clean(l2, approvals, lang, error_patterns)

    open_page(l2, app_url, my_requests, L2, lang, from_menu=True)
    choose(l2, wait_idle, t("req.pick"), re.compile("^" + number))
    _heading(l2, t("req.detail_title", number=number, status=t("status.active")))  # provisioned at once (plan mode)
    table_shows(l2, "2", l2_role, t("step_status.approved"), NAME[L2])
    assert_clean(l2, my_requests, lang, error_patterns)
