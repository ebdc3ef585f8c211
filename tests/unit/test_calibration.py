"""Self-calibration (core/estimation/calibration.py): geometric-mean factor and leave-one-out error."""

from __future__ import annotations

import math

import pytest

from core.estimation.calibration import RunPair, fit_corrections

THREE = [
    RunPair("A100-80GB", "pretrain", estimated_gpu_hours=100.0, actual_gpu_hours=120.0),  # ratio 1.2
    RunPair("A100-80GB", "pretrain", estimated_gpu_hours=200.0, actual_gpu_hours=180.0),  # ratio 0.9
    RunPair("A100-80GB", "pretrain", estimated_gpu_hours=50.0, actual_gpu_hours=75.0),    # ratio 1.5
]


def test_factor_is_the_geometric_mean_of_actual_over_estimated():
    c = fit_corrections(THREE)[("A100-80GB", "pretrain")]
    # (1.2 × 0.9 × 1.5)^(1/3) = 1.62^(1/3) = 1.174460...
    assert c.factor == pytest.approx(1.62 ** (1 / 3))
    assert c.factor == pytest.approx(1.174460, rel=1e-6)
    assert c.runs == 3


def test_error_before_is_the_mape_of_raw_estimates():
    c = fit_corrections(THREE)[("A100-80GB", "pretrain")]
    # (20/120 + 20/180 + 25/75) / 3 = (0.166667 + 0.111111 + 0.333333) / 3 = 0.203704
    assert c.error_before == pytest.approx((20 / 120 + 20 / 180 + 25 / 75) / 3)
    assert c.error_before == pytest.approx(0.203704, rel=1e-5)


def test_error_after_is_leave_one_out():
    c = fit_corrections(THREE)[("A100-80GB", "pretrain")]
    # run 1 corrected by the others: 100 × sqrt(0.9 × 1.5) = 116.1895 vs 120 -> 0.031754
    # run 2: 200 × sqrt(1.2 × 1.5) = 268.3282 vs 180 -> 0.490712
    # run 3: 50 × sqrt(1.2 × 0.9) = 51.9615 vs 75 -> 0.307180
    e1 = abs(100 * math.sqrt(1.35) - 120) / 120
    e2 = abs(200 * math.sqrt(1.8) - 180) / 180
    e3 = abs(50 * math.sqrt(1.08) - 75) / 75
    assert c.error_after == pytest.approx((e1 + e2 + e3) / 3)
    assert c.error_after == pytest.approx(0.276549, rel=1e-4)
    # leave-one-out is not the in-sample error with the full factor
    in_sample = sum(abs(r.estimated_gpu_hours * c.factor - r.actual_gpu_hours) / r.actual_gpu_hours for r in THREE) / 3
    assert c.error_after != pytest.approx(in_sample)


def test_consistent_bias_is_removed_completely():
    runs = [RunPair("H100-SXM", "finetune", e, e * 1.3) for e in (10.0, 50.0, 400.0, 7.0)]
    c = fit_corrections(runs)[("H100-SXM", "finetune")]
    assert c.factor == pytest.approx(1.3)
    # (1.3e − e)/(1.3e) = 0.3/1.3 before, 0 after
    assert c.error_before == pytest.approx(0.3 / 1.3)
    assert c.error_after == pytest.approx(0.0, abs=1e-12)


def test_geometric_mean_is_symmetric_for_over_and_under_estimates():
    runs = [RunPair("A100-80GB", "lora", 100.0, 200.0), RunPair("A100-80GB", "lora", 100.0, 50.0)]
    # sqrt(2 × 0.5) = 1 (an arithmetic mean would say 1.25)
    assert fit_corrections(runs)[("A100-80GB", "lora")].factor == pytest.approx(1.0)


def test_single_run_has_no_after_error():
    c = fit_corrections([RunPair("T4", "lora", 40.0, 50.0)])[("T4", "lora")]
    assert c.factor == pytest.approx(1.25)
    assert c.runs == 1
    assert c.error_before == pytest.approx(10 / 50)
    assert c.error_after is None


def test_groups_by_gpu_and_workload():
    pairs = [
        RunPair("A100-80GB", "pretrain", 100.0, 150.0),
        RunPair("A100-80GB", "pretrain", 100.0, 150.0),
        RunPair("A100-80GB", "lora", 100.0, 80.0),
        RunPair("H100-SXM", "pretrain", 100.0, 110.0),
    ]
    out = fit_corrections(pairs)
    assert set(out) == {("A100-80GB", "pretrain"), ("A100-80GB", "lora"), ("H100-SXM", "pretrain")}
    assert out[("A100-80GB", "pretrain")].factor == pytest.approx(1.5)
    assert out[("A100-80GB", "pretrain")].runs == 2
    assert out[("A100-80GB", "lora")].factor == pytest.approx(0.8)
    assert out[("H100-SXM", "pretrain")].factor == pytest.approx(1.1)
    c = out[("A100-80GB", "lora")]
    assert (c.gpu_id, c.workload) == ("A100-80GB", "lora")


def test_non_positive_hours_are_ignored():
    pairs = [
        RunPair("A30", "pretrain", 0.0, 10.0),
        RunPair("A30", "pretrain", 10.0, -1.0),
        RunPair("A30", "pretrain", 10.0, 20.0),
        RunPair("L20", "pretrain", -5.0, 5.0),
    ]
    out = fit_corrections(pairs)
    assert set(out) == {("A30", "pretrain")}
    assert out[("A30", "pretrain")].runs == 1
    assert out[("A30", "pretrain")].factor == pytest.approx(2.0)


def test_no_pairs_gives_no_corrections():
    assert fit_corrections([]) == {}


def test_as_dict_is_plain():
    d = fit_corrections(THREE)[("A100-80GB", "pretrain")].as_dict()
    assert set(d) == {"gpu_id", "workload", "factor", "runs", "error_before", "error_after"}
