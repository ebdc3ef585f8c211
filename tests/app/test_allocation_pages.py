"""AppTest: allocation sheets after approval (plan backend), the inbox, and the green channel desk."""

from __future__ import annotations

from datetime import timedelta

from core.lifecycle import green_channel
from core.lifecycle import services as lifecycle
from tests.support.app_run import message, no_exceptions, open_page, shows, text
from tests.support import app_scenarios as scenarios


def test_an_approved_request_has_an_allocation_sheet_with_manifests_and_kubeconfig(app_ctx):
    ctx = app_ctx
    # starting today: provisioned at once (a later start date is provisioned on that day)
    lifecycle.submit(sessions=ctx.sessions, actor=scenarios.people()["zhang.wei"], form=scenarios.form(4, start_offset=0))
    at = open_page("app_pages/allocations.py")
    no_exceptions(at)
    request_id = lifecycle.list_requests(sessions=ctx.sessions, actor=scenarios.people()["zhang.wei"])[0]["id"]
    at.selectbox(key="alloc_pick").set_value(request_id).run()
    no_exceptions(at)
    assert text("status.active") in at.dataframe[0].value.to_string()
    labels = [b.label for b in at.get("download_button")]
    assert text("alloc.kubeconfig") in labels and text("alloc.manifests") in labels
    assert shows(at.info, "uitext.alloc.plan_mode")
    assert any("ResourceQuota" in c.value for c in at.code)


def test_the_inbox_shows_the_confirmation_and_the_allocation_sheet_notice(app_ctx):
    ctx = app_ctx
    lifecycle.submit(sessions=ctx.sessions, actor=scenarios.people()["zhang.wei"], form=scenarios.form(4))
    at = open_page("app_pages/inbox.py", lang="zh-CN")
    no_exceptions(at)
    titles = " ".join(e.label for e in at.expander)
    assert shows(at.caption, "inbox.unread", "zh-CN")
    assert len(at.expander) >= 2, titles


def test_the_emergency_approver_sees_the_plan_and_approves_from_the_dynamic_reserve(app_ctx):
    ctx = app_ctx
    form = scenarios.form(8, pool="hq-ft", priority="critical")
    view = green_channel.submit_emergency(sessions=ctx.sessions, actor=scenarios.people()["zhang.wei"], form=form,
                                          justification="电网重大安全事故应急分析：需要立即训练故障定位模型",
                                          category="grid_safety_incident")
    at = open_page("app_pages/green_channel.py", persona="li.na")
    no_exceptions(at)
    assert at.selectbox(key="gc_pick").value == view["id"]
    assert shows(at.info, "green.plan.dynamic_reserve", gpus=8), [i.value for i in at.info]
    at.text_area(key="gc_reason").input("应急事项属实，同意使用动态预留池")
    next(b for b in at.button if b.label == text("green.approve")).click().run()
    no_exceptions(at)
    assert shows(at.success, "green.decided")
    review = message("green.review_row", number=view["number"])
    assert any(review.search(e.label) for e in at.expander), [e.label for e in at.expander]


def test_ops_recover_a_stalled_provisioning_run_and_retry_it_from_the_sheet(app_ctx, monkeypatch):
    from core.lifecycle import provisioning
    from sqlalchemy import select

    from core.lifecycle.persistence import AllocationRow, RequestRow

    ctx = app_ctx
    people = scenarios.people()
    r = lifecycle.submit(sessions=ctx.sessions, actor=people["zhang.wei"], form=scenarios.form(16, start_offset=0))
    lifecycle.decide(sessions=ctx.sessions, actor=people["li.na"], request_id=r["id"], decision="approve", reason="ok")
    # make it look like the run that took it died an hour ago, request and allocation mid-provisioning
    with ctx.sessions.begin() as s:
        row = s.get(RequestRow, r["id"])
        row.status = "provisioning"
        row.provisioning_at = row.provisioning_at - timedelta(hours=1)
        s.scalars(select(AllocationRow).where(AllocationRow.request_id == r["id"])).one().status = "provisioning"
    at = open_page("app_pages/allocations.py", persona="li.na")
    at.selectbox(key="alloc_pick").set_value(r["id"]).run()
    no_exceptions(at)
    assert shows(at.warning, "alloc.stalled")
    next(b for b in at.button if b.label == text("alloc.recover")).click().run()
    no_exceptions(at)
    assert shows(at.error, "provisioning.interrupted"), [e.value for e in at.error]
    next(b for b in at.button if b.label == text("alloc.retry")).click().run()
    no_exceptions(at)
    assert provisioning.allocation_sheet(sessions=ctx.sessions, actor=people["li.na"],
                                         request_id=r["id"])["status"] == "active"


def test_the_emergency_decision_shows_what_was_stopped_on_the_cluster(app_ctx):
    ctx = app_ctx
    people = scenarios.people()
    # both running from today, so that the emergency must preempt one of them
    low = scenarios.form(32, pool="hq-sci", priority="low", start_offset=0)
    high = scenarios.form(24, pool="hq-sci", priority="high", start_offset=0)
    victim = lifecycle.submit(sessions=ctx.sessions, actor=people["zhang.wei"], form=low)
    lifecycle.decide(sessions=ctx.sessions, actor=people["li.na"], request_id=victim["id"], decision="approve", reason="ok")
    other = lifecycle.submit(sessions=ctx.sessions, actor=people["zhang.wei"], form=high)
    lifecycle.decide(sessions=ctx.sessions, actor=people["li.na"], request_id=other["id"], decision="approve", reason="ok")
    form = scenarios.form(40, pool="hq-sci", priority="critical")
    green_channel.submit_emergency(sessions=ctx.sessions, actor=people["zhang.wei"], form=form,
                                   justification="电网重大安全事故应急分析：需要立即训练故障定位模型",
                                   category="grid_safety_incident")
    at = open_page("app_pages/green_channel.py", persona="li.na")
    no_exceptions(at)
    at.text_area(key="gc_reason").input("应急事项属实，同意抢占低优先级作业")
    at.checkbox(key="gc_confirm").check()
    next(b for b in at.button if b.label == text("green.approve")).click().run()
    no_exceptions(at)
    assert shows(at.success, "alloc.stopped", number=victim["number"]), [s.value for s in at.success]
    shown = " ".join(d.value.to_string() for d in at.dataframe)
    assert text("uitext.stop.quota_zero") in shown and text("uitext.k8s_kind.ResourceQuota") in shown
    sources = " ".join(m.value for m in at.markdown)  # the exact objects and patch: ops' technical sources
    assert "ResourceQuota/allocation" in sources and "=0" in sources
