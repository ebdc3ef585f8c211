"""Every rule in the services, for every path (issue 11, "What did not hold" 6; "What to build" 6),
on SQLite and PostgreSQL: a reclaim's kind follows from the allocation's state; who may apply for
which department; claims only by who can take the step; "not found" for what the caller may not
see; ``decide`` names its step and a stale step is refused; an extension does not take GPUs a
scheduled allocation booked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.cluster.backends import PlanBackend
from core.db.session import unit_of_work
from core.errors import InputError, NotFound
from core.identity import Identity, PermissionDenied
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow, ApprovalStepRow, RequestRow
from core.lifecycle.services import CapacityRace
from core.lifecycle.states import InvalidTransition
from core.org import load_org
from core.reclaim import services as reclaim
from core.reclaim.persistence import ReclaimRecordRow
from core.reports import results
from tests.support import clock
from tests.support.forms import JS_FORM, LARGE, SMALL
from tests.support.people import (
    ADMIN, APPLICANT, DEPT_HEAD, HQ_OPS, JS_APPLICANT, OTHER_DEPT, OTHER_HEAD, PROV_L2, PROV_OPS,
)

ZJ_OPS = Identity("jiang.zj", "蒋浙", "jiang.zj@example.com", "prov_ops", department="浙江信通公司", province="ZJ",
                  level="L2")
MARKETING = {**SMALL, "department": "marketing", "project": "P-CS-04"}


def _alloc(ctx, request_id: int) -> AllocationRow:
    with unit_of_work(ctx.sessions) as s:
        return s.scalars(select(AllocationRow).where(AllocationRow.request_id == request_id)).one()


def _records(ctx) -> int:
    with unit_of_work(ctx.sessions) as s:
        return s.scalar(select(func.count()).select_from(ReclaimRecordRow))


def _ends_on(ctx, request_id: int, day) -> None:
    with unit_of_work(ctx.sessions) as s:
        s.get(AllocationRow, _alloc(ctx, request_id).id).ends_on = day


# ----------------------------------------------------------------- reclaim kinds follow the state


def test_an_expiry_reclaim_of_an_allocation_that_has_not_expired_is_refused(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    assert _alloc(ctx, r["id"]).ends_on > clock.today()
    for actor in (svc.SYSTEM, HQ_OPS):  # whoever asks: the kind is the allocation's, not the caller's
        with pytest.raises(InputError) as err:
            reclaim.plan_reclaim(sessions=ctx.sessions, actor=actor, request_id=r["id"], kind="expiry",
                                 reason="expired", provisioner=PlanBackend())
        assert (err.value.key, err.value.field) == ("rules.reclaim_not_expired", "kind")
    assert _records(ctx) == 0 and _alloc(ctx, r["id"]).status == "active"


def test_an_expiry_plan_is_not_executed_once_the_allocation_runs_on(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    _ends_on(ctx, r["id"], clock.today())
    rec = reclaim.plan_reclaim(sessions=ctx.sessions, actor=svc.SYSTEM, request_id=r["id"], kind="expiry",
                               reason="expired", provisioner=PlanBackend())
    _ends_on(ctx, r["id"], clock.day(5))  # its end moved (an extension) before the plan ran
    with pytest.raises(InputError) as err:
        reclaim.execute_reclaim(sessions=ctx.sessions, actor=svc.SYSTEM, record_id=rec["id"], provisioner=PlanBackend())
    assert err.value.key == "rules.reclaim_not_expired" and _alloc(ctx, r["id"]).status == "active"


@pytest.mark.parametrize(("kind", "key"), [("candidate", "rules.reclaim_no_candidate"),
                                           ("pool_review", "rules.reclaim_not_review_pool")])
def test_a_reclaim_kind_the_allocation_does_not_have_is_refused(ctx, kind, key):
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)  # fine-tuning pool, no candidate
    with pytest.raises(InputError) as err:
        reclaim.plan_reclaim(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], kind=kind, reason="x",
                             provisioner=PlanBackend())
    assert (err.value.key, err.value.field) == (key, "kind") and _records(ctx) == 0


def test_a_scheduled_allocation_is_cancelled_not_returned_and_its_booking_goes(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**SMALL, "start_date": clock.iso(4)})
    with pytest.raises(InvalidTransition):
        reclaim.plan_reclaim(sessions=ctx.sessions, actor=APPLICANT, request_id=r["id"], kind="return",
                             reason="不需要了", provisioner=PlanBackend())
    svc.cancel(sessions=ctx.sessions, actor=APPLICANT, request_id=r["id"], reason="不需要了")
    usage = next(p for p in svc.pool_usage(sessions=ctx.sessions, actor=HQ_OPS) if p["pool"] == SMALL["pool"])
    assert _alloc(ctx, r["id"]).status == "released" and usage["booked"] == usage["capacity_row"] == 0


# ----------------------------------------------------------------- who applies for which department


@pytest.mark.parametrize(("actor", "form", "allowed"), [
    (DEPT_HEAD, SMALL, True),                  # the head of 数字化部 for 数字化部
    (DEPT_HEAD, MARKETING, False),             # ... not for 营销部
    (OTHER_HEAD, SMALL, False),
    (PROV_OPS, JS_FORM, True),                 # Jiangsu ops for a Jiangsu department
    (PROV_OPS, SMALL, False),                  # ... not for an HQ department
    (ZJ_OPS, JS_FORM, False),                  # ... nor another province's
    (HQ_OPS, SMALL, True),                     # HQ ops and admins act company-wide
    (HQ_OPS, JS_FORM, True),
    (ADMIN, MARKETING, True),
    (OTHER_DEPT, SMALL, False),                # an applicant only for their own department
], ids=["head-own", "head-other", "other-head", "prov-own", "prov-hq", "prov-other-province", "hq-ops-hq",
        "hq-ops-js", "admin", "applicant-other"])
def test_applying_for_a_department_only_by_roles_that_may(ctx, actor, form, allowed):
    form = {**form, "applicant": actor.name}
    if allowed:
        assert svc.submit(sessions=ctx.sessions, actor=actor, form=form)["status"] in ("approved", "submitted")
        return
    from core.lifecycle.services import DepartmentNotYours

    with pytest.raises(DepartmentNotYours) as err:
        svc.submit(sessions=ctx.sessions, actor=actor, form=form)
    assert isinstance(err.value, PermissionDenied) and err.value.field == "department"
    assert svc.precheck(sessions=ctx.sessions, actor=actor, form=form)["errors"][0]["field"] == "department"
    with unit_of_work(ctx.sessions) as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 0


# ----------------------------------------------------------------- claims, visibility


def test_hq_ops_cannot_claim_a_provincial_request_whose_steps_they_cannot_take(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=JS_APPLICANT, form=JS_FORM)
    assert [s["role"] for s in r["steps"]] == ["prov_ops_l1", "prov_ops_l2"]
    for actor in (HQ_OPS, ADMIN):
        with pytest.raises(PermissionDenied):
            svc.claim(sessions=ctx.sessions, actor=actor, request_id=r["id"])
    with pytest.raises(NotFound):
        svc.claim(sessions=ctx.sessions, actor=ZJ_OPS, request_id=r["id"])
    assert svc.get_request(sessions=ctx.sessions, actor=JS_APPLICANT, request_id=r["id"])["status"] == "submitted"
    assert svc.claim(sessions=ctx.sessions, actor=PROV_OPS, request_id=r["id"])["claimed_by"] == PROV_OPS.id


def test_decide_on_a_request_the_caller_cannot_see_is_not_found_whatever_its_status(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=JS_APPLICANT, form=JS_FORM)
    svc.decide(sessions=ctx.sessions, actor=PROV_OPS, request_id=r["id"], decision="reject", reason="资料不全")
    missing = 10**6
    answers = []
    for request_id in (r["id"], missing):
        with pytest.raises(NotFound) as err:
            svc.decide(sessions=ctx.sessions, actor=ZJ_OPS, request_id=request_id, decision="approve", reason="ok")
        answers.append((err.value.key, {k: v for k, v in err.value.params.items() if k != "id"}))
    assert answers[0] == answers[1]  # the same answer as for a request that does not exist


def test_recording_a_result_says_nothing_about_a_request_the_caller_cannot_see(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    kw = {"metric": "accuracy", "value": 0.8, "higher_is_better": True, "dataset": "C-Eval"}
    answers = []
    for request_id in (r["id"], 10**6):
        with pytest.raises(NotFound) as err:
            results.record_result(sessions=ctx.sessions, actor=OTHER_DEPT, request_id=request_id, **kw)
        answers.append((err.value.key, err.value.params.get("what")))
    assert answers[0] == answers[1]
    with pytest.raises(PermissionDenied):  # ops see the request: refused, not hidden
        results.record_result(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], **kw)


# ----------------------------------------------------------------- decide names its step


def _steps(ctx, request_id: int) -> list[tuple[int, str, str]]:
    with unit_of_work(ctx.sessions) as s:
        return [(st.seq, st.role, st.status) for st in s.scalars(
            select(ApprovalStepRow).where(ApprovalStepRow.request_id == request_id).order_by(ApprovalStepRow.seq))]


def test_a_decision_for_a_step_decided_meanwhile_is_refused_not_landed_on_the_next_step(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=JS_APPLICANT, form=JS_FORM)
    # two reviewers looked at step 1 (the L1 initial review); the first one decides it
    svc.decide(sessions=ctx.sessions, actor=PROV_OPS, request_id=r["id"], decision="approve", reason="初审通过", step=1)
    with pytest.raises(InputError) as err:  # the second one's approval was meant for step 1, not the L2 step
        svc.decide(sessions=ctx.sessions, actor=PROV_L2, request_id=r["id"], decision="approve", reason="初审通过",
                   step=1)
    assert (err.value.key, err.value.field) == ("rules.step_stale", "step")
    assert _steps(ctx, r["id"]) == [(1, "prov_ops_l1", "approved"), (2, "prov_ops_l2", "pending")]
    done = svc.decide(sessions=ctx.sessions, actor=PROV_L2, request_id=r["id"], decision="approve",
                      reason="可行性评估通过", step="prov_ops_l2")
    assert done["status"] == "approved"


def test_a_decision_for_a_step_that_is_not_the_current_one_is_refused(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=LARGE)
    with pytest.raises(InputError) as err:
        svc.decide(sessions=ctx.sessions, actor=DEPT_HEAD, request_id=r["id"], decision="approve", reason="同意",
                   step=2)
    assert (err.value.key, err.value.field) == ("rules.step_not_current", "step")
    for bad in (7, "executive", "two"):
        with pytest.raises(InputError) as err:
            svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve", reason="ok",
                       step=bad)
        assert err.value.field == "step"
    assert _steps(ctx, r["id"]) == [(1, "hq_ops", "pending"), (2, "dept_head", "pending")]
    assert svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve", reason="可行",
                      step="1")["status"] == "in_review"


# ----------------------------------------------------------------- an extension and a booking


def _granted(ctx, gpus: int, start_offset: int, days: int) -> int:
    form = {**LARGE, "pool": SMALL["pool"], "demand_subtype": "l2_finetune", "requested_gpus": gpus,
            "gpus_per_run": gpus, "start_date": clock.iso(start_offset), "duration_days": days}
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=form)
    for actor in (HQ_OPS, DEPT_HEAD):
        r = svc.decide(sessions=ctx.sessions, actor=actor, request_id=r["id"], decision="approve", reason="可行")
    assert r["status"] == "approved"
    return r["id"]


def test_an_extension_may_not_take_gpus_a_scheduled_allocation_has_booked(ctx):
    size = load_org().pool(SMALL["pool"]).gpus
    running = _granted(ctx, size // 2, 0, 7)
    assert _alloc(ctx, running).status == "active"
    booked = _granted(ctx, size - size // 2 + 8, 7, 5)  # from the day the running one ends
    assert _alloc(ctx, booked).status == "scheduled"
    ends_on = _alloc(ctx, running).ends_on
    ext = reclaim.request_extension(sessions=ctx.sessions, actor=APPLICANT, request_id=running, days=3,
                                    reason="评测未完成", today=clock.today())
    with pytest.raises(CapacityRace) as err:
        reclaim.decide_extension(sessions=ctx.sessions, actor=HQ_OPS, extension_id=ext["id"], approve=True,
                                 reason="同意", provisioner=PlanBackend())
    assert err.value.key == "rules.extension_overbooks"
    assert _alloc(ctx, running).ends_on == ends_on == clock.day(7)
    assert reclaim.list_extensions(sessions=ctx.sessions, actor=HQ_OPS)[0]["status"] == "pending"
    assert ends_on + timedelta(days=3) > _alloc(ctx, booked).starts_on


def test_the_decide_command_sends_the_step_and_a_stale_one_is_one_line_naming_step(ctx, cli):
    from tests.support.cli import json_of, refused

    rid = str(svc.submit(sessions=ctx.sessions, actor=JS_APPLICANT, form=JS_FORM)["id"])
    decide = ("requests", "decide", rid, "--decision", "approve", "--reason", "通过")
    assert json_of(cli(*decide, "--step", "1", "--as", "chen.jing", "--json"))["status"] == "in_review"
    refused(cli(*decide, "--step", "1", "--as", "wu.hao"), names="step")  # step 1 was decided meanwhile
    refused(cli(*decide, "--as", "wu.hao"), names="--step")  # the command always names its step
    assert json_of(cli(*decide, "--step", "prov_ops_l2", "--as", "wu.hao", "--json"))["status"] == "approved"
