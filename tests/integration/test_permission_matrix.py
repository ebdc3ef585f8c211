"""Permission matrix of the allocation, green-channel, reclaim, warning, adjustment (support
requests, the batch scheduler's queues, alert-rule placement included) and metrics services: every
service × role, on SQLite and PostgreSQL.

Issue 3 asks for "a permission matrix (every service × role)" and issue 5 for "permission checks
(an applicant cannot see another department's unpublished data)". The rules (issue 3): permissions
are enforced in the core services; applicants see their own department only; provincial ops act
only in their province; nobody approves their own; executives (and the committee) read only
published material. Each cell is the outcome for one persona, relative to the subject:

* ``ok`` — the service did it (a reader: the subject is in the answer);
* ``denied`` — :class:`PermissionDenied`;
* ``hidden`` — :class:`NotFound` (a reader: the subject is left out of the answer).

A subject is an allocation (request) of the HQ digital department on ``hq-ft`` (``hq``) or of the
Jiangsu ICT company on ``js-pool`` (``js``), granted through the real services (a standard
request is approved and provisioned by the system with the plan backend), or a support request
for the subject's province's A800 pool (``hq-mm`` for ``hq``, ``js-pool`` for ``js``). Services that
change the subject get a fresh subject after each role they served (refused calls change nothing);
readers share one. The columns:

======================  ===================================================================
owner                   the applicant who holds the allocation
colleague               an applicant of the same department
other_dept              an applicant of another department (营销部)
prov_home               provincial ops of the subject's province (``js`` subjects only)
prov_other              provincial ops of another province (JS for ``hq``, ZJ for ``js``)
hq_ops … admin          HQ ops, the head of the owning department, committee, executive, admin
======================  ===================================================================
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable
from unittest import mock

import polars as pl
import pytest

from core.adjust import services as adjust
from core.adjust import support
from core.adjust.autoscaling import default_policy
from core.adjust.policy_placement import placed_policies
from core.adjust.scheduler import apply_scheduler_objects, scheduler_workloads
from core.cluster.backends import ClusterError, PlanBackend
from core.db.session import unit_of_work
from core.errors import NotFound
from core.identity import ROLE_MENU, Identity, PermissionDenied
from core.lifecycle import green_channel as gc
from core.lifecycle import provisioning as prov
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow, RequestRow
from core.metrics import usage
from core.metrics import water_level as wl
from core.metrics.persistence import replace_day
from core.metrics.schema import ROLLUP_SCHEMA
from core.reclaim import services as reclaim
from core.reclaim import warning_service as warnings
from core.reports import results
from tests.support import clock
from tests.support.people import (
    ADMIN, HQ_OPS, OTHER_DEPT,
)
from tests.support.rules import _lifted_data_dir, auto_caps_lifted  # noqa: F401 - fixtures
from tests.support.run_counts import PERMISSION_PROPERTY
from tests.support.subjects import (
    FORMS, HQ_OPS_B, PEOPLE, Subject, active as _active, alloc_of as _alloc,
    form_for as _form, granted as _granted,
)

# Subjects are made through the real services, many of them by one owner per test: the
# auto-approval caps (tested on their own in test_rules_gaming) are lifted here.
pytestmark = pytest.mark.usefixtures("auto_caps_lifted")

OK, DENIED, HIDDEN = "ok", "denied", "hidden"
ROLES = ("owner", "colleague", "other_dept", "prov_home", "prov_other", "hq_ops", "dept_head", "committee",
         "executive", "admin")

assert {p.role for p in PEOPLE["js"].values()} == set(ROLE_MENU)  # every role has a column

MONTH, MONTH_DAYS = "2026-10", [date(2026, 10, d) for d in range(25, 32)]  # 7 days of the month in scope
WHY = "220kV 变电站连锁故障，需紧急复现潮流并评估后续风险，支撑调度决策"


# ----------------------------------------------------------------- subjects (through the real services)


@contextmanager
def _no_auto_provision():
    with mock.patch.object(svc, "_after_approval", lambda sessions, view, provisioner=None: view):
        yield


def _approved(ctx, where: str) -> Subject:
    with _no_auto_provision():
        subject = _granted(ctx, where)
    assert svc.get_request(sessions=ctx.sessions, actor=HQ_OPS, request_id=subject.request_id)["status"] == "approved"
    return subject


class _Unreachable(PlanBackend):
    """The cluster refuses the first object."""

    def provision(self, spec):
        raise ClusterError("cluster.unreachable", step="Namespace", reason="connection refused")


class _Dies(PlanBackend):
    """The run dies between claiming the request and recording an outcome."""

    def provision(self, spec):
        raise KeyboardInterrupt


def _failed(ctx, where: str) -> Subject:
    subject = _approved(ctx, where)
    sheet = prov.provision(sessions=ctx.sessions, actor=svc.SYSTEM, request_id=subject.request_id,
                           provisioner=_Unreachable())
    assert sheet["status"] == "provisioning_failed"
    return subject


def _stalled(ctx, where: str) -> Subject:
    subject = _approved(ctx, where)
    with pytest.raises(KeyboardInterrupt):
        prov.provision(sessions=ctx.sessions, actor=svc.SYSTEM, request_id=subject.request_id, provisioner=_Dies())
    return subject


def _preempted(ctx, where: str) -> Subject:
    """An active allocation released by a (stand-in) emergency, as green_channel._preempt leaves it;
    the real preemption is covered by test_green_channel."""
    subject = _active(ctx, where)
    emergency = _active(ctx, where)
    with unit_of_work(ctx.sessions) as s:
        alloc = s.get(AllocationRow, subject.alloc_id)
        alloc.status, alloc.released_at, alloc.preempted_by = "released", svc._now(), emergency.request_id
        svc._release(s, alloc.pool_id, alloc.gpus)
    return subject


def _emergency(ctx, where: str) -> Subject:
    owner = PEOPLE[where]["owner"]
    view = gc.submit_emergency(sessions=ctx.sessions, actor=owner, form=_form(where, pool="hq-sci", requested_gpus=2),
                               justification=WHY, category="grid_safety_incident")
    return Subject(where, view["id"], 0, None, owner, {})


def _granted_emergency(ctx, where: str) -> Subject:
    subject = _emergency(ctx, where)
    done = gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=subject.request_id, approve=True,
                               reason="事故应急")
    assert done["review_due"] and done["provisioning"]["status"] == "active"
    return subject


def _window(ctx, subject: Subject, start: date, end: date, **request_fields) -> None:
    """Move the allocation's window (tiers auto-approve only short future windows; these subjects need
    a past month in scope and a later end)."""
    with unit_of_work(ctx.sessions) as s:
        alloc = s.get(AllocationRow, subject.alloc_id)
        alloc.starts_on, alloc.ends_on = start, end
        row = s.get(RequestRow, subject.request_id)
        for k, v in request_fields.items():
            setattr(row, k, v)


def _extendable(ctx, where: str) -> Subject:
    subject = _active(ctx, where)
    alloc = _alloc(ctx, subject.request_id)
    _window(ctx, subject, alloc.starts_on, alloc.starts_on + timedelta(days=14))
    subject.extra["today"] = alloc.starts_on + timedelta(days=7)  # before the extension deadline
    return subject


def _extension(ctx, where: str) -> Subject:
    subject = _extendable(ctx, where)
    ext = reclaim.request_extension(sessions=ctx.sessions, actor=subject.owner, request_id=subject.request_id,
                                    days=3, reason="评测未完成", today=subject.extra["today"])
    subject.extra["extension"] = ext["id"]
    return subject


def _forced_plan(ctx, where: str) -> Subject:
    subject = _active(ctx, where)
    rec = reclaim.plan_reclaim(sessions=ctx.sessions, actor=HQ_OPS_B, request_id=subject.request_id, kind="forced",
                               reason="项目暂停", provisioner=PlanBackend())
    subject.extra["record"] = rec["id"]
    return subject


def _approved_plan(ctx, where: str) -> Subject:
    subject = _forced_plan(ctx, where)
    reclaim.approve_reclaim(sessions=ctx.sessions, actor=HQ_OPS, record_id=subject.extra["record"], note="同意")
    return subject


def _expiry_plan(ctx, where: str) -> Subject:
    """An expiry reclaim planned by the daily job and left planned (a run interrupted before executing):
    the allocation's end date has come (an "expiry" reclaim of an unexpired one is refused)."""
    subject = _active(ctx, where)
    _window(ctx, subject, _alloc(ctx, subject.request_id).starts_on, clock.today())
    rec = reclaim.plan_reclaim(sessions=ctx.sessions, actor=svc.SYSTEM, request_id=subject.request_id, kind="expiry",
                               reason="expired", provisioner=PlanBackend())
    subject.extra["record"] = rec["id"]
    return subject


