"""Demo data for `make run`: saved estimates with recorded outcomes, and resource applications in
every state, created through the same services people use (so every row has its audit trail and
notices). Deterministic; does nothing when the database already holds estimates or requests. The
allocations of the demo fleet's namespaces are :mod:`core.demo_fleet`'s (``demo seed`` runs both)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import as_of, utc_now, utc_today
from core.db.models import EstimateRow
from core.estimation.model import ModelSpec
from core.estimation.training import TrainingInput, estimate_training
from core.cluster.backends import LiveBackend
from core.identity import Identity, load_personas
from core.lifecycle import services as lifecycle
from core.lifecycle.persistence import RequestRow
from core.org import load_org
from core.services import estimates as estimates_svc

# (title, params, tokens, gpu, gpus, actual / estimated GPU-hours) — finished jobs for calibration.
FINISHED_JOBS = (
    ("光明电力大模型 7B 续训", 7e9, 2e11, "A800-80GB", 64, 1.18),
    ("调度规程问答 13B 预训练", 13e9, 1e11, "A800-80GB", 32, 1.26),
    ("巡检视觉基础模型 3B", 3e9, 3e11, "A800-80GB", 32, 1.21),
    ("新能源功率预测 1B", 1e9, 5e10, "H20", 16, 0.92),
)


def _training_form(*, project: str, department: str, applicant: str, pool: str, gpus: int, days: int,
                   subtype: str = "l2_finetune", params: float = 7e9, gpu: str = "H20", priority: str = "normal",
                   start: date | None = None, background: str = "") -> dict[str, Any]:
    return {
        "applicant": applicant, "department": department, "project": project, "contact": "010-6000-0000",
        "demand_type": "training", "demand_subtype": subtype,
        "business_background": background or "电力行业大模型能力建设", "expected_value": "提升业务效率",
        "model_name": "Qwen2.5", "framework": "PyTorch", "parameters": params, "data_size_gb": 200,
        "data_type": "text", "gpu_model": gpu, "gpus_per_run": gpus, "hours_per_run": 24, "runs_per_period": 1,
        "run_period": "week", "cuda_version": "12.1", "python_version": "3.11",
        "key_libraries": {"torch": "2.3.1", "deepspeed": "0.14.4"}, "pool": pool, "requested_gpus": gpus,
        "start_date": (start or utc_today()).isoformat(), "duration_days": days,
        "priority": priority,
    }


def backdate(sessions: sessionmaker[Session], request_id: int, days: int) -> None:
    """Move a demo request's window ``days`` into the past (the intake form refuses past start
    dates, so demo history is made now and then shifted), recorded as a ``demo.backdated`` event."""

    from core.db.models import AuditEventRow
    from core.lifecycle.persistence import AllocationRow

    shift = timedelta(days=days)
    with sessions.begin() as s:
        row = s.get(RequestRow, request_id)
        alloc = s.scalars(select(AllocationRow).where(AllocationRow.request_id == request_id)).one()
        before = {"start": str(alloc.starts_on), "end": str(alloc.ends_on)}
        row.start_date = row.start_date - shift if row.start_date else None
        row.form = {**row.form, "start_date": row.start_date.isoformat() if row.start_date else None}
        alloc.starts_on = alloc.starts_on - shift if alloc.starts_on else None
        alloc.ends_on = alloc.ends_on - shift if alloc.ends_on else None
        s.add(AuditEventRow(at=utc_now(), actor="system:demo", action="demo.backdated",
                            subject=f"request:{request_id}", reason=f"demo history: {days} days earlier",
                            before=before, after={"start": str(alloc.starts_on), "end": str(alloc.ends_on)}))


def _lifecycle_after_grant(sessions: sessionmaker[Session], applicant: Identity, ops: Identity, dept: str, name: str,
                           made: dict[str, int]) -> None:
    """Allocations further along: returned (退订), expiring then extended (延期), and reclaimed at expiry."""
    from core.reclaim import services as reclaim

    def small(background: str, start: date, days: int) -> dict:
        made["requests"] += 1
        return lifecycle.submit(sessions=sessions, actor=applicant, form=_training_form(
            project="P-LLM-01", department=dept, applicant=name, pool="hq-ft", gpus=2, days=days, start=start,
            background=background))

    today = utc_today()
    returned = small("L2 微调：已完成的小实验", today, 5)
    reclaim.return_allocation(sessions=sessions, actor=applicant, request_id=returned["id"], reason="实验已完成，主动退订")
    expiring = small("L2 微调：即将到期的任务", today, 7)
    reclaim.send_expiry_notices(sessions=sessions, today=today)  # 7 days left: the first notice; now expiring
    extension = reclaim.request_extension(sessions=sessions, actor=applicant, request_id=expiring["id"], days=3,
                                          reason="评测集扩充，需要再训练三天", today=today)
    reclaim.decide_extension(sessions=sessions, actor=ops, extension_id=extension["id"], approve=True,
                             reason="资源池余量充足，同意延期")
    expired = small("L2 微调：已到期的任务", today, 7)
    backdate(sessions, expired["id"], 9)  # started nine days ago: its seven days are over
    reclaim.reclaim_expired(sessions=sessions, today=today)


# An applicant of the Jiangsu company (not a persona: the demo signs in as the JS ops to review).
JS_APPLICANT = Identity("xu.jie", "徐杰", "xu.jie@example.com", "applicant", department="江苏信通公司", province="JS")


def _unreachable_cluster(cluster: str) -> LiveBackend:
    """The live backend with the cluster's API on a closed loopback port: every call is refused,
    as when a provincial cluster's API server is down."""
    from kubernetes import client as k8s

    cfg = k8s.Configuration()
    cfg.host = "https://127.0.0.1:9"
    cfg.retries = 0
    return LiveBackend(load_org(), clients={cluster: k8s.ApiClient(cfg)})


