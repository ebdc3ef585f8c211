"""Automatic adjustment records, the pure parts: which queue moves are recorded and why, the stored
reason format, the pool of a record, and decoding HorizontalPodAutoscalers."""

from __future__ import annotations

from datetime import datetime, timezone

from core.adjust.persistence import pool_of
from core.adjust.recorder import Place, reason_parts, reason_text, reorders
from core.cluster.autoscalers import decode_hpas


def queue(*entries: tuple[int, str, float, str]) -> list[Place]:
    """Places in the given order (request id, pool, effective priority, priority); positions follow."""
    out, per_pool = [], {}
    for i, (rid, pool, eff, prio) in enumerate(entries, start=1):
        per_pool[pool] = per_pool.get(pool, 0) + 1
        out.append(Place(rid, pool, i, per_pool[pool], eff, prio, f"R{rid}"))
    return out


def before(places: list[Place]) -> dict[int, Place]:
    return {p.request_id: p for p in places}


def test_the_same_queue_again_records_nothing():
    q = queue((1, "a", 30, "high"), (2, "a", 10, "normal"), (3, "b", 5, "low"))
    assert reorders(before(q), q) == []


def test_a_higher_priority_arrival_pushes_down_only_those_it_overtakes():
    old = queue((1, "a", 30, "high"), (2, "a", 10, "normal"), (3, "a", 2, "low"))
    new = queue((1, "a", 31, "high"), (9, "a", 30, "high"), (2, "a", 11, "normal"), (3, "a", 3, "low"))
    moved = {r.after.request_id: r for r in reorders(before(old), new)}
    assert set(moved) == {2, 3}  # request 1 stays first; the newcomer itself has no "before"
    assert moved[2].reasons == ("arrival",) and moved[2].arrived == (9,)
    assert (moved[2].before.pool_position, moved[2].after.pool_position) == (2, 3)
    assert (moved[2].before.effective, moved[2].after.effective) == (10, 11)


def test_an_arrival_in_another_pool_moves_nobody_in_this_pool():
    old = queue((1, "a", 30, "high"), (2, "a", 10, "normal"))
    new = queue((9, "b", 100, "critical"), (1, "a", 30, "high"), (2, "a", 10, "normal"))
    assert reorders(before(old), new) == []  # overall positions moved, places in pool a did not


def test_requests_ahead_leaving_the_queue_is_a_release():
    old = queue((1, "a", 30, "high"), (2, "a", 20, "normal"), (3, "a", 10, "normal"))
    new = queue((3, "a", 10, "normal"))
    (r,) = reorders(before(old), new)
    assert r.reasons == ("release",) and r.left == (1, 2)
    assert (r.before.pool_position, r.after.pool_position) == (3, 1)


def test_a_swap_between_queued_requests_is_aging_for_both():
    old = queue((1, "a", 178, "high"), (2, "a", 177.5, "normal"))
    new = queue((2, "a", 179.5, "normal"), (1, "a", 178, "high"))  # 1 hit the aging cap, 2 kept aging
    moved = {r.after.request_id: r for r in reorders(before(old), new)}
    assert moved[2].reasons == ("aging",) and moved[2].passed == (1,)
    assert moved[1].reasons == ("aging",) and moved[1].overtaken_by == (2,)


def test_an_edited_priority_is_named_instead_of_aging():
    old = queue((1, "a", 30, "high"), (2, "a", 10, "normal"))
    new = queue((2, "a", 100, "critical"), (1, "a", 30, "high"))
    assert {r.reasons for r in reorders(before(old), new)} == {("priority_change",)}


def test_several_causes_are_all_given_in_a_fixed_order():
    old = queue((1, "a", 30, "high"), (2, "a", 20, "normal"), (3, "a", 10, "normal"))
    new = queue((9, "a", 50, "high"), (8, "a", 40, "high"), (3, "a", 10, "normal"))  # 1 and 2 granted
    moved = {r.after.request_id: r for r in reorders(before(old), new)}
    assert set(moved) == set()  # 3 had two ahead and still has two ahead: its place did not change
    newer = queue((9, "a", 50, "high"), (3, "a", 10, "normal"))
    (r,) = reorders(before(old), newer)
    assert r.reasons == ("arrival", "release") and r.arrived == (9,) and r.left == (1, 2)


def test_moving_to_another_pool_is_recorded_as_such():
    old = queue((1, "a", 30, "high"), (2, "a", 10, "normal"))
    new = queue((1, "a", 30, "high"), (5, "b", 40, "high"), (2, "b", 10, "normal"))
    (r,) = reorders(before(old), new)
    assert r.reasons == ("pool_change",) and (r.before.pool, r.after.pool) == ("a", "b")


def test_system_reasons_round_trip_and_free_text_is_left_alone():
    assert reason_parts(reason_text(["arrival", "release"])) == (("arrival", "release"), "")
    assert reason_parts(reason_text(["scale_up"], "AbleToScale=True (SucceededRescale)")) == (
        ("scale_up",), "AbleToScale=True (SucceededRescale)")
    assert reason_parts("整理碎片") is None
    assert reason_parts("util_high") is None
    assert reason_parts("emergency:G-2026-001") is None
    assert reason_parts("") is None and reason_parts(None) is None


def test_the_pool_of_a_record_comes_from_its_subject_or_its_state():
    assert pool_of({"subject": "pool:hq-ft", "before": None, "after": None}) == "hq-ft"
    assert pool_of({"subject": "request:7", "before": {"pool": "hq-sci"}, "after": {"pool": "hq-sci"}}) == "hq-sci"
    assert pool_of({"subject": "request:7", "before": {"pool": "a"}, "after": {"pool": "b"}}) == "b"
    assert pool_of({"subject": "deployment:cs/qwen", "before": {"replicas": 2}, "after": {"replicas": 3}}) is None


HPA_LIST = {"kind": "HorizontalPodAutoscalerList", "items": [
    {"metadata": {"name": "qwen", "namespace": "cs-infer"},
     "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "qwen-chat", "apiVersion": "apps/v1"},
              "minReplicas": 2, "maxReplicas": 8},
     "status": {"currentReplicas": 3, "desiredReplicas": 4, "lastScaleTime": "2030-06-01T08:15:00Z",
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                                "message": "the HPA controller was able to update the target scale to 4"}]}},
    {"metadata": {"name": "fresh", "namespace": "a-ns"},
     "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "fresh"}, "maxReplicas": 3},
     "status": {}},
]}


def test_hpas_are_decoded_with_their_decision_and_an_unreconciled_one_has_no_replicas():
    fresh, qwen = decode_hpas(HPA_LIST, "hq-beijing-2")
    assert (qwen.cluster, qwen.namespace, qwen.name, qwen.target_kind, qwen.target_name) == (
        "hq-beijing-2", "cs-infer", "qwen", "Deployment", "qwen-chat")
    assert (qwen.min_replicas, qwen.max_replicas, qwen.current_replicas, qwen.desired_replicas) == (2, 8, 3, 4)
    assert qwen.last_scale_time == datetime(2030, 6, 1, 8, 15, tzinfo=timezone.utc)
    assert qwen.conditions[0]["reason"] == "SucceededRescale"
    assert (fresh.min_replicas, fresh.current_replicas, fresh.desired_replicas, fresh.last_scale_time) == (
        None, None, None, None)
