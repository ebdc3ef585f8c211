"""AppTest: allocation sheets after approval (plan backend), the inbox, and the green channel desk."""

from __future__ import annotations

from datetime import date, timedelta

from core.identity import load_personas
from core.lifecycle import green_channel
from core.lifecycle import services as lifecycle
from tests.app.conftest import no_exceptions, open_page


def _people():
    return {p.id: p for p in load_personas()}


def _form(gpus: int, pool: str = "hq-ft", priority: str = "normal") -> dict:
    return {
        "applicant": "张伟", "department": "digital", "project": "P-LLM-01", "contact": "010-1",
        "demand_type": "training", "demand_subtype": "l2_finetune", "business_background": "微调",
        "expected_value": "效率", "model_name": "Qwen2.5-7B", "framework": "PyTorch", "parameters": 7.6e9,
        "data_size_gb": 50, "data_type": "text", "gpu_model": "H20", "gpus_per_run": gpus, "hours_per_run": 10,
        "runs_per_period": 1, "run_period": "week", "cuda_version": "12.1", "python_version": "3.11",
        "key_libraries": {"torch": "2.3.1"}, "pool": pool, "requested_gpus": gpus,
        "start_date": (date.today() + timedelta(days=1)).isoformat(), "duration_days": 5, "priority": priority,
    }


def test_an_approved_request_has_an_allocation_sheet_with_manifests_and_kubeconfig(app_ctx):
    ctx = app_ctx
    lifecycle.submit(sessions=ctx.sessions, actor=_people()["zhang.wei"], form=_form(4))
    at = open_page("app_pages/allocations.py")
    no_exceptions(at)
    request_id = lifecycle.list_requests(sessions=ctx.sessions, actor=_people()["zhang.wei"])[0]["id"]
    at.selectbox(key="alloc_pick").set_value(request_id).run()
    no_exceptions(at)
    assert "Active" in at.dataframe[0].value.to_string()
    labels = [b.label for b in at.get("download_button")]
    assert "Download kubeconfig" in labels and "Download manifests (YAML)" in labels
    assert any("Plan mode" in i.value for i in at.info)
    assert any("ResourceQuota" in c.value for c in at.code)


def test_the_inbox_shows_the_confirmation_and_the_allocation_sheet_notice(app_ctx):
    ctx = app_ctx
    lifecycle.submit(sessions=ctx.sessions, actor=_people()["zhang.wei"], form=_form(4))
    at = open_page("app_pages/inbox.py", lang="zh-CN")
    no_exceptions(at)
    titles = " ".join(e.label for e in at.expander)
    assert any("未读" in c.value for c in at.caption)
    assert len(at.expander) >= 2, titles


def test_the_emergency_approver_sees_the_plan_and_approves_from_the_dynamic_reserve(app_ctx):
    ctx = app_ctx
    form = _form(8, pool="hq-ft", priority="critical")
    view = green_channel.submit_emergency(sessions=ctx.sessions, actor=_people()["zhang.wei"], form=form,
                                          justification="电网重大安全事故应急分析：需要立即训练故障定位模型",
                                          category="grid_safety_incident")
    at = open_page("app_pages/green_channel.py", persona="li.na")
    no_exceptions(at)
    assert at.selectbox(key="gc_pick").value == view["id"]
    assert any("dynamic reserve" in i.value.lower() for i in at.info), [i.value for i in at.info]
    at.text_area(key="gc_reason").input("应急事项属实，同意使用动态预留池")
    next(b for b in at.button if b.label == "Approve the emergency").click().run()
    no_exceptions(at)
    assert any("Decision recorded" in s.value for s in at.success)
    assert any("review due" in e.label for e in at.expander)


def test_ops_recover_a_stalled_provisioning_run_and_retry_it_from_the_sheet(app_ctx, monkeypatch):
    from core.lifecycle import provisioning
    from core.lifecycle.persistence import RequestRow

    ctx = app_ctx
    people = _people()
    r = lifecycle.submit(sessions=ctx.sessions, actor=people["zhang.wei"], form=_form(16))
    lifecycle.decide(sessions=ctx.sessions, actor=people["li.na"], request_id=r["id"], decision="approve", reason="ok")
    # make it look like the run that took it died an hour ago
    with ctx.sessions.begin() as s:
        row = s.get(RequestRow, r["id"])
        row.status = "provisioning"
        row.provisioning_at = row.provisioning_at - timedelta(hours=1)
    at = open_page("app_pages/allocations.py", persona="li.na")
    at.selectbox(key="alloc_pick").set_value(r["id"]).run()
    no_exceptions(at)
    assert any("no outcome for more than" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Mark stalled runs as failed").click().run()
    no_exceptions(at)
    assert any("interrupted" in e.value.lower() or "stopped without" in e.value for e in at.error)
    next(b for b in at.button if b.label == "Retry provisioning").click().run()
    no_exceptions(at)
    assert provisioning.allocation_sheet(sessions=ctx.sessions, actor=people["li.na"],
                                         request_id=r["id"])["status"] == "active"


def test_the_emergency_decision_shows_what_was_stopped_on_the_cluster(app_ctx):
    ctx = app_ctx
    people = _people()
    victim = lifecycle.submit(sessions=ctx.sessions, actor=people["zhang.wei"], form=_form(32, pool="hq-sci", priority="low"))
    lifecycle.decide(sessions=ctx.sessions, actor=people["li.na"], request_id=victim["id"], decision="approve", reason="ok")
    other = lifecycle.submit(sessions=ctx.sessions, actor=people["zhang.wei"], form=_form(24, pool="hq-sci", priority="high"))
    lifecycle.decide(sessions=ctx.sessions, actor=people["li.na"], request_id=other["id"], decision="approve", reason="ok")
    form = _form(40, pool="hq-sci", priority="critical")
    green_channel.submit_emergency(sessions=ctx.sessions, actor=people["zhang.wei"], form=form,
                                   justification="电网重大安全事故应急分析：需要立即训练故障定位模型",
                                   category="grid_safety_incident")
    at = open_page("app_pages/green_channel.py", persona="li.na")
    no_exceptions(at)
    at.text_area(key="gc_reason").input("应急事项属实，同意抢占低优先级作业")
    at.checkbox(key="gc_confirm").check()
    next(b for b in at.button if b.label == "Approve the emergency").click().run()
    no_exceptions(at)
    assert any("preempted work stopped" in s.value for s in at.success), [s.value for s in at.success]
    shown = " ".join(d.value.to_string() for d in at.dataframe)
    assert "ResourceQuota/allocation" in shown and "=0" in shown
