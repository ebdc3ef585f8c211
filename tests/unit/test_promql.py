"""PromQL builders, escaping, chunking, the pure decoders, settings and the stale fallback (no server)."""

from __future__ import annotations

import ast
import re
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InputError
from core.i18n import translate
from core.metrics import promql
from core.metrics.prometheus import (
    MetricsUnavailable, decode_allocatable, decode_daily, decode_gpu_quotas, decode_gpu_requests, decode_latest,
    decode_series, model_mapper, parse_servers, prometheus_settings, with_last_good,
)
from core.metrics.schema import ROLLUP_SCHEMA

NASTY = ['a"b', "a\\b", "a\nb", 'x"} or vector(1) or foo{y="', ".*", "team-a|team-b", "(a)[b]{2}^$+?", "\\\"\n\r\t\x01", "命名空间"]


# --------------------------------------------------------------------------- escaping


@pytest.mark.parametrize("value", NASTY)
def test_quoted_value_reads_back_as_the_same_string(value):
    # PromQL double-quoted strings follow Go's escapes, which Python's literal syntax shares.
    assert ast.literal_eval(promql.quote(value)) == value


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_text_quotes_to_one_closed_string_literal(value):
    quoted = promql.quote(value)
    assert ast.literal_eval(quoted) == value
    assert "\n" not in quoted
    # the only unescaped double quotes are the two delimiters
    assert len(re.findall(r'(?<!\\)(?:\\\\)*"', quoted[1:-1])) == 0


