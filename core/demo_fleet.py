"""The demo fleet's allocations: the namespaces the demo GPU samples fill with usage, granted by the
portal — so that the water level, the board, the Apply check and the approvals describe one fleet.

:func:`seed_fleet_allocations` applies for most namespaces of the demo fleet
(:func:`core.demo_history.demo_fleet`), each by its team, through the lifecycle services people use:
submitted and decided step by step by the approvers the route names (HQ ops, provincial ops,
the department head; the committee and management for the strategic reserve), then provisioned
by the settings' backend. Each request is made "as of" its start date, one to three months before
last month (every timestamp, notice and audit event is dated then), for a window that ends weeks or
months after today; its allocation is then bound to the fleet's namespace (audit event
``demo.fleet_namespace_bound``), as :func:`core.demo_history.seed_training_runs` does for its runs.

Left without an allocation, on purpose — the demo's "in use without an allocation", the legacy
usage ops must bring under management:

* the namespaces of last month's demo training runs (:data:`core.demo_history.DEMO_RUNS`): their
  allocations are returned today, while the fleet keeps running them;
* the dynamic reserve's namespaces (the green channel's pool, never given to an ordinary request);
* namespaces that no longer fit their pool once the requests the demo leaves waiting for a
  decision keep their room (the pools stay approvable).

Its notices are history: their in-app copies are written as read (the e-mails of notices that old
are never sent). Does nothing when done already.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.clock import as_of, utc_now, utc_today
from core.db.models import AuditEventRow, InboxRow
from core.db.session import unit_of_work
from core.identity import Identity, load_personas
from core.lifecycle import capacity as cap
from core.people import remember_in
from core.lifecycle import services as lifecycle
from core.lifecycle.persistence import AllocationRow, RequestRow
from core.org import Org, load_org

BOUND = "demo.fleet_namespace_bound"
MARK = "演示：存量工作负载纳管"  # the business background every fleet request starts with
# Workload kinds in the order their namespaces are granted: busy ones first, short dev jobs last.
ORDER = ("training", "inference", "idle_service", "burst")
KIND_WORDS = {"training": "训练任务", "inference": "在线推理服务", "idle_service": "推理服务", "burst": "开发调试"}

# pool → (department, project) by workload kind ("*": any kind). hq-dynamic is the green channel's.
TEAMS: dict[str, dict[str, tuple[str, str]]] = {
    "hq-lang": {"training": ("digital", "P-LLM-01"), "*": ("dispatch", "P-EXP-05")},
    "hq-mm": {"*": ("research", "P-VIS-02")},
    "hq-sci": {"*": ("research", "P-SCI-03")},
    "hq-ft": {"idle_service": ("marketing", "P-CS-04"), "*": ("digital", "P-LLM-01")},
    "hq-inf": {"inference": ("marketing", "P-CS-04"), "*": ("digital", "P-LLM-01")},
    "hq-reserve": {"*": ("digital", "P-LLM-01")},
    "js-pool": {"*": ("js-it", "P-JS-06")},
    "zj-pool": {"*": ("zj-it", "P-ZJ-07")},
    "sd-pool": {"*": ("sd-it", "P-SD-08")},
    "hn-pool": {"*": ("hn-it", "P-HN-09")},
    "sc-pool": {"*": ("sc-it", "P-SC-10")},
}

# The demo's people who are not personas (data/personas.yaml): per department its applicant and
# head, per province its two levels of ops — (id, name). Departments and provinces with personas
# use them (zhang.wei and zhou.lei of 数字化部; xu.jie of 江苏信通公司; chen.jing and wu.hao).
APPLICANTS = {"dispatch": ("liu.yang", "刘洋"), "research": ("chen.hui", "陈晖"), "marketing": ("he.min", "何敏"),
              "js-it": ("xu.jie", "徐杰"), "zj-it": ("lin.feng", "林峰"), "sd-it": ("guo.qiang", "郭强"),
              "hn-it": ("ma.li", "马丽"), "sc-it": ("tang.yu", "唐宇")}
HEADS = {"dispatch": ("song.tao", "宋涛"), "research": ("feng.jun", "冯军"), "marketing": ("xie.ping", "谢萍"),
         "js-it": ("qian.bo", "钱波"), "zj-it": ("zheng.hua", "郑华"), "sd-it": ("wei.dong", "魏东"),
         "hn-it": ("luo.jian", "罗健"), "sc-it": ("deng.yun", "邓云")}
PROVINCE_OPS = {"ZJ": (("shen.yi", "沈怡"), ("cao.lin", "曹林")), "SD": (("kong.wei", "孔伟"), ("yan.bin", "闫斌")),
                "HN": (("du.juan", "杜娟"), ("fang.ming", "方明")), "SC": (("pan.xin", "潘鑫"), ("lei.ting", "雷婷"))}


@dataclass(frozen=True)
class FleetNamespace:
    """A namespace of the demo fleet: its pool, workload kind and GPUs."""

    namespace: str
    pool: str
    kind: str
    gpus: int


def fleet_namespaces() -> list[FleetNamespace]:
    """Every namespace of the demo fleet (the manifest of the samples folder, else the default
    fleet), in fleet order."""
    from core.demo_history import demo_fleet

    found: OrderedDict[str, list] = OrderedDict()
    for g in demo_fleet().gpus:
        if g.namespace:
            found.setdefault(g.namespace, [g.pool, g.kind, 0])[2] += 1
    return [FleetNamespace(ns, pool, kind, gpus) for ns, (pool, kind, gpus) in found.items()]


class _People:
    """Who applies and who decides each step, by department and province."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.personas = {p.id: p for p in load_personas()}
        self.made: dict[str, Identity] = {}  # the people who are not personas, remembered by name

    def _person(self, pid: str, name: str, role: str, department: str, **kw: Any) -> Identity:
        if pid in self.personas:
            return self.personas[pid]
        dept = self.org.departments[department]
        made = Identity(pid, name, f"{pid}@example.com", role, department=dept.name_zh, province=dept.unit, **kw)
        return self.made.setdefault(pid, made)

    def applicant(self, department: str) -> Identity:
        pid, name = APPLICANTS.get(department, ("zhang.wei", "张伟"))
        return self._person(pid, name, "applicant", department)

    def decider(self, role: str, department: str) -> Identity:
        unit = self.org.departments[department].unit
        if role == "hq_ops":
            return self.personas["li.na"]
        if role == "committee":
            return self.personas["sun.li"]
        if role == "executive":
            return self.personas["wang.qiang"]
        if role == "dept_head":
            pid, name = HEADS.get(department, ("zhou.lei", "周磊"))
            return self._person(pid, name, "dept_head", department)
        if role in ("prov_ops_l1", "prov_ops_l2"):
            level = 0 if role == "prov_ops_l1" else 1
            if unit == "JS":
                return self.personas[("chen.jing", "wu.hao")[level]]
            pid, name = PROVINCE_OPS[unit][level]
            ops_dept = next(d.id for d in self.org.departments.values() if d.unit == unit)
            return self._person(pid, name, "prov_ops", ops_dept, level=("L1", "L2")[level])
        raise ValueError(f"no demo decider for the step {role!r}")


