"""Application and allocation services on real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import func, select

from core.db.models import AuditEventRow, OutboxRow
from core.errors import InputError, NotFound
from core.identity import Identity, PermissionDenied, load_personas
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow, ApprovalStepRow, RequestRow
from core.lifecycle.rules import add_working_days
from core.lifecycle.states import InvalidTransition
from core.org import load_org
from tests.support.forms import INFERENCE, JS_FORM, LARGE, MEDIUM, RESERVE, SMALL, TRAINING
from tests.support.people import (
    ADMIN, APPLICANT, BY_ROLE, COLLEAGUE, COMMITTEE, DEPT_HEAD, EXEC, EXPLORER, HQ_OPS, JS_APPLICANT, OTHER_DEPT,
    OTHER_HEAD, PROV_L2, PROV_L2_B, PROV_OPS,
)
from tests.support.db_checks import allocated as _allocated, outbox as _outbox


def _count(ctx, model, *where) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _transitions(ctx, request_id: int) -> list[tuple[str, str, str]]:
    with ctx.sessions() as s:
        rows = s.scalars(select(AuditEventRow).where(AuditEventRow.subject == f"request:{request_id}",
                                                     AuditEventRow.action == "request.transition")
                         .order_by(AuditEventRow.id))
        return [(r.before["status"], r.after["status"], r.actor) for r in rows]


def _submit(ctx, form, actor=APPLICANT, **kw):
    return svc.submit(sessions=ctx.sessions, actor=actor, form=form, **kw)


@pytest.fixture
def no_auto_provision(monkeypatch):
    """Approvals stop at approved (no automatic provisioning): for what happens before provisioning."""
    monkeypatch.setattr(svc, "_after_approval", lambda sessions, view, provisioner=None: view)


# ----------------------------------------------------------------- submission


def test_standard_small_request_is_approved_at_once_by_the_system(ctx):
    r = _submit(ctx, SMALL)
    assert r["status"] == "approved" and r["tier"] == "standard_auto"
    assert r["number"] == f"CR-{r['created_at'].year}-{r['id']:06d}"
    assert r["tier_message"]["key"] == "tier.standard_auto" and r["steps"] == []
    # the approval committed, then the system provisioned it (plan backend by default)
    assert r["provisioning"]["status"] == "active"
    assert _transitions(ctx, r["id"]) == [("draft", "submitted", "zhang.wei"), ("submitted", "approved", "system"),
                                          ("approved", "provisioning", "system"), ("provisioning", "active", "system")]
    assert set(r["timestamps"]) == {"draft", "submitted", "approved"}
    assert _allocated(ctx, "hq-ft") == 4
    assert [(o.template, o.recipient_id, o.dedup_key) for o in _outbox(ctx)] == [
        ("request_submitted", "zhang.wei", f"request:{r['id']}:submitted"),
        ("request_approved", "zhang.wei", f"request:{r['id']}:approved"),
        ("allocation_ready", "zhang.wei", f"request:{r['id']}:allocation_ready:1")]
    assert _outbox(ctx)[0].recipient_email == "zhang.wei@example.com"


def test_incomplete_form_is_refused_with_the_whole_list_and_nothing_is_written(ctx):
    form = {**TRAINING, "business_background": "", "cuda_version": None, "key_libraries": {}}
    with pytest.raises(InputError) as err:
        _submit(ctx, form)
    assert err.value.key == "lifecycle.incomplete" and err.value.field == "business_background"
    assert err.value.params["missing"] == "business_background, cuda_version, key_libraries"
    for model in (RequestRow, ApprovalStepRow, AllocationRow, AuditEventRow, OutboxRow):
        assert _count(ctx, model) == 0, model.__tablename__


def test_a_draft_is_saved_incomplete_resumed_and_submitted_under_the_same_id(ctx):
    rid = svc.save_draft(sessions=ctx.sessions, actor=APPLICANT, form={"demand_type": "training", "pool": "hq-ft"})
    with pytest.raises(InputError):
        svc.submit(sessions=ctx.sessions, actor=APPLICANT, request_id=rid)
    assert svc.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=rid)["status"] == "draft"
    assert svc.save_draft(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM, request_id=rid) == rid
    with pytest.raises(PermissionDenied):
        svc.save_draft(sessions=ctx.sessions, actor=COLLEAGUE, form=MEDIUM, request_id=rid)
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, request_id=rid)
    assert r["id"] == rid and r["status"] == "submitted" and r["requested_gpus"] == 16
    with pytest.raises(Exception) as err:
        svc.save_draft(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM, request_id=rid)
    assert err.value.key == "lifecycle.not_a_draft"
    assert _count(ctx, RequestRow) == 1


def test_medium_request_goes_to_hq_ops_with_a_claim_deadline_and_a_review_notice(ctx):
    r = _submit(ctx, MEDIUM)
    assert r["status"] == "submitted" and r["tier"] == "standard_ops"
    assert [s["role"] for s in r["steps"]] == ["hq_ops"]
    assert r["claim_deadline"] == add_working_days(r["timestamps"]["submitted"], 1)
    assert r["expected_review_working_days"] == 2
    notices = {(o.template, o.recipient_id) for o in _outbox(ctx)}
    assert notices == {("request_submitted", "zhang.wei"), ("request_needs_review", "li.na")}
    submitted = next(o for o in _outbox(ctx) if o.template == "request_submitted")
    assert submitted.params["expected_review_working_days"] == 2 and submitted.params["number"] == r["number"]
    assert [x["id"] for x in svc.pending_approvals(sessions=ctx.sessions, actor=HQ_OPS)] == [r["id"]]

    done = svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve", reason="资源充足")
    assert done["status"] == "approved" and done["steps"][0]["decided_by"] == "li.na"
    assert _transitions(ctx, r["id"]) == [("draft", "submitted", "zhang.wei"), ("submitted", "in_review", "li.na"),
                                          ("in_review", "approved", "li.na"), ("approved", "provisioning", "system"),
                                          ("provisioning", "active", "system")]
    assert _allocated(ctx, "hq-ft") == 16
    assert svc.pending_approvals(sessions=ctx.sessions, actor=HQ_OPS) == []


def test_inference_application_is_checked_by_its_own_required_fields(ctx):
    with pytest.raises(InputError) as err:
        _submit(ctx, {**INFERENCE, "qps_peak": None})
    assert err.value.field == "qps_peak" and _count(ctx, RequestRow) == 0
    r = _submit(ctx, INFERENCE)
    assert (r["demand_type"], r["status"], r["tier"]) == ("inference", "submitted", "standard_ops")
    items = {i["id"]: i["status"] for i in svc.feasibility(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])}
    assert items == {"gpu_fit": "ok", "storage_fit": "ok", "network_domain": "ok", "software": "ok", "conflict": "ok",
                     "capacity": "ok"}


def test_claim_moves_to_review_and_a_second_claim_is_refused(ctx):
    r = _submit(ctx, MEDIUM)
    assert svc.claim(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])["claimed_by"] == "li.na"
    with pytest.raises(InvalidTransition):
        svc.claim(sessions=ctx.sessions, actor=ADMIN, request_id=r["id"])


def test_rejection_needs_a_reason_notifies_the_applicant_and_is_final(ctx):
    r = _submit(ctx, MEDIUM)
    with pytest.raises(InputError) as err:
        svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="reject", reason="  ")
    assert err.value.field == "reason"
    done = svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="reject",
                      reason="业务价值说明不足")
    assert done["status"] == "rejected" and done["decision_reason"] == "业务价值说明不足"
    assert [o.template for o in _outbox(ctx)].count("request_rejected") == 1
    with pytest.raises(InvalidTransition):
        svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve", reason="again")
    assert _allocated(ctx, "hq-ft") == 0


def test_approve_adjusted_grants_the_new_shape(ctx):
    r = _submit(ctx, MEDIUM)
    with pytest.raises(InputError):
        svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve_adjusted", reason="x")
    done = svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve_adjusted",
                      reason="8 卡即可满足", adjusted_gpus=8)
    assert done["status"] == "adjusted" and (done["approved_gpus"], done["approved_days"]) == (8, 10)
    assert _allocated(ctx, "hq-ft") == 8


def test_large_request_needs_hq_ops_then_the_department_head_of_its_department(ctx):
    r = _submit(ctx, LARGE)
    assert r["tier"] == "large_department" and [s["role"] for s in r["steps"]] == ["hq_ops", "dept_head"]
    with pytest.raises(PermissionDenied):  # not the current step
        svc.decide(sessions=ctx.sessions, actor=DEPT_HEAD, request_id=r["id"], decision="approve", reason="ok")
    mid = svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve", reason="可行")
    assert mid["status"] == "in_review" and _allocated(ctx, "hq-lang") == 0
    with pytest.raises(NotFound):  # head of another department: not theirs to see, so not there at all
        svc.decide(sessions=ctx.sessions, actor=OTHER_HEAD, request_id=r["id"], decision="approve", reason="ok")
    done = svc.decide(sessions=ctx.sessions, actor=DEPT_HEAD, request_id=r["id"], decision="approve", reason="同意")
    assert done["status"] == "approved" and _allocated(ctx, "hq-lang") == 40
    assert [s["status"] for s in done["steps"]] == ["approved", "approved"]


def test_strategic_reserve_needs_the_committee_then_management(ctx):
    r = _submit(ctx, RESERVE)
    assert r["tier"] == "strategic_reserve" and r["expected_review_working_days"] == 10
    with pytest.raises(PermissionDenied):
        svc.decide(sessions=ctx.sessions, actor=EXEC, request_id=r["id"], decision="approve", reason="ok")
    svc.decide(sessions=ctx.sessions, actor=COMMITTEE, request_id=r["id"], decision="approve", reason="专家评审通过")
    assert [x["id"] for x in svc.pending_approvals(sessions=ctx.sessions, actor=EXEC)] == [r["id"]]
    done = svc.decide(sessions=ctx.sessions, actor=EXEC, request_id=r["id"], decision="approve", reason="批准")
    assert done["status"] == "approved" and _allocated(ctx, "hq-reserve") == 8


def test_provincial_pool_goes_to_that_provinces_l1_then_l2(ctx):
    r = _submit(ctx, JS_FORM, actor=JS_APPLICANT)
    assert [s["role"] for s in r["steps"]] == ["prov_ops_l1", "prov_ops_l2"] and r["unit"] == "JS"
    other_province = Identity("wu.zj", "吴浙", "wu@example.com", "prov_ops", province="ZJ", level="L2")
    with pytest.raises(NotFound):  # another province's request is not there for them
        svc.decide(sessions=ctx.sessions, actor=other_province, request_id=r["id"], decision="approve", reason="ok")
    with pytest.raises(PermissionDenied):
        svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve", reason="ok")
    first = svc.decide(sessions=ctx.sessions, actor=PROV_OPS, request_id=r["id"], decision="approve", reason="初审通过")
    assert first["status"] == "in_review"
    # the L1 operator waits for nothing more; the assessment is the L2's
    assert svc.pending_approvals(sessions=ctx.sessions, actor=PROV_OPS) == []
    assert [x["id"] for x in svc.pending_approvals(sessions=ctx.sessions, actor=PROV_L2)] == [r["id"]]
    with pytest.raises(PermissionDenied) as err:
        svc.decide(sessions=ctx.sessions, actor=PROV_OPS, request_id=r["id"], decision="approve", reason="ok")
    assert err.value.key == "error.permission_denied"
    assert svc.decide(sessions=ctx.sessions, actor=PROV_L2, request_id=r["id"], decision="approve",
                      reason="可行性评估通过")["status"] == "approved"


def test_an_l2_may_do_the_initial_review_but_not_both_steps(ctx):
    r = _submit(ctx, JS_FORM, actor=JS_APPLICANT)
    svc.decide(sessions=ctx.sessions, actor=PROV_L2, request_id=r["id"], decision="approve", reason="初审通过")
    with pytest.raises(PermissionDenied) as err:
        svc.decide(sessions=ctx.sessions, actor=PROV_L2, request_id=r["id"], decision="approve", reason="ok")
    assert err.value.key == "lifecycle.second_step_same_person"
    assert svc.get_request(sessions=ctx.sessions, actor=JS_APPLICANT, request_id=r["id"])["status"] == "in_review"
    assert svc.decide(sessions=ctx.sessions, actor=PROV_L2_B, request_id=r["id"], decision="approve",
                      reason="可行性评估通过")["status"] == "approved"


def test_submitting_someone_elses_draft_reveals_nothing_of_it(ctx):
    draft = svc.save_draft(sessions=ctx.sessions, actor=APPLICANT, form={"applicant": "张伟", "department": "digital"})
    for other in (OTHER_DEPT, COLLEAGUE, HQ_OPS):  # a draft is its author's alone, not even the department's
        with pytest.raises(NotFound):
            svc.submit(sessions=ctx.sessions, actor=other, request_id=draft)


def test_a_start_date_in_the_past_is_refused_with_nothing_written(ctx):
    from datetime import date, timedelta

    past = {**SMALL, "start_date": (date.today() - timedelta(days=3)).isoformat()}
    with pytest.raises(InputError) as err:
        svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=past)
    assert err.value.key == "lifecycle.start_in_past" and err.value.params["field"] == "start_date"
    assert svc.list_requests(sessions=ctx.sessions, actor=APPLICANT) == []


def test_nobody_approves_or_claims_their_own_request(ctx):
    r = _submit(ctx, MEDIUM, actor=HQ_OPS)
    with pytest.raises(PermissionDenied) as err:
        svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve", reason="mine")
    assert err.value.key == "lifecycle.own_request"
    with pytest.raises(PermissionDenied):
        svc.claim(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])
    assert svc.pending_approvals(sessions=ctx.sessions, actor=HQ_OPS) == []


def test_applicants_apply_only_for_their_own_department(ctx):
    with pytest.raises(InputError) as err:
        _submit(ctx, MEDIUM, actor=OTHER_DEPT)
    assert err.value.field == "department"
    with pytest.raises(InputError) as err:
        _submit(ctx, {**MEDIUM, "project": "P-CS-04"})
    assert err.value.key == "lifecycle.project_not_in_department"


# ----------------------------------------------------------------- pre-check: capacity, reserve, compliance


def _fill_pool(ctx, pool="hq-sci", gpus=64):
    big = _submit(ctx, {**MEDIUM, "pool": pool, "requested_gpus": gpus, "estimate_id": None})
    for actor in (HQ_OPS, DEPT_HEAD):
        svc.decide(sessions=ctx.sessions, actor=actor, request_id=big["id"], decision="approve", reason="ok")
    assert _allocated(ctx, pool) == gpus
    return big


def test_short_capacity_says_so_suggests_a_shape_and_pools_or_queues(ctx, no_auto_provision):
    big = _fill_pool(ctx, gpus=60)
    with pytest.raises(InputError) as err:
        _submit(ctx, {**MEDIUM, "pool": "hq-sci", "requested_gpus": 8})
    assert err.value.key == "lifecycle.capacity_short" and err.value.field == "requested_gpus"
    assert err.value.params["free"] == 4 and err.value.params["largest"] == 4
    assert "hq-mm" in err.value.params["alternatives"] and "hq-dynamic" not in err.value.params["alternatives"]
    assert _count(ctx, RequestRow) == 1

    pre = svc.precheck(sessions=ctx.sessions, actor=APPLICANT, form={**MEDIUM, "pool": "hq-sci", "requested_gpus": 8})
    assert pre["missing"] == [] and pre["capacity"]["fits"] is False and pre["capacity"]["free"] == 4

    q = _submit(ctx, {**MEDIUM, "pool": "hq-sci", "requested_gpus": 8}, queue_if_short=True)
    assert q["status"] == "queued" and q["capacity"]["fits"] is False
    assert [s["role"] for s in q["steps"]] == ["hq_ops"]
    with pytest.raises(svc.CapacityRace) as race:
        svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=q["id"], decision="approve", reason="ok")
    assert race.value.key == "lifecycle.capacity_race" and race.value.params["free"] == 4
    assert svc.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=q["id"])["status"] == "queued"

    svc.cancel(sessions=ctx.sessions, actor=APPLICANT, request_id=big["id"], reason="训练提前结束")
    assert _allocated(ctx, "hq-sci") == 0
    done = svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=q["id"], decision="approve", reason="有余量")
    assert done["status"] == "approved" and _allocated(ctx, "hq-sci") == 8
    assert [t[:2] for t in _transitions(ctx, q["id"])] == [("draft", "submitted"), ("submitted", "queued"),
                                                          ("queued", "in_review"), ("in_review", "approved")]


def test_the_dynamic_reserve_is_never_given_to_ordinary_requests(ctx):
    with pytest.raises(InputError) as err:
        _submit(ctx, {**SMALL, "pool": "hq-dynamic"})
    assert err.value.key == "lifecycle.pool_not_offered" and err.value.field == "pool"
    assert _count(ctx, RequestRow) == 0


def test_blocking_compliance_rule_refuses_and_writes_nothing_other_flags_are_stored(ctx):
    explore = {**TRAINING, "department": "dispatch", "project": "P-EXP-05", "pool": "hq-reserve",
               "demand_subtype": "research"}
    with pytest.raises(InputError) as err:
        _submit(ctx, {**explore, "requested_gpus": 16, "duration_days": 31}, actor=EXPLORER)
    assert err.value.key == "lifecycle.compliance_blocked"
    assert err.value.params["rule"] == "exploration_large_long_reserve"
    assert _count(ctx, RequestRow) == 0 and _count(ctx, AuditEventRow) == 0
    r = _submit(ctx, {**explore, "requested_gpus": 8, "duration_days": 10}, actor=EXPLORER)
    assert [f["id"] for f in r["flags"]] == ["exploration_on_strategic_reserve"]
    stored = svc.get_request(sessions=ctx.sessions, actor=EXPLORER, request_id=r["id"])
    assert stored["flags"][0]["key"] == "compliance.exploration_on_strategic_reserve"


def test_an_attached_estimate_feeds_the_feasibility_check(ctx):
    from core.services import estimates

    est_id = estimates.save_estimate(
        sessions=ctx.sessions, actor=APPLICANT, kind="training", title="14B 微调", gpu_id="H20", workload="finetune",
        inputs={}, outputs={"gpu": "H20", "gpus": 16, "fits_in_memory": False, "layout": {"tp": 2}})
    r = _submit(ctx, {**MEDIUM, "estimate_id": est_id})
    items = {i["id"]: i for i in svc.feasibility(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])}
    assert items["gpu_fit"]["status"] == "fail" and items["gpu_fit"]["key"] == "feasibility.gpu_estimate_does_not_fit"
    assert items["software"]["status"] == "ok" and items["network_domain"]["status"] == "ok"
    with pytest.raises(InputError) as err:
        _submit(ctx, {**MEDIUM, "estimate_id": 999})
    assert err.value.field == "estimate_id"


def test_cancel_releases_the_allocation_and_a_rejected_request_cannot_be_cancelled(ctx, no_auto_provision):
    r = _submit(ctx, SMALL)
    assert _allocated(ctx, "hq-ft") == 4
    with pytest.raises(InputError):
        svc.cancel(sessions=ctx.sessions, actor=APPLICANT, request_id=r["id"], reason="")
    assert svc.cancel(sessions=ctx.sessions, actor=APPLICANT, request_id=r["id"], reason="不再需要")["status"] == "cancelled"
    assert _allocated(ctx, "hq-ft") == 0
    with pytest.raises(InvalidTransition):
        svc.cancel(sessions=ctx.sessions, actor=APPLICANT, request_id=r["id"], reason="again")


# ----------------------------------------------------------------- audit, outbox, timeline


def test_every_transition_has_one_audit_row_and_every_notice_one_outbox_row(ctx):
    flows = [_submit(ctx, SMALL), _submit(ctx, MEDIUM), _submit(ctx, LARGE)]
    svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=flows[1]["id"], decision="reject", reason="no")
    for actor in (HQ_OPS, DEPT_HEAD):
        svc.decide(sessions=ctx.sessions, actor=actor, request_id=flows[2]["id"], decision="approve", reason="ok")
    for r in flows:
        view = svc.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=r["id"])
        moves = _transitions(ctx, r["id"])
        # one audit row per status entered after draft, chained before → after
        assert [m[1] for m in moves] == [s for s in ("submitted", "in_review", "approved", "rejected",
                                                     "provisioning", "active") if s in view["timestamps"]]
        assert all(a[1] == b[0] for a, b in zip(moves, moves[1:]))
    keys = Counter(o.dedup_key for o in _outbox(ctx))
    assert keys and max(keys.values()) == 1
    templates = Counter(o.template for o in _outbox(ctx))
    org = load_org()
    digital_heads = [p for p in load_personas() if p.role == "dept_head" and svc._dept_of(p, org) == "digital"]
    assert templates == {"request_submitted": 3, "request_approved": 2, "request_rejected": 1,
                         # li.na for MEDIUM and LARGE, then LARGE's department heads among the personas
                         "request_needs_review": 2 + len(digital_heads), "allocation_ready": 2}


def test_timeline_lists_who_did_what_when_and_why(ctx):
    r = _submit(ctx, MEDIUM)
    svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="reject", reason="材料不全")
    events = svc.timeline(sessions=ctx.sessions, actor=APPLICANT, request_id=r["id"])
    assert [e["action"] for e in events] == ["request.created", "request.transition", "request.transition",
                                             "request.step_decided", "request.transition"]
    assert events[-1]["reason"] == "材料不全" and events[-1]["actor"] == "li.na"
    assert all(a["at"] <= b["at"] for a, b in zip(events, events[1:]))


# ----------------------------------------------------------------- visibility and the permission matrix


def test_list_visibility_by_role(ctx):
    mine = _submit(ctx, MEDIUM)["id"]
    draft = svc.save_draft(sessions=ctx.sessions, actor=APPLICANT, form={"pool": "hq-ft"})
    js = _submit(ctx, JS_FORM, actor=JS_APPLICANT)["id"]
    ids = lambda actor: {r["id"] for r in svc.list_requests(sessions=ctx.sessions, actor=actor)}  # noqa: E731
    assert ids(APPLICANT) == {mine, draft}
    assert ids(COLLEAGUE) == {mine}  # a colleague's drafts stay private
    assert ids(OTHER_DEPT) == set()
    assert ids(PROV_OPS) == {js}
    assert ids(HQ_OPS) == ids(ADMIN) == {mine, js}
    assert ids(DEPT_HEAD) == {mine}
    assert {r["id"] for r in svc.list_requests(sessions=ctx.sessions, actor=HQ_OPS, status="submitted")} == {mine, js}
    with pytest.raises(NotFound):
        svc.get_request(sessions=ctx.sessions, actor=OTHER_DEPT, request_id=mine)


OK, DENIED, HIDDEN = "ok", "denied", "hidden"
MATRIX: dict[str, dict[str, str]] = {
    #                 applicant  prov_ops  hq_ops  dept_head  committee  executive  admin
    "precheck":        dict(zip(BY_ROLE, [OK, OK, OK, OK, DENIED, DENIED, OK])),
    "save_draft":      dict(zip(BY_ROLE, [OK, OK, OK, OK, DENIED, DENIED, OK])),
    # MEDIUM is the HQ digital department's: Jiangsu's provincial ops may not apply for it (issue 11)
    "submit":          dict(zip(BY_ROLE, [OK, DENIED, OK, OK, DENIED, DENIED, OK])),
    "list_requests":   dict(zip(BY_ROLE, [OK, OK, OK, OK, DENIED, DENIED, OK])),
    "get_request":     dict(zip(BY_ROLE, [OK, HIDDEN, OK, OK, HIDDEN, HIDDEN, OK])),
    "timeline":        dict(zip(BY_ROLE, [OK, HIDDEN, OK, OK, HIDDEN, HIDDEN, OK])),
    "pending_approvals": dict(zip(BY_ROLE, [DENIED, OK, OK, OK, OK, OK, OK])),
    "feasibility":     dict(zip(BY_ROLE, [DENIED, HIDDEN, OK, OK, HIDDEN, HIDDEN, OK])),
    # claims only by who takes the current step (an admin takes none); a request the caller may
    # not see is not found, whatever its status (issue 11)
    "claim":           dict(zip(BY_ROLE, [DENIED, HIDDEN, OK, DENIED, DENIED, DENIED, DENIED])),
    "decide":          dict(zip(BY_ROLE, [DENIED, HIDDEN, OK, DENIED, HIDDEN, HIDDEN, DENIED])),
    "cancel":          dict(zip(BY_ROLE, [DENIED, HIDDEN, OK, DENIED, HIDDEN, HIDDEN, OK])),
}


def _call(service: str, ctx, actor: Identity, request_id: int):
    common = {"sessions": ctx.sessions, "actor": actor}
    form = {**MEDIUM, "applicant": actor.name}
    return {
        "precheck": lambda: svc.precheck(**common, form=form),
        "save_draft": lambda: svc.save_draft(**common, form=form),
        "submit": lambda: svc.submit(**common, form=form),
        "list_requests": lambda: svc.list_requests(**common),
        "get_request": lambda: svc.get_request(**common, request_id=request_id),
        "timeline": lambda: svc.timeline(**common, request_id=request_id),
        "pending_approvals": lambda: svc.pending_approvals(**common),
        "feasibility": lambda: svc.feasibility(**common, request_id=request_id),
        "claim": lambda: svc.claim(**common, request_id=request_id),
        "decide": lambda: svc.decide(**common, request_id=request_id, decision="approve", reason="ok"),
        "cancel": lambda: svc.cancel(**common, request_id=request_id, reason="withdrawn"),
    }[service]()


@pytest.mark.parametrize("service", sorted(MATRIX))
def test_permission_matrix_every_service_for_every_role(ctx, service):
    """A fresh MEDIUM request (HQ pool, 数字化部, one hq_ops step) per role; the role acts on it."""
    outcomes = {}
    for role, actor in BY_ROLE.items():
        request_id = _submit(ctx, MEDIUM)["id"]
        try:
            _call(service, ctx, actor, request_id)
            outcomes[role] = OK
        except PermissionDenied:
            outcomes[role] = DENIED
        except NotFound:
            outcomes[role] = HIDDEN
    assert outcomes == MATRIX[service]


# ----------------------------------------------------------------- the command line


def test_cli_submits_lists_shows_and_decides(ctx, db_url, tmp_path, monkeypatch, capsys):
    from core.cli import OneLineParser, main
    from core.cli import requests as cli_requests

    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)
    parser = OneLineParser(prog="python -m core")
    cli_requests.register(parser.add_subparsers(dest="group", required=True, parser_class=OneLineParser))
    monkeypatch.setattr("core.cli.build_parser", lambda: parser)

    form_file = tmp_path / "form.json"
    form_file.write_text(json.dumps(MEDIUM, ensure_ascii=False), encoding="utf-8")
    assert main(["requests", "submit", "--file", str(form_file), "--as", "zhang.wei", "--json"]) == 0
    submitted = json.loads(capsys.readouterr().out)
    assert submitted["status"] == "submitted" and submitted["number"].startswith("CR-")
    rid = str(submitted["id"])
    assert main(["requests", "list", "--as", "li.na"]) == 0
    assert submitted["number"] in capsys.readouterr().out
    assert main(["requests", "decide", rid, "--decision", "approve", "--reason", "ok", "--step", "1", "--as", "li.na",
                 "--json"]) == 0
    decided = json.loads(capsys.readouterr().out)
    assert decided["status"] == "approved" and decided["provisioning"]["status"] == "active"
    assert main(["requests", "show", rid, "--as", "zhang.wei", "--lang", "zh-CN"]) == 0
    assert "使用中" in capsys.readouterr().out  # approved, then provisioned automatically

    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    for argv in (["requests", "submit", "--file", str(bad), "--as", "zhang.wei"],
                 ["requests", "submit", "--file", str(form_file), "--as", "nobody"],
                 ["requests", "decide", rid, "--decision", "approve", "--reason", "x", "--step", "1", "--as", "zhang.wei"],
                 ["requests", "show", "999", "--as", "zhang.wei"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error:"), err
    with pytest.raises(SystemExit) as exit_:
        main(["requests", "decide", rid, "--decision", "maybe", "--reason", "x", "--as", "li.na"])
    assert exit_.value.code == 2
