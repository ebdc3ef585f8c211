"""The green channel on real databases (SQLite and PostgreSQL): emergencies from the dynamic
reserve, preemption of low-priority work, the plan shown without side effects, the review."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from core.db.models import AuditEventRow, OutboxRow
from core.errors import ComputeLoopError, InputError, NotFound
from core.identity import PermissionDenied
from core.lifecycle import green_channel as gc
from core.lifecycle import provisioning as prov
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow, PoolCapacityRow, RequestRow
from core.lifecycle.rules import add_working_days
from tests.support.forms import MEDIUM, SMALL
from tests.support.people import ADMIN, APPLICANT, COLLEAGUE, DEPT_HEAD, HQ_OPS
from tests.support.db_checks import allocated as _allocated, outbox as _outbox
from tests.support.green_channel import SCI, WHY, crowded_pool as _crowded_pool, emergency as _emergency, running as _running


def _snapshot(ctx) -> tuple:
    with ctx.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(AuditEventRow)),
            s.scalar(select(func.count()).select_from(OutboxRow)),
            tuple(s.execute(select(RequestRow.id, RequestRow.status, RequestRow.version).order_by(RequestRow.id))),
            tuple(s.execute(select(AllocationRow.id, AllocationRow.status, AllocationRow.gpus).order_by(AllocationRow.id))),
            tuple(s.execute(select(PoolCapacityRow.pool_id, PoolCapacityRow.allocated_gpus, PoolCapacityRow.version)
                            .order_by(PoolCapacityRow.pool_id))),
        )


# ----------------------------------------------------------------- submission


def test_an_emergency_is_flagged_critical_and_routed_to_the_emergency_approver(ctx):
    r = _emergency(ctx, 16)
    assert r["status"] == "submitted" and r["priority"] == "critical" and r["emergency"] is True
    assert r["emergency_category"] == "grid_safety_incident" and r["justification"] == WHY
    assert r["flags"][0]["id"] == "green_channel" and r["tier"] == "green_channel"
    assert [s["role"] for s in r["steps"]] == ["hq_ops"]
    # the approver decides within minutes, not the ordinary working day
    minutes = gc.load_settings().decision_minutes
    left = (r["claim_deadline"] - datetime.now(timezone.utc)).total_seconds() / 60
    assert minutes - 5 < left <= minutes
    assert r["id"] in [x["id"] for x in svc.pending_approvals(sessions=ctx.sessions, actor=HQ_OPS)]
    assert {(o.template, o.recipient_id) for o in _outbox(ctx)} >= {("request_submitted", "zhang.wei"),
                                                                    ("request_needs_review", "li.na")}


@pytest.mark.parametrize(("field", "kwargs"), [
    ("justification", {"justification": "紧急"}),
    ("category", {"category": "birthday_party"}),
])
def test_an_emergency_needs_a_real_justification_and_a_known_category(ctx, field, kwargs):
    args = {"justification": WHY, "category": "production_model_outage", **kwargs}
    with pytest.raises(InputError) as err:
        gc.submit_emergency(sessions=ctx.sessions, actor=APPLICANT, form={**SCI, "requested_gpus": 8}, **args)
    assert err.value.field == field
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 0


# ----------------------------------------------------------------- from the dynamic reserve


def test_an_emergency_is_approved_from_the_dynamic_reserve_and_a_review_is_scheduled(ctx):
    r = _emergency(ctx, 16)
    before = _snapshot(ctx)
    plan = gc.plan_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])
    assert _snapshot(ctx) == before  # showing the plan changes nothing
    assert (plan["source"], plan["pool"], plan["enough"], plan["preempt"]) == ("dynamic_reserve", "hq-dynamic", True, [])
    assert plan["reserve"][0] == {"pool": "hq-dynamic", "gpu": "A800-80GB", "cluster": "hq-beijing-2", "free": 32,
                                  "match": "model"}
    assert plan["message"]["key"] == "green.plan.dynamic_reserve"
    with pytest.raises(PermissionDenied):
        gc.decide_emergency(sessions=ctx.sessions, actor=DEPT_HEAD, request_id=r["id"], approve=True, reason="ok")
    done = gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], approve=True,
                               reason="事故应急，立即批准")
    assert done["status"] == "approved" and done["pool"] == "hq-dynamic"
    assert done["provisioning"]["status"] == "active"
    assert _allocated(ctx, "hq-dynamic") == 16 and _allocated(ctx, "hq-sci") == 0
    sheet = prov.allocation_sheet(sessions=ctx.sessions, actor=APPLICANT, request_id=r["id"])
    assert sheet["emergency"] and sheet["pool"] == "hq-dynamic" and sheet["quota"]["gpu_model"] == "A800-80GB"
    due = add_working_days(done["timestamps"]["approved"], 3).date().isoformat()
    assert done["review_due"] == due
    reviews = gc.reviews_due(sessions=ctx.sessions, actor=HQ_OPS)
    assert [(x["id"], x["review_due"], x["overdue"]) for x in reviews] == [(r["id"], due, False)]
    with pytest.raises(PermissionDenied):
        gc.reviews_due(sessions=ctx.sessions, actor=APPLICANT)
    gc.complete_review(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], notes="紧急确属必要，用量合理")
    assert gc.reviews_due(sessions=ctx.sessions, actor=HQ_OPS) == []


def test_the_dynamic_reserve_is_still_never_offered_to_ordinary_requests(ctx):
    with pytest.raises(InputError) as err:
        svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**SMALL, "pool": "hq-dynamic"})
    assert err.value.key == "lifecycle.pool_not_offered"
    _running(ctx, 32, "normal")
    _running(ctx, 32, "normal", actor=COLLEAGUE)  # hq-sci is full
    with pytest.raises(InputError) as err:
        svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**SCI, "requested_gpus": 8})
    assert err.value.key == "lifecycle.capacity_short"
    assert "hq-dynamic" not in err.value.params["alternatives"]
    pre = svc.precheck(sessions=ctx.sessions, actor=APPLICANT, form={**SCI, "requested_gpus": 8})
    assert "hq-dynamic" not in [a["pool"] for a in pre["capacity"]["alternatives"]]
    assert _allocated(ctx, "hq-dynamic") == 0


# ----------------------------------------------------------------- preemption


def test_a_bigger_emergency_preempts_low_priority_work_which_is_requeued_notified_and_audited(ctx):
    runs = _crowded_pool(ctx)
    assert _allocated(ctx, "hq-sci") == 56
    emergency = _emergency(ctx, 40, actor=DEPT_HEAD)  # the reserve (32) is short; hq-sci has 8 free

    before = _snapshot(ctx)
    plan = gc.plan_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=emergency["id"])
    assert _snapshot(ctx) == before  # the plan is shown before anything happens
    assert (plan["source"], plan["pool"], plan["enough"], plan["needed"]) == ("preemption", "hq-sci", True, 32)
    victims = {runs["old_low"]["id"], runs["new_low"]["id"]}
    assert {p["request_id"] for p in plan["preempt"]} == victims and plan["freed"] == 32 and plan["overshoot"] == 0
    assert plan["preempt"][0]["request_id"] == runs["new_low"]["id"]  # most recently started first
    assert plan["message"]["key"] == "green.plan.preemption"

    with pytest.raises(InputError) as err:  # preemption must be confirmed
        gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=emergency["id"], approve=True,
                            reason="事故应急")
    assert err.value.key == "green.preemption_not_confirmed" and err.value.params["count"] == 2
    assert _snapshot(ctx) == before

    done = gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=emergency["id"], approve=True,
                               reason="事故应急，执行抢占", execute_preemption=True)
    assert done["status"] == "approved" and done["pool"] == "hq-sci" and done["provisioning"]["status"] == "active"
    assert done["emergency_plan"]["source"] == "preemption" and done["review_due"]
    # GPUs back to the pool and granted to the emergency: 56 - 32 + 40
    assert _allocated(ctx, "hq-sci") == 64 and _allocated(ctx, "hq-dynamic") == 0
    with ctx.sessions() as s:
        allocs = {a.request_id: a for a in s.scalars(select(AllocationRow))}
        requests = {r.id: r for r in s.scalars(select(RequestRow))}
        preempted_events = list(s.scalars(select(AuditEventRow).where(AuditEventRow.action == "allocation.preempted")))
        requeues = list(s.scalars(select(AuditEventRow).where(AuditEventRow.action == "request.transition",
                                                              AuditEventRow.reason == "preempted")))
    for rid in victims:
        assert allocs[rid].status == "released" and allocs[rid].preempted_by == emergency["id"]
        assert requests[rid].status == "queued"
    for key in ("small_low", "normal", "high"):
        assert requests[runs[key]["id"]].status == "active" and allocs[runs[key]["id"]].status == "active"
    # one audit event per requeue (plus the transition itself), one notice per owner
    assert sorted(e.subject for e in preempted_events) == sorted(f"request:{rid}" for rid in victims)
    assert all(e.after["emergency_request"] == emergency["id"] for e in preempted_events)
    assert sorted((e.before["status"], e.after["status"]) for e in requeues) == [("active", "queued")] * 2
    notices = [o for o in _outbox(ctx) if o.template == "preempted"]
    assert Counter(o.recipient_id for o in notices) == {"zhang.wei": 1, "chen.jie": 1}
    assert {o.params["emergency"] for o in notices} == {emergency["number"]}
    # the requeued requests wait for ops again, with a new step
    pending = {x["id"]: x for x in svc.pending_approvals(sessions=ctx.sessions, actor=HQ_OPS)}
    assert victims <= set(pending)
    assert [s["status"] for s in pending[runs["old_low"]["id"]]["steps"]] == ["approved", "pending"]
    # the allocation sheet says what happened
    sheet = prov.allocation_sheet(sessions=ctx.sessions, actor=APPLICANT, request_id=runs["old_low"]["id"])
    assert sheet["allocation_status"] == "released" and sheet["preempted_by"] == emergency["id"]
    assert [x["id"] for x in gc.reviews_due(sessions=ctx.sessions, actor=ADMIN)] == [emergency["id"]]
    # the preempted work is stopped on its cluster (plan backend: the steps for the operator), recorded
    assert sorted(x["request_id"] for x in done["stopped"]) == sorted(victims)
    for stop in done["stopped"]:
        assert stop["error"] is None and stop["backend"] == "plan"
        assert [(a["verb"], a["kind"]) for a in stop["actions"]] == [("patch", "ResourceQuota"), ("delete", "Pod")]
        assert stop["actions"][0]["detail"].endswith("=0")
    with ctx.sessions() as s:
        suspended = list(s.scalars(select(AuditEventRow).where(AuditEventRow.action == "allocation.suspended")))
    assert sorted(e.subject for e in suspended) == sorted(f"request:{rid}" for rid in victims)
    # ops can run it again; an allocation that was not preempted is refused
    again = prov.stop_preempted(sessions=ctx.sessions, actor=HQ_OPS, request_id=runs["old_low"]["id"])
    assert [(a["verb"], a["kind"]) for a in again["actions"]] == [("patch", "ResourceQuota"), ("delete", "Pod")]
    with pytest.raises(ComputeLoopError) as err:
        prov.stop_preempted(sessions=ctx.sessions, actor=HQ_OPS, request_id=runs["high"]["id"])
    assert err.value.key == "allocation.not_preempted"
    with pytest.raises(PermissionDenied):
        prov.stop_preempted(sessions=ctx.sessions, actor=APPLICANT, request_id=runs["old_low"]["id"])


def test_not_enough_even_with_preemption_changes_nothing(ctx):
    _running(ctx, 32, "high")
    _running(ctx, 24, "normal", actor=COLLEAGUE)  # 8 free, 24 preemptible, reserve 32
    emergency = _emergency(ctx, 40)
    plan = gc.plan_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=emergency["id"])
    assert plan["source"] == "preemption" and plan["enough"] is False and plan["preempt"] == []
    assert plan["message"]["key"] == "green.plan.preemption_short"
    before = _snapshot(ctx)
    with pytest.raises(ComputeLoopError) as err:
        gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=emergency["id"], approve=True,
                            reason="试图批准", execute_preemption=True)
    assert err.value.key == "green.not_enough"
    assert _snapshot(ctx) == before


def test_a_requeued_request_is_granted_again_on_its_old_allocation_when_capacity_frees(ctx, monkeypatch):
    victim = _running(ctx, 32, "low", actor=COLLEAGUE)
    _running(ctx, 24, "high")
    namespace = prov.allocation_sheet(sessions=ctx.sessions, actor=HQ_OPS, request_id=victim["id"])["namespace"]
    emergency = _emergency(ctx, 40)
    with monkeypatch.context() as m:
        m.setattr(svc, "_after_approval", lambda sessions, view, provisioner=None: view)  # the emergency stays approved
        gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=emergency["id"], approve=True,
                            reason="应急", execute_preemption=True)
    assert svc.get_request(sessions=ctx.sessions, actor=HQ_OPS, request_id=victim["id"])["status"] == "queued"
    svc.cancel(sessions=ctx.sessions, actor=APPLICANT, request_id=emergency["id"], reason="事故已解除")
    again = svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=victim["id"], decision="approve",
                       reason="资源已释放，恢复调度")
    assert again["status"] == "approved" and again["provisioning"]["status"] == "active"
    sheet = prov.allocation_sheet(sessions=ctx.sessions, actor=HQ_OPS, request_id=victim["id"])
    assert sheet["namespace"] == namespace and sheet["preempted_by"] is None and sheet["released_at"] is None
    assert sheet["window"]["start"] >= datetime.now(timezone.utc).date().isoformat()
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AllocationRow).where(
            AllocationRow.request_id == victim["id"])) == 1
    assert _allocated(ctx, "hq-sci") == 56


def test_plan_and_decision_are_for_the_emergency_approver_on_emergencies_only(ctx):
    ordinary = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM)
    with pytest.raises(NotFound):
        gc.plan_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=ordinary["id"])
    emergency = _emergency(ctx, 8)
    for actor in (APPLICANT, DEPT_HEAD):
        with pytest.raises(PermissionDenied):
            gc.plan_emergency(sessions=ctx.sessions, actor=actor, request_id=emergency["id"])
    own = _emergency(ctx, 8, actor=HQ_OPS)
    with pytest.raises(PermissionDenied):
        gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=own["id"], approve=True, reason="mine")
    rejected = gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=emergency["id"], approve=False,
                                   reason="不属于紧急任务")
    assert rejected["status"] == "rejected" and rejected["review_due"] is None
    assert _allocated(ctx, "hq-dynamic") == 0


def test_cli_green_plan_prints_the_plan_and_changes_nothing(ctx, db_url, monkeypatch, capsys):
    import json

    from core.cli import OneLineParser, main
    from core.cli import allocations as cli_allocations

    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)
    parser = OneLineParser(prog="python -m core")
    cli_allocations.register(parser.add_subparsers(dest="group", required=True, parser_class=OneLineParser))
    monkeypatch.setattr("core.cli.build_parser", lambda: parser)
    emergency = _emergency(ctx, 16)
    before = _snapshot(ctx)
    assert main(["allocations", "green", "plan", str(emergency["id"]), "--as", "li.na", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "dynamic_reserve"
    assert main(["allocations", "green", "plan", str(emergency["id"]), "--as", "li.na", "--lang", "zh-CN"]) == 0
    assert "动态预留池" in capsys.readouterr().out
    assert main(["allocations", "green", "plan", str(emergency["id"]), "--as", "zhang.wei"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert _snapshot(ctx) == before