def _idle_month(ctx, subject: Subject, util: float, mem: float, peak: float) -> None:
    """Seven days of daily rollups for the subject's namespace in MONTH (its window starts on the 25th)."""
    _window(ctx, subject, MONTH_DAYS[0], date(2026, 12, 31), demand_type="inference")
    for day in MONTH_DAYS:
        frame = pl.DataFrame([{
            "day": day, "cluster": "any", "hostname": "n1", "uuid": f"GPU-{subject.namespace}", "model": "H20",
            "namespace": subject.namespace, "mean_util": util, "peak_util": peak, "mean_mem": mem, "peak_mem": peak,
            "allocated_gpu_hours": 24.0, "used_gpu_hours": 24.0 * util, "energy_kwh": 1.0, "samples": 1440,
            "expected_samples": 1440, "coverage": 1.0}], schema=ROLLUP_SCHEMA)
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, day, frame)


def _warning(ctx, where: str) -> Subject:
    subject = _active(ctx, where)
    _idle_month(ctx, subject, util=0.05, mem=0.10, peak=0.30)
    out = warnings.raise_warnings(sessions=ctx.sessions, actor=svc.SYSTEM, month=MONTH)
    [w] = [w for w in warnings.list_warnings(sessions=ctx.sessions, actor=ADMIN, month=MONTH)
           if w["resource"] == subject.namespace]
    assert w["id"] in out["raised"] and w["level"] == "yellow"
    subject.extra["warning"] = w["id"]
    return subject


def _candidate(ctx, where: str) -> Subject:
    subject = _active(ctx, where)
    _idle_month(ctx, subject, util=0.05, mem=0.05, peak=0.10)
    out = reclaim.detect_candidates(sessions=ctx.sessions, actor=svc.SYSTEM, month=MONTH)
    [c] = [c for c in reclaim.list_candidates(sessions=ctx.sessions, actor=ADMIN, month=MONTH)
           if c["namespace"] == subject.namespace]
    assert c["id"] in out["detected"]
    subject.extra["candidate"] = c["id"]
    return subject


def _agreed(ctx, where: str) -> Subject:
    """A candidate whose owner agreed to give the service up."""
    subject = _candidate(ctx, where)
    for to in ("under_review", "owner_contacted", "plan_agreed"):
        reclaim.move_candidate(sessions=ctx.sessions, actor=HQ_OPS, candidate_id=subject.extra["candidate"], to=to,
                               note="同意下线", plan="remove")
    return subject


def _agreed_planned(ctx, where: str) -> Subject:
    """An agreed candidate whose reclaim record (dry run) exists, planned by HQ_OPS_B."""
    subject = _agreed(ctx, where)
    subject.extra["record"] = reclaim.plan_candidate(sessions=ctx.sessions, actor=HQ_OPS_B,
                                                     candidate_id=subject.extra["candidate"],
                                                     provisioner=PlanBackend())["id"]
    return subject


def _agreed_approved(ctx, where: str) -> Subject:
    subject = _agreed_planned(ctx, where)
    reclaim.approve_reclaim(sessions=ctx.sessions, actor=HQ_OPS, record_id=subject.extra["record"], note="同意")
    return subject