@given(st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_regex_escaped_value_matches_itself_only(value):
    pattern = promql.regex_escape(value)
    assert re.fullmatch(pattern, value, flags=re.S)


@pytest.mark.parametrize(("value", "other"), [("team.a", "team-a"), ("a|b", "a"), ("x.*", "xyz"), ("(a)", "a"), ("a+", "aa")])
def test_regex_matcher_does_not_widen_to_other_values(value, other):
    m = promql.regex_matcher("namespace", [value])
    pattern = ast.literal_eval(m.split("=~", 1)[1])
    assert re.fullmatch(pattern, value) and not re.fullmatch(pattern, other)


@pytest.mark.parametrize("value", NASTY)
def test_namespace_filter_holds_exactly_one_literal_per_matcher(value):
    query = promql.gpu_series(namespace=value)
    literals = re.findall(r'(?:exported_namespace|namespace)="((?:[^"\\]|\\.)*)"', query)
    decoded = {ast.literal_eval(f'"{lit}"') for lit in literals}
    assert decoded == {value, ""}  # the value, and exported_namespace="" for the plain style
    assert "vector(1)" not in query.replace(promql.escape_value(value), "")


def test_label_and_metric_names_are_validated():
    with pytest.raises(ValueError):
        promql.matcher('namespace"} or up{x', "a")
    with pytest.raises(ValueError):
        promql.selector("up or vector(1)")


# --------------------------------------------------------------------------- query shape


def test_both_label_styles_are_normalised_in_the_query():
    q = promql.daily_gpu_stats(promql.day_window(date(2025, 1, 2)))
    assert '"namespace", "$1", "exported_namespace", "(.+)"' in q
    assert '"hostname", "$1", "Hostname", "(.+)"' in q
    assert "by (UUID, gpu, hostname, modelName, namespace)" in q


def test_utilisation_prefers_prof_and_falls_back_to_dev_percent():
    q = promql.latest_samples()
    prof, dev = q.index(promql.PROF_UTIL), q.index(promql.DEV_UTIL)
    assert prof < dev and ") or (" in q and "/ 100" in q[dev:]
    daily = promql.daily_gpu_stats(promql.day_window(date(2025, 1, 2)))
    assert "DCGM_FI_DEV_MEM_COPY_UTIL" not in daily  # bandwidth, never memory occupancy


def test_day_window_covers_exactly_the_utc_day():
    w = promql.day_window(date(2025, 3, 1))
    assert w.eval_time == datetime(2025, 3, 1, 23, 59, 59, 999000, tzinfo=timezone.utc)
    assert w.range == "86399999ms"
    # Prometheus 2.x: [eval - range, eval] inclusive == [00:00:00.000, 23:59:59.999]
    assert w.eval_time - timedelta(milliseconds=w.range_ms) == datetime(2025, 3, 1, tzinfo=timezone.utc)
    assert promql.day_window(date(2025, 3, 1), left_open=True).range == "86400000ms"


def test_query_text_does_not_grow_with_the_number_of_namespaces():
    # the builders take no list of allocations at all: one query serves 10 or 10,000 namespaces
    w = promql.day_window(date(2025, 1, 2))
    import inspect

    # The builder takes a day window and at most ONE namespace (for a usage sheet): no list of
    # allocations can reach it, so the fleet query is the same text for 10 or 10,000 namespaces.
    assert list(inspect.signature(promql.daily_gpu_stats).parameters) == ["window", "namespace"]
    query = promql.daily_gpu_stats(w)
    assert "namespace=" not in query and "namespace=~" not in query
    assert len(query) < 6000  # one fixed-size query, whatever the fleet


def test_kube_state_metrics_queries_join_running_phase_and_filter_gpu_resources():
    q = promql.running_gpu_requests()
    assert 'resource="nvidia_com_gpu"' in q and 'phase="Running"' in q and "== 1" in q
    assert "on (namespace, pod) group_left" in q
    assert 'resource="requests.nvidia.com/gpu"' in promql.gpu_quotas()
    assert 'kube_node_status_allocatable{resource="nvidia_com_gpu"}' in promql.allocatable_gpus()


# --------------------------------------------------------------------------- chunking


@given(st.integers(min_value=0, max_value=40 * 86400), st.sampled_from([1, 15, 30, 60, 300]), st.integers(1, 10_999))
@settings(max_examples=200, deadline=None)
def test_range_chunks_stay_below_the_point_limit_and_cover_every_step_once(span_s, step_s, max_points):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    end = start + timedelta(seconds=span_s)
    chunks = promql.range_chunks(start, end, step_s, max_points)
    assert chunks[0][0] == start and chunks[-1][1] <= end
    assert end - chunks[-1][1] < timedelta(seconds=step_s)
    for lo, hi in chunks:
        assert promql.points(lo, hi, step_s) <= max_points < 11_000
        assert (hi - lo).total_seconds() / step_s <= 11_000
    for (_, prev_hi), (lo, _) in zip(chunks, chunks[1:]):
        assert lo - prev_hi == timedelta(seconds=step_s)
    assert sum(promql.points(lo, hi, step_s) for lo, hi in chunks) == promql.points(start, end, step_s)


def test_a_week_at_fifteen_seconds_needs_five_chunks():
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert len(promql.range_chunks(start, start + timedelta(days=7), 15)) == 5  # 40,321 points


# --------------------------------------------------------------------------- decoders


def _v(labels: dict, value) -> dict:
    return {"metric": labels, "value": [1735776000.0, str(value)]}


GPU = {"UUID": "GPU-1", "gpu": "0", "hostname": "n1", "modelName": "NVIDIA A800-SXM4-80GB"}


def test_decode_daily_builds_rollup_rows_with_the_rollup_definitions():
    ns = GPU | {"namespace": "team-a"}
    idle = GPU | {"UUID": "GPU-2", "gpu": "1", "namespace": "gpu-operator"}
    result = [_v(ns | {"stat": k}, v) for k, v in
              {"mean_util": 0.5, "peak_util": 0.9, "samples": 720, "used_sum": 720 * 40000.0, "free_sum": 720 * 40000.0,
               "used_max": 60000.0, "used_n": 720, "energy_mj": 3.6e9}.items()]
    result += [_v(idle | {"stat": "samples"}, 1440), _v(idle | {"stat": "mean_util"}, 0.0)]
    frame = decode_daily(result, cluster="hq", day=date(2025, 1, 1), step_s=60, model_of=lambda m: "A800-80GB")
    assert frame.schema == pl.Schema(ROLLUP_SCHEMA)
    row = frame.filter(pl.col("uuid") == "GPU-1").row(0, named=True)
    assert row["mean_mem"] == pytest.approx(0.5) and row["peak_mem"] == pytest.approx(0.75)
    assert row["allocated_gpu_hours"] == 12.0 and row["used_gpu_hours"] == pytest.approx(6.0)
    assert row["energy_kwh"] == pytest.approx(1.0) and row["coverage"] == 0.5 and row["model"] == "A800-80GB"
    idle_row = frame.filter(pl.col("uuid") == "GPU-2").row(0, named=True)
    assert idle_row["namespace"] == "" and idle_row["allocated_gpu_hours"] == 0.0 and idle_row["mean_mem"] is None


def test_empty_results_decode_to_empty_frames_with_the_schema():
    assert decode_daily([], cluster="hq", day=date(2025, 1, 1), step_s=60).schema == pl.Schema(ROLLUP_SCHEMA)
    assert decode_latest([], cluster="hq").height == 0
    assert decode_series([], cluster="hq").height == 0
    assert decode_gpu_requests([], cluster="hq") == [] and decode_gpu_quotas([], cluster="hq") == []


def test_non_finite_values_decode_to_null():
    labels = GPU | {"namespace": "a", "pod": "p"}
    frame = decode_latest([_v(labels | {"stat": "ts"}, 1735776000), _v(labels | {"stat": "util"}, "NaN")], cluster="hq")
    assert frame["util"].to_list() == [None]


def test_kube_state_metrics_decoders_give_typed_records():
    reqs = decode_gpu_requests([_v({"namespace": "b"}, 2), _v({"namespace": "a"}, 1)], cluster="hq")
    assert [(r.namespace, r.gpus) for r in reqs] == [("a", 1.0), ("b", 2.0)]
    quotas = decode_gpu_quotas([_v({"namespace": "a", "type": "hard"}, 4), _v({"namespace": "a", "type": "used"}, 3)], cluster="hq")
    assert (quotas[0].hard, quotas[0].used) == (4.0, 3.0)
    assert decode_allocatable([_v({"node": "n1"}, 8)], cluster="hq")[0].gpus == 8.0


# --------------------------------------------------------------------------- models and settings


@pytest.mark.parametrize(("name", "expected"), [
    ("NVIDIA A800-SXM4-80GB", "A800-80GB"), ("NVIDIA A100-SXM4-80GB", "A100-80GB"), ("NVIDIA H100 80GB HBM3", "H100-SXM"),
    ("NVIDIA H20", "H20"), ("Tesla T4", "T4"), ("NVIDIA L40S", "L40S"), ("Mystery GPU 9000", "Mystery GPU 9000"),
])
def test_dcgm_model_names_map_to_catalog_ids(name, expected):
    assert model_mapper()(name) == expected


def test_servers_setting_takes_cluster_url_pairs_or_one_bare_url():
    assert parse_servers("hq-beijing-1=http://p.hq:9090/, js-nanjing=https://p.js") == {
        "hq-beijing-1": "http://p.hq:9090", "js-nanjing": "https://p.js"}
    assert parse_servers("http://localhost:9090") == {"default": "http://localhost:9090"}
    assert parse_servers("") == {}
    for bad in ("hq=ftp://x", "hq", "=http://x", "hq=http://a,hq=http://b"):
        with pytest.raises(InputError) as err:
            parse_servers(bad)
        assert err.value.field == "COMPUTELOOP_PROMETHEUS_URLS"


def test_settings_are_read_from_the_environment_when_called(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_URLS", "hq=http://a:9090")
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_TIMEOUT_S", "2.5")
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_EXPORTER_NAMESPACES", "gpu-operator, dcgm")
    s = prometheus_settings()
    assert s.servers == {"hq": "http://a:9090"} and s.timeout_s == 2.5 and s.exporter_namespaces == ("gpu-operator", "dcgm")
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_TIMEOUT_S", "soon")
    with pytest.raises(InputError):
        prometheus_settings()


# --------------------------------------------------------------------------- stale fallback


def test_last_good_frame_is_returned_with_its_age_when_the_server_fails():
    cache: dict = {}
    t0 = datetime(2025, 1, 1, 8, 0, tzinfo=timezone.utc)
    good = pl.DataFrame({"x": [1]})
    fresh = with_last_good(lambda: good, cache, now=t0)
    assert not fresh.stale and fresh.banner() is None

    def down():
        raise MetricsUnavailable("prometheus.unreachable", cluster="hq", url="http://p", reason="refused")

    stale = with_last_good(down, cache, now=t0 + timedelta(minutes=7))
    assert stale.stale and stale.frame.equals(good) and stale.age == timedelta(minutes=7)
    assert stale.error.cluster == "hq"
    text = stale.banner().render("en")
    assert "2025-01-01 08:00 UTC" in text and "7 min" in text and "stale" in text
    assert "过时" in stale.banner().render("zh-CN")
    with pytest.raises(MetricsUnavailable):
        with_last_good(down, {}, now=t0)


def test_outage_messages_name_the_server_in_both_languages():
    err = MetricsUnavailable("prometheus.timeout", cluster="js-nanjing", url="http://p.js:9090", seconds="2")
    assert "js-nanjing" in str(err) and "http://p.js:9090" in str(err)
    assert "js-nanjing" in translate(err.key, "zh-CN", **err.params)


# --------------------------------------------------------------------------- one central store


def _outside_strings(query: str) -> str:
    """``query`` with every string literal blanked to ``""`` (escapes inside honoured)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', query)


def _every_query() -> dict[str, str]:
    """Every query the Prometheus source sends, built with this package's own settings."""
    from core.metrics import cpu, serving

    day = date(2026, 11, 3)
    window = promql.serving_window(datetime(2026, 11, 3, tzinfo=timezone.utc), datetime(2026, 11, 4, tzinfo=timezone.utc), 60)
    return {
        "daily": promql.daily_gpu_stats(promql.day_window(day)),
        "daily one namespace": promql.daily_gpu_stats(promql.day_window(day), namespace=NASTY[3]),
        "latest": promql.latest_samples(), "series": promql.gpu_series(namespace="team-a"),
        "requests": promql.running_gpu_requests(), "quotas": promql.gpu_quotas(), "allocatable": promql.allocatable_gpus(),
        "serving": serving.parts_query(window, serving.load_settings()), "cpu": cpu.parts_query(window, cpu.load_settings()),
    }


@pytest.mark.parametrize("name", list(_every_query()))
def test_a_scoped_query_selects_the_cluster_on_every_selector(name):
    query = _every_query()[name]
    scoped = promql.scoped(query, "cluster", "js-nanjing")
    bare = _outside_strings(query)
    selectors = bare.count("{")
    assert selectors > 0
    # every metric name is a selector with braces (so none can escape the scope) ...
    assert not re.search(r"\b(?:DCGM_FI_|kube_|vllm:|container_)[\w:]*(?![\w:])(?!\s*\{)", bare)
    # ... and each of them, and nothing else, now starts with the cluster's matcher
    assert scoped.count('{cluster="js-nanjing"') == selectors
    assert _outside_strings(scoped).replace('cluster="",', "").replace('cluster=""', "") == bare


@pytest.mark.parametrize("value", NASTY)
def test_scoping_leaves_string_literals_alone_and_escapes_the_cluster(value):
    query = f'label_replace(up{{{promql.matcher("namespace", value)}}}, "a", "$1", "b", "(.+){{2}}")'
    scoped = promql.scoped(query, "cluster", value)
    assert scoped == (f'label_replace(up{{{promql.matcher("cluster", value)},{promql.matcher("namespace", value)}}}, '
                      f'"a", "$1", "b", "(.+){{2}}")')


def test_an_empty_selector_gets_the_matcher_alone():
    assert promql.scoped(promql.selector("up"), "cluster", "hq") == 'up{cluster="hq"}'
    assert promql.scoped("sum(up{ })", "site", "hq") == 'sum(up{site="hq" })'


@pytest.mark.parametrize("value", ["cluster", "_c1", ""])
def test_the_cluster_label_setting_takes_label_names(monkeypatch, value):
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_CLUSTER_LABEL", value)
    assert prometheus_settings().cluster_label == value


@pytest.mark.parametrize("value", ["1cluster", "clus-ter", 'c"'])
def test_a_cluster_label_that_is_no_label_name_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_CLUSTER_LABEL", value)
    with pytest.raises(InputError) as err:
        prometheus_settings()
    assert err.value.field == "COMPUTELOOP_PROMETHEUS_CLUSTER_LABEL"
    assert value in translate(err.value.key, "en", **err.value.params)
