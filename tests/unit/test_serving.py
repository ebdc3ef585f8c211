"""Service request samples: PromQL's histogram_quantile, the window figures from offline rows, malformed
files named by file and line, the serving PromQL, and the deterministic demo services."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from core.errors import InputError
from core.metrics import promql
from core.metrics.serving import (OfflineServingSource, demo_day, demo_profiles, histogram_quantile, per_namespace,
                                  read_file, stats_from_samples)

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
    assert "[86399999ms:60s]" in q and "irate(vllm:request_success_total[120s])" in q
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