def _provincial_requests(sessions: sessionmaker[Session], people: dict[str, Identity], made: dict[str, int]) -> None:
    """Jiangsu requests through the two provincial levels (L1 initial review, L2 assessment), one of
    them failing to provision because the cluster's API was unreachable (Retry finishes it). Six GPUs
    each: more than the standard tier approves by itself, and small enough that the Jiangsu pool
    keeps room for the demo fleet's namespaces (:mod:`core.demo_fleet`)."""
    l1, l2 = people["chen.jing"], people["wu.hao"]

    def submit(**kw: Any) -> dict:
        made["requests"] += 1
        return lifecycle.submit(sessions=sessions, actor=JS_APPLICANT,
                                form=_training_form(project="P-JS-06", department="js-it", applicant=JS_APPLICANT.name,
                                                    pool="js-pool", gpu="A800-80GB", **kw))

    # two waiting for the L1 initial review
    submit(gpus=6, days=7, background="L2 微调：配网故障工单分类")
    submit(gpus=6, days=5, background="L2 微调：输电线路缺陷识别")
    # initial review passed, waiting for the L2 feasibility assessment
    reviewed = submit(gpus=6, days=7, background="L2 微调：变电站巡检图像识别")
    lifecycle.decide(sessions=sessions, actor=l1, request_id=reviewed["id"], decision="approve",
                     reason="初审通过：资料齐全，需求合理")
    # both levels approved, but the cluster's API was unreachable: provisioning failed at its first step
    failed = submit(gpus=6, days=5, background="L2 微调：营销客服话术")
    lifecycle.decide(sessions=sessions, actor=l1, request_id=failed["id"], decision="approve", reason="初审通过")
    pool = load_org().pool("js-pool")
    lifecycle.decide(sessions=sessions, actor=l2, request_id=failed["id"], decision="approve",
                     reason="可行性评估通过：A800 显存满足，CUDA 12.1 兼容",
                     provisioner=_unreachable_cluster(pool.cluster))
    # approved, but the process running its provisioning died an hour ago: stalled in "provisioning",
    # which the allocation sheet offers to mark failed and retry
    stalled = submit(gpus=6, days=6, background="L2 微调：设备缺陷文本抽取")
    lifecycle.decide(sessions=sessions, actor=l1, request_id=stalled["id"], decision="approve", reason="初审通过")
    try:
        lifecycle.decide(sessions=sessions, actor=l2, request_id=stalled["id"], decision="approve",
                         reason="可行性评估通过", provisioner=_DyingBackend())
    except _RunDied:
        pass
    with sessions.begin() as s:
        row = s.get(RequestRow, stalled["id"])
        row.provisioning_at = row.provisioning_at - timedelta(hours=1)


class _RunDied(BaseException):
    """The demo's stand-in for the process being killed (not an Exception: nothing catches it)."""


class _DyingBackend:
    """A backend whose process dies in the middle of a run (as on a restart of the app)."""

    name = "plan"

    def provision(self, spec):  # noqa: ANN001, ANN201 - the Provisioner protocol
        raise _RunDied


def _scaling_policy(sessions: sessionmaker[Session], ops: Identity) -> int:
    """An online inference service's autoscaling policy set up with the defaults, then tuned: the
    scaling page has a policy, and the adjustment record two manual changes with before and after.
    Returns the changes made."""
    from dataclasses import replace

    from core.adjust import services as adjust
    from core.adjust.autoscaling import default_policy

    policy = default_policy("hq-inf-svc-03", "inference")
    adjust.save_policy(sessions=sessions, actor=ops, policy=policy, reason="智能客服在线推理上线：按默认双阈值策略扩缩容")
    adjust.save_policy(sessions=sessions, actor=ops, policy=replace(policy, util_low=0.2, max_replicas=10),
                       reason="夜间低谷缩容过快，缩容阈值降到 20%；晚高峰副本上限提高到 10")
    return 2


