"""The lifecycle state machine: every allowed move works, every other move is refused."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from core.i18n import translate
from core.lifecycle.states import (
    STATUSES, TERMINAL, TRANSITIONS, InvalidTransition, RequestState, Status, timestamp_field, transition,
)

AT = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
ALLOWED = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets)]
REFUSED = [(a, b) for a in STATUSES for b in STATUSES if b not in TRANSITIONS[a]]
REFUSED_SAMPLE = random.Random(4).sample(REFUSED, 40) + [("draft", "approved"), ("rejected", "approved"),
                                                          ("active", "approved"), ("cancelled", "submitted")]


def test_the_table_covers_every_status_and_names_only_known_ones():
    assert set(TRANSITIONS) == set(STATUSES) == {s.value for s in Status}
    assert all(t <= set(STATUSES) for t in TRANSITIONS.values())
    assert TERMINAL == {"rejected", "reclaimed", "returned", "cancelled"}


@pytest.mark.parametrize(("before", "after"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_every_allowed_transition_moves_and_stamps_its_time(before, after):
    entity = RequestState(before, {})
    event = transition(entity, after, actor="li.na", reason="test", at=AT)
    assert entity.status == after
    assert entity.timestamps == {after: AT}
    assert (event.before, event.after, event.actor, event.reason, event.at) == (before, after, "li.na", "test", AT)


@pytest.mark.parametrize(("before", "after"), REFUSED_SAMPLE, ids=[f"{a}->{b}" for a, b in REFUSED_SAMPLE])
def test_a_move_outside_the_table_is_refused_and_changes_nothing(before, after):
    entity = RequestState(before, {})
    with pytest.raises(InvalidTransition) as err:
        transition(entity, after, actor="li.na", reason="test", at=AT)
    assert entity.status == before and entity.timestamps == {}
    assert err.value.key == "lifecycle.invalid_transition"
    assert (err.value.from_status, err.value.to_status) == (before, after)
    assert err.value.params["from_status"].key == f"status.{before}"  # named in the reader's language
    from core.i18n import translate

    assert translate(f"status.{before}", "en") in str(err.value) and translate(f"status.{after}", "en") in str(err.value)


def test_unknown_target_status_is_refused():
    with pytest.raises(InvalidTransition):
        transition(RequestState("draft", {}), "teleported", actor="x", reason="", at=AT)


def test_terminal_statuses_allow_nothing_and_every_other_status_can_leave():
    for status in STATUSES:
        assert (not TRANSITIONS[status]) == (status in TERMINAL)


def test_every_status_is_reachable_from_draft():
    seen, frontier = {"draft"}, ["draft"]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(STATUSES)


def test_one_timestamp_field_per_status_and_a_label_in_both_languages():
    assert len({timestamp_field(s) for s in STATUSES}) == len(STATUSES)
    for s in STATUSES:
        assert translate(f"status.{s}", "en") and translate(f"status.{s}", "zh-CN")


def test_a_full_life_keeps_one_timestamp_per_state():
    entity = RequestState("draft", {})
    path = ["submitted", "in_review", "approved", "provisioning", "active", "expiring", "extended", "expiring",
            "returned"]
    for i, to in enumerate(path):
        transition(entity, to, actor="x", reason="", at=AT.replace(minute=i))
    assert entity.status == "returned"
    assert entity.timestamps["expiring"] == AT.replace(minute=7)  # the latest entry wins


@pytest.mark.parametrize("running", ["active", "expiring", "extended"])
def test_running_work_can_be_preempted_back_to_the_queue_and_taken_up_again(running):
    entity = RequestState(running, {})
    event = transition(entity, "queued", actor="li.na", reason="preempted", at=AT)
    assert (event.before, event.after, event.reason) == (running, "queued", "preempted")
    transition(entity, "in_review", actor="li.na", reason="claimed", at=AT)
    assert entity.status == "in_review"