def _l1_pool(ctx, where: str) -> Subject:
    subject = _granted(ctx, where, pool="hq-lang", demand_subtype="l1_foundation")
    assert _alloc(ctx, subject.request_id).status == "active"
    return subject


def _queued(ctx, where: str) -> Subject:
    """A request larger than its pool, queued for capacity."""
    pool = FORMS[where]["pool"]
    gpus = {"hq-ft": 96, "js-pool": 64}[pool] + 8
    owner = PEOPLE[where]["owner"]
    view = svc.submit(sessions=ctx.sessions, actor=owner, form=_form(where, requested_gpus=gpus, gpus_per_run=gpus),
                      queue_if_short=True)
    assert view["status"] == "queued", view["status"]
    return Subject(where, view["id"], 0, None, owner, {})


def _policy(ctx, where: str) -> Subject:
    subject = _active(ctx, where)
    saved = adjust.save_policy(sessions=ctx.sessions, actor=HQ_OPS, policy=default_policy(subject.namespace, "serve"),
                               reason="上线")
    subject.extra["policy"] = saved["id"]
    return subject


def _with_usage(ctx, where: str) -> Subject:
    """An active allocation with seven days of rollups in MONTH (the usage readers' subject)."""
    subject = _active(ctx, where)
    _idle_month(ctx, subject, util=0.62, mem=0.55, peak=0.97)
    return subject


def _nothing(ctx, where: str) -> Subject:
    return Subject(where, 0, 0, None, PEOPLE[where]["owner"], {})


# support requests ask for the subject's province's A800 pool (hq-ft's H20 exists nowhere else);
# the HQ one is raised by HQ_OPS_B (not a column), the Jiangsu one by Jiangsu's ops
SUPPORT_POOL, DONOR_POOL = {"hq": "hq-mm", "js": "js-pool"}, {"hq": "hq-sci", "js": "hq-mm"}
SUPPORT_RAISER = {"hq": HQ_OPS_B, "js": PEOPLE["js"]["prov_home"]}


def _raise_support(ctx, actor: Identity, where: str) -> dict:
    return support.raise_request(**_c(ctx, actor), pool=SUPPORT_POOL[where], gpus=4, starts_on=clock.day(0),
                                 ends_on=clock.day(3), reason="推理服务排队", namespace="chat-api")


def _support_request(ctx, where: str) -> Subject:
    """An open support request of the subject's province."""
    raised = _raise_support(ctx, SUPPORT_RAISER[where], where)
    return Subject(where, 0, 0, None, PEOPLE[where]["owner"], {"support": raised["id"]})


def _support_transfer(ctx, where: str) -> Subject:
    """A support request approved by HQ ops: its transfer runs (its window starts today)."""
    subject = _support_request(ctx, where)
    done = support.approve(sessions=ctx.sessions, actor=HQ_OPS, request_id=subject.extra["support"],
                           donor_pool=DONOR_POOL[where], reason="总部空闲", backend=PlanBackend())
    assert done["status"] == "active", done["status"]
    return subject


def _waiting(ctx, where: str) -> Subject:
    """A request above the standard quota, waiting for its first step (HQ ops; Jiangsu's L1)."""
    owner = PEOPLE[where]["owner"]
    view = svc.submit(sessions=ctx.sessions, actor=owner, form=_form(where, requested_gpus=8, gpus_per_run=8))
    assert view["status"] == "submitted" and view["steps"][0]["role"] in ("hq_ops", "prov_ops_l1"), view["steps"]
    return Subject(where, view["id"], 0, None, owner, {})


# ----------------------------------------------------------------- the services, as each role calls them


class _Reached(Exception):
    """A metrics source was read: the permission check let the actor through."""


class _Source:
    def latest(self, at=None):
        raise _Reached

    def series(self, start, end, *, step_s, namespace=None):
        raise _Reached


@dataclass(frozen=True)
class Case:
    build: Callable[[Any, str], Subject]
    call: Callable[[Any, Identity, Subject], Any]
    seen: Callable[[Any, Subject], bool] | None = None  # a reader: is the subject in the answer
    per_role: bool = False  # the call changes the subject: a fresh one per role


class _NoQueues:
    """A live scheduler source that answers with no queue: every pool read comes back, not found."""

    def queues(self, cluster_id, scheduler):
        return []


def _ids(key: str, value: Callable[[Subject], Any]) -> Callable[[Any, Subject], bool]:
    return lambda out, subj: value(subj) in {row[key] for row in out}


def _c(ctx, actor):
    return {"sessions": ctx.sessions, "actor": actor}


