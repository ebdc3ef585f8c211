"""Subjects for the scope and permission tests: granted and active allocations of an HQ and a Jiangsu
request, made through the real services, and the people around each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from core.db.session import unit_of_work
from core.identity import Identity
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow
from tests.support import clock
from tests.support.forms import TRAINING
from tests.support.people import (
    ADMIN, APPLICANT, COLLEAGUE, COMMITTEE, DEPT_HEAD, EXEC, HQ_OPS, JS_APPLICANT, OTHER_DEPT, PROV_L2,
)


JS_COLLEAGUE = Identity("lu.js", "陆江", "lu.js@example.com", "applicant", department="江苏信通公司", province="JS")


JS_HEAD = Identity("shen.dh", "沈主任", "shen.dh@example.com", "dept_head", department="江苏信通公司", province="JS")


ZJ_OPS = Identity("jiang.zj", "蒋浙", "jiang.zj@example.com", "prov_ops", department="浙江信通公司", province="ZJ",
                  level="L2")


HQ_OPS_B = Identity("ma.ops", "马运", "ma.ops@example.com", "hq_ops", department="算力运营中心")


COMMON = {"other_dept": OTHER_DEPT, "hq_ops": HQ_OPS, "committee": COMMITTEE, "executive": EXEC, "admin": ADMIN}


PEOPLE: dict[str, dict[str, Identity]] = {
    "hq": {**COMMON, "owner": APPLICANT, "colleague": COLLEAGUE, "prov_other": PROV_L2, "dept_head": DEPT_HEAD},
    "js": {**COMMON, "owner": JS_APPLICANT, "colleague": JS_COLLEAGUE, "prov_home": PROV_L2, "prov_other": ZJ_OPS,
           "dept_head": JS_HEAD},
}


FORMS = {
    "hq": {**TRAINING},
    "js": {**TRAINING, "department": "js-it", "project": "P-JS-06", "pool": "js-pool", "applicant": "徐江"},
}


@dataclass
class Subject:
    where: str
    request_id: int
    alloc_id: int
    namespace: str | None
    owner: Identity
    extra: dict[str, Any]


def form_for(where: str, **over) -> dict:
    start = clock.iso(0)  # provisioned at once (a later start date waits as a scheduled allocation)
    return {**FORMS[where], "start_date": start, "requested_gpus": 4, "gpus_per_run": 4, "duration_days": 7, **over}


def alloc_of(ctx, request_id: int) -> AllocationRow:
    with unit_of_work(ctx.sessions) as s:
        return s.scalars(select(AllocationRow).where(AllocationRow.request_id == request_id)).one()


def granted(ctx, where: str, **over) -> Subject:
    """A standard request: approved by the system and provisioned with the plan backend."""
    owner = PEOPLE[where]["owner"]
    view = svc.submit(sessions=ctx.sessions, actor=owner, form=form_for(where, **over))
    alloc = alloc_of(ctx, view["id"])
    return Subject(where, view["id"], alloc.id, alloc.namespace, owner, {})


def active(ctx, where: str) -> Subject:
    subject = granted(ctx, where)
    assert alloc_of(ctx, subject.request_id).status == "active"
    return subject
