"""Green-channel scenarios shared by the green-channel, adjustment and recorder tests: emergencies on
hq-sci and a pool crowded with running work of every priority."""

from __future__ import annotations

from core.identity import Identity
from core.lifecycle import green_channel as gc
from core.lifecycle import services as svc
from tests.support.forms import MEDIUM
from tests.support.people import APPLICANT, COLLEAGUE, HQ_OPS


SCI = {**MEDIUM, "pool": "hq-sci", "estimate_id": None}  # A800 pool of 64, same model as hq-dynamic (32)


WHY = "220kV 变电站连锁故障，需紧急复现潮流并评估后续风险，支撑调度决策"


THIRD = Identity("sun.yu", "孙宇", "sun.yu@example.com", "applicant", department="数字化部")


def emergency(ctx, gpus: int, actor=APPLICANT, pool="hq-sci"):
    return gc.submit_emergency(sessions=ctx.sessions, actor=actor, form={**SCI, "pool": pool, "requested_gpus": gpus},
                               justification=WHY, category="grid_safety_incident")


def running(ctx, gpus: int, priority: str, actor=APPLICANT) -> dict:
    """An active allocation on hq-sci (approved by HQ ops, provisioned with the plan backend)."""
    r = svc.submit(sessions=ctx.sessions, actor=actor, form={**SCI, "requested_gpus": gpus, "priority": priority})
    done = svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], decision="approve", reason="ok")
    assert done["provisioning"]["status"] == "active"
    return done


def crowded_pool(ctx) -> dict[str, dict]:
    """hq-sci with 56 of 64 GPUs held by running work of every priority; 8 free."""
    return {
        "old_low": running(ctx, 16, "low", actor=APPLICANT),
        "new_low": running(ctx, 16, "low", actor=COLLEAGUE),
        "small_low": running(ctx, 8, "low", actor=THIRD),
        "normal": running(ctx, 8, "normal", actor=APPLICANT),
        "high": running(ctx, 8, "high", actor=APPLICANT),
    }
