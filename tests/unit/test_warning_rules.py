"""Warning rules (预警) from daily rollups: levels at the boundaries, GPU-hour weighting, minimum
coverage, and one warning per (resource, month, level). Expected values are computed by hand."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from sqlalchemy import UniqueConstraint

from core.identity import Identity
from core.metrics.schema import ROLLUP_SCHEMA
from core.reclaim.persistence import WarningRow
from core.reclaim.policy import Thresholds, load_thresholds
from core.reclaim.warnings import assess, level_of, scope_days

TH = Thresholds(yellow_below=0.20, orange_above=0.80, min_coverage=0.60)
MONTH = "2026-10"  # 31 days
OPS = Identity("li.na", "李娜", "li.na@example.com", "hq_ops")


def _row(day: int, *, util: float | None, mem: float | None, gpu_hours: float = 24.0, coverage: float = 1.0,
         ns: str = "svc-a", uuid: str = "GPU-1") -> dict:
    return {"day": date(2026, 10, day), "cluster": "c", "hostname": "n1", "uuid": uuid, "model": "H20",
            "namespace": ns, "mean_util": util, "peak_util": util, "mean_mem": mem, "peak_mem": mem,
            "allocated_gpu_hours": gpu_hours, "used_gpu_hours": gpu_hours * (util or 0.0), "energy_kwh": 1.0,
            "samples": 1440, "expected_samples": 1440, "coverage": coverage}


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=ROLLUP_SCHEMA)


def _month(util: float | None, mem: float | None, *, days: int = 31, coverage: float = 1.0) -> pl.DataFrame:
    return _frame([_row(d, util=util, mem=mem, coverage=coverage) for d in range(1, days + 1)])


def _one(frame: pl.DataFrame, windows=None):
    [a] = assess(frame, MONTH, TH, windows)
    return a


def test_the_shipped_thresholds_are_the_seeds_20_and_80_percent():
    th = load_thresholds()
    assert (th.yellow_below, th.orange_above) == (0.20, 0.80)


@pytest.mark.parametrize("util,mem,expected", [
    (0.20, 0.10, None),       # exactly 20 % utilisation is not "below 20 %"
    (0.10, 0.20, None),       # exactly 20 % memory is not below either
    (0.1999, 0.1999, "yellow"),
    (0.80, 0.50, None),       # exactly 80 % is not "above 80 %"
    (0.8001, 0.50, "orange"),
    (0.10, 0.50, None),       # util below but memory above: the model sits in memory, not idle
    (0.85, 0.05, "orange"),   # orange looks at utilisation only
    (0.10, None, None),       # no memory figure: yellow needs both, so no warning
    (None, 0.05, None),       # no utilisation figure: nothing to judge
])
def test_level_of_monthly_means_uses_strict_comparisons(util, mem, expected):
    assert level_of(util, mem, TH) == expected


@pytest.mark.parametrize("util,mem,expected", [
    (0.20, 0.10, None), (0.19, 0.19, "yellow"), (0.80, 0.90, None), (0.81, 0.90, "orange"), (0.05, 0.35, None),
])
def test_a_full_month_at_the_boundaries_gets_the_level_of_its_means(util, mem, expected):
    a = _one(_month(util, mem))
    assert a.util == pytest.approx(util) and a.mem == pytest.approx(mem)
    assert a.level == expected and not a.insufficient


def test_the_monthly_mean_is_weighted_by_gpu_hours_not_by_days():
    # day 1: 8 GPUs x 24 h = 192 GPU-h at util 0.10, mem 0.10
    # day 2: 1 GPU  x 24 h =  24 GPU-h at util 0.90, mem 0.90
    # weighted util = (0.10*192 + 0.90*24) / 216 = (19.2 + 21.6) / 216 = 40.8 / 216 = 0.188888…
    # (the plain mean of days would be 0.50 → no warning; weighted it is below 20 % → yellow)
    rows = [_row(1, util=0.10, mem=0.10, gpu_hours=24.0, uuid=f"GPU-{i}") for i in range(8)]
    rows.append(_row(2, util=0.90, mem=0.90, gpu_hours=24.0, uuid="GPU-0"))
    a = _one(_frame(rows), {"svc-a": (date(2026, 10, 1), date(2026, 10, 2))})
    assert a.gpu_hours == pytest.approx(216.0)
    assert a.util == pytest.approx(40.8 / 216) and a.mem == pytest.approx(40.8 / 216)
    assert a.level == "yellow"
    # the evidence series has one point per day, each day weighted within itself
    assert [(s["util"], s["gpu_hours"]) for s in a.series] == [(pytest.approx(0.10), 192.0), (pytest.approx(0.90), 24.0)]


def test_weighting_turns_a_busy_short_day_into_a_minor_part_of_the_month():
    # 30 days x 24 GPU-h at util 0.85 = 720 GPU-h; day 31: 4 GPU-h at util 0.0
    # util = 0.85*720 / 724 = 612 / 724 = 0.845304… → still orange
    rows = [_row(d, util=0.85, mem=0.5) for d in range(1, 31)] + [_row(31, util=0.0, mem=0.5, gpu_hours=4.0)]
    a = _one(_frame(rows))
    assert a.util == pytest.approx(612 / 724)
    assert a.level == "orange"


def test_days_without_a_value_are_left_out_of_the_mean_not_counted_as_zero():
    # 20 days util 0.5 plus 11 days with util missing: the mean stays 0.5 (zeros would give 0.3226)
    rows = [_row(d, util=0.5, mem=0.5) for d in range(1, 21)] + [_row(d, util=None, mem=None) for d in range(21, 32)]
    assert _one(_frame(rows)).util == pytest.approx(0.5)


def test_coverage_just_below_the_minimum_raises_no_warning():
    # 18 of 31 days fully covered: 18/31 = 0.5806 < 0.60 → insufficient, no level
    a = _one(_month(0.05, 0.05, days=18))
    assert a.coverage == pytest.approx(18 / 31, abs=1e-6)
    assert a.insufficient and a.level is None


def test_coverage_at_the_minimum_raises_the_warning():
    # 30 days at sample coverage 0.62 → Σ = 18.6, / 31 days = 0.60 exactly → enough
    a = _one(_month(0.05, 0.05, days=30, coverage=0.62))
    assert a.coverage == pytest.approx(0.60)
    assert not a.insufficient and a.level == "yellow"


def test_coverage_counts_only_the_days_the_allocation_existed():
    # allocation from 2026-10-22: 10 days in scope; 6 days observed → 6/10 = 0.6 → enough
    window = {"svc-a": (date(2026, 10, 22), None)}
    a = _one(_frame([_row(d, util=0.9, mem=0.9) for d in range(22, 28)]), window)
    assert (a.days_in_scope, a.days_observed, a.coverage) == (10, 6, pytest.approx(0.6))
    assert a.level == "orange"
    # the same six days judged against the whole month: 6/31 = 0.19 → no warning
    assert _one(_frame([_row(d, util=0.9, mem=0.9) for d in range(22, 28)])).level is None


def test_scope_days_clips_the_window_to_the_month():
    assert scope_days(MONTH, None) == (date(2026, 10, 1), date(2026, 10, 31), 31)
    assert scope_days(MONTH, (date(2026, 9, 1), date(2026, 10, 5))) == (date(2026, 10, 1), date(2026, 10, 5), 5)
    assert scope_days(MONTH, (date(2026, 11, 1), None))[2] == 0  # not yet existing
    assert scope_days("2028-02", None)[2] == 29  # leap year


def test_rows_of_other_months_and_rows_without_a_namespace_are_ignored():
    rows = [_row(d, util=0.05, mem=0.05) for d in range(1, 32)]
    rows.append({**_row(1, util=0.99, mem=0.99), "day": date(2026, 11, 1)})
    rows.append(_row(1, util=0.99, mem=0.99, ns=""))
    [a] = assess(_frame(rows), MONTH, TH)
    assert a.resource == "svc-a" and a.level == "yellow" and a.days_observed == 31


def test_a_warning_is_unique_per_resource_month_and_level():
    uniques = [tuple(c.name for c in con.columns) for con in WarningRow.__table__.constraints
               if isinstance(con, UniqueConstraint)]
    assert ("resource", "month", "level") in uniques


def test_raising_the_same_month_twice_raises_each_warning_once(tmp_path):
    from core.context import build
    from core.db.migrate import upgrade
    from core.db.session import make_engine, unit_of_work
    from core.metrics.persistence import replace_day
    from core.reclaim import warning_service
    from core.reclaim.common import SYSTEM

    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    ctx = build(url)
    try:
        for d in range(1, 32):
            day = date(2026, 10, d)
            frame = _frame([_row(d, util=0.05, mem=0.05, ns="idle-a"), _row(d, util=0.95, mem=0.5, ns="busy-b")])
            with unit_of_work(ctx.sessions) as s:
                replace_day(s, day, frame)
        first = warning_service.raise_warnings(sessions=ctx.sessions, actor=SYSTEM, month=MONTH)
        second = warning_service.raise_warnings(sessions=ctx.sessions, actor=SYSTEM, month=MONTH)
        assert len(first["raised"]) == 2 and first["existing"] == 0
        assert second["raised"] == [] and second["existing"] == 2
        levels = sorted((w["resource"], w["level"]) for w in
                        warning_service.list_warnings(sessions=ctx.sessions, actor=OPS, month=MONTH))
        assert levels == [("busy-b", "orange"), ("idle-a", "yellow")]
    finally:
        ctx.engine.dispose()
