"""The green channel's preemption chooser, a pure function over allocation records."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.lifecycle.green_channel import Candidate, choose_preemptions, load_settings

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def c(aid: int, gpus: int, priority: str = "low", started_days: float = 0) -> Candidate:
    """Allocation ``aid`` of ``gpus`` GPUs started ``started_days`` after T0 (larger = more recent)."""
    return Candidate(allocation_id=aid, request_id=100 + aid, gpus=gpus, priority=priority,
                     started_at=T0 + timedelta(days=started_days), owner=f"u{aid}")


def ids(choice) -> list[int]:
    return sorted(x.allocation_id for x in choice.chosen)


def test_nothing_needed_preempts_nothing():
    choice = choose_preemptions([c(1, 8)], 0)
    assert choice.enough and choice.chosen == () and choice.freed == 0


def test_low_priority_is_taken_before_normal_even_if_normal_would_need_fewer():
    cands = [c(1, 8, "normal"), c(2, 4, "low"), c(3, 4, "low")]
    choice = choose_preemptions(cands, 8)
    assert choice.enough and ids(choice) == [2, 3]


def test_normal_is_used_only_when_low_is_not_enough_and_as_little_as_possible():
    cands = [c(1, 4, "low"), c(2, 8, "normal"), c(3, 2, "normal", started_days=5), c(4, 8, "normal", started_days=9)]
    choice = choose_preemptions(cands, 6)
    # low alone frees 4 < 6, so one normal allocation is needed either way (low + the 2-GPU
    # normal, or an 8-GPU normal alone); then the fewest allocations: a single 8-GPU normal
    assert choice.enough and len(choice.chosen) == 1 and choice.chosen[0].priority == "normal"
    assert ids(choice) == [4]  # of the two 8-GPU normals, the most recently started


def test_high_and_critical_are_never_preempted():
    cands = [c(1, 16, "high"), c(2, 16, "critical"), c(3, 2, "low")]
    choice = choose_preemptions(cands, 4)
    assert not choice.enough and choice.chosen == () and choice.available == 2
    # even a custom list naming high cannot make them preemptible
    assert not choose_preemptions(cands, 4, preemptible=("low", "high")).enough


def test_fewest_allocations_win():
    cands = [c(1, 2, started_days=9), c(2, 2, started_days=9), c(3, 2, started_days=9), c(4, 8, started_days=1)]
    assert ids(choose_preemptions(cands, 6)) == [4]


def test_among_equally_few_the_most_recently_started_lose_least_work():
    cands = [c(1, 8, started_days=1), c(2, 8, started_days=7), c(3, 8, started_days=3)]
    assert ids(choose_preemptions(cands, 8)) == [2]
    assert ids(choose_preemptions(cands, 16)) == [2, 3]


def test_then_the_smallest_overshoot():
    cands = [c(1, 16, started_days=2), c(2, 8, started_days=2), c(3, 12, started_days=2)]
    choice = choose_preemptions(cands, 7)
    assert ids(choice) == [2] and choice.overshoot == 1 and choice.freed == 8


def test_not_enough_even_with_preemption_says_so_and_chooses_nothing():
    cands = [c(1, 4), c(2, 4, "normal"), c(3, 32, "high")]
    choice = choose_preemptions(cands, 9)
    assert not choice.enough and choice.chosen == () and choice.available == 8 and choice.needed == 9
    d = choice.as_dict()
    assert d["enough"] is False and d["preempt"] == [] and d["available"] == 8


def test_large_search_spaces_fall_back_to_a_greedy_choice_that_still_covers_the_need():
    cands = [c(i, 1 + i % 3, started_days=i) for i in range(60)]
    choice = choose_preemptions(cands, 20, max_combinations=1000)
    assert choice.enough and not choice.exact and choice.freed >= 20
    exact = choose_preemptions(cands[:12], 6)
    assert exact.exact and len(exact.chosen) == 2 and exact.freed >= 6


def test_the_plan_is_json_ready_and_most_recent_first():
    choice = choose_preemptions([c(1, 4, started_days=1), c(2, 4, started_days=2)], 8)
    d = choice.as_dict()
    assert [p["allocation_id"] for p in d["preempt"]] == [2, 1]
    assert d["freed"] == 8 and d["overshoot"] == 0 and d["exact"] is True


def test_the_settings_never_allow_preempting_high_priorities():
    s = load_settings()
    assert set(s.preemptible_priorities) == {"low", "normal"}
    assert set(s.categories) == {"grid_safety_incident", "national_strategic_task", "production_model_outage"}
    assert s.approver_role == "hq_ops" and s.justification_min_chars == 20


@pytest.mark.parametrize("needed", [1, 3, 5, 11])
def test_the_chosen_set_always_covers_the_need_when_enough(needed):
    cands = [c(1, 2, started_days=1), c(2, 3, "normal", started_days=2), c(3, 4, started_days=3),
             c(4, 2, "normal", started_days=4)]
    choice = choose_preemptions(cands, needed)
    assert choice.enough and choice.freed >= needed