def _form(ns: FleetNamespace, department: str, project: str, applicant: Identity, org: Org, start: date,
          days: int) -> dict[str, Any]:
    """The intake form of a fleet namespace's request (training or inference, by its workload)."""
    from core.demo import _training_form

    pool = org.pool(ns.pool)
    background = f"{MARK}：{KIND_WORDS[ns.kind]}（{ns.namespace}）"
    if ns.kind in ("inference", "idle_service"):
        return {
            "applicant": applicant.name, "department": department, "project": project, "contact": applicant.email,
            "demand_type": "inference", "demand_subtype": "online", "business_background": background,
            "expected_value": "保障线上业务 7x24 应答", "model_location": f"s3://models/{ns.namespace}",
            "input_format": "json", "output_format": "json", "sla_latency_mean_ms": 300, "sla_latency_p99_ms": 900,
            "qps_peak": 40 * ns.gpus, "qps_mean": 10 * ns.gpus, "high_availability": True, "canary": False,
            "parameters": 7e9, "gpu_model": pool.gpu, "pool": ns.pool, "requested_gpus": ns.gpus,
            "start_date": start.isoformat(), "duration_days": days,
        }
    subtype = ("research" if ns.kind == "burst" else
               "l1_foundation" if pool.kind.startswith("training_") and pool.kind != "training_finetune"
               or pool.is_reserve else "l2_finetune")
    return _training_form(project=project, department=department, applicant=applicant.name, pool=ns.pool,
                          gpus=ns.gpus, days=days, subtype=subtype, gpu=pool.gpu, start=start, background=background)


