"""The queue reads the node placements of every pool in one query (SQLite and PostgreSQL): the
statement count does not grow with the number of pools, and the allocations it leaves out (released
before the pool was last empty) change nothing in the replayed node layout."""

from __future__ import annotations

import random
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from sqlalchemy import event, select

from core.adjust import services as adjust
from core.adjust import simulation as sim
from core.lifecycle.persistence import AllocationRow, RequestRow
from core.org import load_org
from tests.support.people import HQ_OPS

T0 = datetime(2026, 9, 1, tzinfo=timezone.utc)
POOLS = ("hq-sci", "sd-pool", "hn-pool", "sc-pool")


@contextmanager
def statements(engine):
    """The SQL statements executed on ``engine`` inside the block."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001 - event signature
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _request(s, pool: str, gpus: int, *, status: str, at: datetime) -> RequestRow:
    row = RequestRow(status=status, created_by="zhang.wei", pool_id=pool, requested_gpus=gpus, duration_days=7,
                     priority="normal", form={}, created_at=at, updated_at=at, submitted_at=at,
                     queued_at=at if status == "queued" else None)
    s.add(row)
    s.flush()
    row.number = f"R-{row.id:06d}"
    return row


def _allocation(s, pool: str, gpus: int, granted: datetime, released: datetime | None) -> None:
    req = _request(s, pool, gpus, status="active" if released is None else "returned", at=granted)
    s.add(AllocationRow(request_id=req.id, pool_id=pool, gpus=gpus, status="active" if released is None else "released",
                        created_at=granted, provisioned_at=granted, released_at=released, ends_on=(granted + timedelta(days=30)).date()))


def _history(ctx, pools, seed: int = 7) -> None:
    """Random grants and releases per pool (never more than the pool holds at once), with quiet
    spells where the pool empties, and a waiting request per pool."""
    org, rnd = load_org(), random.Random(seed)
    with ctx.sessions.begin() as s:
        for pool in pools:
            p = org.pool(pool)
            t, live = T0, []  # live: (release time or None, gpus)
            for _ in range(40):
                t += timedelta(hours=rnd.randint(1, 30))
                live = [(r, g) for r, g in live if r is None or r > t]
                held = sum(g for _, g in live)
                gpus = rnd.choice([1, 2, 4, p.gpus_per_node, 2 * p.gpus_per_node])
                if held + gpus > p.gpus:
                    continue
                released = None if rnd.random() < 0.2 else t + timedelta(hours=rnd.randint(2, 120))
                _allocation(s, pool, gpus, t, released)
                live.append((released, gpus))
            _request(s, pool, p.gpus_per_node, status="queued", at=t)


def _all_placed(ctx, pool: str) -> list[sim.Placed]:
    """Every allocation of the pool, the whole history (what the layout replay started from)."""
    with ctx.sessions() as s:
        rows = s.scalars(select(AllocationRow).where(AllocationRow.pool_id == pool).order_by(AllocationRow.id)).all()
        aware = lambda v: v.replace(tzinfo=timezone.utc) if v is not None and v.tzinfo is None else v  # noqa: E731
        return [sim.Placed(a.id, "", a.gpus, aware(a.provisioned_at), aware(a.released_at) if a.status == "released" else None)
                for a in rows]


def test_the_queue_reads_placements_with_a_constant_number_of_statements(ctx):
    _history(ctx, POOLS[:1], seed=1)
    with statements(ctx.engine) as one_pool:
        q1 = adjust.queue(sessions=ctx.sessions, actor=HQ_OPS)
    assert set(q1["pools"]) == {"hq-sci"}
    _history(ctx, POOLS[1:], seed=2)
    with statements(ctx.engine) as four_pools:
        q4 = adjust.queue(sessions=ctx.sessions, actor=HQ_OPS)
    assert set(q4["pools"]) == set(POOLS)
    assert len(four_pools) == len(one_pool), (one_pool, four_pools)
    assert sum("allocations" in st for st in four_pools) <= 3  # held per pool, releases, placements


def test_left_out_releases_change_nothing_in_the_layout_and_are_really_left_out(ctx):
    _history(ctx, POOLS, seed=11)
    org = load_org()
    with ctx.sessions() as s:
        placed = adjust._placed_by_pool(s, POOLS)
    dropped = 0
    for pool in POOLS:
        p = org.pool(pool)
        sizes = sim.node_sizes(p.gpus, p.gpus_per_node)
        everything = _all_placed(ctx, pool)
        full_free, full_where = sim.layout(sizes, everything, p.gpus_per_node)
        free, where = sim.layout(sizes, placed[pool], p.gpus_per_node)
        assert free == full_free, pool
        assert where == full_where, pool
        holders = {a.allocation_id for a in everything if a.released_at is None}
        assert holders <= {a.allocation_id for a in placed[pool]}
        dropped += len(everything) - len(placed[pool])
    assert dropped > 0  # the history has quiet spells: something must have been left out


def test_a_pool_with_only_old_releases_reads_no_placements(ctx):
    with ctx.sessions.begin() as s:
        _allocation(s, "hq-sci", 8, T0, T0 + timedelta(days=1))
        _allocation(s, "hq-sci", 16, T0 + timedelta(hours=1), T0 + timedelta(days=2))
        _allocation(s, "sd-pool", 4, T0, T0 + timedelta(days=3))
        _allocation(s, "sd-pool", 4, T0 + timedelta(days=1), None)  # granted while the first still ran
    with ctx.sessions() as s:
        placed = adjust._placed_by_pool(s, ["hq-sci", "sd-pool"])
    assert placed["hq-sci"] == []
    assert [(a.gpus, a.released_at is None) for a in placed["sd-pool"]] == [(4, False), (4, True)]
