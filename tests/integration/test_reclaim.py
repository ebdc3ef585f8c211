"""Warnings and reclaim against the real services, on SQLite and PostgreSQL: expiry notices exactly
once across repeated and interrupted daily runs, extensions, expiry reclaim releasing capacity
and deprovisioning in plan mode, dry run == executed plan, returns, and who sees what."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from sqlalchemy import select

from core.cluster.backends import PlanBackend
from core.db.models import OutboxRow
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError, NotFound
from core.identity import Identity, PermissionDenied, load_personas
from core.lifecycle import provisioning
from core.lifecycle import services as lifecycle
from core.lifecycle.persistence import AllocationRow, PoolCapacityRow, RequestRow
from core.metrics.persistence import replace_day
from core.metrics.schema import ROLLUP_SCHEMA
from core.notifications.sender import deliver_pending
from core.notifications.transport import RecordingTransport
from core.reclaim import services as reclaim
from core.reclaim import warning_service as warnings
from core.reclaim.daily import run_daily
from core.reclaim.states import InvalidMove
from tests.support.reclaim import active_allocation as _active

P = {p.id: p for p in load_personas()}
APPLICANT, OPS, ADMIN = P["zhang.wei"], P["li.na"], P["zhao.min"]


def _window(ctx, alloc_id: int, start: date, end: date, **request_fields) -> AllocationRow:
    """Move an active allocation's window (and request fields) directly: tiers auto-approve only short,
    future windows, and these tests need past months and long windows."""
    with unit_of_work(ctx.sessions) as s:
        alloc = s.get(AllocationRow, alloc_id)
        alloc.starts_on, alloc.ends_on = start, end
        row = s.get(RequestRow, alloc.request_id)
        for k, v in request_fields.items():
            setattr(row, k, v)
    return alloc


def _keys(ctx, prefix: str) -> list[str]:
    with unit_of_work(ctx.sessions) as s:
        return sorted(k for k in s.scalars(select(OutboxRow.dedup_key)) if k.startswith(prefix))


def _capacity(ctx, pool: str) -> int:
    with unit_of_work(ctx.sessions) as s:
        return s.get(PoolCapacityRow, pool).allocated_gpus


def test_expiry_notices_are_queued_and_mailed_exactly_once_across_repeated_daily_runs(ctx):
    _, alloc = _active(ctx)
    transport = RecordingTransport()
    for today in (alloc.ends_on - timedelta(days=7), alloc.ends_on - timedelta(days=7), alloc.ends_on - timedelta(days=3),
                  alloc.ends_on - timedelta(days=3), alloc.ends_on - timedelta(days=1)):
        run_daily(sessions=ctx.sessions, today=today)
        deliver_pending(sessions=ctx.sessions, transport=transport)
    assert _keys(ctx, "expiry:") == sorted(f"expiry:{alloc.id}:{d}" for d in (7, 3, 1))
    expiry_mails = [m for m in transport.sent if "expire" in m.subject or "到期" in m.subject]
    assert len(expiry_mails) == 3


def test_an_interrupted_daily_run_is_completed_by_the_next_without_duplicates(ctx, monkeypatch):
    _, a1 = _active(ctx)
    _, a2 = _active(ctx)
    today = a1.ends_on - timedelta(days=3)
    real = reclaim.enqueue
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ComputeLoopError("reclaim.note_required")  # the run dies on the second allocation
        return real(*args, **kwargs)

    monkeypatch.setattr(reclaim, "enqueue", flaky)
    first = run_daily(sessions=ctx.sessions, today=today)
    assert "notices" in first["errors"]
    assert len(_keys(ctx, "expiry:")) == 1
    monkeypatch.setattr(reclaim, "enqueue", real)
    run_daily(sessions=ctx.sessions, today=today)
    run_daily(sessions=ctx.sessions, today=today)
    assert _keys(ctx, "expiry:") == sorted([f"expiry:{a1.id}:3", f"expiry:{a2.id}:3"])
    transport = RecordingTransport()
    deliver_pending(sessions=ctx.sessions, transport=transport)
    deliver_pending(sessions=ctx.sessions, transport=transport)
    assert len([m for m in transport.sent if "expire" in m.subject or "到期" in m.subject]) == 2


def test_expiry_reclaims_the_allocation_releases_capacity_and_plans_the_deprovisioning(ctx):
    request_id, alloc = _active(ctx)
    held = _capacity(ctx, "hq-ft")
    out = run_daily(sessions=ctx.sessions, today=alloc.ends_on)
    assert out["expiries"]["reclaimed"], out
    assert _capacity(ctx, "hq-ft") == held - alloc.gpus
    assert lifecycle.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id)["status"] == "reclaimed"
    [rec] = reclaim.list_records(sessions=ctx.sessions, actor=OPS)
    assert rec["kind"] == "expiry" and rec["backend"] == "plan" and rec["status"] == "data_pending"
    assert rec["deleted"] == rec["planned"] and "ResourceQuota" in {r["kind"] for r in rec["planned"]}
    assert {r["kind"] for r in rec["data_planned"]} == {"PersistentVolumeClaim", "Namespace"}
    # idempotent: a second run reclaims nothing more and releases nothing twice
    again = run_daily(sessions=ctx.sessions, today=alloc.ends_on)
    assert again["expiries"]["reclaimed"] == [] and _capacity(ctx, "hq-ft") == held - alloc.gpus
    # the volumes go only after the retention notice
    assert run_daily(sessions=ctx.sessions, today=alloc.ends_on + timedelta(days=1))["data_release"]["released"] == []
    done = run_daily(sessions=ctx.sessions, today=alloc.ends_on + timedelta(days=7))
    assert done["data_release"]["released"] == [rec["id"]]
    [rec] = reclaim.list_records(sessions=ctx.sessions, actor=OPS)
    assert rec["status"] == "completed" and rec["data_deleted"]


def test_the_executed_plan_equals_the_dry_run(ctx):
    request_id, alloc = _active(ctx)
    backend = PlanBackend()
    planned = reclaim.plan_reclaim(sessions=ctx.sessions, actor=OPS, request_id=request_id, kind="forced",
                                   reason="项目暂停", provisioner=backend)
    assert planned["deleted"] == [] and planned["planned"]
    with pytest.raises(ComputeLoopError) as exc:
        reclaim.execute_reclaim(sessions=ctx.sessions, actor=OPS, record_id=planned["id"], provisioner=backend)
    assert exc.value.key == "reclaim.approval_required"
    with pytest.raises(PermissionDenied):
        reclaim.approve_reclaim(sessions=ctx.sessions, actor=OPS, record_id=planned["id"], note="自批")
    reclaim.approve_reclaim(sessions=ctx.sessions, actor=ADMIN, record_id=planned["id"], note="同意")
    done = reclaim.execute_reclaim(sessions=ctx.sessions, actor=OPS, record_id=planned["id"], provisioner=backend)
    assert done["deleted"] == planned["planned"]
    assert done["approvals"][0]["actor"] == "zhao.min"


def test_an_extension_filed_in_time_and_approved_moves_the_end_date_and_resets_the_notices(ctx):
    request_id, alloc = _active(ctx)
    alloc = _window(ctx, alloc.id, alloc.starts_on, alloc.starts_on + timedelta(days=14))
    today = alloc.ends_on - timedelta(days=7)
    run_daily(sessions=ctx.sessions, today=today)
    ext = reclaim.request_extension(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id, days=5,
                                    reason="评测未完成", today=today)
    assert ext["status"] == "pending" and ext["pool_free"] is not None and ext["queue_length"] == 0
    with pytest.raises(InputError):
        reclaim.request_extension(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id, days=2,
                                  reason="again", today=today)
    with pytest.raises(PermissionDenied):
        reclaim.decide_extension(sessions=ctx.sessions, actor=APPLICANT, extension_id=ext["id"], approve=True, reason="x")
    done = reclaim.decide_extension(sessions=ctx.sessions, actor=OPS, extension_id=ext["id"], approve=True,
                                    reason="资源池空闲")
    assert done["ends_on_after"] == (alloc.ends_on + timedelta(days=5)).isoformat()
    # the new end reaches the cluster: the namespace's expiry annotation (and, live, the token) moves
    assert done["cluster"]["status"] == "refreshed"
    manifests = provisioning.manifests(sessions=ctx.sessions, actor=OPS, request_id=request_id)
    assert f"{done['ends_on_after']}T00:00:00Z" in manifests
    assert f"{alloc.ends_on.isoformat()}T00:00:00Z" not in manifests
    assert lifecycle.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id)["status"] == "extended"
    with pytest.raises(InvalidMove):
        reclaim.decide_extension(sessions=ctx.sessions, actor=OPS, extension_id=ext["id"], approve=False, reason="x")
    run_daily(sessions=ctx.sessions, today=alloc.ends_on + timedelta(days=5) - timedelta(days=7))
    assert f"expiry:{alloc.id}:7:x1" in _keys(ctx, "expiry:")
    assert _keys(ctx, "extension:") == [f"extension:{ext['id']}:approved"]


def test_an_extension_after_the_deadline_is_refused(ctx):
    request_id, alloc = _active(ctx)
    with pytest.raises(InputError) as exc:
        reclaim.request_extension(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id, days=3,
                                  reason="晚了", today=alloc.ends_on - timedelta(days=1))
    assert exc.value.key == "reclaim.extension_too_late"


def test_a_voluntary_return_releases_the_gpus_and_counts_in_the_owners_favour(ctx):
    request_id, alloc = _active(ctx)
    held = _capacity(ctx, "hq-ft")
    with pytest.raises(PermissionDenied):
        reclaim.return_allocation(sessions=ctx.sessions, actor=OPS, request_id=request_id, reason="x")
    with pytest.raises(PermissionDenied):
        reclaim.preview_return(sessions=ctx.sessions, actor=OPS, request_id=request_id)
    preview = reclaim.preview_return(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id)
    assert reclaim.list_records(sessions=ctx.sessions, actor=OPS) == []  # the preview writes nothing
    rec = reclaim.return_allocation(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id, reason="任务提前完成")
    assert rec["voluntary"] and rec["kind"] == "return" and rec["deleted"] == rec["planned"]
    assert rec["planned"] == preview["planned"] and rec["data_planned"] == preview["data_planned"]
    assert _capacity(ctx, "hq-ft") == held - alloc.gpus
    assert lifecycle.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id)["status"] == "returned"


def _rollups(ctx, namespace: str, days: list[date], util: float, mem: float, peak: float | None = None) -> None:
    for day in days:
        frame = pl.DataFrame([{
            "day": day, "cluster": "hq-beijing-2", "hostname": "n1", "uuid": f"GPU-{namespace}", "model": "H20",
            "namespace": namespace, "mean_util": util, "peak_util": peak if peak is not None else util,
            "mean_mem": mem, "peak_mem": peak if peak is not None else mem, "allocated_gpu_hours": 24.0,
            "used_gpu_hours": 24.0 * util, "energy_kwh": 1.0, "samples": 1440, "expected_samples": 1440,
            "coverage": 1.0}], schema=ROLLUP_SCHEMA)
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, day, frame)


def test_warnings_are_raised_once_triaged_replied_and_hidden_from_other_departments(ctx):
    request_id, alloc = _active(ctx)
    alloc = _window(ctx, alloc.id, date(2026, 10, 1), date(2026, 12, 31))
    days = [date(2026, 10, d) for d in range(1, 32)]
    _rollups(ctx, alloc.namespace, days, util=0.05, mem=0.1)
    first = run_daily(sessions=ctx.sessions, today=date(2026, 11, 2))
    assert len(first["warnings"]["raised"]) == 1
    again = run_daily(sessions=ctx.sessions, today=date(2026, 11, 3))
    assert again["warnings"]["raised"] == [] and again["warnings"]["existing"] == 1
    [w] = warnings.list_warnings(sessions=ctx.sessions, actor=OPS)
    assert w["level"] == "yellow" and w["owner"] == "zhang.wei" and w["coverage"] == pytest.approx(1.0)
    assert _keys(ctx, "warning:") == [f"warning:{w['id']}:raised"]
    other = Identity("liu.yang", "刘洋", "liu.yang@example.com", "applicant", department="营销部")
    assert warnings.list_warnings(sessions=ctx.sessions, actor=other) == []
    with pytest.raises(NotFound):
        warnings.get_warning(sessions=ctx.sessions, actor=other, warning_id=w["id"])
    with pytest.raises(PermissionDenied):
        warnings.list_warnings(sessions=ctx.sessions, actor=P["wang.qiang"])
    assert warnings.list_warnings(sessions=ctx.sessions, actor=P["chen.jing"]) == []  # JS ops: not an HQ department
    with pytest.raises(PermissionDenied):
        warnings.triage(sessions=ctx.sessions, actor=APPLICANT, warning_id=w["id"], to="acknowledged", note="x")
    with pytest.raises(InvalidMove):
        warnings.triage(sessions=ctx.sessions, actor=OPS, warning_id=w["id"], to="resolved", note="跳过")
    for to in ("acknowledged", "owner_contacted"):
        warnings.triage(sessions=ctx.sessions, actor=OPS, warning_id=w["id"], to=to, note=f"备注 {to}")
    warnings.reply(sessions=ctx.sessions, actor=APPLICANT, warning_id=w["id"], text="下周开始训练")
    done = warnings.triage(sessions=ctx.sessions, actor=OPS, warning_id=w["id"], to="resolved", note="已确认")
    assert [n["kind"] for n in done["notes"]] == ["transition", "transition", "reply", "transition"]
    assert set(done["timestamps"]) == {"new", "acknowledged", "owner_contacted", "resolved"}


def test_an_idle_inference_service_becomes_a_candidate_and_is_scaled_down_with_approval(ctx):
    request_id, alloc = _active(ctx)
    alloc = _window(ctx, alloc.id, date(2026, 10, 1), date(2027, 1, 31), demand_type="inference")
    _rollups(ctx, alloc.namespace, [date(2026, 10, d) for d in range(1, 32)], util=0.05, mem=0.05, peak=0.1)
    out = run_daily(sessions=ctx.sessions, today=date(2026, 11, 1))
    assert len(out["candidates"]["detected"]) == 1, out
    [c] = reclaim.list_candidates(sessions=ctx.sessions, actor=OPS)
    for to in ("under_review", "owner_contacted"):
        reclaim.move_candidate(sessions=ctx.sessions, actor=OPS, candidate_id=c["id"], to=to, note=to)
    reclaim.move_candidate(sessions=ctx.sessions, actor=OPS, candidate_id=c["id"], to="plan_agreed", note="同意缩容",
                           plan="scale_down", plan_gpus=1)
    held = _capacity(ctx, "hq-ft")
    rec = reclaim.plan_candidate(sessions=ctx.sessions, actor=OPS, candidate_id=c["id"])
    reclaim.approve_reclaim(sessions=ctx.sessions, actor=ADMIN, record_id=rec["id"], note="同意")
    done = reclaim.execute_candidate(sessions=ctx.sessions, actor=OPS, candidate_id=c["id"])
    assert done["release_gpus"] == 1 and _capacity(ctx, "hq-ft") == held - 1
    assert reclaim.list_candidates(sessions=ctx.sessions, actor=OPS)[0]["status"] == "executed"


JS_OPS = Identity("chen.jing", "陈静", "chen.jing@example.com", "prov_ops", department="江苏信通公司", province="JS",
                  level="L1")


def test_provincial_ops_cannot_approve_execute_or_extend_another_provinces_allocation(ctx):
    request_id, alloc = _active(ctx)  # an HQ pool
    planned = reclaim.plan_reclaim(sessions=ctx.sessions, actor=OPS, request_id=request_id, kind="forced",
                                   reason="项目暂停", provisioner=PlanBackend())
    with pytest.raises(NotFound):
        reclaim.approve_reclaim(sessions=ctx.sessions, actor=JS_OPS, record_id=planned["id"], note="同意")
    with pytest.raises(NotFound):
        reclaim.plan_reclaim(sessions=ctx.sessions, actor=JS_OPS, request_id=request_id, kind="forced",
                             reason="越权", provisioner=PlanBackend())
    reclaim.approve_reclaim(sessions=ctx.sessions, actor=ADMIN, record_id=planned["id"], note="同意")
    with pytest.raises(NotFound):
        reclaim.execute_reclaim(sessions=ctx.sessions, actor=JS_OPS, record_id=planned["id"], provisioner=PlanBackend())
    assert reclaim.list_records(sessions=ctx.sessions, actor=OPS)[0]["status"] == "planned"  # nothing happened

    other, alloc2 = _active(ctx)
    alloc2 = _window(ctx, alloc2.id, alloc2.starts_on, alloc2.starts_on + timedelta(days=14))
    ext = reclaim.request_extension(sessions=ctx.sessions, actor=APPLICANT, request_id=other, days=3,
                                    reason="评测未完成", today=alloc2.ends_on - timedelta(days=7))
    with pytest.raises(NotFound):
        reclaim.decide_extension(sessions=ctx.sessions, actor=JS_OPS, extension_id=ext["id"], approve=True, reason="越权")
    assert reclaim.list_extensions(sessions=ctx.sessions, actor=OPS)[0]["status"] == "pending"


def test_an_allocation_with_an_undecided_extension_is_held_at_expiry_until_ops_decide(ctx):
    request_id, alloc = _active(ctx)
    alloc = _window(ctx, alloc.id, alloc.starts_on, alloc.starts_on + timedelta(days=14))
    ext = reclaim.request_extension(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id, days=3,
                                    reason="评测未完成", today=alloc.ends_on - timedelta(days=7))
    out = run_daily(sessions=ctx.sessions, today=alloc.ends_on)
    assert out["expiries"]["reclaimed"] == [] and out["expiries"]["held"] == [
        {"allocation_id": alloc.id, "request_id": request_id}]
    assert lifecycle.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id)["status"] != "reclaimed"
    reclaim.decide_extension(sessions=ctx.sessions, actor=OPS, extension_id=ext["id"], approve=False, reason="资源紧张")
    out = run_daily(sessions=ctx.sessions, today=alloc.ends_on)
    assert out["expiries"]["reclaimed"] and out["expiries"]["held"] == []


def test_a_returned_inference_service_is_not_a_reclaim_candidate(ctx):
    request_id, alloc = _active(ctx)
    alloc = _window(ctx, alloc.id, date(2026, 10, 1), date(2027, 1, 31), demand_type="inference")
    _rollups(ctx, alloc.namespace, [date(2026, 10, d) for d in range(1, 32)], util=0.05, mem=0.05, peak=0.1)
    reclaim.return_allocation(sessions=ctx.sessions, actor=APPLICANT, request_id=request_id, reason="服务下线")
    out = run_daily(sessions=ctx.sessions, today=date(2026, 11, 1))
    assert out["candidates"]["detected"] == [] and out["candidates"]["checked"] == 0