CASES: dict[str, Case] = {
    # ---- provisioning
    "list_allocations": Case(_active, lambda ctx, a, x: prov.list_allocations(**_c(ctx, a)),
                             _ids("request_id", lambda x: x.request_id)),
    "allocation_sheet": Case(_active, lambda ctx, a, x: prov.allocation_sheet(**_c(ctx, a), request_id=x.request_id)),
    "manifests": Case(_active, lambda ctx, a, x: prov.manifests(**_c(ctx, a), request_id=x.request_id)),
    "provision": Case(_approved, lambda ctx, a, x: prov.provision(**_c(ctx, a), request_id=x.request_id),
                      per_role=True),
    "retry": Case(_failed, lambda ctx, a, x: prov.retry(**_c(ctx, a), request_id=x.request_id), per_role=True),
    "stop_preempted": Case(_preempted, lambda ctx, a, x: prov.stop_preempted(**_c(ctx, a), request_id=x.request_id)),
    "recover_stalled": Case(_stalled, lambda ctx, a, x: prov.recover_stalled(
        **_c(ctx, a), now=svc._now() + timedelta(days=1)), lambda out, x: x.request_id in out, per_role=True),
    # ---- applying and reviewing (issue 11: who applies for which department, claims only by who
    # takes the step, "not found" for what the caller may not see, the step a decision names)
    "submit": Case(_nothing, lambda ctx, a, x: svc.submit(**_c(ctx, a), form=_form(x.where, applicant=a.name)),
                   per_role=True),
    "claim": Case(_waiting, lambda ctx, a, x: svc.claim(**_c(ctx, a), request_id=x.request_id), per_role=True),
    "decide": Case(_waiting, lambda ctx, a, x: svc.decide(**_c(ctx, a), request_id=x.request_id, decision="approve",
                                                          reason="可行", step=1), per_role=True),
    "record_result": Case(_active, lambda ctx, a, x: results.record_result(
        **_c(ctx, a), request_id=x.request_id, metric="accuracy", value=0.8, higher_is_better=True, dataset="C-Eval")),
    # ---- green channel
    "submit_emergency": Case(_nothing, lambda ctx, a, x: gc.submit_emergency(
        **_c(ctx, a), form=_form("hq", pool="hq-sci", requested_gpus=2,
                                 **({"department": "marketing", "project": "P-CS-04"} if a is OTHER_DEPT else {})),
        justification=WHY, category="grid_safety_incident")),
    "plan_emergency": Case(_emergency, lambda ctx, a, x: gc.plan_emergency(**_c(ctx, a), request_id=x.request_id)),
    "decide_emergency": Case(_emergency, lambda ctx, a, x: gc.decide_emergency(
        **_c(ctx, a), request_id=x.request_id, approve=False, reason="不属紧急"), per_role=True),
    "reviews_due": Case(_granted_emergency, lambda ctx, a, x: gc.reviews_due(**_c(ctx, a)),
                        _ids("id", lambda x: x.request_id)),
    "complete_review": Case(_granted_emergency, lambda ctx, a, x: gc.complete_review(
        **_c(ctx, a), request_id=x.request_id, notes="处置得当"), per_role=True),
    # ---- reclaim
    "expiring_allocations": Case(_active, lambda ctx, a, x: reclaim.expiring_allocations(**_c(ctx, a)),
                                 _ids("request_id", lambda x: x.request_id)),
    "request_extension": Case(_extendable, lambda ctx, a, x: reclaim.request_extension(
        **_c(ctx, a), request_id=x.request_id, days=3, reason="评测未完成", today=x.extra["today"]), per_role=True),
    "list_extensions": Case(_extension, lambda ctx, a, x: reclaim.list_extensions(**_c(ctx, a)),
                            _ids("id", lambda x: x.extra["extension"])),
    "decide_extension": Case(_extension, lambda ctx, a, x: reclaim.decide_extension(
        **_c(ctx, a), extension_id=x.extra["extension"], approve=False, reason="资源紧张"), per_role=True),
    "plan_reclaim_forced": Case(_active, lambda ctx, a, x: reclaim.plan_reclaim(
        **_c(ctx, a), request_id=x.request_id, kind="forced", reason="项目暂停", provisioner=PlanBackend())),
    "plan_reclaim_return": Case(_active, lambda ctx, a, x: reclaim.plan_reclaim(
        **_c(ctx, a), request_id=x.request_id, kind="return", reason="提前完成", provisioner=PlanBackend())),
    "approve_reclaim": Case(_forced_plan, lambda ctx, a, x: reclaim.approve_reclaim(
        **_c(ctx, a), record_id=x.extra["record"], note="同意")),
    "execute_reclaim": Case(_approved_plan, lambda ctx, a, x: reclaim.execute_reclaim(
        **_c(ctx, a), record_id=x.extra["record"], provisioner=PlanBackend()), per_role=True),
    "execute_expiry_reclaim": Case(_expiry_plan, lambda ctx, a, x: reclaim.execute_reclaim(
        **_c(ctx, a), record_id=x.extra["record"], provisioner=PlanBackend()), per_role=True),
    "preview_return": Case(_active, lambda ctx, a, x: reclaim.preview_return(
        **_c(ctx, a), request_id=x.request_id, provisioner=PlanBackend())),
    "return_allocation": Case(_active, lambda ctx, a, x: reclaim.return_allocation(
        **_c(ctx, a), request_id=x.request_id, reason="提前完成", provisioner=PlanBackend()), per_role=True),
    "list_records": Case(_forced_plan, lambda ctx, a, x: reclaim.list_records(**_c(ctx, a)),
                         _ids("id", lambda x: x.extra["record"])),
    "list_candidates": Case(_candidate, lambda ctx, a, x: reclaim.list_candidates(**_c(ctx, a)),
                            _ids("id", lambda x: x.extra["candidate"])),
    "move_candidate": Case(_candidate, lambda ctx, a, x: reclaim.move_candidate(
        **_c(ctx, a), candidate_id=x.extra["candidate"], to="under_review", note="核实"), per_role=True),
    "plan_candidate": Case(_agreed, lambda ctx, a, x: reclaim.plan_candidate(
        **_c(ctx, a), candidate_id=x.extra["candidate"], provisioner=PlanBackend()), per_role=True),
    "plan_candidate_again": Case(_agreed_planned, lambda ctx, a, x: reclaim.plan_candidate(
        **_c(ctx, a), candidate_id=x.extra["candidate"], provisioner=PlanBackend())),
    "execute_candidate": Case(_agreed_approved, lambda ctx, a, x: reclaim.execute_candidate(
        **_c(ctx, a), candidate_id=x.extra["candidate"], provisioner=PlanBackend()), per_role=True),
    "pool_review": Case(_l1_pool, lambda ctx, a, x: reclaim.pool_review(**_c(ctx, a), month=MONTH),
                        lambda out, x: x.request_id in {r["request_id"] for p in out for r in p["allocations"]}),
    "add_pool_review": Case(_l1_pool, lambda ctx, a, x: reclaim.add_pool_review(
        **_c(ctx, a), pool_id="hq-lang", month=MONTH, kind="note", text="进展正常")),
    # ---- warnings
    "list_warnings": Case(_warning, lambda ctx, a, x: warnings.list_warnings(**_c(ctx, a)),
                          _ids("id", lambda x: x.extra["warning"])),
    "get_warning": Case(_warning, lambda ctx, a, x: warnings.get_warning(**_c(ctx, a), warning_id=x.extra["warning"])),
    "triage": Case(_warning, lambda ctx, a, x: warnings.triage(
        **_c(ctx, a), warning_id=x.extra["warning"], to="acknowledged", note="已知悉"), per_role=True),
    "reply": Case(_warning, lambda ctx, a, x: warnings.reply(**_c(ctx, a), warning_id=x.extra["warning"],
                                                            text="下周开始训练")),
    # ---- dynamic adjustment
    "queue": Case(_queued, lambda ctx, a, x: adjust.queue(**_c(ctx, a))["entries"],
                  _ids("request_id", lambda x: x.request_id)),
    "simulate_preemption": Case(_active, lambda ctx, a, x: adjust.simulate_preemption(
        **_c(ctx, a), pool=FORMS[x.where]["pool"], allocation_ids=[x.alloc_id])),
    "simulate_defragmentation": Case(_active, lambda ctx, a, x: adjust.simulate_defragmentation(
        **_c(ctx, a), pool=FORMS[x.where]["pool"])),
    "running_allocations": Case(_active, lambda ctx, a, x: adjust.running_allocations(
        **_c(ctx, a), pool=FORMS[x.where]["pool"]), _ids("allocation_id", lambda x: x.alloc_id)),
    "save_policy": Case(_active, lambda ctx, a, x: adjust.save_policy(
        **_c(ctx, a), policy=default_policy(x.namespace, "serve"), reason="晚高峰")),
    "get_policy": Case(_policy, lambda ctx, a, x: adjust.get_policy(**_c(ctx, a), policy_id=x.extra["policy"])),
    "list_policies": Case(_policy, lambda ctx, a, x: adjust.list_policies(**_c(ctx, a)),
                          _ids("namespace", lambda x: x.namespace)),
    "list_adjustments": Case(_policy, lambda ctx, a, x: adjust.list_adjustments(**_c(ctx, a)),
                             _ids("subject", lambda x: f"deployment:{x.namespace}/serve")),
    "placed_policies": Case(_policy, lambda ctx, a, x: placed_policies(**_c(ctx, a)).placed,
                            lambda out, x: x.namespace in {p.policy.namespace for p in out}),
    # ---- support requests (the subject: its pool, or the support request in extra)
    "support_raise": Case(_nothing, lambda ctx, a, x: _raise_support(ctx, a, x.where)),
    "support_list": Case(_support_request, lambda ctx, a, x: support.list_requests(**_c(ctx, a)),
                         _ids("id", lambda x: x.extra["support"])),
    "support_show": Case(_support_request, lambda ctx, a, x: support.get_request(
        **_c(ctx, a), request_id=x.extra["support"])),
    "support_donors": Case(_support_request, lambda ctx, a, x: support.donor_options(
        **_c(ctx, a), request_id=x.extra["support"])),
    "support_pool_headroom": Case(_nothing, lambda ctx, a, x: support.pool_headroom(**_c(ctx, a)),
                                  _ids("pool", lambda x: SUPPORT_POOL[x.where])),
    "support_approve": Case(_support_request, lambda ctx, a, x: support.approve(
        **_c(ctx, a), request_id=x.extra["support"], donor_pool=DONOR_POOL[x.where], reason="总部空闲",
        backend=PlanBackend()), per_role=True),
    "support_reject": Case(_support_request, lambda ctx, a, x: support.reject(
        **_c(ctx, a), request_id=x.extra["support"], reason="先用省内储备"), per_role=True),
    "support_return": Case(_support_transfer, lambda ctx, a, x: support.return_transfer(
        **_c(ctx, a), request_id=x.extra["support"], reason="省内扩容已到位", backend=PlanBackend()), per_role=True),
    "support_node_addition": Case(_nothing, lambda ctx, a, x: support.record_node_addition(
        **_c(ctx, a), pool=SUPPORT_POOL[x.where], nodes=1, gpus=8, approved_by=HQ_OPS_B.id, reason="饱和告警")),
    # ---- the batch scheduler's queues (nothing stored: the subject is its pool)
    "scheduler_apply_pool": Case(_nothing, lambda ctx, a, x: apply_scheduler_objects(
        actor=a, pool=FORMS[x.where]["pool"], backend=PlanBackend())),
    "scheduler_apply": Case(_nothing, lambda ctx, a, x: apply_scheduler_objects(actor=a, backend=PlanBackend())[
        "clusters"], _ids("cluster", lambda x: {"hq": "hq-beijing-2", "js": "js-nanjing"}[x.where])),
    "scheduler_workloads": Case(_nothing, lambda ctx, a, x: scheduler_workloads(actor=a, source=_NoQueues())["pools"],
                                _ids("pool", lambda x: FORMS[x.where]["pool"])),
    "scheduler_workloads_pool": Case(_nothing, lambda ctx, a, x: scheduler_workloads(
        actor=a, pool=FORMS[x.where]["pool"], source=_NoQueues())["pools"],
        _ids("pool", lambda x: FORMS[x.where]["pool"])),
    # ---- metrics readers (fleet-wide: the role decides, not the subject)
    "water_level_snapshot": Case(_nothing, lambda ctx, a, x: wl.snapshot(**_c(ctx, a), source=_Source(), nodes=[],
                                                                          cache={})),
    "water_level_trend": Case(_nothing, lambda ctx, a, x: wl.trend(**_c(ctx, a), nodes=[], first=MONTH_DAYS[0],
                                                                    last=MONTH_DAYS[-1])),
    "usage_namespaces": Case(_with_usage, lambda ctx, a, x: usage.namespaces_seen(
        **_c(ctx, a), first=MONTH_DAYS[0], last=MONTH_DAYS[-1]).to_dicts(), _ids("namespace", lambda x: x.namespace)),
    "usage_training_sheet": Case(_with_usage, lambda ctx, a, x: usage.training_sheet(
        **_c(ctx, a), source=_Source(), namespace=x.namespace, start=datetime(2026, 10, 25, tzinfo=timezone.utc),
        end=datetime(2026, 10, 26, tzinfo=timezone.utc))),
    "usage_inference_sheet": Case(_with_usage, lambda ctx, a, x: usage.inference_sheet(
        **_c(ctx, a), month=MONTH_DAYS[0]).rows.to_dicts(), _ids("namespace", lambda x: x.namespace)),
}


