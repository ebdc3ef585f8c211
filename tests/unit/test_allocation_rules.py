"""The allocation's one transition table, what counts against a pool on which day, and dates at the
calendar's end (issue 11: "allocation status follows one transition table"; a stored 9999-12-30
overflowed the queue)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from core.adjust import queue as q
from core.config import PROJECT_ROOT
from core.lifecycle import allocations as al
from tests.support import clock

TODAY = clock.today()


def test_the_table_allows_exactly_the_lifecycle_of_an_allocation():
    walk = [None, "scheduled", "approved", "provisioning", "failed", "provisioning", "active", "released", "approved"]
    alloc = SimpleNamespace(status=None)
    for before, to in zip(walk, walk[1:]):
        assert al.move(alloc, to) == before and alloc.status == to


@pytest.mark.parametrize(("before", "to"), [
    ("active", "scheduled"), ("active", "approved"), ("released", "active"), ("scheduled", "active"),
    ("scheduled", "provisioning"), ("provisioning", "released"), (None, "active"), ("active", "nonsense"),
])
def test_every_other_move_is_refused_and_the_status_stays(before, to):
    alloc = SimpleNamespace(status=before)
    with pytest.raises(al.InvalidAllocationTransition) as err:
        al.move(alloc, to)
    assert alloc.status == before and err.value.key == "rules.allocation_invalid_transition"


def test_a_grant_is_scheduled_only_while_its_start_date_is_ahead():
    assert al.status_on_grant(TODAY + timedelta(days=1), TODAY) == "scheduled"
    assert al.status_on_grant(TODAY, TODAY) == "approved"
    assert al.status_on_grant(None, TODAY) == "approved"


_ASSIGNMENT = re.compile(r"\b(alloc\w*|previous|a|victim_alloc)\.status\s*=[^=]|AllocationRow\([^)]*\bstatus=",
                         re.S)


def test_no_module_sets_an_allocation_status_but_through_the_table():
    """Every path (provisioning, services, green channel, reclaim) moves an allocation with
    :func:`core.lifecycle.allocations.move`; a plain assignment anywhere else is a bypass."""
    offenders = []
    for path in sorted((PROJECT_ROOT / "core").rglob("*.py")):
        if path.name == "allocations.py":
            continue
        offenders += [f"{path.relative_to(PROJECT_ROOT)}: {m.group(0)[:60]!r}"
                      for m in _ASSIGNMENT.finditer(path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_a_scheduled_booking_counts_from_its_start_date_and_a_held_one_until_its_end():
    later = al.booking("p", 4, "scheduled", TODAY + timedelta(days=10), TODAY + timedelta(days=17), TODAY)
    held = al.booking("p", 8, "active", TODAY - timedelta(days=2), TODAY + timedelta(days=5), TODAY)
    overdue = al.booking("p", 2, "active", TODAY - timedelta(days=9), TODAY - timedelta(days=2), TODAY)
    assert al.booking("p", 8, "released", TODAY, TODAY, TODAY) is None
    books = [later, held, overdue]
    assert al.load_on(books, "p", TODAY) == 10  # the overdue one still holds today, the scheduled not yet
    assert al.load_on(books, "p", TODAY + timedelta(days=1)) == 8
    assert al.load_on(books, "p", TODAY + timedelta(days=10)) == 4
    assert al.peak(books, "p", TODAY + timedelta(days=1), TODAY + timedelta(days=20)) == 8
    assert al.peak(books, "p", TODAY + timedelta(days=6), TODAY + timedelta(days=20)) == 4
    assert al.free_in_window({"p": 16}, books, TODAY, TODAY + timedelta(days=11)) == {"p": 6}


def test_dates_at_the_calendar_end_are_held_there():
    assert al.plus_days(date.max - timedelta(days=1), 7) == date.max
    end = datetime.max.replace(tzinfo=timezone.utc)
    assert al.plus(end - timedelta(days=1), timedelta(days=30)) == end
    assert al.end_of(date.max, 5) == date.max


def test_the_queue_plans_behind_a_release_at_the_calendar_end_without_overflowing():
    now = clock.now()
    far = datetime.combine(date.max - timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    waiting = [q.Waiting(1, "CR-1", "p", 8, "normal", now - timedelta(hours=1), duration_days=7)]
    entries = q.plan(q.order(waiting, now, q.load_policy()), [q.Release("p", 8, far, "CR-0")], {"p": 0}, {}, {"p": 8},
                     now, waiting)
    assert entries[0].eta == far and entries[0].blocked == "capacity"


def test_the_queue_counts_the_gpus_a_scheduled_allocation_takes_at_its_start():
    now = clock.now()
    start = now + timedelta(days=3)
    waiting = [q.Waiting(1, "CR-1", "p", 8, "normal", now, duration_days=7)]
    booked = [q.Release("p", -8, start, "CR-0", "scheduled"), q.Release("p", 8, start + timedelta(days=5), "CR-0")]
    [entry] = q.plan(q.order(waiting, now, q.load_policy()), booked, {"p": 8}, {}, {"p": 8}, now, waiting)
    # eight GPUs free now, but not for seven days: it starts when the booking ends
    assert entry.eta == start + timedelta(days=5)
