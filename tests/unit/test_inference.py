"""Inference sizing: operating point, replica rules, Little's-law check, LLM memory sizing."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError
from core.estimation.catalog import load_catalog
from core.estimation.inference import (
    kv_cache_bytes_per_token,
    load_defaults,
    replicas_needed,
    size_inference,
    size_llm,
)
from core.estimation.loadtest_formats import parse_sweep

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "loadtests"
VLLM_NEW = "vllm-infqps-concurrency{}-Llama-3.1-8B-Instruct-20250301-101500.json"


@pytest.fixture(autouse=True)
def strict_i18n(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_I18N_STRICT", "1")


def sweep_of(*names: str):
    return parse_sweep([(n, (FIXTURES / n).read_bytes()) for n in names])


def csv_sweep(text: str, name: str = "curve.csv"):
    return parse_sweep([(name, text.encode())])


PLAIN = "plain_curve.csv"


# -- operating point ------------------------------------------------------------------------------


def test_p99_boundary_between_8_and_16_is_interpolated_linearly_in_concurrency():
    # plain_curve.csv: c=8 → 125 QPS, p99 160 ms; c=16 → 175 QPS, p99 260 ms.
    # p99 reaches 200 at t = (200 - 160) / (260 - 160) = 0.4 of the segment:
    # concurrency = 8 + 0.4 × 8 = 11.2, QPS = 125 + 0.4 × (175 - 125) = 145.
    sizing = size_inference(sweep_of(PLAIN), slos={"p99_ms": 200}, peak_qps=300)
    op = sizing.operating_point
    assert op.interpolated
    assert op.concurrency == pytest.approx(11.2)
    assert op.qps == pytest.approx(145.0)
    assert op.latency_ms["p99_ms"] == pytest.approx(200.0)
    assert op.latency_ms["mean_ms"] == pytest.approx(62.5 + 0.4 * (89.0 - 62.5))
    assert op.limiting_slo == "p99_ms"
    assert sizing.max_qps_per_replica == pytest.approx(145.0)


def test_slo_exactly_at_a_measured_point_uses_that_point_uninterpolated():
    sizing = size_inference(sweep_of(PLAIN), slos={"p99_ms": 160}, peak_qps=100)
    assert not sizing.operating_point.interpolated
    assert sizing.operating_point.concurrency == 8
    assert sizing.max_qps_per_replica == 125


def test_tightest_of_several_slos_limits_the_operating_point():
    # vLLM sweep, c=16 → c=64 (QPS 11.5234 → 27.8382):
    #   TTFT p99 75.9 → 193.2 crosses 150 at t = 74.1 / 117.3 = 0.6317;
    #   e2e p99 1666.2 → 2758.8 crosses 2000 at t = 333.8 / 1092.6 = 0.3055 (earlier: binding).
    # concurrency = 16 + 0.3055 × 48 = 30.66; QPS = 11.5234 + 0.3055 × 16.3148 = 16.507.
    sweep = sweep_of(*(VLLM_NEW.format(c) for c in (1, 4, 16, 64)))
    sizing = size_inference(sweep, slos={"ttft_p99_ms": 150, "p99_ms": 2000}, peak_qps=50)
    op = sizing.operating_point
    assert op.limiting_slo == "p99_ms"
    t = (2000 - 1666.2) / (2758.8 - 1666.2)
    assert op.concurrency == pytest.approx(16 + t * 48, rel=1e-3)
    assert op.qps == pytest.approx(16.507, rel=1e-3)
    assert op.latency_ms["ttft_p99_ms"] < 150


def test_ttft_slo_alone_on_an_llm_sweep():
    sweep = sweep_of(*(VLLM_NEW.format(c) for c in (1, 4, 16, 64)))
    sizing = size_inference(sweep, slos={"ttft_p99_ms": 150}, peak_qps=50)
    t = (150 - 75.9) / (193.2 - 75.9)
    assert sizing.operating_point.concurrency == pytest.approx(16 + t * 48, rel=1e-3)
    assert sizing.operating_point.limiting_slo == "ttft_p99_ms"


def test_slo_holding_at_every_level_uses_the_last_point_and_warns_that_the_limit_is_beyond_the_data():
    sizing = size_inference(sweep_of(PLAIN), slos={"p99_ms": 1000}, peak_qps=100)
    assert sizing.operating_point.concurrency == 16 and not sizing.operating_point.interpolated
    assert "inference.slo_not_reached" in [w.key for w in sizing.warnings]


def test_no_point_meets_slo_reports_lowest_measured_latency_and_suggests_more_hardware():
    with pytest.raises(InputError) as err:
        size_inference(sweep_of(PLAIN), slos={"p99_ms": 50}, peak_qps=100)
    e = err.value
    assert (e.field, e.key) == ("slos", "inference.no_point_meets_slo")
    assert e.params["metric"] == "p99_ms" and e.params["lowest"] == "85" and e.params["slo"] == "50"
    assert "faster GPU" in str(e)


def test_slo_percentile_missing_from_the_data_names_the_file_and_key():
    with pytest.raises(InputError) as err:
        size_inference(sweep_of("k6-summary-export-old.json"), slos={"p99_ms": 200}, peak_qps=100)
    e = err.value
    assert (e.field, e.key) == ("k6-summary-export-old.json", "inference.slo_not_in_data")
    assert e.params["missing"] == "p99_ms" and "p95_ms" in e.params["available"]


def test_slo_missing_in_only_one_of_several_files_names_only_that_file():
    sweep = sweep_of("vllm-old-c2-Llama-2-7b-chat-hf-20240315-101500.json", VLLM_NEW.format(4))
    with pytest.raises(InputError) as err:
        size_inference(sweep, slos={"ttft_p95_ms": 100}, peak_qps=10)
    assert err.value.field == "vllm-old-c2-Llama-2-7b-chat-hf-20240315-101500.json"


# -- replica rules ----------------------------------------------------------------------------------


def test_replicas_round_up_load_over_target_utilisation():
    # 300 / (145 × 0.8) = 300 / 116 = 2.59 → 3 replicas.
    sizing = size_inference(sweep_of(PLAIN), slos={"p99_ms": 200}, peak_qps=300, gpus_per_replica=2)
    assert (sizing.replicas, sizing.gpus) == (3, 6)
    assert sizing.formula == "replicas = max(ceil(300 / (145 × 0.8)), 2) = 3; gpus = 3 × 2 = 6"


def test_exact_multiple_does_not_round_up_past_it():
    # 232 / 116 = 2 exactly (floating point gives 1.9999999999999998 or 2.0000000000000004).
    assert replicas_needed(232, 145, 0.8, 1, False) == 2
    assert replicas_needed(120, 50, 0.8, 1, False) == 3


def test_min_replicas_is_the_floor_for_small_loads():
    # 50 / 116 = 0.43 → 1 replica of load, raised to the HA minimum of 2.
    sizing = size_inference(sweep_of(PLAIN), slos={"p99_ms": 200}, peak_qps=50)
    assert sizing.replicas == 2
    sizing = size_inference(sweep_of(PLAIN), slos={"p99_ms": 200}, peak_qps=50, min_replicas=1)
    assert sizing.replicas == 1


def test_n_plus_one_adds_a_spare_on_top_of_the_load_before_the_ha_floor():
    assert size_inference(sweep_of(PLAIN), slos={"p99_ms": 200}, peak_qps=300, n_plus_one=True).replicas == 4
    # One replica of load + 1 spare = 2, which the HA floor of 2 already covers.
    assert size_inference(sweep_of(PLAIN), slos={"p99_ms": 200}, peak_qps=50, n_plus_one=True).replicas == 2


def test_mean_qps_gives_a_comparison_count():
    sizing = size_inference(
        sweep_of(PLAIN), slos={"p99_ms": 200}, peak_qps=600, mean_qps=200, gpus_per_replica=2,
    )
    # peak: 600 / 116 = 5.17 → 6; mean: 200 / 116 = 1.72 → 2.
    d = sizing.as_dict()
    assert (d["replicas"], d["gpus"], d["replicas_for_mean"], d["gpus_for_mean"]) == (6, 12, 2, 4)


def test_defaults_come_from_the_data_file():
    defaults = load_defaults()
    assert defaults["target_utilization"] == 0.8 and defaults["min_replicas"] == 2
    d = size_inference(sweep_of(PLAIN), slos={"p99_ms": 200}, peak_qps=10).as_dict()
    assert d["target_util"] == 0.8 and d["min_replicas"] == 2


def test_as_dict_has_the_documented_keys():
    d = size_inference(sweep_of(PLAIN), slos={"p99_ms": 200}, peak_qps=300).as_dict()
    for key in ("max_qps_per_replica", "replicas", "gpus", "operating_point", "curve",
                "replicas_for_mean", "gpus_for_mean", "warnings", "formula"):
        assert key in d
    assert d["operating_point"]["interpolated"] is True
    assert d["operating_point"]["limiting_slo"] == "p99_ms"
    assert len(d["curve"]) == 4 and d["curve"][0]["concurrency"] == 1


# -- Little's law ---------------------------------------------------------------------------------------


def test_littles_law_flags_a_point_whose_concurrency_disagrees_with_qps_times_latency():
    # c=8: 125 QPS × 0.040 s = 5 in flight, 37.5 % off the stated 8 (> 25 %): flagged.
    # Other points: 18.5 × 0.052 = 0.96 (4 % off), 70 × 0.0558 = 3.91, 175 × 0.089 = 15.6.
    sweep = csv_sweep(
        "concurrency,qps,mean_ms,p50_ms,p95_ms,p99_ms\n"
        "1,18.5,52,50,70,85\n4,70,55.8,53,92,110\n8,125,40,58,135,160\n16,175,89,80,225,260\n"
    )
    sizing = size_inference(sweep, slos={"p99_ms": 200}, peak_qps=100)
    flagged = [w for w in sizing.warnings if w.key == "inference.littles_law_inconsistent"]
    assert len(flagged) == 1
    assert flagged[0].params["concurrency"] == "8" and flagged[0].params["deviation_pct"] == 38
    assert [p["littles_law_inconsistent"] for p in sizing.as_dict()["curve"]] == [False, False, True, False]


def test_littles_law_is_not_checked_without_mean_latency():
    sweep = csv_sweep("concurrency,qps,p50_ms,p95_ms,p99_ms\n1,500,50,70,85\n4,900,53,92,110\n")
    sizing = size_inference(sweep, slos={"p99_ms": 200}, peak_qps=100)
    assert not [w for w in sizing.warnings if w.key == "inference.littles_law_inconsistent"]


# -- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"peak_qps": 0}, "peak_qps"),
        ({"peak_qps": -5}, "peak_qps"),
        ({"peak_qps": float("nan")}, "peak_qps"),
        ({"target_util": 1.5}, "target_util"),
        ({"target_util": 0}, "target_util"),
        ({"gpus_per_replica": 0}, "gpus_per_replica"),
        ({"gpus_per_replica": 1.5}, "gpus_per_replica"),
        ({"min_replicas": 0}, "min_replicas"),
        ({"mean_qps": 500}, "mean_qps"),
        ({"slos": {"p98_ms": 100}}, "slos"),
        ({"slos": {}}, "slos"),
        ({"slos": {"p99_ms": -1}}, "slos.p99_ms"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    args = {"slos": {"p99_ms": 200}, "peak_qps": 100} | kwargs
    with pytest.raises(InputError) as err:
        size_inference(sweep_of(PLAIN), **args)
    assert err.value.field == field


# -- LLM sizing without a load test -----------------------------------------------------------------------


def test_llama2_70b_kv_cache_per_token_is_327680_bytes():
    # 2 (K, V) × 80 layers × 8 KV heads × 128 head dim × 2 bytes (bf16) = 327,680 bytes.
    assert kv_cache_bytes_per_token(layers=80, kv_heads=8, head_dim=128, kv_bytes=2) == 327_680


def test_llama2_70b_on_a100_80gb_needs_tp4_and_bounds_decode_by_bandwidth():
    a100 = load_catalog().get("A100-80GB")
    s = size_llm(params=70e9, layers=80, kv_heads=8, head_dim=128, tokens_in_flight=32_768, gpu=a100,
                 overhead_fraction=0.2, concurrent_sequences=16)
    # weights 70e9 × 2 = 140 GB; KV 327,680 × 32,768 = 10,737,418,240 B;
    # total (140e9 + 10.737e9) × 1.2 = 180.88 GB → TP 2 gives 90.4 GB/GPU > 80, TP 4 gives 45.2.
    assert s.weights_bytes == 140e9
    assert s.kv_cache_bytes == 10_737_418_240
    assert s.total_bytes == pytest.approx(180_884_901_888)
    assert s.tensor_parallel == 4
    # Decode step reads (140e9 + 10.737e9) / 4 = 37.68 GB per GPU at 2,039 GB/s → 54.1 steps/s.
    assert s.decode_tokens_per_s_per_sequence_upper_bound == pytest.approx(2039e9 * 4 / 150_737_418_240)
    assert s.decode_tokens_per_s_per_sequence_upper_bound == pytest.approx(54.11, abs=0.01)
    assert s.decode_tokens_per_s_upper_bound == pytest.approx(16 * 54.108, rel=1e-3)
    d = s.as_dict()
    assert d["is_upper_bound"] is True and d["notes"][0]["key"] == "inference.llm_decode_upper_bound"


def test_llm_on_a_larger_gpu_needs_a_smaller_tp():
    h200 = load_catalog().get("H200-SXM")
    s = size_llm(params=70e9, layers=80, kv_heads=8, head_dim=128, tokens_in_flight=32_768, gpu=h200,
                 overhead_fraction=0.2)
    assert s.tensor_parallel == 2  # 90.4 GB per GPU ≤ 141 GB


def test_llm_overhead_default_comes_from_the_data_file():
    a100 = load_catalog().get("A100-80GB")
    s = size_llm(params=7e9, layers=32, kv_heads=32, head_dim=128, tokens_in_flight=4096, gpu=a100)
    assert s.overhead_fraction == load_defaults()["llm_overhead_fraction"]
    assert s.tensor_parallel == 1


def test_llm_that_fits_on_no_tp_size_is_an_input_error_on_gpu():
    t4 = load_catalog().get("T4")
    with pytest.raises(InputError) as err:
        size_llm(params=405e9, layers=126, kv_heads=8, head_dim=128, tokens_in_flight=8192, gpu=t4)
    assert (err.value.field, err.value.key) == ("gpu", "inference.llm_does_not_fit")


def test_llm_bad_argument_names_the_field():
    a100 = load_catalog().get("A100-80GB")
    with pytest.raises(InputError) as err:
        size_llm(params=7e9, layers=0, kv_heads=8, head_dim=128, tokens_in_flight=1, gpu=a100)
    assert err.value.field == "layers"