def _cells(*outcomes: str, where: str = "hq") -> dict[str, str]:
    """One row of the matrix in ROLES order; an ``hq`` row has no prov_home column (pass "-")."""
    row = dict(zip(ROLES, outcomes, strict=True))
    if where == "hq":
        assert row.pop("prov_home") == "-"
    return row


O, D, H, _ = OK, DENIED, HIDDEN, "-"
MATRIX: dict[tuple[str, str], dict[str, str]] = {
    #                                       owner colleague other prov_home prov_other hq_ops dept_head committee exec admin
    # provisioning: applicants and their department head read; ops act in their scope
    ("list_allocations", "hq"):       _cells(O, O, H, _, H, O, O, D, D, O),
    ("list_allocations", "js"):       _cells(O, O, H, O, H, O, O, D, D, O, where="js"),
    ("allocation_sheet", "hq"):       _cells(O, O, H, _, H, O, O, H, H, O),
    ("allocation_sheet", "js"):       _cells(O, O, H, O, H, O, O, H, H, O, where="js"),
    ("manifests", "hq"):              _cells(O, O, H, _, H, O, O, H, H, O),
    ("manifests", "js"):              _cells(O, O, H, O, H, O, O, H, H, O, where="js"),
    ("provision", "hq"):              _cells(D, D, D, _, H, O, D, D, D, O),
    ("provision", "js"):              _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("retry", "hq"):                  _cells(D, D, D, _, H, O, D, D, D, O),
    ("retry", "js"):                  _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("stop_preempted", "hq"):         _cells(D, D, D, _, H, O, D, D, D, O),
    ("stop_preempted", "js"):         _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("recover_stalled", "hq"):        _cells(D, D, D, _, H, O, D, D, D, O),
    ("recover_stalled", "js"):        _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    # applying: applicants and department heads for their own department, provincial ops for their
    # province's, HQ ops and admins for any; claims and decisions only by who takes the current step
    # (HQ ops take no provincial step, admins none); a request one may not see is not found; a training
    # result only by the owner (others who see the request are refused, the rest told nothing)
    ("submit", "hq"):                 _cells(O, O, D, _, D, O, O, D, D, O),
    ("submit", "js"):                 _cells(O, O, D, O, D, O, O, D, D, O, where="js"),
    ("claim", "hq"):                  _cells(D, D, D, _, H, O, D, D, D, D),
    ("claim", "js"):                  _cells(D, D, D, O, H, D, D, D, D, D, where="js"),
    ("decide", "hq"):                 _cells(D, D, D, _, H, O, D, H, H, D),
    ("decide", "js"):                 _cells(D, D, D, O, H, D, D, H, H, D, where="js"),
    ("record_result", "hq"):          _cells(O, D, H, _, H, D, D, H, H, D),
    ("record_result", "js"):          _cells(O, D, H, D, H, D, D, H, H, D, where="js"),
    # green channel: anyone who applies may submit; the emergency approver (HQ ops) plans and decides
    # (provincial ops of Jiangsu may not apply for an HQ department, issue 11)
    ("submit_emergency", "hq"):       _cells(O, O, O, _, D, O, O, D, D, O),
    ("plan_emergency", "hq"):         _cells(D, D, D, _, D, O, D, D, D, O),
    ("decide_emergency", "hq"):       _cells(D, D, D, _, D, O, D, D, D, D),
    ("reviews_due", "hq"):            _cells(D, D, D, _, H, O, D, D, D, O),
    ("complete_review", "hq"):        _cells(D, D, D, _, H, O, D, D, D, O),
    # reclaim: owners extend and return; ops decide, plan, approve and execute in their scope
    ("expiring_allocations", "hq"):   _cells(O, O, H, _, H, O, O, D, D, O),
    ("request_extension", "hq"):      _cells(O, D, H, _, H, D, D, H, H, D),
    ("list_extensions", "hq"):        _cells(O, O, H, _, H, O, O, D, D, O),
    ("decide_extension", "hq"):       _cells(D, D, D, _, H, O, D, D, D, O),
    ("plan_reclaim_forced", "hq"):    _cells(D, D, H, _, H, O, D, H, H, O),
    ("plan_reclaim_forced", "js"):    _cells(D, D, H, O, H, O, D, H, H, O, where="js"),
    ("plan_reclaim_return", "hq"):    _cells(O, D, H, _, H, D, D, H, H, D),
    ("plan_reclaim_return", "js"):    _cells(O, D, H, D, H, D, D, H, H, D, where="js"),
    ("approve_reclaim", "hq"):        _cells(D, D, D, _, H, O, D, D, D, O),
    ("approve_reclaim", "js"):        _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("execute_reclaim", "hq"):        _cells(D, D, D, _, H, O, D, D, D, O),
    ("execute_reclaim", "js"):        _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("execute_expiry_reclaim", "hq"): _cells(D, D, D, _, H, O, D, D, D, O),
    ("execute_expiry_reclaim", "js"): _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("preview_return", "hq"):         _cells(O, D, H, _, H, D, D, H, H, D),
    ("preview_return", "js"):         _cells(O, D, H, D, H, D, D, H, H, D, where="js"),
    ("return_allocation", "hq"):      _cells(O, D, H, _, H, D, D, H, H, D),
    ("return_allocation", "js"):      _cells(O, D, H, D, H, D, D, H, H, D, where="js"),
    ("list_records", "hq"):           _cells(O, O, H, _, H, O, O, D, D, O),
    ("list_records", "js"):           _cells(O, O, H, O, H, O, O, D, D, O, where="js"),
    ("list_candidates", "hq"):        _cells(O, O, H, _, H, O, O, D, D, O),
    ("list_candidates", "js"):        _cells(O, O, H, O, H, O, O, D, D, O, where="js"),
    ("move_candidate", "hq"):         _cells(D, D, D, _, H, O, D, D, D, O),
    ("move_candidate", "js"):         _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("plan_candidate", "hq"):         _cells(D, D, D, _, H, O, D, D, D, O),
    ("plan_candidate", "js"):         _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("plan_candidate_again", "hq"):   _cells(D, D, D, _, H, O, D, D, D, O),
    ("plan_candidate_again", "js"):   _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("execute_candidate", "hq"):      _cells(D, D, D, _, H, O, D, D, D, O),
    ("execute_candidate", "js"):      _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("pool_review", "hq"):            _cells(D, D, D, _, H, O, D, D, D, O),
    ("add_pool_review", "hq"):        _cells(D, D, D, _, D, O, D, D, D, O),
    # warnings: owners' department reads and the owner (or their head) replies; ops triage in scope
    ("list_warnings", "hq"):          _cells(O, O, H, _, H, O, O, D, D, O),
    ("list_warnings", "js"):          _cells(O, O, H, O, H, O, O, D, D, O, where="js"),
    ("get_warning", "hq"):            _cells(O, O, H, _, H, O, O, D, D, O),
    ("get_warning", "js"):            _cells(O, O, H, O, H, O, O, D, D, O, where="js"),
    ("triage", "hq"):                 _cells(D, D, D, _, H, O, D, D, D, O),
    ("triage", "js"):                 _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("reply", "hq"):                  _cells(O, D, H, _, H, D, O, H, H, D),
    ("reply", "js"):                  _cells(O, D, H, D, H, D, O, H, H, D, where="js"),
    # dynamic adjustment: ops and admins; provincial ops only on their province's pools and services
    ("queue", "hq"):                  _cells(D, D, D, _, H, O, D, D, D, O),
    ("queue", "js"):                  _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("simulate_preemption", "hq"):    _cells(D, D, D, _, D, O, D, D, D, O),
    ("simulate_preemption", "js"):    _cells(D, D, D, O, D, O, D, D, D, O, where="js"),
    ("simulate_defragmentation", "hq"): _cells(D, D, D, _, D, O, D, D, D, O),
    ("simulate_defragmentation", "js"): _cells(D, D, D, O, D, O, D, D, D, O, where="js"),
    ("running_allocations", "hq"):    _cells(D, D, D, _, D, O, D, D, D, O),
    ("running_allocations", "js"):    _cells(D, D, D, O, D, O, D, D, D, O, where="js"),
    ("save_policy", "hq"):            _cells(D, D, D, _, D, O, D, D, D, O),
    ("save_policy", "js"):            _cells(D, D, D, O, D, O, D, D, D, O, where="js"),
    ("get_policy", "hq"):             _cells(D, D, D, _, H, O, D, D, D, O),
    ("get_policy", "js"):             _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("list_policies", "hq"):          _cells(D, D, D, _, H, O, D, D, D, O),
    ("list_policies", "js"):          _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("list_adjustments", "hq"):       _cells(D, D, D, _, H, O, D, D, D, O),
    ("list_adjustments", "js"):       _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    # alert rules are placed for the job (not a column), ops in scope and admins; applicants refused
    ("placed_policies", "hq"):        _cells(D, D, D, _, H, O, D, D, D, O),
    ("placed_policies", "js"):        _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    # support requests: ops raise for their province's pools (provincial ops: their own only) and read
    # their province's (another province's request is not found); HQ ops and admins decide
    ("support_raise", "hq"):          _cells(D, D, D, _, D, O, D, D, D, O),
    ("support_raise", "js"):          _cells(D, D, D, O, D, O, D, D, D, O, where="js"),
    ("support_list", "hq"):           _cells(D, D, D, _, H, O, D, D, D, O),
    ("support_list", "js"):           _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("support_show", "hq"):           _cells(D, D, D, _, H, O, D, D, D, O),
    ("support_show", "js"):           _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("support_pool_headroom", "hq"):  _cells(D, D, D, _, H, O, D, D, D, O),
    ("support_pool_headroom", "js"):  _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("support_donors", "hq"):         _cells(D, D, D, _, D, O, D, D, D, O),
    ("support_donors", "js"):         _cells(D, D, D, D, D, O, D, D, D, O, where="js"),
    ("support_approve", "hq"):        _cells(D, D, D, _, D, O, D, D, D, O),
    ("support_approve", "js"):        _cells(D, D, D, D, D, O, D, D, D, O, where="js"),
    ("support_reject", "hq"):         _cells(D, D, D, _, D, O, D, D, D, O),
    ("support_reject", "js"):         _cells(D, D, D, D, D, O, D, D, D, O, where="js"),
    ("support_return", "hq"):         _cells(D, D, D, _, D, O, D, D, D, O),
    ("support_return", "js"):         _cells(D, D, D, D, D, O, D, D, D, O, where="js"),
    ("support_node_addition", "hq"):  _cells(D, D, D, _, D, O, D, D, D, O),
    ("support_node_addition", "js"):  _cells(D, D, D, O, D, O, D, D, D, O, where="js"),
    # the batch scheduler's queues: ops and admins; provincial ops only their province's clusters
    ("scheduler_apply_pool", "hq"):   _cells(D, D, D, _, D, O, D, D, D, O),
    ("scheduler_apply_pool", "js"):   _cells(D, D, D, O, D, O, D, D, D, O, where="js"),
    ("scheduler_apply", "hq"):        _cells(D, D, D, _, H, O, D, D, D, O),
    ("scheduler_apply", "js"):        _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("scheduler_workloads", "hq"):    _cells(D, D, D, _, H, O, D, D, D, O),
    ("scheduler_workloads", "js"):    _cells(D, D, D, O, H, O, D, D, D, O, where="js"),
    ("scheduler_workloads_pool", "hq"): _cells(D, D, D, _, D, O, D, D, D, O),
    ("scheduler_workloads_pool", "js"): _cells(D, D, D, O, D, O, D, D, D, O, where="js"),
    # metrics: the live water level is read by ops (executives read it in the published board);
    # usage sheets (issue 4) by the owner's department, ops in scope and admins — another
    # department's or province's namespace is hidden, executives read only published material
    ("water_level_snapshot", "hq"):   _cells(D, D, D, _, O, O, D, D, D, O),
    ("water_level_trend", "hq"):      _cells(D, D, D, _, O, O, D, D, D, O),
    ("usage_namespaces", "hq"):       _cells(O, O, H, _, H, O, O, D, D, O),
    ("usage_namespaces", "js"):       _cells(O, O, H, O, H, O, O, D, D, O, where="js"),
    ("usage_training_sheet", "hq"):   _cells(O, O, H, _, H, O, O, D, D, O),
    ("usage_training_sheet", "js"):   _cells(O, O, H, O, H, O, O, D, D, O, where="js"),
    ("usage_inference_sheet", "hq"):  _cells(O, O, H, _, H, O, O, D, D, O),
    ("usage_inference_sheet", "js"):  _cells(O, O, H, O, H, O, O, D, D, O, where="js"),
}
assert {service for service, _where in MATRIX} == set(CASES)

