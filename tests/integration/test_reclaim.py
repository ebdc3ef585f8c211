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
from core.reclaim.common import SYSTEM
from core.reclaim.daily import run_daily
from core.reclaim.states import InvalidMove
from tests.support import clock
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


# --------------------------------------------------------------------------- owners, scope, reasons

JS_APPLICANT = Identity("qian.jun", "钱军", "qian.jun@example.com", "applicant", department="江苏信通公司",
                        province="JS")
JS_OWNER = {"created_by": "qian.jun", "created_by_email": "qian.jun@example.com", "department": "js-it", "unit": "JS"}


def _hold(ctx, alloc_id: int, start: date, end: date, *, namespace: str | None = None, pool: str | None = None,
          **request_fields) -> AllocationRow:
    """:func:`_window`, and the allocation's namespace and pool set directly (one namespace held by
    two allocations in turn; a provincial owner's pool)."""
    _window(ctx, alloc_id, start, end, **request_fields)
    with unit_of_work(ctx.sessions) as s:
        alloc = s.get(AllocationRow, alloc_id)
        alloc.namespace = namespace or alloc.namespace
        alloc.pool_id = pool or alloc.pool_id
    return alloc


def _row(ns: str, day: date, *, util: float = 0.02, mem: float = 0.05, peak: float | None = None,
         coverage: float = 1.0, cluster: str = "hq-beijing-2", model: str = "H20") -> dict:
    return {"day": day, "cluster": cluster, "hostname": "n1", "uuid": f"GPU-{ns}", "model": model, "namespace": ns,
            "mean_util": util, "peak_util": util if peak is None else peak, "mean_mem": mem,
            "peak_mem": mem if peak is None else peak, "allocated_gpu_hours": 24.0, "used_gpu_hours": 24.0 * util,
            "energy_kwh": 1.0, "samples": 1440, "expected_samples": 1440, "coverage": coverage}


def _usage(ctx, rows: list[dict]) -> None:
    """Store rollup rows, every namespace of a day together (a day's rows are replaced as a whole)."""
    for day in sorted({r["day"] for r in rows}):
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, day, pl.DataFrame([r for r in rows if r["day"] == day], schema=ROLLUP_SCHEMA))


def _days(offset: int) -> list[date]:
    """Every day of the month ``offset`` months from today's (-1: last month)."""
    first, nxt = clock.month_start(offset), clock.month_start(offset + 1)
    return [first + timedelta(days=i) for i in range((nxt - first).days)]


def _warning_of(ctx, month: str, resource: str) -> dict:
    [w] = [w for w in warnings.list_warnings(sessions=ctx.sessions, actor=OPS, month=month) if w["resource"] == resource]
    return w


def test_a_warning_carries_the_allocation_that_held_the_namespace_in_its_month(ctx):
    # one namespace, held by zhang.wei's allocation two months ago, then by a Jiangsu owner's last month
    _, a = _active(ctx)
    _, b = _active(ctx)
    ns = a.namespace
    _hold(ctx, a.id, clock.month_start(-2), clock.month_start(-1))  # ends_on is exclusive: all of that month
    _hold(ctx, b.id, clock.month_start(-1), clock.month_start(1), namespace=ns, pool="js-pool", **JS_OWNER)
    _usage(ctx, [_row(ns, d) for d in _days(-2) + _days(-1)])
    for offset in (-2, -1):
        warnings.raise_warnings(sessions=ctx.sessions, actor=SYSTEM, month=clock.month(offset))
    before, last = _warning_of(ctx, clock.month(-2), ns), _warning_of(ctx, clock.month(-1), ns)
    owner = ("owner_source", "owner", "department", "pool", "unit", "allocation_id")
    assert tuple(before[k] for k in owner) == ("allocation", "zhang.wei", "digital", "hq-ft", "HQ", a.id)
    assert tuple(last[k] for k in owner) == ("allocation", "qian.jun", "js-it", "js-pool", "JS", b.id)
    assert warnings.get_warning(sessions=ctx.sessions, actor=OPS, warning_id=last["id"])["number"]
    with unit_of_work(ctx.sessions) as s:
        notices = {k: r for k, r in s.execute(select(OutboxRow.dedup_key, OutboxRow.recipient_id)) if k.startswith("warning:")}
    assert notices == {f"warning:{before['id']}:raised": "zhang.wei", f"warning:{last['id']}:raised": "qian.jun"}


