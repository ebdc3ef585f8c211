"""Service request samples: PromQL's histogram_quantile, the window figures from offline rows, malformed
files named by file and line, the serving PromQL, and the deterministic demo services."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from core.errors import InputError
from core.metrics import promql
from core.metrics.serving import (OfflineServingSource, bucket_columns, demo_day, demo_profiles, histogram_quantile,
                                  parts_from_prometheus, parts_from_samples, parts_query, per_namespace, read_file,
                                  stats_from_parts, stats_from_samples)

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
INF = math.inf


# --------------------------------------------------------------------------- histogram_quantile


@pytest.mark.parametrize(("q", "counts", "want"), [
    (0.5, [10, 20, 20], 1.0),      # rank 10 ends exactly at the first bucket's bound
    (0.75, [10, 20, 20], 1.5),     # rank 15: half-way through (1, 2]
    (0.99, [10, 20, 30], 2.0),     # rank in +Inf: the highest finite bound
    (0.25, [10, 20, 20], 0.5),     # inside the first bucket: from 0
    (0.75, [10, 25, 20], 1.5),     # non-monotonic +Inf (20 < 25) coalesced to 25: rank 18.75 → 1 + 8.75/15
])
def test_histogram_quantile_follows_promql(q, counts, want):
    if counts == [10, 25, 20]:
        want = 1 + 8.75 / 15
    assert histogram_quantile(q, [1.0, 2.0, INF], counts) == pytest.approx(want)


def test_histogram_quantile_is_none_where_promql_is_nan():
    assert histogram_quantile(0.99, [1.0, INF], [0, 0]) is None          # no observation
    assert histogram_quantile(0.99, [1.0, 2.0], [1, 2]) is None          # no +Inf bucket
    assert histogram_quantile(0.99, [INF], [5]) is None                  # one bucket
    assert histogram_quantile(1.5, [1.0, INF], [1, 1]) == INF


# --------------------------------------------------------------------------- offline figures


def _rows(ns: str, pod_requests: list[list[float]], *, step: float = 60.0, cluster: str = "hq", start=T0,
          lat_s: float | None = 0.5, buckets: bool = True) -> pl.DataFrame:
    """Rows of one namespace: ``pod_requests[p][i]`` requests of pod p in the interval ending at start + i·step."""
    out = []
    for pod in pod_requests:
        for i, r in enumerate(pod):
            row = {"ts": start + timedelta(seconds=i * step), "cluster": cluster, "namespace": ns, "interval_s": step,
                   "requests": float(r), "latency_sum_s": None if lat_s is None else r * lat_s,
                   "latency_count": None if lat_s is None else float(r)}
            if buckets:
                row |= {"le_0.25": 0.0, "le_1.0": float(r), "le_+Inf": float(r)}
            out.append(row)
    return pl.DataFrame(out).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def test_window_figures_from_rows_of_two_pods():
    rows = _rows("svc", [[60, 120, 0, 30], [60, 0, 0, 30]])
    got = stats_from_samples(rows, T0, T0 + timedelta(minutes=4)).row(0, named=True)
    assert got["requests"] == 300 and got["covered_s"] == 240 and got["coverage"] == 1.0
    assert got["qps_mean"] == pytest.approx(300 / 240)
    assert got["qps_peak"] == pytest.approx(2.0)  # 120 + 0 over 60 s (the pods' rates add at one instant)
    assert got["latency_mean_ms"] == pytest.approx(500.0)
    # every request ≤ 1 s and none ≤ 0.25 s: P99 = 0.25 + 0.75 × 0.99
    assert got["latency_p99_ms"] == pytest.approx((0.25 + 0.75 * 0.99) * 1000)


def test_rows_outside_the_window_and_gaps_lower_the_coverage_not_the_rate():
    rows = _rows("svc", [[10, 10, 10, 10, 10, 10]]).filter(pl.col("ts") != T0 + timedelta(minutes=2))
    got = stats_from_samples(rows, T0, T0 + timedelta(minutes=4)).row(0, named=True)
    assert got["requests"] == 30 and got["coverage"] == pytest.approx(3 / 4)
    assert got["qps_mean"] == pytest.approx(10 / 60)


def test_a_service_without_latency_has_qps_but_no_latency():
    got = stats_from_samples(_rows("svc", [[6, 6]], lat_s=None, buckets=False), T0, T0 + timedelta(minutes=2))
    r = got.row(0, named=True)
    assert r["qps_mean"] == pytest.approx(0.1) and r["latency_mean_ms"] is None and r["latency_p99_ms"] is None


def test_per_namespace_adds_clusters():
    rows = pl.concat([_rows("svc", [[60, 60]], cluster="hq"), _rows("svc", [[30, 30]], cluster="js", lat_s=1.5)])
    one = per_namespace(stats_from_samples(rows, T0, T0 + timedelta(minutes=2))).row(0, named=True)
    assert one["requests"] == 180 and one["qps_mean"] == pytest.approx(180 / 120)
    assert one["latency_mean_ms"] == pytest.approx((120 * 500 + 60 * 1500) / 180)


# --------------------------------------------------------------------------- files


def test_csv_with_qps_and_mean_latency_is_read(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("ts,cluster,namespace,interval_s,qps,latency_mean_ms\n"
                    "2026-03-01T00:01:00Z,hq,svc,60,2,250\n2026-03-01T08:02:00+08:00,hq,svc,60,1,\n")
    frame = read_file(path)
    assert frame["requests"].to_list() == [120.0, 60.0]
    assert frame["latency_sum_s"].to_list() == [30.0, None]
    assert frame["ts"][1] == T0 + timedelta(minutes=2)


@pytest.mark.parametrize(("text", "field", "key"), [
    ("ts,cluster,namespace,interval_s\n2026-03-01T00:00:00Z,hq,a,60\n", ":1", "serving.missing_columns"),
    ("ts,cluster,namespace,interval_s,requests\n2026-03-01T00:00:00Z,hq,a,60,5\nyesterday,hq,a,60,5\n", ":3",
     "metrics.bad_value"),
    ("ts,cluster,namespace,interval_s,requests\n2026-03-01T00:00:00Z,hq,a,60,5\n2026-03-01T00:01:00Z,hq,a,0,5\n", ":3",
     "serving.bad_value"),
    ("ts,cluster,namespace,interval_s,requests\n2026-03-01T00:00:00Z,hq,a,60,many\n", ":2", "metrics.bad_value"),
    ("ts,cluster,namespace,interval_s,requests,le_1\n2026-03-01T00:00:00Z,hq,a,60,5,5\n", ":1", "serving.no_inf_bucket"),
    ("ts,cluster,namespace,interval_s,requests,le_fast\n2026-03-01T00:00:00Z,hq,a,60,5,5\n", ":1", "serving.bad_bucket"),
])
def test_malformed_csv_is_named_by_file_and_line(tmp_path, text, field, key):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_file(path)
    assert err.value.key == key and err.value.field == f"{path}{field}"


def test_malformed_parquet_is_named_by_file_and_row(tmp_path):
    path = tmp_path / "bad.parquet"
    _rows("svc", [[1, -2, 3]]).write_parquet(path)
    with pytest.raises(InputError) as err:
        read_file(path)
    assert err.value.field == f"{path} (row 2)" and err.value.params["column"] == "requests"
    (tmp_path / "text.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError) as err:
        read_file(tmp_path / "text.parquet")
    assert err.value.key == "metrics.file_unreadable"


def test_offline_source_reads_the_days_of_the_window_with_different_bucket_layouts(tmp_path):
    a, b = tmp_path / "day=2026-03-01", tmp_path / "day=2026-03-02"
    a.mkdir(), b.mkdir()
    _rows("svc", [[60, 60]], start=T0 + timedelta(hours=23, minutes=58)).filter(
        pl.col("ts") < T0 + timedelta(days=1)).write_parquet(a / "p.parquet")
    _rows("svc", [[30]], start=T0 + timedelta(days=1), buckets=False).write_csv(b / "p.csv")
    got = OfflineServingSource(tmp_path).serving_stats(T0, T0 + timedelta(days=2)).row(0, named=True)
    assert got["requests"] == 150 and got["covered_s"] == 180


# --------------------------------------------------------------------------- PromQL


def test_serving_window_reaches_one_step_before_the_start():
    w = promql.serving_window(T0, T0 + timedelta(days=31), 60)
    assert w.eval_time == T0 + timedelta(days=31, milliseconds=-1)
    assert w.counter_range_ms == 31 * 86_400_000 + 60_000 - 1 and w.peak_range_ms == 31 * 86_400_000 - 1
    assert promql.serving_window(T0, T0 + timedelta(days=1), 60, left_open=True).peak_range_ms == 86_400_000


def test_serving_query_prefers_the_first_exporter_and_escapes_label_filters():
    exporters = [promql.ServingExporter("vllm", "vllm:request_success_total", "vllm:e2e_request_latency_seconds"),
                 promql.ServingExporter("http", "http_requests_total", "http_request_duration_seconds",
                                        (("handler", '/v1"} or up{x="'),))]
    q = promql.serving_stats(promql.serving_window(T0, T0 + timedelta(days=1), 60), exporters,
                             namespace_labels=["exported_namespace", "namespace"])
    assert q.count('"stat"') == 6
    assert "unless on (namespace)" in q and "sum by (namespace, le)" in q and "histogram_quantile(0.99," in q
    assert 'handler="/v1\\"} or up{x=\\""' in q
    assert "[86399999ms:60s]" in q and "irate(vllm:request_success_total{}[120s])" in q
    with pytest.raises(ValueError):
        promql.serving_stats(promql.serving_window(T0, T0 + timedelta(days=1), 60), exporters,
                             namespace_labels=['namespace"'])


# --------------------------------------------------------------------------- demo services


def _gpu_day(day: date, util_of) -> pl.DataFrame:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    rows = [{"ts": start + timedelta(minutes=15 * i), "cluster": "hq", "namespace": ns, "util": util_of(ns, i)}
            for i in range(96) for ns in ("svc-busy", "svc-idle", "train-x") for _ in range(2)]
    return pl.DataFrame(rows).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def test_demo_services_follow_utilisation_and_are_deterministic():
    day = date(2026, 3, 2)
    profiles = demo_profiles({"svc-busy": "inference", "svc-idle": "idle_service", "train-x": "training"})
    assert set(profiles) == {"svc-busy", "svc-idle"}
    profiles = {ns: p | {"exports": True} for ns, p in profiles.items()}
    gpus = _gpu_day(day, lambda ns, i: (0.8 if 24 <= i < 72 else 0.05) if ns == "svc-busy" else 0.02)
    a = demo_day(gpus, profiles, day, step_s=900)
    assert a.equals(demo_day(gpus, profiles, day, step_s=900))
    busy = a.filter(pl.col("namespace") == "svc-busy")
    peak_hours = busy.filter(pl.col("ts").dt.hour().is_between(6, 17))["requests"].mean()
    night = busy.filter(~pl.col("ts").dt.hour().is_between(6, 17))["requests"].mean()
    assert peak_hours > 10 * night
    idle = a.filter(pl.col("namespace") == "svc-idle")
    assert idle["requests"].sum() / (96 * 900) < 0.01  # ~0 QPS
    assert (a["le_+Inf"] == a["requests"]).all() and (a["le_0.3"] <= a["le_1.0"]).all()
    silent = {ns: p | {"exports": False} for ns, p in profiles.items()}
    assert demo_day(gpus, silent, day, step_s=900).height == 0


# --------------------------------------------------------------------------- daily parts and their sum


def _day_parts(covered_s: float, requests: float, lat_sum: float, peak: float, cum: list[float]) -> dict:
    return {"cluster": "hq", "namespace": "svc", "requests": requests, "covered_s": covered_s, "qps_peak": peak,
            "latency_sum_s": lat_sum, "latency_count": requests,
            "le_0.5": cum[0], "le_1.0": cum[1], "le_2.0": cum[2], "le_+Inf": cum[3]}


# Two days of one service, by hand. Buckets (cumulative) le 0.5 / 1 / 2 / +Inf:
#   day 1: 100 requests, 80 / 98 / 100 / 100 → P99: rank 99 in (1, 2], 1 of its 2 → 1 + 1 × 1/2 = 1.5 s
#   day 2: 300 requests, 150 / 297 / 300 / 300 → P99: rank 297 in (0.5, 1], 147 of 147 → 1.0 s
#   month: 400 requests, 230 / 395 / 400 / 400 → P99: rank 396 in (1, 2], 1 of its 5 → 1 + 1/5 = 1.2 s
# An average of the daily P99s would say 1.25 s, weighted by requests 1.125 s, their maximum 1.5 s.
HAND_DAYS = [_day_parts(43_200.0, 100.0, 60.0, 2.0, [80, 98, 100, 100]),
             _day_parts(86_400.0, 300.0, 180.0, 5.0, [150, 297, 300, 300])]


def test_daily_p99s_are_what_the_hand_computation_says():
    bounds = [0.5, 1.0, 2.0, INF]
    assert histogram_quantile(0.99, bounds, [80, 98, 100, 100]) == pytest.approx(1.5)
    assert histogram_quantile(0.99, bounds, [150, 297, 300, 300]) == pytest.approx(1.0)


def test_a_window_p99_is_the_quantile_of_the_summed_daily_buckets_not_an_average():
    got = stats_from_parts(pl.DataFrame(HAND_DAYS), 2 * 86_400.0, quantile=0.99).row(0, named=True)
    assert got["latency_p99_ms"] == pytest.approx(1200.0, rel=1e-12)
    assert got["latency_p99_ms"] not in (pytest.approx(1250.0), pytest.approx(1125.0), pytest.approx(1500.0))
    assert got["requests"] == 400.0 and got["covered_s"] == 129_600.0
    assert got["latency_mean_ms"] == pytest.approx(240.0 / 400.0 * 1000.0)   # Σ sums / Σ counts
    assert got["qps_peak"] == 5.0                                            # the highest day, not a sum
    assert got["qps_mean"] == pytest.approx(400.0 / 129_600.0)               # over the time with data
    assert got["coverage"] == pytest.approx(0.75)


def test_parts_of_days_give_the_figures_of_the_whole_window():
    rows = pl.concat([_rows("a", [[1, 2, 3], [4, 0, 6]], start=T0 + timedelta(hours=23, minutes=59)),
                      _rows("a", [[9, 9]], start=T0 + timedelta(days=1, hours=5))])
    days = [parts_from_samples(rows, T0 + timedelta(days=i), T0 + timedelta(days=i + 1)) for i in range(2)]
    assert [d["requests"].sum() for d in days] == [1.0 + 4.0, 2 + 3 + 0 + 6 + 9 + 9.0]  # the day of each row's end
    whole = stats_from_samples(rows, T0, T0 + timedelta(days=2))
    summed = stats_from_parts(pl.concat(days, how="diagonal_relaxed"), 2 * 86_400.0)
    for name in whole.columns[2:]:
        assert summed[name][0] == pytest.approx(whole[name][0], rel=1e-12), name


def test_a_day_without_parts_lowers_the_coverage_not_the_rate():
    one = stats_from_parts(pl.DataFrame(HAND_DAYS[1:]), 86_400.0).row(0, named=True)
    with_gap = stats_from_parts(pl.DataFrame(HAND_DAYS[1:]), 2 * 86_400.0).row(0, named=True)
    assert with_gap["qps_mean"] == one["qps_mean"] == pytest.approx(300 / 86_400)
    assert with_gap["coverage"] == pytest.approx(one["coverage"] / 2)


def test_prometheus_answer_decodes_into_parts_with_buckets():
    def item(stat, ns, value, **labels):
        return {"metric": {"stat": stat, "namespace": ns, **labels}, "value": [0, str(value)]}

    result = [item("requests", "a", 10), item("points", "a", 5), item("qps_peak", "a", 0.5),
              item("latency_sum_s", "a", 4), item("latency_count", "a", 10), item("latency_q_s", "a", 0.9),
              item("bucket", "a", 7, le="1"), item("bucket", "a", 10, le="+Inf"), item("bucket", "a", 2, le="0.5"),
              item("latency_sum_s", "hist-only", 1), item("bucket", "hist-only", 3, le="+Inf"),
              item("requests", "b", 4), item("points", "b", 2), item("qps_peak", "b", "NaN")]
    parts = parts_from_prometheus(result, cluster="hq", step_s=60)
    assert parts["namespace"].to_list() == ["a", "b"]   # no request counter: left out
    assert bucket_columns(parts.columns) == ["le_0.5", "le_1.0", "le_+Inf"]
    a, b = parts.row(0, named=True), parts.row(1, named=True)
    assert (a["covered_s"], a["le_0.5"], a["le_1.0"], a["le_+Inf"]) == (300.0, 2.0, 7.0, 10.0)
    assert b["qps_peak"] is None and b["le_+Inf"] is None and b["latency_sum_s"] is None


def test_parts_query_adds_the_bucket_increases_by_namespace_and_le():
    from core.metrics.serving import load_settings

    cfg = load_settings()
    q = parts_query(promql.serving_window(T0, T0 + timedelta(days=1), cfg.peak_step_s), cfg)
    assert q.count('"stat", "bucket"') == 1 and q.count("sum by (namespace, le)") == 2 * len(cfg.exporters)
    assert "vllm:e2e_request_latency_seconds_bucket" in q and "unless on (namespace)" in q


def test_a_window_is_cut_into_adjoining_pieces_and_their_parts_merge_into_the_windows():
    from datetime import datetime, timezone

    import polars as pl

    from core.metrics.serving import merge_parts, pieces

    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    cut = pieces(t0, t0.replace(hour=5), 7200)
    assert [(a.hour, b.hour) for a, b in cut] == [(0, 2), (2, 4), (4, 5)]
    row = {"cluster": "c", "namespace": "n", "requests": 10.0, "covered_s": 3600.0, "qps_peak": 2.0,
           "latency_sum_s": 5.0, "latency_count": 10.0, "le_1.0": 8.0, "le_+Inf": 10.0}
    a = pl.DataFrame([row])
    b = pl.DataFrame([{**row, "requests": 4.0, "qps_peak": 7.0, "latency_sum_s": None, "latency_count": None,
                       "le_1.0": 1.0, "le_+Inf": 4.0}])
    (merged,) = merge_parts([a, b]).iter_rows(named=True)
    assert merged["requests"] == 14.0 and merged["covered_s"] == 7200.0 and merged["qps_peak"] == 7.0
    assert merged["latency_sum_s"] == 5.0 and merged["le_1.0"] == 9.0 and merged["le_+Inf"] == 14.0
    assert merge_parts([]).height == 0
