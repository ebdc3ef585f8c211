"""Reclaim scenarios: a short fine-tuning allocation of the demo applicant, active from today."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from core.db.session import unit_of_work
from core.identity import load_personas
from core.lifecycle import services as lifecycle
from core.lifecycle.persistence import AllocationRow
from tests.support import clock

APPLICANT = {p.id: p for p in load_personas()}["zhang.wei"]


def fine_tuning_form(gpus: int = 4, pool: str = "hq-ft", start: date | None = None, days: int = 5, **extra) -> dict:
    form = {
        "applicant": "张伟", "department": "digital", "project": "P-LLM-01", "contact": "010-1",
        "demand_type": "training", "demand_subtype": "l2_finetune", "business_background": "微调",
        "expected_value": "效率", "model_name": "Qwen2.5-7B", "framework": "PyTorch", "parameters": 7.6e9,
        "data_size_gb": 50, "data_type": "text", "gpu_model": "H20", "gpus_per_run": gpus, "hours_per_run": 10,
        "runs_per_period": 1, "run_period": "week", "cuda_version": "12.1", "python_version": "3.11",
        "key_libraries": {"torch": "2.3.1"}, "pool": pool, "requested_gpus": gpus,
        "start_date": (start or clock.day(0)).isoformat(), "duration_days": days,
        "priority": "normal",
    }
    form.update(extra)
    return form


def active_allocation(ctx, **kw) -> tuple[int, AllocationRow]:
    view = lifecycle.submit(sessions=ctx.sessions, actor=APPLICANT, form=fine_tuning_form(**kw))
    with unit_of_work(ctx.sessions) as s:
        alloc = s.scalars(select(AllocationRow).where(AllocationRow.request_id == view["id"])).one()
    assert alloc.status == "active", view
    return view["id"], alloc
