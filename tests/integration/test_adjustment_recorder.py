"""Automatic adjustment records on real databases (SQLite and PostgreSQL): queue reorders recorded
by the queue snapshot job (arrival, release, aging; nothing twice), and HPA scale events read with
the official client from the Kubernetes API test server (once per scale, at lastScaleTime, with the
HPA's conditions; an unreachable cluster recorded nothing and loses nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from core.adjust import services as adjust
from core.adjust.persistence import AdjustmentRow
from core.adjust.recorder import AutoscalerObservationRow, QueuePositionRow, record_scale_events, snapshot_queue
from core.cluster.autoscalers import LiveAutoscalers
from core.config import PROJECT_ROOT
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow, RequestRow
from core.org import load_org
from tests.support.green_channel import SCI, crowded_pool as _crowded_pool, running as _running
from tests.support.people import APPLICANT, HQ_OPS

T0 = datetime(2030, 6, 1, tzinfo=timezone.utc)


def _records(ctx, kind: str) -> list[dict]:
    return adjust.list_adjustments(sessions=ctx.sessions, actor=HQ_OPS, kind=kind)


def _count(ctx) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(AdjustmentRow))


def _queued(ctx, priority: str, queued_at: datetime, gpus: int = 16) -> dict:
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, queue_if_short=True,
                   form={**SCI, "requested_gpus": gpus, "priority": priority})
    assert r["status"] == "queued"
    with ctx.sessions.begin() as s:  # when it joined the queue is what aging reads
        s.execute(update(RequestRow).where(RequestRow.id == r["id"]).values(queued_at=queued_at))
    return r


def test_the_queue_snapshot_records_arrivals_and_releases_once_each(ctx):
    _crowded_pool(ctx)  # hq-sci: 8 of 64 GPUs free, so 16-GPU requests wait
    a = _queued(ctx, "normal", T0)
    b = _queued(ctx, "normal", T0 + timedelta(hours=1))
    first = snapshot_queue(sessions=ctx.sessions, now=T0 + timedelta(hours=2))
    assert first["baseline"] and first["waiting"] == 2 and first["recorded"] == []
    again = snapshot_queue(sessions=ctx.sessions, now=T0 + timedelta(hours=2, minutes=5))
    assert not again["baseline"] and again["recorded"] == [] and _records(ctx, "queue_reorder") == []

    urgent = _queued(ctx, "high", T0 + timedelta(hours=3))  # 30 + aging beats 10 + 3 h of aging
    third = snapshot_queue(sessions=ctx.sessions, now=T0 + timedelta(hours=4))
    assert third["new"] == 1
    assert {(r["request_id"], r["before"], r["after"], tuple(r["reasons"])) for r in third["recorded"]} == {
        (a["id"], 1, 2, ("arrival",)), (b["id"], 2, 3, ("arrival",))}
    rows = {r["subject"]: r for r in _records(ctx, "queue_reorder")}
    rec = rows[f"request:{a['id']}"]
    assert rec["actor"] == "system" and rec["automatic"] and rec["reason"] == "arrival"
    assert rec["at"] == T0 + timedelta(hours=4)
    assert (rec["before"]["pool_position"], rec["after"]["pool_position"]) == (1, 2)
    assert rec["before"]["pool"] == rec["after"]["pool"] == "hq-sci"
    # before = as last observed (the run at 2 h 05 min), after = now (4 h of aging)
    assert rec["before"]["effective_priority"] == 12.08 and rec["after"]["effective_priority"] == 10 + 4
    assert rec["after"]["arrived"] == [urgent["id"]] and rec["after"]["number"] == a["number"]
    assert snapshot_queue(sessions=ctx.sessions, now=T0 + timedelta(hours=4, minutes=5))["recorded"] == []
    assert len(_records(ctx, "queue_reorder")) == 2

    svc.cancel(sessions=ctx.sessions, actor=APPLICANT, request_id=urgent["id"], reason="不再需要")
    fifth = snapshot_queue(sessions=ctx.sessions, now=T0 + timedelta(hours=5))
    assert fifth["left"] == 1
    assert {(r["request_id"], r["before"], r["after"], tuple(r["reasons"])) for r in fifth["recorded"]} == {
        (a["id"], 2, 1, ("release",)), (b["id"], 3, 2, ("release",))}
    with ctx.sessions() as s:
        assert sorted(s.scalars(select(QueuePositionRow.request_id))) == sorted([a["id"], b["id"]])


def test_aging_past_the_cap_reorders_requests_already_waiting(ctx):
    _crowded_pool(ctx)
    # low joined 20 h before normal: it is ahead (weights low 0, normal 10, 1/h) until it reaches the
    # 168 h aging cap and normal keeps aging past it (data/queue_policy.yaml)
    low = _queued(ctx, "low", T0)
    normal = _queued(ctx, "normal", T0 + timedelta(hours=20))
    snapshot_queue(sessions=ctx.sessions, now=T0 + timedelta(hours=30))
    result = snapshot_queue(sessions=ctx.sessions, now=T0 + timedelta(hours=190))
    moved = {r["request_id"]: r for r in result["recorded"]}
    assert moved[normal["id"]]["reasons"] == ["aging"] and (moved[normal["id"]]["before"], moved[normal["id"]]["after"]) == (2, 1)
    assert moved[low["id"]]["reasons"] == ["aging"] and (moved[low["id"]]["before"], moved[low["id"]]["after"]) == (1, 2)
    rec = next(r for r in _records(ctx, "queue_reorder") if r["subject"] == f"request:{normal['id']}")
    assert rec["before"]["effective_priority"] == 10 + 10 and rec["after"]["effective_priority"] == 10 + 168
    assert rec["after"]["passed"] == [low["id"]]


# --------------------------------------------------------------------------- autoscalers


def _hpa(namespace: str, name: str, desired: int, current: int, at: str | None = None) -> dict:
    status = {"currentReplicas": current, "desiredReplicas": desired,
              "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
                              "message": "recommended size matches current size"}]}
    if at:
        status["lastScaleTime"] = at
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-chat"},
                     "minReplicas": 1, "maxReplicas": 8},
            "status": status}


def _allocation(ctx) -> AllocationRow:
    done = _running(ctx, 8, "normal")
    with ctx.sessions() as s:
        alloc = s.scalars(select(AllocationRow).where(AllocationRow.request_id == done["id"])).one()
    assert alloc.namespace and alloc.cluster
    return alloc


def test_an_hpa_scale_is_recorded_once_at_its_scale_time_with_its_conditions(ctx, kube):
    api, api_client = kube
    alloc = _allocation(ctx)
    ns, cluster = alloc.namespace, alloc.cluster
    api.put(_hpa(ns, "qwen", desired=2, current=2, at="2030-06-01T07:00:00Z"))
    api.put(_hpa("kube-system", "metrics", desired=1, current=1))  # not an allocation's: ignored
    source = LiveAutoscalers(lambda _cluster: api_client)
    org = load_org()

    def run(at: datetime) -> dict:
        return record_scale_events(sessions=ctx.sessions, source=source, clusters=[cluster], org=org, now=at)

    first = run(T0)
    assert (first["clusters"], first["baseline"], first["ignored"], first["recorded"]) == ({cluster: 2}, 1, 1, [])
    assert run(T0 + timedelta(minutes=1))["recorded"] == [] and _records(ctx, "scale_event") == []

    api.update("HorizontalPodAutoscaler", ns, "qwen", {"status": {
        "desiredReplicas": 4, "lastScaleTime": "2030-06-01T08:15:00Z",
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                        "message": "the HPA controller was able to update the target scale to 4"},
                       {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange",
                        "message": "the desired count is within the acceptable range"}]}})
    third = run(T0 + timedelta(minutes=2))
    assert [(r["before"], r["after"], r["reason"]) for r in third["recorded"]] == [(2, 4, "scale_up")]
    (rec,) = _records(ctx, "scale_event")
    assert rec["actor"] == "system: HPA qwen" and rec["automatic"]
    assert rec["subject"] == f"deployment:{ns}/qwen-chat"
    assert rec["at"] == datetime(2030, 6, 1, 8, 15, tzinfo=timezone.utc)
    assert (rec["before"]["replicas"], rec["after"]["replicas"]) == (2, 4)
    assert (rec["before"]["current_replicas"], rec["after"]["current_replicas"]) == (2, 2)
    assert rec["after"]["pool"] == alloc.pool_id and rec["after"]["cluster"] == cluster
    assert rec["reason"] == ("scale_up; AbleToScale=True (SucceededRescale), "
                             "ScalingLimited=False (DesiredWithinRange)")
    assert rec["after"]["conditions"][0]["message"].endswith("target scale to 4")

    # the pods catching up with the decision is not another scale
    api.update("HorizontalPodAutoscaler", ns, "qwen", {"status": {"currentReplicas": 4}})
    assert run(T0 + timedelta(minutes=3))["recorded"] == []
    assert len(_records(ctx, "scale_event")) == 1


def test_an_unreachable_cluster_records_nothing_and_the_scale_is_caught_on_the_next_run(ctx, kube):
    api, api_client = kube
    alloc = _allocation(ctx)
    ns, cluster = alloc.namespace, alloc.cluster
    api.put(_hpa(ns, "qwen", desired=4, current=4, at="2030-06-01T07:00:00Z"))
    source = LiveAutoscalers(lambda _cluster: api_client)
    org = load_org()
    record_scale_events(sessions=ctx.sessions, source=source, clusters=[cluster], org=org, now=T0)

    api.update("HorizontalPodAutoscaler", ns, "qwen", {"status": {"desiredReplicas": 1, "currentReplicas": 1,
                                                                  "lastScaleTime": "2030-06-01T09:00:00Z"}})
    api.inject("500", method="GET", path="horizontalpodautoscalers")
    failed = record_scale_events(sessions=ctx.sessions, source=source, clusters=[cluster], org=org,
                                 now=T0 + timedelta(minutes=1))
    assert failed["recorded"] == [] and failed["errors"][cluster]["key"] == "cluster.api_error"
    with ctx.sessions() as s:  # the last observation is kept, not forgotten
        assert s.scalar(select(AutoscalerObservationRow.desired_replicas)) == 4

    caught = record_scale_events(sessions=ctx.sessions, source=source, clusters=[cluster], org=org,
                                 now=T0 + timedelta(minutes=2))
    assert [(r["before"], r["after"], r["reason"]) for r in caught["recorded"]] == [(4, 1, "scale_down")]
    assert _records(ctx, "scale_event")[0]["at"] == datetime(2030, 6, 1, 9, tzinfo=timezone.utc)


def test_a_deleted_hpa_is_forgotten_and_a_new_one_of_that_name_starts_from_its_baseline(ctx, kube):
    api, api_client = kube
    alloc = _allocation(ctx)
    api.put(_hpa(alloc.namespace, "qwen", desired=3, current=3))
    source = LiveAutoscalers(lambda _cluster: api_client)
    org = load_org()
    record_scale_events(sessions=ctx.sessions, source=source, clusters=[alloc.cluster], org=org, now=T0)
    with api.lock:
        del api.store[("HorizontalPodAutoscaler", alloc.namespace, "qwen")]
    record_scale_events(sessions=ctx.sessions, source=source, clusters=[alloc.cluster], org=org, now=T0)
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AutoscalerObservationRow)) == 0
    api.put(_hpa(alloc.namespace, "qwen", desired=6, current=6))
    again = record_scale_events(sessions=ctx.sessions, source=source, clusters=[alloc.cluster], org=org, now=T0)
    assert again["baseline"] == 1 and again["recorded"] == []


# --------------------------------------------------------------------------- command line


def _cli(db_url: str, *args: str, backend: str = "plan") -> subprocess.CompletedProcess:
    env = {**os.environ, "COMPUTELOOP_DATABASE_URL": db_url, "COMPUTELOOP_CLUSTER_BACKEND": backend}
    return subprocess.run([sys.executable, "-m", "core", "jobs", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_jobs_run_from_the_command_line_and_plan_mode_makes_up_no_scale_events(ctx, db_url):
    _crowded_pool(ctx)
    _queued(ctx, "normal", T0)
    before = _count(ctx)
    plan = _cli(db_url, "autoscaler-events", "--json")
    assert plan.returncode == 0, plan.stderr
    out = json.loads(plan.stdout)
    assert out["live"] is False and out["recorded"] == [] and "plan" in out["message"]
    assert "没有实际集群" in _cli(db_url, "autoscaler-events", "--lang", "zh-CN").stdout
    assert _count(ctx) == before

    snap = _cli(db_url, "queue-snapshot", "--json")
    assert snap.returncode == 0, snap.stderr
    assert json.loads(snap.stdout)["baseline"] is True and json.loads(snap.stdout)["waiting"] == 1

    daily = _cli(db_url, "daily", "--json")
    assert daily.returncode == 0, daily.stderr
    result = json.loads(daily.stdout)
    assert result["queue"]["waiting"] == 1 and result["queue"]["recorded"] == [] and not result["queue"]["baseline"]
    assert "notices" in result and result["errors"] == {}
    assert _count(ctx) == before


def test_the_new_commands_have_help():
    for command in ("queue-snapshot", "autoscaler-events", "daily"):
        out = subprocess.run([sys.executable, "-m", "core", "jobs", command, "--help"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "--json" in out.stdout, out.stderr