def _walk(sessions: sessionmaker[Session], view: dict[str, Any], people: _People) -> dict[str, Any]:
    """Decide every pending step of a request, in order, by the approver its route names."""
    while view["status"] in ("submitted", "in_review"):
        step = next(s for s in view["steps"] if s["status"] == "pending")
        view = lifecycle.decide(sessions=sessions, actor=people.decider(step["role"], view["department"]),
                                request_id=view["id"], decision="approve", reason="演示：存量业务补办申请，资源已在使用")
    return view


def _room(sessions: sessionmaker[Session], org: Org) -> dict[str, int]:
    """GPUs per pool the fleet may take: free today less the GPUs of requests waiting for a decision."""
    with unit_of_work(sessions) as s:
        free = cap.free_by_pool(s, org)
        waiting = dict(s.execute(select(RequestRow.pool_id, func.sum(RequestRow.requested_gpus))
                                 .where(RequestRow.status.in_(("submitted", "in_review")))
                                 .group_by(RequestRow.pool_id)).all())
    return {p: max(0, n - int(waiting.get(p) or 0)) for p, n in free.items()}


def _plan(org: Org, today: date) -> list[tuple[FleetNamespace, date, int]]:
    """The namespaces to grant (in :data:`ORDER`, fleet order within a kind) with each one's start
    date (35 to 94 days before last month: the month before it is allocated too, for the board's
    comparison) and duration (ending 20 to 149 days after today)."""
    from core.demo_history import run_namespaces

    runs = {bound[0] for bound in run_namespaces() if bound}
    chosen = [ns for ns in fleet_namespaces() if ns.pool in TEAMS and ns.namespace not in runs]
    chosen.sort(key=lambda ns: ORDER.index(ns.kind) if ns.kind in ORDER else len(ORDER))
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    out = []
    for i, ns in enumerate(chosen):
        start = last_month - timedelta(days=35 + (i * 7) % 60)
        out.append((ns, start, (today - start).days + 20 + (i * 37) % 130))
    return out


def seed_fleet_allocations(sessions: sessionmaker[Session], *, today: date | None = None) -> dict[str, int]:
    """Grant the demo fleet's namespaces (see the module docstring) — once.

    Returns ``{"granted", "left_out"}``: namespaces granted, and namespaces that did not fit their
    pool (both 0 when done already).
    """
    today = today or utc_today()
    with unit_of_work(sessions) as s:
        if s.scalar(select(func.count()).select_from(AuditEventRow).where(AuditEventRow.action == BOUND)):
            return {"granted": 0, "left_out": 0}
    org = load_org()
    people = _People(org)
    room = _room(sessions, org)
    granted, left_out, bound = 0, 0, []
    for ns, start, days in _plan(org, today):
        if ns.gpus > room.get(ns.pool, 0):
            left_out += 1
            continue
        kinds = TEAMS[ns.pool]
        department, project = kinds.get(ns.kind, kinds["*"])
        applicant = people.applicant(department)
        with as_of(start):
            view = lifecycle.submit(sessions=sessions, actor=applicant,
                                    form=_form(ns, department, project, applicant, org, start, days))
            view = _walk(sessions, view, people)
        room[ns.pool] -= ns.gpus
        bound.append((view["id"], ns.namespace))
        granted += 1
    _bind(sessions, bound, people.made.values())
    return {"granted": granted, "left_out": left_out}


def _bind(sessions: sessionmaker[Session], bound: list[tuple[int, str]], made: Iterable[Identity]) -> None:
    """Give each allocation its fleet namespace (an audit event each), remember the names of the
    demo's people who are not personas (as sign-in would) and file the notices of the demo's
    history in the inbox as read, in one transaction."""
    now = utc_now()
    with unit_of_work(sessions) as s:
        for person in made:
            remember_in(s, person)
        allocs = {a.request_id: a for a in s.scalars(select(AllocationRow).where(
            AllocationRow.request_id.in_([rid for rid, _ in bound] or [0])))}
        for rid, namespace in bound:
            alloc = allocs[rid]
            s.add(AuditEventRow(at=now, actor="system:demo", action=BOUND, subject=f"request:{rid}",
                                reason="demo GPU samples exist for the demo fleet's namespaces",
                                before={"namespace": alloc.namespace}, after={"namespace": namespace}))
            alloc.namespace = namespace
        # the notices of the demo's history (dated before today) were read when they came
        midnight = datetime.combine(now.date(), time.min, tzinfo=timezone.utc)
        s.execute(update(InboxRow).where(InboxRow.created_at < midnight, InboxRow.read_at.is_(None))
                  .values(read_at=InboxRow.created_at).execution_options(synchronize_session=False))
