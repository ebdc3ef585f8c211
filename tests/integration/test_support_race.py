"""Support approvals drawing on a donor pool can never over-commit it (issue 11, secure by default).

An approval checks the donor's headroom and moves quota out of it in one step under the donor's
capacity-row lock — the lock grants on that pool take — so several approvals naming the same donor,
or an approval racing grants on the donor, take turns. On SQLite and PostgreSQL.

To make the race reproducible, each approval pauses (a hook on the engine) after its headroom
check, just before it writes its decision: without the lock every competitor would read the
donor's old headroom during that pause and the donor would end over-committed.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, func, select

from core.adjust import support
from core.adjust.support_persistence import SupportRequestRow
from core.cluster.backends import PlanBackend
from core.db.session import unit_of_work
from core.errors import InputError
from core.identity import Identity
from core.lifecycle import capacity as cap
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow
from core.org import load_org
from tests.support import clock
from tests.support.forms import MEDIUM
from tests.support.people import APPLICANT, DEPT_HEAD, HQ_OPS, PROV_OPS
from tests.support.threads import at_once

DONOR = "hq-sci"  # 64 A800-80GB GPUs at HQ; the receiver is Jiangsu's js-pool (A800-80GB)
PAUSE = 0.25  # seconds an approval waits between its headroom check and writing its decision


def _hq_ops(i: int) -> Identity:
    return Identity(f"hq{i}", f"运营{i}", f"hq{i}@example.com", "hq_ops")


def _raise(ctx, gpus: int) -> int:
    return support.raise_request(sessions=ctx.sessions, actor=PROV_OPS, pool="js-pool", gpus=gpus,
                                 starts_on=clock.day(0), ends_on=clock.day(5), reason="inference pods pending",
                                 namespace="js-chat")["id"]


def _approve(ctx, actor: Identity, request_id: int) -> dict:
    return support.approve(sessions=ctx.sessions, actor=actor, request_id=request_id, donor_pool=DONOR,
                           reason="race", backend=PlanBackend())


@pytest.fixture
def paused_decisions(ctx):
    """Every support decision pauses just before its UPDATE of the request (after the headroom check)."""
    def pause(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ARG001
        if statement.lstrip().upper().startswith("UPDATE") and "support_requests" in statement:
            time.sleep(PAUSE)

    event.listen(ctx.engine, "before_cursor_execute", pause)
    yield ctx
    event.remove(ctx.engine, "before_cursor_execute", pause)


def _donor_state(ctx) -> tuple[int, int, int]:
    """GPUs the donor holds in allocations, GPUs it lends to approved or running transfers, and its
    free figure over the transfers' window (negative: over-committed)."""
    with unit_of_work(ctx.sessions) as s:
        held = s.scalar(select(func.coalesce(func.sum(AllocationRow.gpus), 0)).where(
            AllocationRow.pool_id == DONOR, AllocationRow.status != "released"))
        lent = s.scalar(select(func.coalesce(func.sum(SupportRequestRow.gpus), 0)).where(
            SupportRequestRow.donor_pool_id == DONOR, SupportRequestRow.status.in_(["approved", "active"])))
        free = cap.free_by_pool(s, load_org(), start=clock.day(0), end=clock.day(5))[DONOR]
    return int(held), int(lent), free


def test_approvals_naming_the_same_donor_take_turns_and_the_losers_hear_what_is_left(paused_decisions):
    ctx = paused_decisions
    size, threads, gpus = load_org().pools[DONOR].gpus, 6, 24
    ids = [_raise(ctx, gpus) for _ in range(threads)]
    results = at_once(threads, lambda i: _approve(ctx, _hq_ops(i), ids[i])["status"])

    assert len(results) == threads
    winners = [i for i, r in results.items() if r == "active"]
    losers = [r for r in results.values() if r != "active"]
    assert len(winners) == size // gpus == 2
    left = size - len(winners) * gpus  # 16
    assert all(isinstance(r, InputError) and r.key == "support.donor_short" and r.field == "donor_pool"
               for r in losers), losers
    assert [(r.params["free"], r.params["gpus"]) for r in losers] == [(left, gpus)] * (threads - len(winners))
    assert _donor_state(ctx) == (0, len(winners) * gpus, left)
    with unit_of_work(ctx.sessions) as s:  # the losers' requests are untouched: still open, no donor
        rows = {r.id: (r.status, r.donor_pool_id) for r in s.scalars(select(SupportRequestRow))}
    assert sorted(rows.values()) == sorted([("active", DONOR)] * len(winners) + [("open", None)] * len(losers))
    assert all(rows[ids[i]] == ("active", DONOR) for i in winners)


def test_an_approval_racing_grants_on_the_donor_never_over_commits_it(paused_decisions):
    ctx = paused_decisions
    size = load_org().pools[DONOR].gpus
    # 40 of the donor's GPUs held for ten days from today (two steps), so 24 are free
    big = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**MEDIUM, "pool": DONOR, "requested_gpus": 40})
    for actor in (HQ_OPS, DEPT_HEAD):
        svc.decide(sessions=ctx.sessions, actor=actor, request_id=big["id"], decision="approve", reason="ok")
    transfer_id, asks = _raise(ctx, 16), [16, 8, 8, 8]  # the transfer first, then three grants of 8 GPUs
    grants = [svc.submit(sessions=ctx.sessions, actor=APPLICANT,
                         form={**MEDIUM, "pool": DONOR, "requested_gpus": gpus})["id"] for gpus in asks[1:]]

    def work(i: int) -> str:
        if i == 0:
            return _approve(ctx, HQ_OPS, transfer_id)["status"]
        return svc.decide(sessions=ctx.sessions, actor=_hq_ops(i), request_id=grants[i - 1], decision="approve",
                          reason="race")["status"]

    results = at_once(len(asks), work)

    assert len(results) == len(asks)
    won = {i for i, r in results.items() if r in ("active", "approved")}
    held, lent, free = _donor_state(ctx)
    assert lent == (asks[0] if 0 in won else 0)
    assert held == 40 + sum(asks[i] for i in won - {0})
    # whatever the order, taking turns fills the 24 free GPUs exactly (16 + 8 or three times 8)
    assert (held + lent, free) == (size, 0)
    for i in set(results) - won:
        err = results[i]
        expected = (InputError, "support.donor_short") if i == 0 else (svc.CapacityRace, "lifecycle.capacity_race")
        assert isinstance(err, expected[0]) and err.key == expected[1], err
        # told what was free when it was refused: less than it asked, and never less than is free now
        assert free <= err.params["free"] < asks[i]
