"""Recommendation (core/estimation/recommend.py): feasibility, Pareto set, filters, the choice rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.errors import InputError
from core.estimation.model import ModelSpec
from core.estimation.recommend import recommend

DATA = Path(__file__).resolve().parents[2] / "data"
GPUS = {g["id"]: g for g in yaml.safe_load((DATA / "gpus.yaml").read_text(encoding="utf-8"))["gpus"]}
DEFAULTS = yaml.safe_load((DATA / "estimation_defaults.yaml").read_text(encoding="utf-8"))
CORRECTION = DEFAULTS["correction_factor"]["value"]
# a catalog subset without B200, so the Pareto front has several members
MIXED = ["A100-80GB", "H100-SXM", "L40S", "A10", "A30", "H20", "Ascend-910B", "V100"]


def capacity_gb(gpu_id: str) -> float:
    # vendor "GB" of HBM/GDDR is GiB: memory_gb × 2^30 / 1e9
    return GPUS[gpu_id]["memory_gb"] * 2**30 / 1e9


def dominates(a, b) -> bool:
    """a is at least as good as b on time and cost (weakly; equal options count as dominated)."""
    return a.wall_clock_hours <= b.wall_clock_hours and a.cost_cny <= b.cost_cny


@pytest.fixture(scope="module")
def rec7b():
    return recommend(model=ModelSpec(params=7e9), tokens=1e12, max_gpus=64, gpu_ids=MIXED)


@pytest.fixture(scope="module")
def rec70b():
    return recommend(model=ModelSpec(params=7e10), tokens=1.4e12, max_gpus=256)


@pytest.fixture(scope="module", params=["rec7b", "rec70b"])
def rec(request):
    return request.getfixturevalue(request.param)


def test_there_are_options_from_several_gpu_models(rec):
    assert len({o.gpu for o in rec.options}) >= 5


def test_every_option_fits_in_memory(rec):
    for o in rec.options:
        assert o.memory_gb <= capacity_gb(o.gpu), (o.gpu, o.gpus, o.memory_gb)


def test_every_option_layout_uses_exactly_its_gpus(rec):
    for o in rec.options:
        assert o.layout.tp * o.layout.pp * o.layout.dp == o.gpus
        assert o.gpus <= 256


def test_pareto_options_are_not_dominated(rec):
    pareto = rec.pareto
    assert pareto
    for p in pareto:
        for o in rec.options:
            if o is p:
                continue
            strictly_better = dominates(o, p) and (o.wall_clock_hours < p.wall_clock_hours or o.cost_cny < p.cost_cny)
            assert not strictly_better, (p.gpu, p.gpus, "beaten by", o.gpu, o.gpus)


def test_every_non_pareto_option_is_dominated_by_a_pareto_option(rec):
    pareto = rec.pareto
    for o in rec.options:
        if not o.pareto:
            assert any(dominates(p, o) for p in pareto), (o.gpu, o.gpus)


def test_pareto_is_sorted_fastest_first(rec):
    times = [o.wall_clock_hours for o in rec.pareto]
    assert times == sorted(times)


def test_fastest_and_cheapest_are_the_extremes(rec):
    assert rec.fastest.wall_clock_hours == min(o.wall_clock_hours for o in rec.options)
    assert rec.cheapest.cost_cny == min(o.cost_cny for o in rec.options)
    assert rec.fastest.pareto and rec.cheapest.pareto


def test_pcie_only_gpus_never_get_tensor_parallelism(rec):
    pcie = {gid for gid, g in GPUS.items() if g["interconnect_gbps"] < 200}
    assert pcie == {"L40S", "L20", "A10", "T4"}
    assert any(o.gpu in pcie for o in rec.options)          # the check is not vacuous
    for o in rec.options:
        if o.gpu in pcie:
            assert o.layout.tp == 1, (o.gpu, o.gpus, o.layout)
    keys = {m.key for m in rec.reasons}
    assert "recommend.tp_needs_nvlink" in keys


def test_tensor_parallelism_is_used_on_nvlink_gpus_for_70b():
    rec = recommend(model=ModelSpec(params=7e10), tokens=1.4e12, max_gpus=64, gpu_ids=["A100-80GB", "L40S"])
    assert any(o.layout.tp > 1 for o in rec.options if o.gpu == "A100-80GB")
    assert all(o.layout.tp == 1 for o in rec.options if o.gpu == "L40S")
    # TP stays inside an 8-GPU node
    assert all(o.layout.tp <= 8 for o in rec.options)


def test_option_time_is_6nd_over_effective_flops_times_correction_and_layout_penalty(rec7b):
    # selective recompute, and pipeline bubble 1 + (p − 1)/m with m = (4e6 // 4096) // (dp × micro-batch)
    seq = 4096  # Llama 2 7B, the preset nearest 7e9
    for o in rec7b.options:
        peak = GPUS[o.gpu][f"{o.precision}_tflops"]
        wall = 6 * 7e9 * 1e12 / (peak * 1e12 * o.efficiency * o.gpus) / 3600 * CORRECTION
        penalty = 1.333 / 1.027 if o.layout.recompute == "full" else 1.0
        if o.layout.pp > 1:
            m = max(1, int(4e6 // seq) // (o.layout.dp * o.layout.micro_batch))
            penalty *= 1 + (o.layout.pp - 1) / m
        assert o.wall_clock_hours == pytest.approx(wall * penalty), (o.gpu, o.gpus)
        assert o.cost_cny == pytest.approx(o.wall_clock_hours * o.gpus * GPUS[o.gpu]["price_cny_per_gpu_hour"])
        assert o.gpu_hours == pytest.approx(o.wall_clock_hours * o.gpus)


def test_bf16_job_falls_back_to_fp16_on_gpus_without_bf16(rec7b):
    v100 = [o for o in rec7b.options if o.gpu == "V100-SXM2-32GB"]
    assert v100 and all(o.precision == "fp16" for o in v100)
    assert all(o.precision == "bf16" for o in rec7b.options if o.gpu == "A100-80GB")


def test_unconstrained_choice_is_cheapest_pareto_option_within_twice_the_fastest(rec):
    within = [o for o in rec.pareto if o.wall_clock_hours <= 2 * rec.fastest.wall_clock_hours]
    assert rec.choice.cost_cny == min(o.cost_cny for o in within)
    assert rec.choice.pareto
    assert "recommend.choice_balanced" in {m.key for m in rec.reasons}


# -- deadline and budget ----------------------------------------------------------------------------


def test_deadline_filters_options_and_choice_is_the_cheapest_meeting_it(rec7b):
    times = sorted(o.wall_clock_hours for o in rec7b.options)
    deadline = times[len(times) // 2]
    rec = recommend(model=ModelSpec(params=7e9), tokens=1e12, max_gpus=64, gpu_ids=MIXED, deadline_hours=deadline)
    assert rec.options
    assert all(o.wall_clock_hours <= deadline for o in rec.options)
    # nothing meeting the deadline was dropped
    expected = {(o.gpu, o.gpus) for o in rec7b.options if o.wall_clock_hours <= deadline}
    assert {(o.gpu, o.gpus) for o in rec.options} == expected
    assert rec.choice.cost_cny == min(o.cost_cny for o in rec.options)
    assert rec.choice.wall_clock_hours <= deadline
    assert "recommend.choice_deadline" in {m.key for m in rec.reasons}


def test_budget_filters_options_and_choice_is_the_fastest_within_it(rec7b):
    costs = sorted(o.cost_cny for o in rec7b.options)
    budget = costs[len(costs) // 2]
    rec = recommend(model=ModelSpec(params=7e9), tokens=1e12, max_gpus=64, gpu_ids=MIXED, budget_cny=budget)
    assert rec.options
    assert all(o.cost_cny <= budget for o in rec.options)
    expected = {(o.gpu, o.gpus) for o in rec7b.options if o.cost_cny <= budget}
    assert {(o.gpu, o.gpus) for o in rec.options} == expected
    assert rec.choice.wall_clock_hours == min(o.wall_clock_hours for o in rec.options)
    assert "recommend.choice_budget" in {m.key for m in rec.reasons}


def test_deadline_and_budget_together_both_hold(rec7b):
    deadline = sorted(o.wall_clock_hours for o in rec7b.options)[-3]
    budget = sorted(o.cost_cny for o in rec7b.options)[-3]
    rec = recommend(model=ModelSpec(params=7e9), tokens=1e12, max_gpus=64, gpu_ids=MIXED,
                    deadline_hours=deadline, budget_cny=budget)
    assert all(o.wall_clock_hours <= deadline and o.cost_cny <= budget for o in rec.options)
    if rec.options:
        assert rec.choice.cost_cny == min(o.cost_cny for o in rec.options)


def test_impossible_deadline_gives_no_options_and_says_why():
    rec = recommend(model=ModelSpec(params=7e9), tokens=1e12, max_gpus=16, gpu_ids=["A100-80GB"], deadline_hours=0.01)
    assert rec.options == () and rec.choice is None
    keys = [m.key for m in rec.reasons]
    assert "recommend.none_meets_limits" in keys
    assert all(m.render("en") and m.render("zh-CN") for m in rec.reasons)


def test_model_that_fits_nowhere_gives_no_options_and_a_no_fit_reason():
    rec = recommend(model=ModelSpec(params=1e13), tokens=1e12, max_gpus=8, gpu_ids=["T4", "A10"])
    assert rec.options == ()
    assert rec.choice is None and rec.fastest is None and rec.cheapest is None
    no_fit = [m for m in rec.reasons if m.key == "recommend.no_fit"]
    assert len(no_fit) == 1
    assert "T4" in no_fit[0].params["gpus"] and "A10" in no_fit[0].params["gpus"]
    assert "T4" in no_fit[0].render("en") and no_fit[0].render("zh-CN")


def test_fp8_job_only_considers_gpus_with_fp8():
    rec = recommend(model=ModelSpec(params=7e9), tokens=1e11, precision="fp8", max_gpus=16)
    assert rec.options
    assert all(GPUS[o.gpu]["fp8_tflops"] for o in rec.options)


@pytest.mark.parametrize("kw,field", [
    ({"deadline_hours": 0}, "deadline_hours"),
    ({"deadline_hours": -5}, "deadline_hours"),
    ({"budget_cny": 0}, "budget"),
    ({"budget_cny": -1}, "budget"),
    ({"max_gpus": 0}, "max_gpus"),
    ({"max_gpus": 100_000}, "max_gpus"),
    ({"gpu_ids": ["nope"]}, "gpu"),
    ({"model": ModelSpec(params=-7)}, "params"),
])
def test_bad_recommend_inputs_name_the_field(kw, field):
    args = dict(model=ModelSpec(params=7e9), tokens=1e12, max_gpus=8)
    args.update(kw)
    with pytest.raises(InputError) as info:
        recommend(**args)
    assert info.value.field == field
