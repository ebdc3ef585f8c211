"""The capacity figures' definitions (core/capacity_figures.py) on hand-made allocations: what counts
on which day, reserved and available, busy GPUs with and without an allocation, and the
approvals' capacity item built from them."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from core import capacity_figures as cf
from core.lifecycle import feasibility as feas
from core.lifecycle.forms import IntakeForm
from core.org import Pool
from tests.support import clock

TODAY = clock.today()
POOL = Pool("p", "training_finetune", "c1", "H20", 16, "local_ssd")
RESERVE = Pool("r", "dynamic_reserve", "c1", "A800-80GB", 8, "parallel_fs")


def _held(**kw) -> cf.Holding:
    base = dict(pool="p", gpus=4, status="active", starts_on=clock.day(-40), ends_on=clock.day(-10), released_on=None,
                namespace="ns")
    return cf.Holding(**{**base, **kw})


def test_an_allocation_counts_from_its_start_until_released_and_a_held_one_past_its_end_still_counts():
    overdue = _held()
    assert cf.counts_on(overdue, TODAY, TODAY) and cf.counts_on(overdue, clock.day(-5), TODAY)
    assert not cf.counts_on(overdue, clock.day(-41), TODAY)  # before its start
    returned = _held(status="released", released_on=clock.day(-20))
    assert cf.counts_on(returned, clock.day(-21), TODAY) and not cf.counts_on(returned, clock.day(-20), TODAY)
    assert not cf.counts_on(returned, TODAY, TODAY)


def test_a_scheduled_allocation_counts_from_its_start_date_not_before():
    later = _held(status="scheduled", starts_on=clock.day(5), ends_on=clock.day(12))
    assert not cf.counts_on(later, TODAY, TODAY) and cf.counts_on(later, clock.day(5), TODAY)
    assert not cf.counts_on(later, clock.day(12), TODAY)
    assert cf.allocated_on([later, _held(gpus=2, ends_on=clock.day(30))], clock.day(6), TODAY) == {"p": 6}
    assert cf.owned_on([later, _held(namespace="other")], TODAY, TODAY) == {"other"}


def test_reserved_is_a_reserve_pools_unallocated_gpus_and_available_never_counts_them():
    assert cf.pool_figures(POOL, allocated=6).as_dict() == {
        "total": 16, "allocated": 6, "reserved": 0, "available": 10, "in_use": None, "in_use_unallocated": None}
    assert (cf.pool_figures(RESERVE, allocated=3).reserved, cf.pool_figures(RESERVE, allocated=3).available) == (5, 0)
    over = cf.pool_figures(POOL, allocated=20)
    assert (over.available, over.reserved) == (0, 0)


def test_busy_gpus_of_unowned_namespaces_are_in_use_without_an_allocation():
    rows = pl.DataFrame({"pool": ["p", "p", "p", "p"], "namespace": ["ns", "ns", "legacy", ""],
                         "util": [0.9, 0.05, 0.5, 0.3], "weight": [1.0] * 4})
    owned = pl.DataFrame({"namespace": ["ns"]})
    assert cf.usage(rows, owned, 0.10) == {"p": (3.0, 2.0)}  # 0.05 is not busy; "" and legacy are nobody's


def test_a_months_means_run_over_its_days_so_far_when_it_holds_today():
    this_month = cf.month_days(clock.month_start(0), clock.month_start(1) - timedelta(days=1), TODAY)
    assert this_month[0] == clock.month_start(0) and this_month[-1] == TODAY
    first, last = clock.month_start(-1), clock.month_start(0) - timedelta(days=1)
    assert len(cf.month_days(first, last, TODAY)) == (last - first).days + 1


def _form(gpus: int, pool: str = "p") -> IntakeForm:
    return IntakeForm.from_dict({"pool": pool, "requested_gpus": gpus})


def test_the_approvals_capacity_item_shows_the_pools_figures_and_fails_when_the_window_is_short():
    today = cf.pool_figures(POOL, allocated=6)
    ok = feas.capacity(_form(4), POOL, today, window_free=8)
    assert ok.status == feas.OK and ok.msg.key == "feasibility.capacity_ok"
    assert dict(ok.msg.params) == {"pool": "p", "total": 16, "allocated": 6, "reserved": 0, "available": 10,
                                   "requested": 4, "free": 8}
    short = feas.capacity(_form(9), POOL, today, window_free=8)
    assert short.status == feas.FAIL and short.msg.key == "feasibility.capacity_short"
    reserve = feas.capacity(_form(2, "r"), RESERVE, cf.pool_figures(RESERVE, allocated=3), window_free=5)
    assert reserve.status == feas.OK and reserve.msg.key == "feasibility.capacity_ok_reserve"