def test_a_warning_no_allocation_held_says_no_owner_and_belongs_to_the_province_it_ran_in(ctx, monkeypatch):
    from core.reclaim import ownership

    month = clock.month(-1)
    # legacy usage on the Jiangsu cluster; a namespace the organisation's mapping gives to marketing
    _usage(ctx, [_row("legacy-js-1", d, cluster="js-nanjing", model="A800-80GB") for d in _days(-1)]
           + [_row("cs-old-7", d) for d in _days(-1)])
    monkeypatch.setattr(ownership, "load_team_mapping", lambda: (
        ownership.TeamEntry(namespace="cs-old-*", department="marketing", owner="zhou.lei"),))
    warnings.raise_warnings(sessions=ctx.sessions, actor=SYSTEM, month=month)
    legacy, mapped = _warning_of(ctx, month, "legacy-js-1"), _warning_of(ctx, month, "cs-old-7")
    owner = ("owner_source", "owner", "department", "pool", "unit", "allocation_id")
    assert tuple(legacy[k] for k in owner) == ("none", "", "", "js-pool", "JS", None)
    assert tuple(mapped[k] for k in owner) == ("team_mapping", "zhou.lei", "marketing", "hq-ft", "HQ", None)
    assert _keys(ctx, "warning:") == [f"warning:{mapped['id']}:raised"]  # nobody to tell about legacy usage
    assert [w["resource"] for w in warnings.list_warnings(sessions=ctx.sessions, actor=JS_OPS)] == ["legacy-js-1"]
    assert warnings.list_warnings(sessions=ctx.sessions, actor=APPLICANT) == []


def test_provincial_ops_see_their_provinces_warnings_and_candidates_and_owners_theirs(ctx):
    month = clock.month(-1)
    _, hq = _active(ctx)
    _, js = _active(ctx)
    _hold(ctx, hq.id, clock.month_start(-1), clock.month_start(1), demand_type="inference")
    _hold(ctx, js.id, clock.month_start(-1), clock.month_start(1), pool="js-pool", demand_type="inference", **JS_OWNER)
    _usage(ctx, [_row(ns, d, peak=0.1) for ns in (hq.namespace, js.namespace) for d in _days(-1)])
    run_daily(sessions=ctx.sessions, today=clock.month_start(0))
    both = {hq.namespace, js.namespace}
    for actor, seen in ((OPS, both), (ADMIN, both), (JS_OPS, {js.namespace}), (P["wu.hao"], {js.namespace}),
                        (APPLICANT, {hq.namespace}), (JS_APPLICANT, {js.namespace})):
        assert {w["resource"] for w in warnings.list_warnings(sessions=ctx.sessions, actor=actor, month=month)} == seen
        assert {c["namespace"] for c in reclaim.list_candidates(sessions=ctx.sessions, actor=actor, month=month)} == seen
    [hq_warning] = warnings.list_warnings(sessions=ctx.sessions, actor=APPLICANT, month=month)
    with pytest.raises(NotFound):
        warnings.get_warning(sessions=ctx.sessions, actor=JS_OPS, warning_id=hq_warning["id"])
    [js_cand] = reclaim.list_candidates(sessions=ctx.sessions, actor=JS_OPS, month=month)
    assert (js_cand["owner"], js_cand["unit"], js_cand["pool"], js_cand["owner_source"]) == (
        "qian.jun", "JS", "js-pool", "allocation")
    reclaim.move_candidate(sessions=ctx.sessions, actor=JS_OPS, candidate_id=js_cand["id"], to="under_review",
                           note="核实中")


def test_the_owner_is_notified_once_per_warning_across_runs_and_when_an_owner_is_found_later(ctx):
    month = clock.month(-1)
    _usage(ctx, [_row("legacy-x", d) for d in _days(-1)])
    first = warnings.raise_warnings(sessions=ctx.sessions, actor=SYSTEM, month=month)
    assert len(first["raised"]) == 1 and _keys(ctx, "warning:") == []  # no owner yet: nobody to tell
    # the allocation that held the namespace is recorded afterwards (legacy usage brought under management)
    _, alloc = _active(ctx)
    _hold(ctx, alloc.id, clock.month_start(-1), clock.month_start(1), namespace="legacy-x")
    transport = RecordingTransport()
    for _ in range(3):
        again = warnings.raise_warnings(sessions=ctx.sessions, actor=SYSTEM, month=month)
        assert again["raised"] == [] and again["existing"] == 1
        deliver_pending(sessions=ctx.sessions, transport=transport)
    w = _warning_of(ctx, month, "legacy-x")
    assert (w["owner"], w["owner_source"], w["allocation_id"]) == ("zhang.wei", "allocation", alloc.id)
    assert _keys(ctx, "warning:") == [f"warning:{w['id']}:raised"]
    assert [m.to for m in transport.sent if "legacy-x" in m.subject] == ["zhang.wei@example.com"]


