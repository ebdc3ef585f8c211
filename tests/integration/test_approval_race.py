"""Approvers racing for the last free GPUs of a pool can never over-commit it.

PostgreSQL: many threads approve different requests at once; the pool's capacity row is locked
with SELECT … FOR UPDATE. SQLite (one writer at a time): the same threaded race, plus a
deterministic interleaving that exercises the optimistic ``version`` check directly.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from core.context import build
from core.db.migrate import upgrade
from core.db.session import make_engine
from core.identity import Identity
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow, PoolCapacityRow, RequestRow
from core.org import load_org
from tests.support import clock
from tests.support.forms import MEDIUM
from tests.support.people import APPLICANT, DEPT_HEAD, HQ_OPS
from tests.support.threads import at_once

POOL = "hq-sci"  # 64 A800 GPUs


def _pool_state(ctx) -> tuple[int, int, int]:
    with ctx.sessions() as s:
        cap = s.get(PoolCapacityRow, POOL)
        held = s.scalar(select(func.coalesce(func.sum(AllocationRow.gpus), 0)).where(
            AllocationRow.pool_id == POOL, AllocationRow.status != "released"))
        return cap.allocated_gpus, int(held), cap.version


def _prefill(ctx, gpus: int) -> None:
    """Hold ``gpus`` of the pool through an approved (two-step) request."""
    big = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**MEDIUM, "pool": POOL, "requested_gpus": gpus})
    for actor in (HQ_OPS, DEPT_HEAD):
        svc.decide(sessions=ctx.sessions, actor=actor, request_id=big["id"], decision="approve", reason="ok")


@pytest.mark.parametrize(("threads", "gpus_each", "prefill"), [(12, 8, 40), (16, 4, 50)])
def test_concurrent_approvals_never_exceed_the_pool_and_losers_hear_how_many_are_left(
        ctx, threads, gpus_each, prefill):
    size = load_org().pools[POOL].gpus
    _prefill(ctx, prefill)
    free = size - prefill
    ids = [svc.submit(sessions=ctx.sessions, actor=APPLICANT,
                      form={**MEDIUM, "pool": POOL, "requested_gpus": gpus_each})["id"] for _ in range(threads)]
    approvers = [Identity(f"ops{i}", f"运营{i}", f"ops{i}@example.com", "hq_ops") for i in range(threads)]
    results = at_once(threads, lambda i: svc.decide(sessions=ctx.sessions, actor=approvers[i], request_id=ids[i],
                                                    decision="approve", reason="race")["status"])

    winners = [i for i, r in results.items() if r == "approved"]
    losers = [r for r in results.values() if r != "approved"]
    assert len(results) == threads
    assert len(winners) == free // gpus_each
    assert all(isinstance(r, svc.CapacityRace) and r.key == "lifecycle.capacity_race" for r in losers), losers
    assert all(0 <= r.params["free"] < gpus_each for r in losers)
    allocated, held, _ = _pool_state(ctx)
    assert allocated == held == prefill + len(winners) * gpus_each <= size
    # the losers' requests are untouched: still waiting, no allocation, the step still pending
    for i in set(range(threads)) - set(winners):
        view = svc.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=ids[i])
        assert view["status"] == "submitted" and view["steps"][0]["status"] == "pending"


@pytest.fixture
def sqlite_ctx(tmp_path):
    """An app context on a migrated SQLite file (where reading the capacity row takes no lock)."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    context = build(url)
    yield context
    context.engine.dispose()


def test_optimistic_version_check_retries_on_fresh_numbers(sqlite_ctx):
    """A competitor commits between our read of the capacity row and our update: we re-read.

    SQLite only: on PostgreSQL the FOR UPDATE read makes the competitor wait instead, which the
    threaded test covers.
    """
    ctx = sqlite_ctx
    org = load_org()
    svc.ensure_capacity_rows(ctx.sessions, [POOL])

    def book(s, gpus: int) -> None:
        """What a grant does in its transaction: book the pool's GPUs for today (the check counts the
        allocations of every day of the window), then add the allocation that holds them."""
        today, now = clock.today(), clock.now()
        svc._reserve(s, org, POOL, gpus, today, today + timedelta(days=1))
        row = RequestRow(status="approved", created_by="race", created_at=now, updated_at=now, form={}, flags=[],
                         pool_id=POOL)
        s.add(row)
        s.flush()
        s.add(AllocationRow(request_id=row.id, pool_id=POOL, gpus=gpus, status="approved", starts_on=today,
                            ends_on=today + timedelta(days=1), created_at=now, attempts=0))

    def run(competitor_gpus: int, our_gpus: int):
        fired = []

        def competitor(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ARG001
            # just before our conditional UPDATE (our SELECT is finished, so we hold no lock)
            if fired or "pool_capacity" not in statement or not statement.lstrip().upper().startswith("UPDATE"):
                return
            fired.append(True)
            with ctx.sessions() as other, other.begin():
                book(other, competitor_gpus)

        event.listen(ctx.engine, "before_cursor_execute", competitor)
        try:
            with ctx.sessions() as s, s.begin():
                book(s, our_gpus)
        finally:
            event.remove(ctx.engine, "before_cursor_execute", competitor)
        assert fired

    run(8, 8)  # both fit: our stale update misses the version, the retry succeeds
    allocated, _, version = _pool_state(ctx)
    assert (allocated, version) == (16, 2)
    with pytest.raises(svc.CapacityRace) as err:
        run(44, 8)  # 64 - 16 - 44 = 4 left after the competitor: we must lose, told 4 remain
    assert err.value.params["free"] == 4
    allocated, _, version = _pool_state(ctx)
    assert (allocated, version) == (60, 3)
