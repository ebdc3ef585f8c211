"""The applicant's main flow as 张伟 (zhang.wei, 数字化部) does it, in Chromium on the demo data, in zh-CN and in en:
size a fine-tuning job on the Estimate page, save the estimate, apply from it (the Apply page opens
filled in with what the estimate knows), submit, follow the link to the new request in My requests,
and find its notice in the inbox. At every page the clean-page checks of test_support_flow.py: no
error box and (zh-CN) nothing the text detectors find. Each run submits a request of its own, so the
two languages may share a server."""

from __future__ import annotations

import math
import re

import pytest
from playwright.sync_api import expect

from core.estimation.model import load_presets
from core.i18n import LANGS
from core.lifecycle.states import TRANSITIONS
from core.org import load_org
from tests.support.browser_checks import open_page
from tests.support.browser_flows import Words, assert_clean, choose, menu_page, table_shows, text_matching
from ui.navigation import PageSpec

pytestmark = [pytest.mark.browser, pytest.mark.live]

APPLICANT = "zhang.wei"
# the estimate: the page's default model (Llama 2 7B) and GPU count (8), fine-tuned on 3 B tokens on
# H20 — a few days of wall-clock — and applied for on the fine-tuning pool, which has that GPU model
MODEL, GPUS, GPU, TOKENS_B, POOL, TITLE = "llama-2-7b", 8, "H20", 3, "hq-ft", "调度规程问答微调测算"
NUMBER = re.compile(r"CR-\d{4}-\d{6}")


# --- this flow's helpers -----------------------------------------------------------------------


def _arrived(tab, spec: PageSpec, wait_idle) -> None:
    """After a click that switches pages: the browser shows ``spec`` and the app is idle."""
    tab.wait_for_function(f"location.pathname === {'/' + spec.url_path!r}", timeout=15_000)
    wait_idle(tab)


def _fill(tab, label: str, value: str, wait_idle=None) -> None:
    """Type ``value`` into the (visible) text or number field labelled ``label`` and leave it (the
    rerun that starts is waited for when ``wait_idle`` is given; fields filled one after another
    need only the last wait: Streamlit keeps each value and reruns with all of them)."""
    # the field itself, not a heading of the same words (English: "Business background")
    field = tab.get_by_label(label, exact=True).and_(tab.locator("input, textarea")).filter(visible=True)
    field.fill(value)
    field.press("Tab")
    if wait_idle is not None:
        wait_idle(tab)


def _metric(tab, label: str) -> str:
    """The value a metric labelled ``label`` shows."""
    box = tab.locator('[data-testid="stMetric"]').filter(has=tab.get_by_text(label, exact=True)).filter(visible=True)
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _shown_hours(t: Words, value: str) -> tuple[float, float]:
    """Hours a duration as the Estimate page writes it ("4.5 天", "12.3 小时") stands for, and how far
    off its rounding may be."""
    days = t.pattern("unit.days", value=r"[\d,.]+").fullmatch(value)
    if days:
        return float(days["value"].replace(",", "")) * 24, 0.05 * 24
    hours = t.pattern("unit.hours", value=r"[\d,.]+").fullmatch(value)
    assert hours, f"the wall-clock {value!r} is neither days nor hours"
    return float(hours["value"].replace(",", "")), 0.05


@pytest.mark.parametrize("lang", LANGS)
def test_an_applicant_estimates_saves_applies_and_follows_the_request(new_tab, app_url, wait_idle, error_patterns,
                                                                      screenshot, lang):
    tab = new_tab(lang)
    try:
        _walk(tab, app_url, wait_idle, error_patterns, Words(lang))
    except BaseException:
        screenshot(tab, f"applicant-flow-{lang}")
        raise