def seed(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Create the demo data once; returns how many rows of each kind were made (empty if skipped)."""
    with sessions() as s:
        if s.scalar(select(func.count()).select_from(EstimateRow)) or s.scalar(select(func.count()).select_from(RequestRow)):
            return {}
    people = {p.id: p for p in load_personas()}
    applicant, ops = people["zhang.wei"], people["li.na"]
    made = {"estimates": 0, "outcomes": 0, "requests": 0}

    for title, params, tokens, gpu, gpus, ratio in FINISHED_JOBS:
        est = estimate_training(TrainingInput(model=ModelSpec(params=params), tokens=tokens, gpu=gpu, gpus=gpus))
        est_id = estimates_svc.save_training_estimate(sessions=sessions, actor=applicant, title=title, estimate=est)
        estimates_svc.record_outcome(sessions=sessions, actor=ops, estimate_id=est_id,
                                     actual_gpu_hours=round(est.gpu_hours * ratio, 1),
                                     actual_wall_clock_hours=round(est.wall_clock_hours * ratio, 1),
                                     note="demo: finished job")
        made["estimates"] += 1
        made["outcomes"] += 1

    dept = "digital"
    name = applicant.name

    def submit(**kw: Any) -> dict:
        made["requests"] += 1
        return lifecycle.submit(sessions=sessions, actor=applicant,
                                form=_training_form(project="P-LLM-01", department=dept, applicant=name, **kw))

    # approved at once (standard tier) — then provisioned when the provisioning stage exists
    submit(pool="hq-ft", gpus=4, days=5, background="L2 微调：客服意图识别")
    # two waiting for HQ ops (a queue to work through; the second on the multimodal pool: once the
    # first is granted, hq-ft has no room for another)
    submit(pool="hq-ft", gpus=16, days=7, background="L2 微调：调度规程问答")
    submit(pool="hq-mm", gpus=8, days=7, gpu="A800-80GB", background="L2 微调：输变电巡检图文理解")
    # waiting for the department head after ops approved
    large = submit(pool="hq-lang", gpus=64, days=45, subtype="l1_foundation", params=7e10, gpu="H800-SXM",
                   background="L1 语义大模型续训")
    lifecycle.decide(sessions=sessions, actor=ops, request_id=large["id"], decision="approve",
                     reason="符合语义大模型资源规划")
    # rejected
    rejected = submit(pool="hq-ft", gpus=24, days=7, background="L2 微调：重复实验")
    lifecycle.decide(sessions=sessions, actor=ops, request_id=rejected["id"], decision="reject",
                     reason="与已批准的同类任务重复，请合并后再申请")
    # approved with an adjusted shape
    # (ten days: a fine-tuning window of seven days or less gets its first expiry notice at once)
    adjusted = submit(pool="hq-ft", gpus=32, days=10, background="L2 微调：多任务联合")
    lifecycle.decide(sessions=sessions, actor=ops, request_id=adjusted["id"], decision="approve_adjusted",
                     reason="先以 16 卡验证效果", adjusted_gpus=16, adjusted_days=10)
    # cancelled by the applicant
    cancelled = submit(pool="hq-ft", gpus=8, days=7, background="L2 微调：临时验证")
    lifecycle.cancel(sessions=sessions, actor=applicant, request_id=cancelled["id"], reason="实验方案调整")
    # queued: more GPUs than the pool has free, the applicant accepts the queue
    made["requests"] += 1
    lifecycle.submit(sessions=sessions, actor=applicant, queue_if_short=True,
                     form=_training_form(project="P-LLM-01", department=dept, applicant=name, pool="hq-ft", gpus=90,
                                         days=7, background="L2 微调：全量指令数据"))
    _lifecycle_after_grant(sessions, applicant, ops, dept, name, made)
    _provincial_requests(sessions, people, made)
    made["adjustments"] = _scaling_policy(sessions, ops)
    # a draft
    lifecycle.save_draft(sessions=sessions, actor=applicant,
                         form={"applicant": name, "department": dept, "project": "P-LLM-01",
                               "demand_type": "inference", "demand_subtype": "online",
                               "business_background": "智能客服在线推理（草稿）"})
    made["requests"] += 1
    return made


def publish_demo_board(sessions: sessionmaker[Session], today: date | None = None) -> dict[str, Any]:
    """Run the daily job for ``today`` (warnings and reclaim candidates of last month) and publish
    last month's company report, de-identified, as the demo HQ ops lead — once. Stamped now, or at
    09:00 UTC of a given ``today`` (not 09:00 of the real today: before then it would read as
    published in the future)."""
    with as_of(today or utc_now()):
        return _publish_demo_board(sessions, today or utc_today())


def _publish_demo_board(sessions: sessionmaker[Session], today: date) -> dict[str, Any]:
    from core.reclaim.daily import run_daily
    from core.reports import service as reports

    month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    ops = {p.id: p for p in load_personas()}["li.na"]
    if reports.latest_published(sessions=sessions, actor=ops, month=month, scope="company"):
        return {"month": month, "status": "already published"}
    run_daily(sessions=sessions, today=today)
    draft = reports.build_draft(sessions=sessions, actor=ops, month=month, scope="company")
    reports.publish(sessions=sessions, actor=ops, report_id=draft["id"], deidentified=True)
    return {"month": month, "status": "published"}
