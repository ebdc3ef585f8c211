"""Inference reclaim candidates (待回收候选) from daily rollups: a single busy day, missing data,
a service created mid-month, the threshold and coverage boundaries. Expected values by hand."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from core.metrics.schema import ROLLUP_SCHEMA
from core.reclaim.candidates import check_services
from core.reclaim.policy import load_policy

POLICY = load_policy()  # peak below 0.20, a day counts from coverage 0.80, at least 7 counted days
MONTH = "2026-10"  # 31 days


def _row(day: int, *, peak: float | None = 0.10, peak_mem: float | None = None, coverage: float = 1.0,
         ns: str = "svc-a", uuid: str = "GPU-1", month: int = 10) -> dict:
    pm = peak if peak_mem is None else peak_mem
    return {"day": date(2026, month, day), "cluster": "c", "hostname": "n1", "uuid": uuid, "model": "L20",
            "namespace": ns, "mean_util": 0.05, "peak_util": peak, "mean_mem": 0.05, "peak_mem": pm,
            "allocated_gpu_hours": 24.0, "used_gpu_hours": 1.2, "energy_kwh": 1.0, "samples": 1440,
            "expected_samples": 1440, "coverage": coverage}


def _check(rows: list[dict], namespaces=("svc-a",)):
    return {c.namespace: c for c in check_services(pl.DataFrame(rows, schema=ROLLUP_SCHEMA), MONTH, namespaces, POLICY)}


def _one(rows: list[dict]):
    return _check(rows)["svc-a"]


def test_the_shipped_policy_is_the_seeds_20_percent_with_80_percent_days_and_a_week_minimum():
    assert (POLICY.candidate_peak_below, POLICY.candidate_min_day_coverage, POLICY.candidate_min_days) == (0.20, 0.80, 7)


def test_a_service_idle_every_day_of_the_month_is_a_candidate():
    c = _one([_row(d, peak=0.15) for d in range(1, 32)])
    assert c.candidate and c.days_counted == 31 and c.busy_days == []
    assert c.max_peak_util == pytest.approx(0.15) and c.max_peak_mem == pytest.approx(0.15)


def test_a_single_busy_day_in_the_month_means_not_a_candidate():
    # 30 idle days and one day (the 17th) whose peak reached 0.55: the peak rule is "EVERY day below"
    rows = [_row(d, peak=0.10) for d in range(1, 32) if d != 17] + [_row(17, peak=0.55)]
    c = _one(rows)
    assert not c.candidate and c.busy_days == ["2026-10-17"] and c.days_counted == 31
    assert c.max_peak_util == pytest.approx(0.55)


def test_a_single_day_with_busy_memory_only_also_means_not_a_candidate():
    # util idle every day, but memory peaked at 0.60 on the 3rd: both must stay below 20 %
    rows = [_row(d, peak=0.10) for d in range(1, 32) if d != 3] + [_row(3, peak=0.10, peak_mem=0.60)]
    c = _one(rows)
    assert not c.candidate and c.busy_days == ["2026-10-03"]


@pytest.mark.parametrize("peak,candidate", [(0.1999, True), (0.20, False)])
def test_a_peak_of_exactly_20_percent_is_not_below_20_percent(peak, candidate):
    assert _one([_row(d, peak=peak) for d in range(1, 32)]).candidate is candidate


def test_the_daily_peak_is_the_highest_gpu_of_the_service_that_day():
    # two GPUs: GPU-1 idle all month, GPU-2 peaks 0.30 on the 9th → that day is busy
    rows = [_row(d, peak=0.05, uuid="GPU-1") for d in range(1, 32)]
    rows += [_row(d, peak=0.30 if d == 9 else 0.05, uuid="GPU-2") for d in range(1, 32)]
    c = _one(rows)
    assert not c.candidate and c.busy_days == ["2026-10-09"]


def test_a_busy_day_with_insufficient_coverage_counts_neither_for_nor_against():
    # 30 idle, fully covered days; the 12th peaked at 0.90 but only 50 % of its samples arrived:
    # the day is not counted (30 counted days), so it cannot spoil the verdict
    rows = [_row(d, peak=0.10) for d in range(1, 32) if d != 12] + [_row(12, peak=0.90, coverage=0.50)]
    c = _one(rows)
    assert c.candidate and c.days_counted == 30 and c.busy_days == []
    assert c.max_peak_util == pytest.approx(0.10)  # the thin day is not in the evidence's maximum
    assert [s["counted"] for s in c.series if s["day"] == "2026-10-12"] == [False]


def test_an_idle_day_with_insufficient_coverage_does_not_count_for_the_candidate():
    # 6 idle, fully covered days + 20 idle days at coverage 0.79: only 6 counted < 7 → not a candidate
    rows = [_row(d, peak=0.05) for d in range(1, 7)] + [_row(d, peak=0.05, coverage=0.79) for d in range(7, 27)]
    c = _one(rows)
    assert not c.candidate and c.days_counted == 6 and c.busy_days == []


def test_a_day_at_exactly_the_minimum_coverage_counts():
    # three GPUs at coverage 0.6, 0.9, 0.9: mean (0.6+0.9+0.9)/3 = 0.80 exactly (0.7999… in floating
    # point, which must not make the day uncounted); the day peaks 0.50 → busy → not a candidate
    rows = [_row(d, peak=0.05) for d in range(1, 31)]
    rows += [_row(31, peak=p, coverage=cov, uuid=f"GPU-{i}") for i, (p, cov) in enumerate([(0.5, 0.6), (0.1, 0.9), (0.1, 0.9)])]
    c = _one(rows)
    assert [s["coverage"] for s in c.series if s["day"] == "2026-10-31"] == [pytest.approx(0.80)]
    assert c.days_counted == 31 and c.busy_days == ["2026-10-31"] and not c.candidate


def test_a_day_with_an_unknown_peak_is_not_counted():
    rows = [_row(d, peak=0.05) for d in range(1, 8)] + [_row(8, peak=None)]
    c = _one(rows)
    assert c.days_counted == 7 and c.candidate


def test_a_month_with_too_few_covered_days_is_not_a_candidate():
    # an outage: only 6 days of data at all (< 7) → no verdict against the service
    assert not _one([_row(d, peak=0.05) for d in range(1, 7)]).candidate


def test_a_service_created_mid_month_is_judged_on_its_own_days():
    # created on the 20th: 12 idle days (20..31) ≥ 7 → a candidate, though 19 days have no rows
    c = _one([_row(d, peak=0.05) for d in range(20, 32)])
    assert c.candidate and c.days_counted == 12


def test_a_service_created_too_late_in_the_month_has_too_few_days():
    # created on the 26th: 6 idle days (26..31) < 7 → not a candidate yet; on the 25th: 7 → a candidate
    assert not _one([_row(d, peak=0.05) for d in range(26, 32)]).candidate
    assert _one([_row(d, peak=0.05) for d in range(25, 32)]).candidate


def test_a_service_without_rows_is_reported_and_is_not_a_candidate():
    checks = _check([_row(d, peak=0.05) for d in range(1, 32)], namespaces=("svc-a", "svc-new"))
    assert checks["svc-a"].candidate
    assert not checks["svc-new"].candidate and checks["svc-new"].days_counted == 0


def test_rows_of_other_services_and_other_months_do_not_change_the_verdict():
    rows = [_row(d, peak=0.05) for d in range(1, 32)]
    rows += [_row(d, peak=0.95, ns="svc-busy") for d in range(1, 32)]
    rows += [_row(1, peak=0.95, month=11)]  # the next month's busy day belongs to the next verdict
    checks = _check(rows, namespaces=("svc-a", "svc-busy"))
    assert checks["svc-a"].candidate and checks["svc-a"].days_counted == 31
    assert not checks["svc-busy"].candidate and len(checks["svc-busy"].busy_days) == 31