def _walk(tab, app_url, wait_idle, patterns, t: Words) -> None:
    lang = t.lang
    # 1. Estimate: fine-tuning on 8 × H20 (the page's default model and count)
    estimate = menu_page("applicant", "estimate")
    open_page(tab, app_url, estimate, APPLICANT, lang)
    _fill(tab, t("training.tokens_b"), str(TOKENS_B), wait_idle)
    choose(tab, wait_idle, t("training.gpu"), GPU)
    choose(tab, wait_idle, t("training.workload"), t("training.workload.finetune"))
    tab.get_by_role("button", name=t("training.submit")).click()
    wait_idle(tab)
    expect(tab.get_by_text(t("training.result", gpus=GPUS, gpu=GPU), exact=True)).to_be_visible()
    wall_clock = _metric(tab, t("training.out.wall_clock"))
    wall_hours, slack = _shown_hours(t, wall_clock)
    assert_clean(tab, estimate, lang, patterns)

    # 2. save it under a title
    _fill(tab, t("estimate.save_title"), TITLE, wait_idle)
    tab.get_by_role("button", name=t("estimate.save"), exact=True).click()
    wait_idle(tab)
    saved = text_matching(tab, t.pattern("estimate.saved", id=r"\d+"))
    expect(saved).to_be_visible()
    estimate_id = t.pattern("estimate.saved", id=r"\d+").search(saved.inner_text())["id"]
    assert_clean(tab, estimate, lang, patterns)

    # 3. apply from it: the Apply page opens with what the estimate knows
    tab.get_by_role("button", name=t("estimate.apply_with")).click()
    apply = menu_page("applicant", "apply")
    _arrived(tab, apply, wait_idle)
    expect(tab.get_by_role("combobox", name=t("apply.estimate"))).to_have_value(f"#{estimate_id} {TITLE} · {GPU}")
    expect(tab.get_by_role("radio", name=t("demand.training"), exact=True)).to_be_checked()
    expect(tab.get_by_role("radio", name=t("subtype.l2_finetune"), exact=True)).to_be_checked()
    preset = next(p for p in load_presets() if p.id == MODEL)
    expect(tab.get_by_label(t("form.model_name"), exact=True)).to_have_value(preset.name)
    expect(tab.get_by_label(t("form.parameters_b"), exact=True)).to_have_value(f"{preset.spec.params / 1e9:.3f}")
    expect(tab.get_by_label(t("form.data_tokens_b"), exact=True)).to_have_value(f"{TOKENS_B:.3f}")
    expect(tab.get_by_role("combobox", name=t("form.gpu_model"))).to_have_value(GPU)
    expect(tab.get_by_label(t("form.gpus_per_run"), exact=True)).to_have_value(str(GPUS))
    expect(tab.get_by_label(t("form.requested_gpus"), exact=True)).to_have_value(str(GPUS))
    # one run of the estimate's wall-clock (hours, tenths rounded up), for its whole days rounded up
    run_hours = float(tab.get_by_label(t("form.hours_per_run"), exact=True).input_value())
    assert abs(run_hours - wall_hours) <= slack + 0.1, (run_hours, wall_clock)
    days = math.ceil(run_hours / 24)
    expect(tab.get_by_label(t("form.duration_days"), exact=True)).to_have_value(str(days))
    assert_clean(tab, apply, lang, patterns)

    # what the estimate does not know, then submit
    _fill(tab, t("form.contact"), "010-6666-8888")
    _fill(tab, t("form.business_background"), "调度规程问答模型基于 Llama 2 7B 全参微调")
    _fill(tab, t("form.expected_value"), "提升调度员检索规程的效率")
    _fill(tab, t("form.framework"), "PyTorch")
    _fill(tab, t("form.data_size_gb"), "12")
    _fill(tab, t("form.cuda_version"), "12.1")
    _fill(tab, t("form.python_version"), "3.11")
    _fill(tab, t("form.key_libraries"), "torch==2.3.1, deepspeed==0.14.4", wait_idle)
    pool = load_org().pools[POOL]
    choose(tab, wait_idle, t("form.pool"), t("apply.pool_label", pool=POOL, gpu=pool.gpu, gpus=pool.gpus,
                                 kind=t(f"pool_kind.{pool.kind}")))
    tab.get_by_role("button", name=t("apply.submit")).click()
    wait_idle(tab)
    statuses = "|".join(re.escape(t(f"status.{s}")) for s in TRANSITIONS if s != "draft")
    done = t.pattern("apply.submitted", number=NUMBER.pattern, status=statuses, days=r"\d+")
    submitted = text_matching(tab, done)
    expect(submitted).to_be_visible()
    shown = done.search(submitted.inner_text())
    number, status = shown["number"], shown["status"]
    link = tab.get_by_role("link", name=t("apply.open_request", number=number))
    expect(link).to_be_visible()
    assert_clean(tab, apply, lang, patterns)

    # 4. the link opens the request in My requests: its number and status in words, in the list too
    link.click()
    my_requests = menu_page("applicant", "my_requests")
    _arrived(tab, my_requests, wait_idle)
    expect(tab.get_by_text(t("req.detail_title", number=number, status=status), exact=True)).to_be_visible()
    table_shows(tab, number, status)
    assert_clean(tab, my_requests, lang, patterns)

    # 5. the inbox has the notice of the submission, its subject naming the number
    inbox = menu_page("applicant", "inbox")
    open_page(tab, app_url, inbox, APPLICANT, lang, from_menu=True)
    expect(tab.get_by_text(t("notify.request_submitted.subject", number=number))).to_be_visible()
    assert_clean(tab, inbox, lang, patterns)