# Cells where the service contradicts the rule its module states (reported, left for its owner): the
# outcome the code gives now. Such a row is an expected failure while exactly these cells are wrong,
# and fails when any other cell changes or when the service is fixed (then drop the entry).
CONTRADICTIONS: dict[tuple[str, str], tuple[dict[str, str], str]] = {}  # none known now


def _outcome(case: Case, ctx, actor: Identity, subject: Subject) -> str:
    try:
        out = case.call(ctx, actor, subject)
    except _Reached:
        return OK
    except PermissionDenied:
        return DENIED
    except NotFound:
        return HIDDEN
    if case.seen is not None:
        return OK if case.seen(out, subject) else HIDDEN
    return OK


@pytest.mark.parametrize(("service", "where"), sorted(MATRIX), ids=[f"{s}-{w}" for s, w in sorted(MATRIX)])
def test_permission_matrix(ctx, service, where, record_property):
    case, expected = CASES[service], MATRIX[(service, where)]
    record_property(PERMISSION_PROPERTY, json.dumps({"row": f"{service}-{where}", "cells": len(expected),
                                                     "database": ctx.engine.dialect.name}))
    outcomes, subject = {}, None
    for role in expected:
        subject = subject or case.build(ctx, where)
        outcomes[role] = _outcome(case, ctx, PEOPLE[where][role], subject)
        if case.per_role and (outcomes[role] == OK or case.seen is not None):
            # the service ran and may have changed the subject: the next role gets a fresh one. A
            # refused call (denied, not found) changed nothing — one transaction per action — so
            # the roles refused in a row share one subject.
            subject = None
    wrong = {role: f"{outcomes[role]}, expected {cell}" for role, cell in expected.items() if outcomes[role] != cell}
    if (service, where) in CONTRADICTIONS:
        now, why = CONTRADICTIONS[(service, where)]
        assert {role: outcomes[role] for role in wrong} == now, f"{wrong} (update CONTRADICTIONS)"
        pytest.xfail(why)
    assert not wrong, wrong


