"""The triage, candidate and extension state machines: every move the ONE table allows passes,
every move it does not is refused — both lists generated from the table itself."""

from __future__ import annotations

import pytest

from core.reclaim.persistence import WarningRow
from core.reclaim.states import (
    CANDIDATE, CANDIDATE_STATUSES, EXTENSION, TRIAGE, TRIAGE_STATUSES, InvalidMove, check_move, is_terminal,
)

TABLES = {"triage": TRIAGE, "candidate": CANDIDATE, "extension": EXTENSION}


def _allowed():
    return [(name, a, b) for name, table in TABLES.items() for a in table for b in sorted(table[a])]


def _refused():
    # every ordered pair of known statuses the table does not list, plus self-loops and unknowns
    out = [(name, a, b) for name, table in TABLES.items() for a in table for b in table if b not in table[a]]
    out += [(name, "nonsense", next(iter(table))) for name, table in TABLES.items()]
    out += [(name, next(iter(table)), "nonsense") for name, table in TABLES.items()]
    return out


@pytest.mark.parametrize("name,before,to", _allowed(), ids=lambda v: str(v))
def test_every_move_the_table_allows_passes(name, before, to):
    assert check_move(TABLES[name], before, to) == to


@pytest.mark.parametrize("name,before,to", _refused(), ids=lambda v: str(v))
def test_every_move_the_table_does_not_list_is_refused(name, before, to):
    with pytest.raises(InvalidMove) as exc:
        check_move(TABLES[name], before, to)
    assert (exc.value.from_status, exc.value.to_status) == (before, to)
    assert exc.value.key == "reclaim.invalid_transition"


def test_the_triage_is_new_acknowledged_contacted_then_resolved_or_accepted_risk():
    # the workflow, spelled out by hand against the table
    assert TRIAGE_STATUSES == ("new", "acknowledged", "owner_contacted", "resolved", "accepted_risk")
    assert _allowed_of(TRIAGE) == {("new", "acknowledged"), ("acknowledged", "owner_contacted"),
                                   ("owner_contacted", "resolved"), ("owner_contacted", "accepted_risk")}


def test_a_warning_cannot_skip_contacting_the_owner_nor_be_reopened():
    for before, to in [("new", "resolved"), ("acknowledged", "accepted_risk"), ("resolved", "new"),
                       ("accepted_risk", "owner_contacted")]:
        with pytest.raises(InvalidMove):
            check_move(TRIAGE, before, to)


def test_any_open_candidate_may_be_dismissed_and_only_an_agreed_plan_is_executed():
    open_ = [s for s in CANDIDATE_STATUSES if not is_terminal(CANDIDATE, s)]
    assert open_ == ["detected", "under_review", "owner_contacted", "plan_agreed"]
    assert all("dismissed" in CANDIDATE[s] for s in open_)
    assert [s for s in CANDIDATE if "executed" in CANDIDATE[s]] == ["plan_agreed"]


def test_terminal_statuses_are_exactly_those_without_successors():
    assert [s for s in TRIAGE if is_terminal(TRIAGE, s)] == ["resolved", "accepted_risk"]
    assert [s for s in CANDIDATE if is_terminal(CANDIDATE, s)] == ["executed", "dismissed"]
    assert [s for s in EXTENSION if is_terminal(EXTENSION, s)] == ["approved", "refused", "withdrawn"]
    assert is_terminal(TRIAGE, "nonsense")


def test_every_status_reached_by_a_move_is_itself_a_status_of_the_table():
    for table in TABLES.values():
        assert set().union(*table.values()) <= set(table)


def test_every_status_is_reachable_from_the_first():
    for table in TABLES.values():
        first = next(iter(table))
        seen, todo = {first}, [first]
        while todo:
            for nxt in table[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen == set(table)


def test_each_triage_status_has_its_own_timestamp_column():
    assert all(hasattr(WarningRow, f"{s}_at") for s in TRIAGE_STATUSES)


def _allowed_of(table):
    return {(a, b) for a in table for b in table[a]}
