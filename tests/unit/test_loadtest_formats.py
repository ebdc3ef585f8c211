"""Load-test parsers: every supported format on its sample file, and the bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InputError
from core.estimation.loadtest_formats import (
    LATENCY_KEYS,
    detect_format,
    parse_loadtest,
    parse_sweep,
)
from core.i18n import catalog, placeholders, translate

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "loadtests"
VLLM_NEW = "vllm-infqps-concurrency{}-Llama-3.1-8B-Instruct-20250301-101500.json"


def load(name: str) -> tuple[str, bytes]:
    return name, (FIXTURES / name).read_bytes()


def one(name: str):
    points = parse_loadtest(*load(name))
    assert len(points) == 1
    return points[0]


@pytest.fixture(autouse=True)
def strict_i18n(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_I18N_STRICT", "1")


# -- detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt",
    [
        (VLLM_NEW.format(16), "vllm"),
        ("vllm-old-c2-Llama-2-7b-chat-hf-20240315-101500.json", "vllm"),
        ("profile_export_genai_perf.json", "genai_perf"),
        ("meta-llama-Llama-3-1-8B-Instruct_512_128_summary.json", "llmperf"),
        ("k6-summary-export-old.json", "k6"),
        ("k6-handlesummary-new.json", "k6"),
        ("locust_u32_stats.csv", "locust_stats"),
        ("locust_step_stats_history.csv", "locust_history"),
        ("plain_curve.csv", "plain_csv"),
    ],
)
def test_detect_format_recognises_each_sample(name, fmt):
    assert detect_format(*load(name)) == fmt


def test_detect_format_uses_content_not_file_name():
    _, content = load("profile_export_genai_perf.json")
    assert detect_format("results.csv", content) == "genai_perf"
    _, content = load("plain_curve.csv")
    assert detect_format("export.json", content) == "plain_csv"


# -- vLLM -----------------------------------------------------------------------------------------


def test_vllm_new_layout_reads_max_concurrency_throughput_and_all_latency_families():
    p = one(VLLM_NEW.format(16))
    assert p.concurrency == 16
    doc = json.loads((FIXTURES / VLLM_NEW.format(16)).read_text())
    assert p.qps == pytest.approx(doc["request_throughput"])
    assert p.latency_ms["mean_ms"] == pytest.approx(doc["mean_e2el_ms"])
    assert p.latency_ms["p50_ms"] == pytest.approx(doc["median_e2el_ms"])  # median → p50
    assert p.latency_ms["p99_ms"] == pytest.approx(doc["p99_e2el_ms"])
    assert p.latency_ms["ttft_p99_ms"] == pytest.approx(doc["p99_ttft_ms"])
    assert p.latency_ms["tpot_mean_ms"] == pytest.approx(doc["mean_tpot_ms"])
    assert not any(k.startswith("itl") for k in p.latency_ms)  # ITL is not a sizing metric here
    assert not p.concurrency_estimated


def test_vllm_old_layout_reads_request_inthroughput_and_concurrency_from_file_name():
    p = one("vllm-old-c2-Llama-2-7b-chat-hf-20240315-101500.json")
    assert p.concurrency == 2
    assert p.qps == pytest.approx(1.963, abs=1e-3)
    assert p.latency_ms["ttft_mean_ms"] == 28.0
    assert p.latency_ms["ttft_p99_ms"] == pytest.approx(38.64)
    assert "p99_ms" not in p.latency_ms  # the old script had no end-to-end latency


def test_vllm_old_layout_without_concurrency_anywhere_is_an_input_error_naming_the_file():
    _, content = load("vllm-old-c2-Llama-2-7b-chat-hf-20240315-101500.json")
    with pytest.raises(InputError) as err:
        parse_loadtest("vllm-1.0qps-Llama-2-7b-chat-hf-20240315.json", content)
    assert err.value.field == "vllm-1.0qps-Llama-2-7b-chat-hf-20240315.json"
    assert err.value.key == "error.loadtest_no_concurrency"


def test_vllm_request_rate_run_without_max_concurrency_estimates_concurrency_by_littles_law():
    doc = json.loads((FIXTURES / VLLM_NEW.format(4)).read_text())
    doc["max_concurrency"] = None
    doc["request_rate"] = 4.0
    (p,) = parse_loadtest("vllm-4.0qps-model.json", json.dumps(doc).encode())
    assert p.concurrency_estimated
    assert p.concurrency == pytest.approx(doc["request_throughput"] * doc["mean_e2el_ms"] / 1000, rel=1e-3)
    sweep = parse_sweep([("vllm-4.0qps-model.json", json.dumps(doc).encode())])
    assert [w.key for w in sweep.warnings] == ["loadtest.concurrency_estimated"]


# -- GenAI-Perf, llmperf ----------------------------------------------------------------------------


def test_genai_perf_maps_request_latency_ttft_and_inter_token_latency():
    p = one("profile_export_genai_perf.json")
    assert p.concurrency == 8  # input_config.concurrency
    assert p.qps == pytest.approx(6.7625, abs=1e-3)
    assert p.latency_ms["mean_ms"] == 1183.0
    assert p.latency_ms["ttft_p99_ms"] == pytest.approx(55.2)
    assert p.latency_ms["tpot_p50_ms"] == pytest.approx(8.91)


def test_genai_perf_nested_input_config_of_newer_versions_gives_concurrency():
    doc = json.loads((FIXTURES / "profile_export_genai_perf.json").read_text())
    doc["input_config"] = {"perf_analyzer": {"stimulus": {"concurrency": 32}}}
    (p,) = parse_loadtest("profile_export_genai_perf.json", json.dumps(doc).encode())
    assert p.concurrency == 32


def test_llmperf_summary_converts_seconds_to_ms_and_per_minute_to_qps():
    p = one("meta-llama-Llama-3-1-8B-Instruct_512_128_summary.json")
    assert p.concurrency == 2  # num_concurrent_requests
    assert p.qps == pytest.approx(117.8073 / 60, rel=1e-4)
    assert p.latency_ms["ttft_p99_ms"] == pytest.approx(38.64)
    assert p.latency_ms["mean_ms"] == pytest.approx(1018.6)
    assert p.latency_ms["tpot_mean_ms"] == pytest.approx(7.8)


# -- k6 -------------------------------------------------------------------------------------------------


def test_k6_old_summary_export_layout_reads_top_level_stats_and_vus():
    p = one("k6-summary-export-old.json")
    assert p.concurrency == 10
    assert p.qps == pytest.approx(222.2222, rel=1e-6)
    assert p.latency_ms["mean_ms"] == 44.8
    assert p.latency_ms["p50_ms"] == pytest.approx(42.56)  # med
    assert p.latency_ms["p95_ms"] == pytest.approx(64.96)
    assert "p99_ms" not in p.latency_ms  # not in k6's default summaryTrendStats


def test_k6_new_handle_summary_layout_reads_values_and_p99():
    p = one("k6-handlesummary-new.json")
    assert p.concurrency == 20
    assert p.qps == pytest.approx(230.6805, rel=1e-6)
    assert p.latency_ms["p99_ms"] == pytest.approx(164.35)
    assert p.latency_ms["p90_ms"] == pytest.approx(112.45)


def test_k6_prefers_successful_response_submetric_over_all_requests():
    doc = json.loads((FIXTURES / "k6-handlesummary-new.json").read_text())
    doc["metrics"]["http_req_duration"]["values"]["p(99)"] = 5.0  # failures answered fast
    (p,) = parse_loadtest("k6.json", json.dumps(doc).encode())
    assert p.latency_ms["p99_ms"] == pytest.approx(164.35)


# -- Locust ------------------------------------------------------------------------------------------------


def test_locust_stats_uses_aggregated_row_and_user_count_from_file_name():
    p = one("locust_u32_stats.csv")
    assert p.concurrency == 32
    assert p.qps == pytest.approx(265.560166)
    assert p.latency_ms == {"mean_ms": 120.5, "p50_ms": 114, "p90_ms": 157, "p95_ms": 175, "p99_ms": 223}


def test_locust_history_makes_one_point_per_user_count_plateau_from_total_deltas():
    name, content = load("locust_step_stats_history.csv")
    points = parse_loadtest(name, content)
    assert [p.concurrency for p in points] == [8, 16, 32]
    # Each plateau ran at users / mean latency: 8/0.060 = 133 req/s (rounded per second in the
    # file), 16/0.075 = 213, 32/0.120 = 267; the means come back exactly from the cumulative totals.
    assert [round(p.qps) for p in points] == [133, 213, 267]
    assert [p.latency_ms["mean_ms"] for p in points] == pytest.approx([60.0, 75.0, 120.0])


def test_locust_history_without_full_history_warns_that_percentiles_are_cumulative():
    sweep = parse_sweep([load("locust_step_stats_history.csv")])
    assert [w.key for w in sweep.warnings] == ["loadtest.locust_cumulative_percentiles"]


# -- plain CSV -------------------------------------------------------------------------------------------------


def test_plain_csv_reads_every_row_and_optional_columns():
    points = parse_loadtest(*load("plain_curve.csv"))
    assert [(p.concurrency, p.qps) for p in points] == [(1, 18.5), (4, 70), (8, 125), (16, 175)]
    assert points[2].latency_ms == {"mean_ms": 62.5, "p50_ms": 58, "p90_ms": 115, "p95_ms": 135, "p99_ms": 160}


def test_plain_csv_accepts_llm_columns_and_skips_levels_where_every_request_failed():
    content = (
        b"concurrency,qps,p50_ms,p95_ms,p99_ms,ttft_p99_ms,p99_tpot_ms,errors\n"
        b"1,2.0,480,510,530,40,9.5,0\n"
        b"2,0,,,,,,12\n"
    )
    (p,) = parse_loadtest("llm.csv", content)
    assert p.latency_ms["ttft_p99_ms"] == 40 and p.latency_ms["tpot_p99_ms"] == 9.5


def test_plain_csv_bad_number_names_file_line_and_column():
    content = b"concurrency,qps,p50_ms,p95_ms,p99_ms\n1,10,50,60,70\n2,twenty,55,70,90\n"
    with pytest.raises(InputError) as err:
        parse_loadtest("curve.csv", content)
    assert (err.value.field, err.value.key) == ("curve.csv", "error.loadtest_bad_csv_value")
    assert err.value.params["line"] == 3 and err.value.params["column"] == "qps"


def test_plain_csv_missing_required_column_names_it():
    with pytest.raises(InputError) as err:
        parse_loadtest("curve.csv", b"concurrency,qps,p50_ms\n1,10,50\n")
    assert err.value.key == "error.loadtest_missing_field"
    assert "p99_ms" in err.value.params["missing"]


def test_plain_csv_repeated_concurrency_in_one_file_names_both_lines():
    content = b"concurrency,qps,p50_ms,p95_ms,p99_ms\n1,10,50,60,70\n1,11,52,61,72\n"
    with pytest.raises(InputError) as err:
        parse_loadtest("curve.csv", content)
    assert err.value.key == "error.loadtest_duplicate_row"
    assert (err.value.params["line"], err.value.params["first_line"]) == (3, 2)


# -- bad inputs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"   \n\n"])
def test_empty_file_is_an_input_error_naming_it(content):
    with pytest.raises(InputError) as err:
        parse_loadtest("empty.json", content)
    assert (err.value.field, err.value.key) == ("empty.json", "error.loadtest_empty")


def test_truncated_json_is_an_input_error_with_line_and_column():
    content = (FIXTURES / VLLM_NEW.format(4)).read_bytes()[:300]
    with pytest.raises(InputError) as err:
        parse_loadtest("cut.json", content)
    assert (err.value.field, err.value.key) == ("cut.json", "error.loadtest_invalid_json")
    assert err.value.params["line"] == 1 and err.value.params["column"] > 0


@pytest.mark.parametrize(
    "content",
    [b'{"hello": "world"}', b"[1, 2, 3]", b"name,value\na,1\n", b"\xff\xfe\x00binary"],
)
def test_unknown_format_is_an_input_error_listing_supported_formats(content):
    with pytest.raises(InputError) as err:
        parse_loadtest("mystery.dat", content)
    assert (err.value.field, err.value.key) == ("mystery.dat", "error.loadtest_unknown_format")
    assert "vllm" in err.value.params["formats"]


def test_k6_file_without_http_reqs_names_the_missing_metric():
    doc = json.loads((FIXTURES / "k6-summary-export-old.json").read_text())
    del doc["metrics"]["http_reqs"]
    with pytest.raises(InputError) as err:
        parse_loadtest("k6.json", json.dumps(doc).encode())
    assert err.value.key == "error.loadtest_missing_field"
    assert err.value.params["missing"] == "metrics.http_reqs"


def test_negative_throughput_is_an_input_error_naming_the_key():
    doc = json.loads((FIXTURES / VLLM_NEW.format(4)).read_text())
    doc["request_throughput"] = -3
    with pytest.raises(InputError) as err:
        parse_loadtest("v.json", json.dumps(doc).encode())
    assert err.value.key == "error.loadtest_bad_value" and err.value.params["entry"] == "request_throughput"


# -- sweeps ---------------------------------------------------------------------------------------------------------


def test_sweep_of_several_files_is_sorted_by_concurrency_and_lists_sources():
    files = [load(VLLM_NEW.format(c)) for c in (64, 1, 16, 4)]
    sweep = parse_sweep(files)
    assert [p.concurrency for p in sweep.points] == [1, 4, 16, 64]
    assert sweep.sources == tuple((name, "vllm") for name, _ in files)
    assert "ttft_p99_ms" in sweep.available_keys()


def test_sweep_mixes_formats_and_keeps_sources_in_input_order():
    sweep = parse_sweep([load(VLLM_NEW.format(4)), load("profile_export_genai_perf.json"),
                         load("meta-llama-Llama-3-1-8B-Instruct_512_128_summary.json")])
    assert [p.concurrency for p in sweep.points] == [2, 4, 8]
    assert [fmt for _, fmt in sweep.sources] == ["vllm", "genai_perf", "llmperf"]


def test_same_concurrency_with_same_numbers_in_two_files_is_merged():
    name, content = load(VLLM_NEW.format(4))
    sweep = parse_sweep([(name, content), ("copy-of-" + name, content)])
    assert [p.concurrency for p in sweep.points] == [4]


def test_same_concurrency_with_conflicting_numbers_names_both_files():
    name, content = load(VLLM_NEW.format(4))
    doc = json.loads(content)
    doc["request_throughput"] *= 1.5
    with pytest.raises(InputError) as err:
        parse_sweep([(name, content), ("rerun-concurrency4.json", json.dumps(doc).encode())])
    assert err.value.key == "error.loadtest_duplicate_concurrency"
    assert err.value.field == "rerun-concurrency4.json"
    assert err.value.params["first"] == name


def test_empty_file_list_is_an_input_error():
    with pytest.raises(InputError) as err:
        parse_sweep([])
    assert (err.value.field, err.value.key) == ("files", "error.loadtest_no_files")


# -- catalogs ---------------------------------------------------------------------------------------------------------


def test_every_message_of_these_modules_exists_in_both_languages_with_the_same_placeholders():
    import re

    sources = [
        Path("core/estimation/loadtest_formats.py"), Path("core/estimation/inference.py"),
        Path("core/loadtest.py"), Path("core/cli/loadtest.py"), Path("core/cli/estimate_inference.py"),
    ]
    root = Path(__file__).resolve().parents[2]
    keys = set()
    for src in sources:
        keys |= set(re.findall(r'"((?:error\.loadtest_|inference\.|loadtest\.)[a-z_.]+)"', (root / src).read_text()))
    assert len(keys) > 30
    en, zh = catalog("en"), catalog("zh-CN")
    for key in sorted(keys):
        assert key in en and key in zh, key
        assert placeholders(en[key]) == placeholders(zh[key]), key


def test_latency_keys_cover_plain_ttft_and_tpot_statistics():
    assert LATENCY_KEYS[:5] == ("mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms")
    assert "ttft_p99_ms" in LATENCY_KEYS and "tpot_mean_ms" in LATENCY_KEYS


def test_errors_render_in_both_languages_and_the_cli_prefixes_the_file_name():
    from core.cli import _render

    with pytest.raises(InputError) as err:
        parse_loadtest("empty.json", b"")
    assert translate(err.value.key, "zh-CN", **err.value.params)
    assert _render(err.value, "en").startswith("empty.json: ")