# ----------------------------------------------------------------- nobody decides their own


def _own_emergency(ctx) -> int:
    return gc.submit_emergency(sessions=ctx.sessions, actor=HQ_OPS, form=_form("hq", pool="hq-sci", requested_gpus=2),
                               justification=WHY, category="production_model_outage")["id"]


def _own_extension(ctx) -> int:
    view = svc.submit(sessions=ctx.sessions, actor=HQ_OPS, form=_form("hq"))
    subject = Subject("hq", view["id"], _alloc(ctx, view["id"]).id, None, HQ_OPS, {})
    start = _alloc(ctx, view["id"]).starts_on
    _window(ctx, subject, start, start + timedelta(days=14))
    return reclaim.request_extension(sessions=ctx.sessions, actor=HQ_OPS, request_id=view["id"], days=3,
                                     reason="评测未完成", today=start + timedelta(days=7))["id"]


def _own_review(ctx) -> int:
    rid = _own_emergency(ctx)
    gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS_B, request_id=rid, approve=True, reason="事故应急")
    return rid


OWN = {
    "decide_emergency": (_own_emergency, lambda ctx, a, i: gc.decide_emergency(
        sessions=ctx.sessions, actor=a, request_id=i, approve=True, reason="事故应急")),
    "decide_extension": (_own_extension, lambda ctx, a, i: reclaim.decide_extension(
        sessions=ctx.sessions, actor=a, extension_id=i, approve=False, reason="资源紧张")),
    "complete_review": (_own_review, lambda ctx, a, i: gc.complete_review(
        sessions=ctx.sessions, actor=a, request_id=i, notes="处置得当")),
    "approve_reclaim": (lambda ctx: _forced_plan(ctx, "hq").extra["record"], lambda ctx, a, i: reclaim.approve_reclaim(
        sessions=ctx.sessions, actor=a, record_id=i, note="同意")),
    "approve_support": (lambda ctx: _raise_support(ctx, HQ_OPS, "hq")["id"], lambda ctx, a, i: support.approve(
        sessions=ctx.sessions, actor=a, request_id=i, donor_pool=DONOR_POOL["hq"], reason="总部空闲",
        backend=PlanBackend())),
}


@pytest.mark.parametrize("service", sorted(OWN))
def test_nobody_decides_their_own(ctx, service):
    """HQ ops may apply like anyone; their own emergency, extension, emergency review, support request
    or reclaim plan is decided by another HQ ops (the plan is HQ_OPS_B's: HQ_OPS_B may not approve it)."""
    build, call = OWN[service]
    subject = build(ctx)
    mine = HQ_OPS_B if service == "approve_reclaim" else HQ_OPS
    other = HQ_OPS if service == "approve_reclaim" else HQ_OPS_B
    with pytest.raises(PermissionDenied):
        call(ctx, mine, subject)
    assert call(ctx, other, subject)
