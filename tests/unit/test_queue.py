"""The queue: order with aging, ETA from expected releases, blocked reasons (incl. fragmentation)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.adjust import queue as q
from core.adjust import simulation as sim

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def _w(rid, gpus, priority="normal", hours=0.0, pool="hq-ft", days=5):
    return q.Waiting(rid, f"CR-2026-{rid:06d}", pool, gpus, priority, NOW - timedelta(hours=hours), days)


def test_the_policy_file_documents_when_a_normal_request_overtakes_a_high_one():
    policy = q.load_policy()
    assert policy.overtake_hours("normal", "high") == pytest.approx(20.0)
    assert policy.overtake_hours("low", "normal") == pytest.approx(10.0)


@pytest.mark.parametrize(("waited", "first"), [(19.0, 2), (21.0, 1)])
def test_a_small_old_job_overtakes_a_big_new_high_one_only_after_the_documented_hours(waited, first):
    policy = q.load_policy()
    small_old = _w(1, 2, "normal", hours=waited)
    big_new = _w(2, 64, "high", hours=0)
    entries = q.order([big_new, small_old], NOW, policy)
    assert entries[0].request_id == first
    assert [e.position for e in entries] == [1, 2]


def test_effective_priority_is_weight_plus_capped_aging():
    policy = q.QueuePolicy({"low": 0, "normal": 10, "high": 30, "critical": 100}, 1.0, 168)
    assert q.effective_priority("normal", 5, policy) == 15
    assert q.effective_priority("low", 500, policy) == 168


def test_equal_priority_puts_fewer_gpus_first():
    policy = q.load_policy()
    entries = q.order([_w(1, 16, hours=1), _w(2, 2, hours=1)], NOW, policy)
    assert [e.request_id for e in entries] == [2, 1]


def test_eta_comes_from_the_release_that_frees_enough_gpus():
    policy = q.load_policy()
    waiting = [_w(1, 8, "high", hours=1)]
    releases = [q.Release("hq-ft", 4, NOW + timedelta(days=2), "CR-2026-000010"),
                q.Release("hq-ft", 8, NOW + timedelta(days=5), "CR-2026-000012")]
    entries = q.plan(q.order(waiting, NOW, policy), releases, {"hq-ft": 0}, {}, {"hq-ft": 8}, NOW, waiting)
    e = entries[0]
    assert e.eta == NOW + timedelta(days=5)
    assert e.blocked == "capacity"
    assert e.hint["key"] == "adjq.hint.release"
    assert e.hint["params"]["number"] == "CR-2026-000012"
    assert e.hint["params"]["date"] == (NOW + timedelta(days=5)).date().isoformat()


def test_a_later_small_request_backfills_into_an_earlier_release():
    policy = q.load_policy()
    waiting = [_w(1, 8, "high", hours=1), _w(2, 4, "normal", hours=1)]
    releases = [q.Release("hq-ft", 4, NOW + timedelta(days=2), "CR-A"),
                q.Release("hq-ft", 8, NOW + timedelta(days=5), "CR-B")]
    entries = q.plan(q.order(waiting, NOW, policy), releases, {"hq-ft": 0}, {}, {"hq-ft": 8}, NOW, waiting)
    by_id = {e.request_id: e for e in entries}
    assert by_id[1].eta == NOW + timedelta(days=5)
    assert by_id[2].eta == NOW + timedelta(days=2)


def test_a_request_behind_others_waits_for_them_even_when_the_pool_has_the_gpus():
    policy = q.load_policy()
    waiting = [_w(1, 8, "high", hours=1), _w(2, 8, "normal", hours=1)]
    releases = [q.Release("hq-ft", 8, NOW + timedelta(days=3), "CR-C")]
    entries = q.plan(q.order(waiting, NOW, policy), releases, {"hq-ft": 8}, {"hq-ft": [8]}, {"hq-ft": 8}, NOW, waiting)
    by_id = {e.request_id: e for e in entries}
    assert by_id[1].blocked == "none" and by_id[1].eta == NOW
    assert by_id[2].blocked == "ahead" and by_id[2].eta == NOW + timedelta(days=3)


def test_enough_free_gpus_scattered_over_nodes_is_reported_as_fragmentation():
    policy = q.load_policy()
    waiting = [_w(1, 8, hours=1), _w(2, 2, hours=1)]
    entries = q.plan(q.order(waiting, NOW, policy), [], {"hq-ft": 10}, {"hq-ft": [2, 2, 2, 2, 2]}, {"hq-ft": 8}, NOW,
                     waiting)
    by_id = {e.request_id: e for e in entries}
    assert by_id[2].blocked == "none"
    assert by_id[1].blocked == "fragmentation"
    assert by_id[1].hint["params"] == {"free": 8, "gpus": 8, "nodes": 1, "largest": 2}


def test_without_any_release_the_request_is_blocked_with_no_eta():
    policy = q.load_policy()
    waiting = [_w(1, 16, hours=1)]
    entries = q.plan(q.order(waiting, NOW, policy), [], {"hq-ft": 4}, {}, {"hq-ft": 8}, NOW, waiting)
    assert entries[0].blocked == "no_release" and entries[0].eta is None


def test_fits_needs_the_gpus_on_few_enough_nodes():
    assert q.fits(8, [8, 0], 8)
    assert not q.fits(8, [4, 4], 8)
    assert q.fits(16, [8, 8, 3], 8)
    assert not q.fits(16, [8, 7, 7], 8)


def test_released_work_leaves_holes_that_defragmentation_regroups():
    t0 = NOW - timedelta(days=10)
    allocs = [sim.Placed(1, "A", 4, t0), sim.Placed(2, "B", 4, t0 + timedelta(hours=1)),
              sim.Placed(3, "C", 4, t0 + timedelta(hours=2)), sim.Placed(4, "D", 4, t0 + timedelta(hours=3)),
              sim.Placed(5, "E", 8, t0 + timedelta(hours=4))]
    # B and C released: nodes 0 and 1 each keep one 4-GPU job
    allocs[1] = sim.Placed(2, "B", 4, t0 + timedelta(hours=1), released_at=t0 + timedelta(days=1))
    allocs[2] = sim.Placed(3, "C", 4, t0 + timedelta(hours=2), released_at=t0 + timedelta(days=1))
    sizes = sim.node_sizes(24, 8)
    waiting = [q.Waiting(9, "W", "p", 8, "normal", NOW)]
    before, _ = sim.layout(sizes, allocs, 8)
    assert before == [4, 4, 0]
    result = sim.simulate_defragmentation("p", sizes, 8, allocs, waiting)
    assert result["before"]["whole_free_nodes"] == 0
    assert sorted(result["after"]["free_per_node"]) == [0, 0, 8]
    assert result["fits_before"] == [] and result["fits_after"] == ["W"]
    assert len(result["moves"]) >= 1


def test_preempting_an_allocation_frees_its_node_for_a_waiting_request():
    t0 = NOW - timedelta(days=3)
    allocs = [sim.Placed(1, "A", 8, t0), sim.Placed(2, "B", 8, t0 + timedelta(hours=1))]
    sizes = sim.node_sizes(16, 8)
    waiting = [q.Waiting(9, "W", "p", 8, "critical", NOW)]
    result = sim.simulate_preemption("p", sizes, 8, allocs, [2], waiting)
    assert result["before"]["free_per_node"] == [0, 0]
    assert result["after"]["free_per_node"] == [0, 8]
    assert result["freed"] == 8
    assert result["fits_before"] == [] and result["fits_after"] == ["W"]