def _publish_board(ctx, month: str, monkeypatch) -> None:
    from core.reports import service as reports

    real = reports.settings
    monkeypatch.setattr(reports, "settings", lambda: {**real(), "top_n": 10})  # every namespace on the list
    draft = reports.build_draft(sessions=ctx.sessions, actor=OPS, month=month, scope="company")
    reports.publish(sessions=ctx.sessions, actor=OPS, report_id=draft["id"], deidentified=True)


def test_each_black_list_entry_that_is_not_a_reclaim_candidate_says_why(ctx, monkeypatch):
    from core.reclaim.black_list import black_list_reasons

    month, days = clock.month(-1), _days(-1)
    ns = {}
    for name, start, fields in (("idle", days[0], {"demand_type": "inference"}), ("training", days[0], {}),
                                ("late", days[-3], {"demand_type": "inference"}),
                                ("busy", days[0], {"demand_type": "inference"}),
                                ("thin", days[0], {"demand_type": "inference"})):
        _, alloc = _active(ctx, gpus=1)  # five of them: under the applicant's auto-approval cap
        _hold(ctx, alloc.id, start, clock.month_start(1), project="", **fields)
        ns[name] = alloc.namespace
    rows = [_row(ns["idle"], d, peak=0.1) for d in days] + [_row(ns["training"], d) for d in days]
    rows += [_row(ns["late"], d, peak=0.1) for d in days[-3:]]
    rows += [_row(ns["busy"], d, peak=0.55 if d == days[9] else 0.1) for d in days]
    rows += [_row(ns["thin"], d, peak=0.1, coverage=0.5) for d in days]
    rows += [_row("legacy-inf", d, peak=0.1, model="L20") for d in days]  # no allocation, the inference pool
    rows += [_row("legacy-ft", d, peak=0.1) for d in days]  # no allocation, a training pool
    _usage(ctx, rows)
    _publish_board(ctx, month, monkeypatch)

    def reasons() -> dict[str, list[str]]:
        out = black_list_reasons(sessions=ctx.sessions, actor=OPS, month=month)
        assert out["report"]["status"] == "published"
        return {r["namespace"]: [x["key"] for x in r["reasons"]] or [r["candidate"]["status"]] for r in out["rows"]}

    expected = {ns["training"]: ["not_inference"], ns["late"]: ["created_mid_month"], ns["busy"]: ["busy_day"],
                ns["thin"]: ["low_coverage"], "legacy-ft": ["kind_unknown"]}
    assert reasons() == {**expected, ns["idle"]: ["awaiting_detection"], "legacy-inf": ["awaiting_detection"]}
    detected = reclaim.detect_candidates(sessions=ctx.sessions, actor=SYSTEM, month=month)
    assert len(detected["detected"]) == 2 and detected["checked"] == 5
    assert reasons() == {**expected, ns["idle"]: ["detected"], "legacy-inf": ["detected"]}
    out = black_list_reasons(sessions=ctx.sessions, actor=OPS, month=month)
    [busy] = [r for r in out["rows"] if r["namespace"] == ns["busy"]]
    assert busy["reasons"] == [{"key": "busy_day", "count": 1, "first": days[9].isoformat(), "peak": 0.55,
                                "threshold": 0.2}]
    [late] = [r for r in out["rows"] if r["namespace"] == ns["late"]]
    assert late["reasons"][0]["days"] == 3
    # the legacy candidate has no owner, and the portal has nothing of it to deprovision
    [legacy] = [c for c in reclaim.list_candidates(sessions=ctx.sessions, actor=OPS) if c["namespace"] == "legacy-inf"]
    assert (legacy["owner_source"], legacy["owner"], legacy["pool"], legacy["request_id"]) == ("none", "", "hq-inf", None)
    for to in ("under_review", "owner_contacted"):
        reclaim.move_candidate(sessions=ctx.sessions, actor=OPS, candidate_id=legacy["id"], to=to, note=to)
    reclaim.move_candidate(sessions=ctx.sessions, actor=OPS, candidate_id=legacy["id"], to="plan_agreed",
                           note="下线", plan="remove")
    with pytest.raises(InputError) as exc:
        reclaim.plan_candidate(sessions=ctx.sessions, actor=OPS, candidate_id=legacy["id"])
    assert exc.value.key == "reclaim.candidate_without_allocation"
    # another province's ops see none of these HQ entries; with no board there is nothing to list
    assert black_list_reasons(sessions=ctx.sessions, actor=JS_OPS, month=month)["rows"] == []
    assert black_list_reasons(sessions=ctx.sessions, actor=OPS, month=clock.month(-2)) == {
        "month": clock.month(-2), "report": None, "rows": []}
