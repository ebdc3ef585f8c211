"""Recommendation (core/estimation/recommend.py): feasibility (batch, memory, communication), the
organisation's pools, the Pareto set, filters, the choice rule, durations."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.errors import InputError
from core.estimation.catalog import load_catalog
from core.estimation.efficiency import default_efficiency
from core.estimation.layouts import step_communication
from core.estimation.memory import Layout
from core.estimation.model import ModelSpec, complete_architecture
from core.estimation.recommend import Option, _mark_pareto, duration_msg, recommend

DATA = Path(__file__).resolve().parents[2] / "data"
GPUS = {g["id"]: g for g in yaml.safe_load((DATA / "gpus.yaml").read_text(encoding="utf-8"))["gpus"]}
DEFAULTS = yaml.safe_load((DATA / "estimation_defaults.yaml").read_text(encoding="utf-8"))
CORRECTION = DEFAULTS["correction_factor"]["value"]
# (PyYAML reads "4.0e6" as a string: numbers go through float())
PRETRAIN_BATCH = float(DEFAULTS["tokens_per_global_batch"]["value"])             # 4e6 tokens
FINETUNE_BATCH = float(DEFAULTS["tokens_per_global_batch_finetune"]["value"])    # 262,144 tokens
MAX_RATIO = float(DEFAULTS["max_step_overhead_to_compute"]["value"])             # 1.0
INTER_NODE = float(DEFAULTS["inter_node_gbps_per_gpu"]["value"])                 # 50 GB/s
ORG = yaml.safe_load((DATA / "org.yaml").read_text(encoding="utf-8"))
# GPU model -> {pool: GPUs} of the pools a recommendation may use (the dynamic reserve never serves ordinary requests)
POOLS: dict[str, dict[str, int]] = {}
for _p in ORG["pools"]:
    if _p["kind"] != "dynamic_reserve":
        POOLS.setdefault(load_catalog().get(_p["gpu"]).id, {})[_p["id"]] = _p["gpus"]
# a catalog subset without B200, so the Pareto front has several members
MIXED = ["A100-80GB", "H100-SXM", "L40S", "A10", "A30", "H20", "Ascend-910B", "V100"]


def capacity_gb(gpu_id: str) -> float:
    # vendor "GB" of HBM/GDDR is GiB: memory_gb × 2^30 / 1e9
    return GPUS[gpu_id]["memory_gb"] * 2**30 / 1e9


def dominates(a, b, tol=1e-9) -> bool:
    """a is no slower and no dearer than b and strictly better on one (relative differences below
    ``tol`` are floating-point noise and count as equal)."""
    no_worse = a.wall_clock_hours <= b.wall_clock_hours * (1 + tol) and a.cost_cny <= b.cost_cny * (1 + tol)
    better = a.wall_clock_hours < b.wall_clock_hours * (1 - tol) or a.cost_cny < b.cost_cny * (1 - tol)
    return no_worse and better


@pytest.fixture(scope="module")
def rec7b():
    return recommend(model=ModelSpec(params=7e9), tokens=1e12, max_gpus=64, gpu_ids=MIXED)


@pytest.fixture(scope="module")
def rec70b():
    return recommend(model=ModelSpec(params=7e10), tokens=1.4e12, max_gpus=256, whole_catalog=True)


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
            # exact comparison too: nothing is both no slower and cheaper by more than noise
            assert not dominates(o, p), (p.gpu, p.gpus, "beaten by", o.gpu, o.gpus)
            assert not (o.wall_clock_hours <= p.wall_clock_hours and o.cost_cny < p.cost_cny * (1 - 1e-9)), (p, o)


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


# -- the Pareto marking on hand-made options -------------------------------------------------------


def _opt(name, hours, cost):
    return Option(gpu=name, gpus=1, precision="bf16", layout=Layout(), memory_gb=1.0, wall_clock_hours=hours,
                  gpu_hours=hours, cost_cny=cost, energy_kwh=1.0, efficiency=0.4)


def test_pareto_marks_exactly_the_undominated_options_including_near_ties():
    options = [
        _opt("a", 10.0, 100.0),
        _opt("b", 5.0, 100.0 * (1 + 1e-13)),   # faster at the same cost (floating-point noise): dominates a
        _opt("c", 5.0, 90.0),                  # same time as b, cheaper: dominates b
        _opt("d", 2.0, 200.0),                 # fastest
        _opt("e", 2.0, 200.0),                 # equal to d: neither dominates the other
        _opt("f", 20.0, 95.0),                 # slower and dearer than c
        _opt("g", 30.0, 50.0),                 # cheapest
    ]
    marked = {o.gpu: o.pareto for o in _mark_pareto(options)}
    assert marked == {"a": False, "b": False, "c": True, "d": True, "e": True, "f": False, "g": True}


# -- runnable: global batch, communication -------------------------------------------------------------


@pytest.fixture(scope="module")
def finetune_7b():
    # the case: a 7B fine-tune of 1e9 tokens with a two-day deadline, over the whole catalog
    return recommend(model=ModelSpec(params=7e9), tokens=1e9, workload="finetune", deadline_hours=48,
                     whole_catalog=True)


@pytest.mark.parametrize("fixture,batch", [("rec7b", PRETRAIN_BATCH), ("rec70b", PRETRAIN_BATCH),
                                           ("finetune_7b", FINETUNE_BATCH)])
def test_no_option_has_more_data_parallel_replicas_than_the_global_batch_allows(request, fixture, batch):
    rec = request.getfixturevalue(fixture)
    assert rec.options
    for o in rec.options:
        seq = o.layout.seq_len or 4096  # Llama 2 7B / 70B presets: 4,096-token sequences
        assert o.layout.dp * o.layout.micro_batch <= batch // seq, (o.gpu, o.gpus, o.layout)


def test_fine_tune_batch_caps_data_parallelism_at_64_replicas(finetune_7b):
    # Llama 2 SFT: 64 sequences of 4,096 tokens per step
    assert FINETUNE_BATCH // 4096 == 64
    assert max(o.layout.dp for o in finetune_7b.options) <= 64
    assert any(o.layout.dp == 64 for o in finetune_7b.options)


@pytest.mark.parametrize("fixture", ["rec7b", "rec70b", "finetune_7b"])
def test_no_option_is_dominated_by_communication_and_waiting(request, fixture):
    for o in request.getfixturevalue(fixture).options:
        assert 0 <= o.communication_ratio <= MAX_RATIO, (o.gpu, o.gpus, o.communication_ratio)
        assert (o.communication_ratio == 0) == (o.gpus == 1)


def test_data_parallel_all_reduce_by_hand():
    # 7B pre-training on 256 H800 (TP 1, PP 1, DP 256, spans 32 nodes): ring all-reduce of 16-bit gradients
    model, _ = complete_architecture(ModelSpec(params=7e9))
    gpu = load_catalog().get("H800")
    layout = Layout(gpus=256, zero=1)
    comm = step_communication(model, layout, gpu, 0.4, PRETRAIN_BATCH, DEFAULT_VALUES)
    compute = 6 * 7e9 * PRETRAIN_BATCH / (256 * 989e12 * 0.4)
    allreduce = 2 * 255 / 256 * 2 * 7e9 / (min(400 / 2, INTER_NODE) * 1e9)
    assert comm.compute_s == pytest.approx(compute)
    assert comm.data_parallel_s == pytest.approx(allreduce)
    assert comm.tensor_parallel_s == 0 and comm.pipeline_bubble_s == 0
    assert comm.ratio == pytest.approx(allreduce / compute)
    # inside one node the GPU's own link carries it (half of NVLink's two-way 400 GB/s)
    eight = step_communication(model, Layout(gpus=8, zero=1), gpu, 0.4, PRETRAIN_BATCH, DEFAULT_VALUES)
    assert eight.data_parallel_s == pytest.approx(2 * 7 / 8 * 2 * 7e9 / 200e9)



def test_a_lora_step_computes_4_n_per_token_and_all_reduces_only_the_adapters():
    # 7B LoRA (rank 16) on 8 H800 in one node: 4·N·tokens of compute (frozen weights get no weight
    # gradients, core.estimation.flops), and the ring all-reduce carries the adapters' 16-bit gradients
    model, _ = complete_architecture(ModelSpec(params=7e9))
    gpu = load_catalog().get("H800")
    comm = step_communication(model, Layout(gpus=8, zero=1, lora_rank=16), gpu, 0.4, PRETRAIN_BATCH, DEFAULT_VALUES)
    d, kv = model.hidden, (model.kv_heads or model.heads) * model.head_dim
    adapters = model.layers * 16 * (4 * d + 2 * (d + kv))
    assert comm.compute_s == pytest.approx(4 * 7e9 * PRETRAIN_BATCH / (8 * 989e12 * 0.4))
    assert comm.data_parallel_s == pytest.approx(2 * 7 / 8 * 2 * adapters / 200e9)

class _Default:
    def __init__(self, value):
        self.value = float(value)


DEFAULT_VALUES = {k: _Default(v["value"]) for k, v in DEFAULTS.items()}


def test_communication_bound_sizes_are_not_offered_and_are_named():
    # 7B pre-training on 4096 H800 (NVLink cut to 400 GB/s): every layout the batch allows spends
    # longer on all-reduces and pipeline waiting than on compute
    rec = recommend(model=ModelSpec(params=7e9), tokens=1e11, gpu_ids=["H800"], max_gpus=4096)
    offered = {o.gpus for o in rec.options}
    assert 4096 not in offered and 2048 in offered
    bound = [m for m in rec.reasons if m.key == "recommend.comm_bound"]
    assert len(bound) == 1 and bound[0].params["options"] == "H800-SXM × 4096"
    assert bound[0].render("en") and bound[0].render("zh-CN")
    # by hand: every candidate (TP within a node, dividing 32 heads; DP within the batch) is above the rule
    model, _ = complete_architecture(ModelSpec(params=7e9))
    gpu = load_catalog().get("H800")
    eff = default_efficiency(gpu=gpu, catalog=load_catalog(), precision="bf16", params=7e9, gpus=4096).value
    checked = 0
    for tp in (1, 2, 4, 8):
        for pp in (1, 2, 4, 8, 16, 32):
            if 4096 // (tp * pp) <= PRETRAIN_BATCH // 4096:
                layout = Layout(gpus=4096, tp=tp, pp=pp, zero=1)
                assert step_communication(model, layout, gpu, eff, PRETRAIN_BATCH, DEFAULT_VALUES).ratio > MAX_RATIO
                checked += 1
    assert checked >= 10


# -- the organisation's pools ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def org_7b():
    return recommend(model=ModelSpec(params=7e9), tokens=1e9, deadline_hours=48)


def test_by_default_only_gpu_models_of_the_pools_are_offered_with_the_pools_that_hold_them(org_7b):
    assert org_7b.options and not org_7b.whole_catalog
    for o in org_7b.options:
        assert o.gpu in POOLS, o.gpu
        assert o.gpus <= max(POOLS[o.gpu].values())
        assert o.pools and set(o.pools) == {pid for pid, n in POOLS[o.gpu].items() if n >= o.gpus}
    assert "recommend.org_scope" in {m.key for m in org_7b.reasons}
    assert "hq-dynamic" not in str([o.pools for o in org_7b.options])  # 动态预留池 is never offered
    assert org_7b.choice.pools and "recommend.choice_pools" in {m.key for m in org_7b.reasons}


def test_whole_catalog_is_an_explicit_option():
    rec = recommend(model=ModelSpec(params=7e9), tokens=1e9, deadline_hours=48, whole_catalog=True)
    assert rec.whole_catalog
    assert "B200" in {o.gpu for o in rec.options} and "B200" not in POOLS
    assert "recommend.org_scope" not in {m.key for m in rec.reasons}
    assert all(o.pools == () for o in rec.options if o.gpu not in POOLS)


# -- durations ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hours,key,value", [(0.05, "unit.hours", "0.05"), (5.25, "unit.hours", "5.2"),
                                             (23.9, "unit.hours", "23.9"), (24.0, "unit.days", "1.0"),
                                             (60.0, "unit.days", "2.5")])
def test_durations_under_a_day_read_in_hours(hours, key, value):
    msg = duration_msg(hours)
    assert (msg.key, msg.params["value"]) == (key, value)
    assert msg.render("en") and msg.render("zh-CN")


def test_the_choice_of_a_short_job_is_said_in_hours(org_7b):
    assert org_7b.choice.wall_clock_hours < 24
    reason = next(m for m in org_7b.reasons if m.key == "recommend.choice_deadline")
    assert reason.params["duration"].key == "unit.hours"
    assert "hours" in reason.render("en") and "小时" in reason.render("zh-CN")
