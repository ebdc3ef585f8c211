"""PrometheusSource against a real Prometheus server (Debian ``prometheus`` 2.42) holding a backfilled
dcgm-exporter + kube-state-metrics fixture, and against misbehaving HTTP servers for outages.

The same generated samples are written to Parquet in SAMPLE_SCHEMA; the offline rollup
(:func:`core.metrics.rollup.rollup_day`) on that Parquet must give the same daily numbers.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from datetime import datetime, time as dtime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from core.metrics.prometheus import MetricsUnavailable, PrometheusSource, with_last_good
from core.metrics.schema import ROLLUP_SCHEMA, SAMPLE_SCHEMA
from tests.conftest import missing_service
from tests.support.victoria_server import VictoriaMetricsServer, find_binary as find_victoria
from tests.support.prometheus_server import MisbehavingServer, PrometheusServer, find_binaries, free_port

pytestmark = pytest.mark.live

_spec = importlib.util.spec_from_file_location(
    "dcgm_fixture", Path(__file__).resolve().parent.parent / "fixtures" / "prometheus" / "dcgm_fixture.py")
fixture_mod = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("dcgm_fixture", fixture_mod)
_spec.loader.exec_module(fixture_mod)
NASTY_NS = fixture_mod.NASTY_NS
_serving_spec = importlib.util.spec_from_file_location(
    "serving_fixture", Path(__file__).resolve().parent.parent / "fixtures" / "prometheus" / "serving_fixture.py")
serving_mod = importlib.util.module_from_spec(_serving_spec)
_serving_spec.loader.exec_module(serving_mod)
_cpu_spec = importlib.util.spec_from_file_location(
    "cpu_fixture", Path(__file__).resolve().parent.parent / "fixtures" / "prometheus" / "cpu_fixture.py")
cpu_mod = importlib.util.module_from_spec(_cpu_spec)
_cpu_spec.loader.exec_module(cpu_mod)

TOL = dict(rel=1e-9, abs=1e-12)


@pytest.fixture(scope="session")
def fx():
    """The generated fixture: D = two days ago (well inside the retention passed to the server)."""
    return fixture_mod.generate(datetime.now(timezone.utc).date() - timedelta(days=2))


@pytest.fixture(scope="session")
def served(fx):
    """The inference servers' request metrics over the same instants: (OpenMetrics lines, offline rows)."""
    times = [fx.start + timedelta(seconds=60 * i) for i in range(int((fx.end - fx.start).total_seconds()) // 60 + 1)]
    return serving_mod.generate(times, NASTY_NS)


@pytest.fixture(scope="session")
def cpu_used(fx):
    """cAdvisor CPU counters over the same instants: (OpenMetrics lines, offline rows)."""
    times = [fx.start + timedelta(seconds=60 * i) for i in range(int((fx.end - fx.start).total_seconds()) // 60 + 1)]
    return cpu_mod.generate(times, NASTY_NS)


@pytest.fixture(scope="session", params=["prometheus", "victoria-metrics"])
def prom(request, fx, served, cpu_used, tmp_path_factory):
    """A real PromQL store serving the fixture (GPU, service and CPU metrics), stopped at the end of the
    session: Prometheus (promtool backfill) and VictoriaMetrics single node (import API), so every
    parity test holds for both."""
    text = fx.openmetrics.rstrip("\n")
    assert text.endswith("# EOF")
    text = text[: -len("# EOF")] + "\n".join(served[0] + cpu_used[0]) + "\n# EOF\n"
    if request.param == "victoria-metrics":
        binary = find_victoria()
        if binary is None:
            missing_service("Debian victoria-metrics")
        server = VictoriaMetricsServer(tmp_path_factory.mktemp("victoria"), binary)
        server.start()
        server.import_openmetrics(text)
        print(f"\nvictoria-metrics start {server.timings['start_s']:.2f}s, import {server.timings['import_s']:.2f}s")
    else:
        binaries = find_binaries()
        if binaries is None:
            missing_service("Debian prometheus")
        server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), *binaries, retention="30d")
        server.backfill(text)
        server.start()
        print(f"\nprometheus backfill {server.timings['backfill_s']:.2f}s, start {server.timings['start_s']:.2f}s")
    yield server
    server.stop()


@pytest.fixture()
def source(prom):
    src = PrometheusSource({"hq": prom.url}, left_open_ranges=prom.left_open_ranges, timeout=10, retries=0)
    yield src
    src.close()


@pytest.fixture(scope="session")
def samples(fx, tmp_path_factory) -> pl.DataFrame:
    """The fixture's samples written to and read back from Parquet (the offline format)."""
    path = tmp_path_factory.mktemp("offline") / "samples.parquet"
    pl.DataFrame(fx.samples, schema=SAMPLE_SCHEMA).with_columns(cluster=pl.lit("hq")).write_parquet(path)
    return pl.read_parquet(path)


def _at(fx) -> datetime:
    return fx.end  # the last sample instant


def _reference(samples: pl.DataFrame, day, step_s: int = 60) -> pl.DataFrame:
    """A tiny polars rollup: Prometheus' definitions on the raw samples (energy per series)."""
    start = datetime.combine(day, dtime(0), tzinfo=timezone.utc)
    s = samples.filter((pl.col("ts") >= start) & (pl.col("ts") < start + timedelta(days=1))).with_columns(
        mem=pl.col("fb_used_mib") / (pl.col("fb_used_mib") + pl.col("fb_free_mib")))
    energy = (s.group_by("uuid", "namespace", "pod").agg(e=pl.col("energy_mj").max() - pl.col("energy_mj").min())
              .group_by("uuid", "namespace").agg(energy_kwh=pl.col("e").sum() / 3.6e9))
    return (s.group_by("uuid", "namespace").agg(
        mean_util=pl.col("util").mean(), peak_util=pl.col("util").max(), mean_mem=pl.col("mem").mean(),
        peak_mem=pl.col("mem").max(), samples=pl.len().cast(pl.Int64), util_sum=pl.col("util").sum())
        .join(energy, on=["uuid", "namespace"])
        .with_columns(used_gpu_hours=pl.col("util_sum") * step_s / 3600,
                      allocated_gpu_hours=pl.when(pl.col("namespace") != "").then(pl.col("samples") * step_s / 3600).otherwise(0.0))
        .sort("uuid", "namespace"))


FIGURES = ("mean_util", "peak_util", "mean_mem", "peak_mem", "used_gpu_hours", "allocated_gpu_hours", "energy_kwh")


def _assert_same(got: pl.DataFrame, want: pl.DataFrame, figures=FIGURES, skip_energy_for=()):
    assert got.select("uuid", "namespace").rows() == want.select("uuid", "namespace").rows()
    for g, w in zip(got.iter_rows(named=True), want.iter_rows(named=True)):
        assert g["samples"] == w["samples"], (g["uuid"], g["namespace"])
        for name in figures:
            if name == "energy_kwh" and (g["uuid"], g["namespace"]) in skip_energy_for:
                continue
            assert g[name] == pytest.approx(w[name], **TOL), (name, g["uuid"], g["namespace"])


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("which", ["day_before", "day_after"])
def test_daily_stats_equal_a_polars_rollup_of_the_same_samples(fx, source, samples, which):
    day = getattr(fx, which)
    got = source.daily_gpu_stats(day)
    assert got.schema == pl.Schema(ROLLUP_SCHEMA)
    assert source.query_count == 1
    _assert_same(got, _reference(samples, day))


@pytest.mark.parametrize("which", ["day_before", "day_after"])
def test_daily_stats_equal_the_offline_rollup_on_the_parquet(fx, source, samples, which):
    from core.metrics.rollup import rollup_day

    day = getattr(fx, which)
    got = source.daily_gpu_stats(day)
    want = rollup_day(samples, day, step_s=60)
    # Energy differs only where a GPU changed pod or namespace during the day: the rollup credits
    # the interval across the change to the new series, Prometheus range functions cannot see it.
    boundary = {("GPU-aaaa0000-0000-0000-0000-000000000000", "team-a")} if which == "day_after" else {
        ("GPU-bbbb0000-0000-0000-0000-000000000000", NASTY_NS)}
    _assert_same(got, want.sort("uuid", "namespace"), figures=FIGURES + ("coverage",), skip_energy_for=boundary)
    for uuid, ns in boundary:
        g = got.filter((pl.col("uuid") == uuid) & (pl.col("namespace") == ns))["energy_kwh"].item()
        w = want.filter((pl.col("uuid") == uuid) & (pl.col("namespace") == ns))["energy_kwh"].item()
        assert 0 < w - g <= 700 * 60 * 1000 / 3.6e9  # at most one 60 s interval at the fixture's peak power


def test_daily_stats_equal_the_offline_source(fx, source, samples, tmp_path):
    from core.metrics.offline import OfflineSource

    root = tmp_path / "offline"
    for day in (fx.day_before, fx.day_after):
        start = datetime.combine(day, dtime(0), tzinfo=timezone.utc)
        part = root / f"day={day.isoformat()}"
        part.mkdir(parents=True)
        samples.filter((pl.col("ts") >= start) & (pl.col("ts") < start + timedelta(days=1))).write_parquet(part / "part.parquet")
    offline = OfflineSource(root)
    want = offline.daily_gpu_stats(fx.day_after).sort("uuid", "namespace")
    _assert_same(source.daily_gpu_stats(fx.day_after), want,
                 skip_energy_for={("GPU-aaaa0000-0000-0000-0000-000000000000", "team-a")})


# --------------------------------------------------------------------------- semantics


def test_both_label_styles_and_the_exporters_own_namespace_are_normalised(fx, source):
    day = source.daily_gpu_stats(fx.day_after)
    rows = {(r["hostname"], r["uuid"][:8], r["namespace"]) for r in day.iter_rows(named=True)}
    assert rows == {("host-a", "GPU-aaaa", "team-a"), ("host-a", "GPU-aaaa", ""), ("host-b", "GPU-bbbb", NASTY_NS),
                    ("host-b", "GPU-bbbb", "team-a")}
    assert set(day["model"]) == {"A800-80GB", "H100-SXM"}


def test_day_boundary_sample_at_midnight_belongs_to_the_new_day(fx, source):
    before, after = source.daily_gpu_stats(fx.day_before), source.daily_gpu_stats(fx.day_after)
    a0 = "GPU-aaaa0000-0000-0000-0000-000000000000"
    assert before.filter(pl.col("uuid") == a0)["samples"].to_list() == [90]  # 22:30 .. 23:59
    assert after.filter(pl.col("uuid") == a0)["samples"].to_list() == [90]   # 00:00 .. 01:29
    assert before.filter(pl.col("uuid").str.starts_with("GPU-bbbb1111"))["samples"].to_list() == [85]  # 5 missed


def test_dev_gpu_util_is_used_only_where_prof_is_missing(fx, source, samples):
    got = source.daily_gpu_stats(fx.day_after).sort("uuid")
    raw = samples.filter(pl.col("ts") >= datetime.combine(fx.day_after, dtime(0), tzinfo=timezone.utc))
    for uuid in ("GPU-aaaa0000-0000-0000-0000-000000000000", "GPU-bbbb1111-0000-0000-0000-000000000000"):
        want = raw.filter(pl.col("uuid") == uuid)["util"].mean()
        assert got.filter(pl.col("uuid") == uuid)["mean_util"].item() == pytest.approx(want, rel=1e-9)


def test_latest_gives_one_sample_per_gpu_at_the_instant(fx, source, samples):
    latest = source.latest(_at(fx))
    assert latest.height == 4 and set(latest["ts"]) == {fx.end}
    want = samples.filter(pl.col("ts") == fx.end).sort("hostname", "gpu")
    for col in ("namespace", "pod", "util", "fb_used_mib", "fb_free_mib", "power_w"):
        assert latest[col].to_list() == want[col].to_list(), col


def test_series_for_a_hostile_namespace_returns_exactly_that_namespace(fx, source):
    got = source.series(fx.start, fx.end, step_s=60, namespace=NASTY_NS)
    assert set(got["namespace"]) == {NASTY_NS} and got.height == 110
    assert source.query_count == 1
    for widened in ('q"x', ".*", "team-.*", 'team-a"} or {namespace=~".*', "team-a\\"):
        assert source.series(fx.start, fx.end, step_s=60, namespace=widened).height == 0, widened


def test_long_ranges_are_split_and_give_the_same_rows(fx, prom):
    whole = PrometheusSource({"hq": prom.url}, left_open_ranges=prom.left_open_ranges, retries=0)
    chunked = PrometheusSource({"hq": prom.url}, left_open_ranges=prom.left_open_ranges, retries=0, max_points=50)
    a = whole.series(fx.start, fx.end, step_s=60)
    b = chunked.series(fx.start, fx.end, step_s=60)
    assert whole.query_count == 1 and chunked.query_count == 4  # 180 points / 50
    assert all(r.points <= 50 for r in chunked.log)
    assert a.equals(b)
    stable = a.filter(pl.col("uuid").str.starts_with("GPU-aaaa1111"))
    assert stable.height == 180 and stable["mem"].is_not_null().all()


def test_kube_state_metrics_readers(fx, source):
    at = _at(fx)
    reqs = source.gpu_requests(at)
    assert dict(zip(reqs["namespace"], reqs["gpus"])) == fx.ksm_expected["requests"]  # Succeeded/Failed/Pending excluded
    quotas = source.gpu_quotas(at)
    got = {(r["namespace"], t): r[t] for r in quotas.iter_rows(named=True) for t in ("hard", "used")}
    assert got == fx.ksm_expected["quotas"]
    nodes = source.allocatable_gpus(at)
    assert dict(zip(nodes["node"], nodes["gpus"])) == fx.ksm_expected["allocatable"]
    assert source.query_count == 3


def test_an_empty_day_is_an_empty_frame_not_an_error(fx, source):
    frame = source.daily_gpu_stats(fx.day_before - timedelta(days=3))
    assert frame.height == 0 and frame.schema == pl.Schema(ROLLUP_SCHEMA)


def test_one_query_per_server_and_cluster_column(fx, prom):
    src = PrometheusSource({"hq-beijing-1": prom.url, "js-nanjing": prom.url}, left_open_ranges=prom.left_open_ranges, retries=0)
    frame = src.daily_gpu_stats(fx.day_after)
    assert src.queries_by_cluster() == {"hq-beijing-1": 1, "js-nanjing": 1}
    assert frame.group_by("cluster").len().sort("cluster")["len"].to_list() == [4, 4]


@pytest.fixture(scope="module")
def central(fx, tmp_path_factory):
    """One VictoriaMetrics holding two clusters' copies of the fixture, each series labelled with its
    cluster (as remote write from each cluster's Prometheus adds its external labels)."""
    binary = find_victoria()
    if binary is None:
        missing_service("Debian victoria-metrics")
    server = VictoriaMetricsServer(tmp_path_factory.mktemp("central"), binary)
    server.start()
    server.import_openmetrics(fx.openmetrics, {"cluster": "hq-beijing-1"})
    server.import_openmetrics(fx.openmetrics.replace("GPU-", "GPU-js-"), {"cluster": "js-nanjing"})
    yield server
    server.stop()


def test_a_central_store_is_read_per_cluster_by_its_label(fx, central, samples):
    src = PrometheusSource({"hq-beijing-1": central.url, "js-nanjing": central.url}, left_open_ranges=True,
                           retries=0, cluster_label="cluster")
    frame = src.daily_gpu_stats(fx.day_after)
    assert src.queries_by_cluster() == {"hq-beijing-1": 1, "js-nanjing": 1}
    want = _reference(samples, fx.day_after)
    hq = frame.filter(pl.col("cluster") == "hq-beijing-1")
    js = frame.filter(pl.col("cluster") == "js-nanjing")
    _assert_same(hq, want)
    _assert_same(js, want.with_columns(uuid=pl.col("uuid").str.replace("GPU-", "GPU-js-")).sort("uuid", "namespace"))
    latest = src.latest(_at(fx))
    assert latest.group_by("cluster").len().sort("cluster").rows() == [("hq-beijing-1", 4), ("js-nanjing", 4)]
    assert all(u.startswith("GPU-js-") for u in latest.filter(pl.col("cluster") == "js-nanjing")["uuid"])
    # without the label setting each cluster would read both clusters' series
    unscoped = PrometheusSource({"hq-beijing-1": central.url}, left_open_ranges=True, retries=0)
    assert unscoped.daily_gpu_stats(fx.day_after).height == 2 * want.height
    for s in (src, unscoped):
        s.close()


@pytest.mark.parametrize("namespaces", [10, 100])
def test_query_count_does_not_depend_on_the_number_of_namespaces(namespaces):
    result = [{"metric": {"stat": stat, "UUID": f"GPU-{i}", "gpu": "0", "hostname": f"n{i}", "modelName": "NVIDIA H20",
                          "namespace": f"ns-{i}"}, "value": [0, "1"]}
              for i in range(namespaces) for stat in ("mean_util", "samples")]
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
    with MisbehavingServer("canned", body=body) as server:
        src = PrometheusSource({"hq": server.url}, retries=0, model_of=lambda m: m)
        frame = src.daily_gpu_stats(datetime(2025, 1, 1).date())
        assert frame.height == namespaces
        assert src.query_count == server.hits == 1


# --------------------------------------------------------------------------- outages


def _unavailable(src: PrometheusSource) -> MetricsUnavailable:
    with pytest.raises(MetricsUnavailable) as err:
        src.daily_gpu_stats(datetime(2025, 1, 1).date())
    return err.value


def test_unreachable_server_is_named():
    url = f"http://127.0.0.1:{free_port()}"
    err = _unavailable(PrometheusSource({"js-nanjing": url}, timeout=2, retries=0))
    assert err.key == "prometheus.unreachable" and err.cluster == "js-nanjing" and url in str(err)


@pytest.mark.parametrize(("mode", "key", "fragment"), [
    ("500", "prometheus.http_error", "HTTP 500"),
    ("bad_data", "prometheus.query_error", "11,000"),
    ("garbage", "prometheus.bad_response", "not Prometheus JSON"),
])
def test_http_errors_error_json_and_garbage_become_metrics_unavailable(mode, key, fragment):
    with MisbehavingServer(mode) as server:
        err = _unavailable(PrometheusSource({"sd-jinan": server.url}, timeout=5, retries=0))
        assert err.key == key and fragment in str(err) and "sd-jinan" in str(err) and server.url in str(err)
        assert server.hits == 1  # a 500 is not retried in a loop


def test_a_slow_server_times_out_and_is_named():
    with MisbehavingServer("slow", delay_s=3) as server:
        t0 = time.monotonic()
        err = _unavailable(PrometheusSource({"hn-zhengzhou": server.url}, timeout=0.5, retries=2))
        assert time.monotonic() - t0 < 2.5  # read timeouts are not retried
        assert err.key == "prometheus.timeout" and "hn-zhengzhou" in str(err) and "0.5" in str(err)


def test_one_server_down_keeps_the_others_rows_as_partial(fx, prom):
    src = PrometheusSource({"hq": prom.url, "zj-hangzhou": f"http://127.0.0.1:{free_port()}"}, timeout=2, retries=0)
    with pytest.raises(MetricsUnavailable) as err:
        src.daily_gpu_stats(fx.day_after)
    assert err.value.cluster == "zj-hangzhou" and err.value.partial.height == 4
    assert set(err.value.partial["cluster"]) == {"hq"}


def test_last_good_frame_survives_an_outage(fx, prom):
    cache: dict = {}
    good = PrometheusSource({"hq": prom.url}, left_open_ranges=prom.left_open_ranges, retries=0)
    down = PrometheusSource({"hq": f"http://127.0.0.1:{free_port()}"}, timeout=1, retries=0)
    t0 = datetime.now(timezone.utc)
    first = with_last_good(lambda: good.latest(_at(fx)), cache, key="latest", now=t0)
    later = with_last_good(lambda: down.latest(_at(fx)), cache, key="latest", now=t0 + timedelta(minutes=3))
    assert not first.stale and later.stale and later.frame.equals(first.frame) and later.age == timedelta(minutes=3)
    assert later.error.key == "prometheus.unreachable"


# --------------------------------------------------------------------------- service requests (QPS, latency)


SERVING_FIGURES = ("requests", "covered_s", "qps_mean", "qps_peak", "latency_mean_ms", "latency_p99_ms", "coverage")


def _same_figures(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """The same rows with the same figures (empty where ``want``'s are)."""
    assert got.select("cluster", "namespace").rows() == want.select("cluster", "namespace").rows()
    for g, w in zip(got.iter_rows(named=True), want.iter_rows(named=True)):
        for name in SERVING_FIGURES:
            if w[name] is None:
                assert g[name] is None, (name, g["namespace"])
            else:
                assert g[name] == pytest.approx(w[name], rel=1e-9), (name, g["namespace"])


def _offline_serving(served, tmp_path):
    from core.metrics.serving import OfflineServingSource

    # every row read for the schema: the http services' own bucket (le_0.1) first appears after 100 vLLM rows
    rows = pl.DataFrame(served[1], infer_schema_length=None).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    for (day,), part in rows.with_columns(day=pl.col("ts").dt.date()).partition_by("day", as_dict=True).items():
        folder = tmp_path / f"day={day.isoformat()}"
        folder.mkdir(parents=True)
        # one day as Parquet, the other as CSV: both formats in one comparison
        if day.day % 2:
            part.drop("day").write_parquet(folder / "part.parquet")
        else:
            part.drop("day").write_csv(folder / "part.csv")
    return OfflineServingSource(tmp_path)


@pytest.mark.parametrize("which", ["day_after", "whole"])
def test_serving_stats_equal_the_offline_request_samples(fx, source, served, tmp_path, which):
    if which == "day_after":
        start = datetime.combine(fx.day_after, dtime(0), tzinfo=timezone.utc)
        end = start + timedelta(days=1)
    else:
        start, end = fx.start, fx.end + timedelta(minutes=1)
    got = source.serving_stats(start, end)
    assert source.query_count == 1
    want = _offline_serving(served, tmp_path).serving_stats(start, end)
    _same_figures(got, want)
    assert set(got["namespace"]) == {"svc-v", NASTY_NS, "svc-both", "svc-counter"}
    counter_only = got.filter(pl.col("namespace") == "svc-counter").row(0, named=True)
    assert counter_only["qps_mean"] > 0 and counter_only["latency_p99_ms"] is None
    # svc-both also exports http metrics (a health check at ~10 ms): the vLLM figures are the ones read
    both = got.filter(pl.col("namespace") == "svc-both").row(0, named=True)
    assert both["latency_mean_ms"] > 500
    if which == "day_after":
        assert got["covered_s"].to_list() == [90 * 60.0] * 4 and got["coverage"][0] == pytest.approx(90 / 1440)


def test_serving_stats_of_a_window_without_requests_are_empty(fx, source):
    start = datetime.combine(fx.day_before - timedelta(days=3), dtime(0), tzinfo=timezone.utc)
    frame = source.serving_stats(start, start + timedelta(days=1))
    assert frame.height == 0 and source.query_count == 1


def _parts_by_namespace(parts: pl.DataFrame) -> dict[tuple[str, str], dict]:
    """Each row's figures and non-empty buckets (bucket layouts differ between exporters)."""
    return {(r["cluster"], r["namespace"]): {k: v for k, v in r.items() if v is not None and k not in ("cluster", "namespace")}
            for r in parts.iter_rows(named=True)}


def test_serving_rollup_days_equal_the_offline_days_and_add_up_to_the_live_window(fx, source, served, tmp_path, ctx):
    from core.db.session import unit_of_work
    from core.metrics.serving import load_settings, stats_from_parts
    from core.metrics.serving_rollup import day_bounds, month_parts, read_serving_days, rollup_serving_day

    offline = _offline_serving(served, tmp_path)
    days = [fx.day_before, fx.day_after]
    per_day = 86400 // load_settings().query_piece_s  # a day is asked in pieces; their parts add up exactly
    assert per_day > 1
    for day in days:
        source.reset_query_count()
        made = rollup_serving_day(sessions=ctx.sessions, source=source, day=day)
        assert source.query_count == per_day and made["source"] == "prometheus" and made["inserted"] == 4
    gap = fx.day_before - timedelta(days=3)  # no request sample: not stored, its rows (none) left alone
    assert rollup_serving_day(sessions=ctx.sessions, source=source, day=gap)["skipped"]
    with unit_of_work(ctx.sessions) as s:
        stored = read_serving_days(s, gap, days[1])
    assert sorted(set(stored["day"])) == days and set(stored["source"]) == {"prometheus"}
    for day in days:
        got = _parts_by_namespace(stored.filter(pl.col("day") == day).drop("day", "source"))
        want = _parts_by_namespace(offline.serving_parts(*day_bounds(day)))
        assert got.keys() == want.keys()
        for key, w in want.items():
            assert got[key].keys() == w.keys(), key  # the same buckets, latency only where exported
            for name, value in w.items():
                assert got[key][name] == pytest.approx(value, rel=1e-9), (key, name)
    start, end = day_bounds(days[0])[0], day_bounds(days[1])[1]
    source.reset_query_count()
    parts, basis = month_parts(stored, start, end)
    rolled = stats_from_parts(parts, (end - start).total_seconds(), quantile=load_settings().quantile)
    assert source.query_count == 0 and basis.rollup_days == 2
    _same_figures(rolled, source.serving_stats(start, end))
    assert rolled["latency_p99_ms"].drop_nulls().len() == 3  # svc-counter exports no histogram


# --------------------------------------------------------------------------- CPU (cAdvisor + kube-state-metrics)


def _offline_cpu(cpu_used, tmp_path):
    from core.metrics.cpu import OfflineCpuSource

    rows = pl.DataFrame(cpu_used[1], infer_schema_length=None).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    for (day,), part in rows.with_columns(day=pl.col("ts").dt.date()).partition_by("day", as_dict=True).items():
        folder = tmp_path / f"day={day.isoformat()}"
        folder.mkdir(parents=True)
        if day.day % 2:  # one day as Parquet, the other as CSV
            part.drop("day").write_parquet(folder / "part.parquet")
        else:
            part.drop("day").write_csv(folder / "part.csv")
    return OfflineCpuSource(tmp_path)


@pytest.mark.parametrize("which", ["day_before", "day_after", "whole"])
def test_cpu_parts_equal_the_offline_cpu_samples(fx, source, cpu_used, tmp_path, which):
    from core.metrics.cpu import day_bounds, window_parts

    if which == "whole":
        start, end = fx.start, fx.end + timedelta(minutes=1)
    else:
        start, end = day_bounds(getattr(fx, which))
    from core.metrics.cpu import load_settings
    from core.metrics.serving import pieces

    got = window_parts(source, start, end)
    assert source.query_count == len(pieces(start, end, load_settings().query_piece_s))  # not per namespace
    want = window_parts(_offline_cpu(cpu_used, tmp_path), start, end)
    assert got.select("cluster", "namespace").rows() == want.select("cluster", "namespace").rows()
    assert set(got["namespace"]) == {"team-a", NASTY_NS, "team-b", "cpu-exported"}
    for g, w in zip(got.iter_rows(named=True), want.iter_rows(named=True)):
        for name in ("cpu_core_s", "covered_s", "cores_used_peak", "requested_core_s"):
            if w[name] is None:
                assert g[name] is None, (name, g["namespace"])
            else:
                assert g[name] == pytest.approx(w[name], rel=1e-9), (name, g["namespace"])
    a = got.filter(pl.col("namespace") == "team-a").row(0, named=True)
    assert a["requested_core_s"] == pytest.approx(2 * cpu_mod.REQUEST_CORES * a["covered_s"])  # the pod cgroup and pause left out
    assert a["cpu_core_s"] < a["requested_core_s"] * 3.5 / 4


def test_cpu_rollup_from_prometheus_stores_the_offline_figures(fx, source, cpu_used, tmp_path, ctx):
    from core.db.session import unit_of_work
    from core.metrics.cpu import day_parts, load_settings, read_cpu_days, source_kind
    from core.metrics.persistence import rollup_and_store

    offline = _offline_cpu(cpu_used, tmp_path)
    for day in (fx.day_before, fx.day_after):
        source.reset_query_count()
        parts = day_parts(source, day)
        assert source.query_count == 86400 // load_settings().query_piece_s
        made = rollup_and_store(sessions=ctx.sessions, source=_NoGpu(), day=day, cpu=(parts, source_kind(source)))
        assert made["cpu"]["source"] == "prometheus" and made["cpu"]["inserted"] == 4
    with unit_of_work(ctx.sessions) as s:
        stored = read_cpu_days(s, fx.day_before, fx.day_after)
    for day in (fx.day_before, fx.day_after):
        got = stored.filter(pl.col("day") == day).drop("day", "source")
        want = day_parts(offline, day)
        assert got.select("namespace").rows() == want.select("namespace").rows()
        for g, w in zip(got.iter_rows(named=True), want.iter_rows(named=True)):
            for k, v in w.items():
                assert g[k] == (v if v is None or isinstance(v, str) else pytest.approx(v, rel=1e-9)), (day, g["namespace"], k)


class _NoGpu:
    """A GPU source without samples: the CPU figures alone are stored."""

    def daily_gpu_stats(self, day, *, step_s=60):
        return pl.DataFrame(schema=ROLLUP_SCHEMA).drop("day")


@pytest.mark.parametrize(("value", "left_open"), [("", False), ("closed", False), ("open", True), (" Open ", True)])
def test_the_range_setting_reaches_the_source(monkeypatch, value, left_open):
    from core.metrics.prometheus import source_from_settings

    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_URLS", "hq=http://127.0.0.1:9")
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_RANGES", value)
    assert source_from_settings().left_open_ranges is left_open


def test_an_unknown_range_setting_is_refused_naming_it(monkeypatch):
    from core.errors import InputError
    from core.metrics.prometheus import prometheus_settings

    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_RANGES", "half-open")
    with pytest.raises(InputError) as err:
        prometheus_settings()
    assert err.value.field == "COMPUTELOOP_PROMETHEUS_RANGES"


def test_concurrent_pieces_and_clusters_give_the_same_parts_as_one_after_another(fx, prom):
    from core.metrics.serving import prometheus_parts

    start = datetime.combine(fx.day_before, dtime(0), tzinfo=timezone.utc)
    end = start + timedelta(days=2)
    servers = {"hq-beijing-1": prom.url, "js-nanjing": prom.url}
    frames = {}
    for workers in (1, 8):
        src = PrometheusSource(servers, retries=0, left_open_ranges=prom.left_open_ranges, concurrency=workers)
        frames[workers] = prometheus_parts(src, start, end)
        assert src.query_count == 2 * 24  # 12 two-hour pieces a day, two days, two clusters
        src.close()
    assert frames[1].height > 0
    assert frames[1].equals(frames[8])


# --------------------------------------------------------------------------- the daily job on a store


def test_jobs_rollup_reads_the_gpu_day_from_the_store_when_it_is_configured(fx, prom, cli, ctx, tmp_path, monkeypatch):
    """A deployment with a Prometheus-compatible store and no sample files: `jobs rollup` (source
    auto, the default, and prometheus) stores the day the store answers; `--source prometheus`
    without servers is refused with one line naming the setting."""
    from sqlalchemy import text

    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    code, out, err = cli("jobs", "rollup", "--day", fx.day_after.isoformat(), "--source", "prometheus",
                         "--root", str(tmp_path / "none"))
    assert code == 2 and out == "" and "COMPUTELOOP_PROMETHEUS_URLS" in err and err.count("\n") == 1, (code, err)

    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_URLS", f"hq={prom.url}")
    monkeypatch.setenv("COMPUTELOOP_PROMETHEUS_RANGES", "open" if prom.left_open_ranges else "closed")
    want = PrometheusSource({"hq": prom.url}, left_open_ranges=prom.left_open_ranges).daily_gpu_stats(fx.day_after)
    assert want.height > 0
    for choice in ("auto", "prometheus"):
        code, out, err = cli("jobs", "rollup", "--day", fx.day_after.isoformat(), "--source", choice,
                             "--root", str(tmp_path / "none"), "--json")
        assert code == 0, err
        result = json.loads(out)
        assert result["gpu_source"] == "prometheus" and result["rows"] == want.height
        with ctx.engine.connect() as conn:
            stored = conn.execute(text("SELECT COUNT(*), SUM(used_gpu_hours) FROM gpu_daily_rollups WHERE day = :d"),
                                  {"d": fx.day_after}).one()
        assert stored[0] == want.height
        assert stored[1] == pytest.approx(want["used_gpu_hours"].sum(), rel=1e-9)
