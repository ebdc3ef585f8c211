"""The adjustment record, the queue service and autoscaling policies on real databases (SQLite and
PostgreSQL): records in the caller's transaction, filters, permissions, preemptions recorded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from core.adjust import services as adjust
from core.adjust.autoscaling import default_policy
from core.adjust.persistence import AdjustmentRow, record_adjustment
from core.db.models import AuditEventRow
from core.db.session import unit_of_work
from core.errors import InputError
from core.identity import PermissionDenied
from core.lifecycle import green_channel as gc
from core.lifecycle import services as svc
from tests.support.green_channel import crowded_pool as _crowded_pool, emergency as _emergency
from tests.support.people import DEPT_HEAD
from tests.support.forms import MEDIUM
from tests.support.people import ADMIN, APPLICANT, DEPT_HEAD as HEAD, EXEC, HQ_OPS


def _count(ctx) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(AdjustmentRow))


def test_a_record_commits_and_rolls_back_with_the_callers_transaction(ctx):
    with pytest.raises(RuntimeError):
        with unit_of_work(ctx.sessions) as s:
            record_adjustment(s, actor="li.na", kind="manual_adjustment", subject="pool:hq-ft", reason="x",
                              before={"gpus": 8}, after={"gpus": 4})
            raise RuntimeError("the change failed")
    assert _count(ctx) == 0
    with unit_of_work(ctx.sessions) as s:
        record_adjustment(s, actor="li.na", kind="manual_adjustment", subject="pool:hq-ft", reason="x",
                          before={"gpus": 8}, after={"gpus": 4})
    rows = adjust.list_adjustments(sessions=ctx.sessions, actor=HQ_OPS)
    assert [(r["kind"], r["before"], r["after"], r["automatic"]) for r in rows] == [
        ("manual_adjustment", {"gpus": 8}, {"gpus": 4}, False)]


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        record_adjustment(None, actor="x", kind="whatever", subject="s")  # type: ignore[arg-type]


def test_filters_by_kind_actor_subject_time_and_automatic(ctx):
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with unit_of_work(ctx.sessions) as s:
        record_adjustment(s, actor="system", kind="scale_event", subject="deployment:a/b", automatic=True, at=t0)
        record_adjustment(s, actor="li.na", kind="defragmentation", subject="pool:hq-ft", at=t0 + timedelta(days=2))
        record_adjustment(s, actor="zhao.min", kind="scale_policy_change", subject="deployment:a/b",
                          at=t0 + timedelta(days=4))
    ls = adjust.list_adjustments
    assert [r["kind"] for r in ls(sessions=ctx.sessions, actor=ADMIN)] == [
        "scale_policy_change", "defragmentation", "scale_event"]
    assert [r["actor"] for r in ls(sessions=ctx.sessions, actor=ADMIN, automatic=True)] == ["system"]
    assert [r["actor"] for r in ls(sessions=ctx.sessions, actor=ADMIN, automatic=False)] == ["zhao.min", "li.na"]
    assert [r["kind"] for r in ls(sessions=ctx.sessions, actor=ADMIN, kind="defragmentation")] == ["defragmentation"]
    assert [r["actor"] for r in ls(sessions=ctx.sessions, actor=ADMIN, by="li.na")] == ["li.na"]
    assert len(ls(sessions=ctx.sessions, actor=ADMIN, subject="deployment:a/b")) == 2
    window = ls(sessions=ctx.sessions, actor=ADMIN, since=t0 + timedelta(days=1), until=t0 + timedelta(days=3))
    assert [r["kind"] for r in window] == ["defragmentation"]
    with pytest.raises(InputError):
        ls(sessions=ctx.sessions, actor=ADMIN, kind="nonsense")


def test_the_pool_filter_finds_a_pools_records_however_many_newer_ones_there_are(ctx):
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with unit_of_work(ctx.sessions) as s:
        record_adjustment(s, actor="li.na", kind="defragmentation", subject="pool:hq-sci", at=t0)
        record_adjustment(s, actor="system", kind="queue_reorder", subject="request:9", automatic=True,
                          before={"pool": "hq-sci", "position": 3}, after={"pool": "hq-sci", "position": 2}, at=t0)
        for i in range(600):  # newer records of another pool than the page shows at once
            record_adjustment(s, actor="system", kind="queue_reorder", subject=f"request:{100 + i}", automatic=True,
                              after={"pool": "hq-ft", "position": 1}, at=t0 + timedelta(minutes=i + 1))
    rows = adjust.list_adjustments(sessions=ctx.sessions, actor=ADMIN, pool="hq-sci", limit=500)
    assert sorted(r["subject"] for r in rows) == ["pool:hq-sci", "request:9"]
    assert len(adjust.list_adjustments(sessions=ctx.sessions, actor=ADMIN, pool="hq-ft", limit=1000)) == 600


@pytest.mark.parametrize("who", [APPLICANT, EXEC, HEAD])
def test_only_ops_and_admins_read_the_record_and_the_queue(ctx, who):
    with pytest.raises(PermissionDenied):
        adjust.list_adjustments(sessions=ctx.sessions, actor=who)
    with pytest.raises(PermissionDenied):
        adjust.queue(sessions=ctx.sessions, actor=who)
    with pytest.raises(PermissionDenied):
        adjust.save_policy(sessions=ctx.sessions, actor=who, policy=default_policy("ns", "dep"), reason="x")


def test_every_green_channel_preemption_shows_up_in_the_record(ctx):
    runs = _crowded_pool(ctx)
    emergency = _emergency(ctx, 40, actor=DEPT_HEAD)
    gc.decide_emergency(sessions=ctx.sessions, actor=HQ_OPS, request_id=emergency["id"], approve=True,
                        reason="事故应急，执行抢占", execute_preemption=True)
    rows = adjust.list_adjustments(sessions=ctx.sessions, actor=HQ_OPS, kind="preemption")
    victims = {runs["old_low"]["id"], runs["new_low"]["id"]}
    assert sorted(r["subject"] for r in rows) == sorted(f"request:{v}" for v in victims)
    assert all(r["actor"] == "li.na" and r["after"]["requeued"] and r["before"]["status"] == "active" for r in rows)
    # the requeued requests are now in the queue, ahead of nothing else
    q = adjust.queue(sessions=ctx.sessions, actor=HQ_OPS)
    assert {e["request_id"] for e in q["entries"]} == victims
    assert all(e["pool"] == "hq-sci" and e["blocked"] in ("capacity", "no_release", "ahead") for e in q["entries"])


def test_the_queue_gives_position_eta_and_the_release_that_unblocks(ctx):
    runs = _crowded_pool(ctx)  # 56 of hq-sci's 64 GPUs held
    waiting = svc.submit(sessions=ctx.sessions, actor=APPLICANT, queue_if_short=True,
                         form={**MEDIUM, "pool": "hq-sci", "estimate_id": None, "requested_gpus": 16})
    assert waiting["status"] == "queued"
    q = adjust.queue(sessions=ctx.sessions, actor=HQ_OPS)
    (entry,) = q["entries"]
    assert entry["number"] == waiting["number"] and entry["position"] == 1 and entry["blocked"] == "capacity"
    assert entry["hint"]["key"] == "adjq.hint.release"
    assert entry["hint"]["params"]["number"] in {r["number"] for r in runs.values()}
    assert entry["eta"] is not None and entry["eta"].date().isoformat() == entry["hint"]["params"]["date"]
    assert q["pools"]["hq-sci"]["free"] == 8


def test_a_policy_change_is_recorded_with_before_and_after_in_the_same_transaction(ctx):
    policy = default_policy("cs-infer", "qwen-chat")
    adjust.save_policy(sessions=ctx.sessions, actor=HQ_OPS, policy=policy, reason="上线")
    changed = adjust.save_policy(sessions=ctx.sessions, actor=ADMIN, reason="晚高峰",
                                 policy={**policy.as_dict(), "max_replicas": 12})
    assert changed["max_replicas"] == 12 and changed["updated_by"] == "zhao.min"
    assert len(adjust.list_policies(sessions=ctx.sessions, actor=HQ_OPS)) == 1
    rows = adjust.list_adjustments(sessions=ctx.sessions, actor=HQ_OPS, kind="scale_policy_change")
    assert [(r["actor"], (r["before"] or {}).get("max_replicas"), r["after"]["max_replicas"]) for r in rows] == [
        ("zhao.min", 8, 12), ("li.na", None, 8)]
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEventRow)
                        .where(AuditEventRow.action == "adjust.scaling_policy_saved")) == 2
    before = _count(ctx)
    with pytest.raises(InputError):
        adjust.save_policy(sessions=ctx.sessions, actor=ADMIN, reason="bad",
                           policy={**policy.as_dict(), "min_replicas": 20})
    assert _count(ctx) == before


def test_recording_a_defragmentation_plan_needs_something_to_regroup(ctx):
    with pytest.raises(InputError) as err:
        adjust.apply_defragmentation(sessions=ctx.sessions, actor=HQ_OPS, pool="hq-sci", reason="整理")
    assert err.value.key == "adjq.nothing_to_regroup"
    assert _count(ctx) == 0
