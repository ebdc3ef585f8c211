"""Training-sheet bottleneck hints fire on their pattern and stay quiet on a healthy run; the
inference sheet's figures, cost and "not exported" QPS columns."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from core.errors import InputError
from core.metrics import usage
from core.metrics.schema import ROLLUP_SCHEMA

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)


def _series(utils: dict[str, list[float]], mem: float = 0.8) -> pl.DataFrame:
    rows = []
    for gpu, values in utils.items():
        for i, u in enumerate(values):
            rows.append({"ts": T0 + timedelta(minutes=i), "uuid": gpu, "hostname": f"node-{gpu[-1]}",
                         "model": "A800-80GB", "namespace": "run", "util": u, "mem": mem, "power_w": 100 + 300 * u})
    return pl.DataFrame(rows, schema=usage.SERIES_COLUMNS)


def _keys(series: pl.DataFrame) -> list[str]:
    return [h.key for h in usage.bottleneck_hints(series)]


N = 120  # two hours at one sample a minute


def test_a_healthy_run_gets_no_hint():
    assert _keys(_series({f"g{i}": [0.9] * N for i in range(4)})) == []


def test_low_utilisation_with_high_memory_fires():
    hints = usage.bottleneck_hints(_series({f"g{i}": [0.15] * N for i in range(4)}, mem=0.85))
    assert [h.key for h in hints] == ["usage.hint.low_util_high_memory"]
    assert hints[0].params["util"] == 15.0 and hints[0].params["memory"] == 85.0


def test_low_utilisation_with_little_memory_is_not_that_hint():
    assert _keys(_series({f"g{i}": [0.15] * N for i in range(4)}, mem=0.2)) == []


def test_idle_gpus_in_a_multi_gpu_job_fire():
    hints = usage.bottleneck_hints(_series({"g0": [0.9] * N, "g1": [0.92] * N, "g2": [0.02] * N, "g3": [0.03] * N}))
    assert [h.key for h in hints] == ["usage.hint.idle_gpus"]
    assert hints[0].params["idle"] == 2 and hints[0].params["gpus"] == 4 and "node-2/g2" in hints[0].params["which"]


def test_a_single_idle_gpu_job_is_not_the_multi_gpu_hint():
    assert "usage.hint.idle_gpus" not in _keys(_series({"g0": [0.02] * N}))


def test_utilisation_oscillating_between_high_and_zero_is_input_bound():
    alternating = [0.95 if (i // 2) % 2 == 0 else 0.02 for i in range(N)]  # 30 switches an hour
    assert _keys(_series({f"g{i}": alternating for i in range(4)})) == ["usage.hint.input_bound"]


def test_a_slow_phase_change_is_not_input_bound():
    phases = [0.95] * 60 + [0.02] * 60  # train an hour, evaluate an hour
    assert "usage.hint.input_bound" not in _keys(_series({f"g{i}": phases for i in range(4)}))


def test_too_few_samples_give_no_hint():
    assert _keys(_series({"g0": [0.9] * 5, "g1": [0.01] * 5}, mem=0.9)) == []


def test_a_namespace_that_is_not_a_kubernetes_name_is_refused():
    with pytest.raises(InputError) as err:
        usage.check_namespace('ns"} or vector(1)')
    assert err.value.field == "namespace"
    assert usage.check_namespace(" team-a ") == "team-a"


def _row(day: date, uuid: str, ns: str, model: str, mean: float, peak: float, samples: int, alloc: float) -> dict:
    return {"day": day, "cluster": "c1", "hostname": "n0", "uuid": uuid, "model": model, "namespace": ns,
            "mean_util": mean, "peak_util": peak, "mean_mem": 0.6, "peak_mem": 0.7, "allocated_gpu_hours": alloc,
            "used_gpu_hours": alloc * mean, "energy_kwh": 2.0, "samples": samples, "expected_samples": 1440,
            "coverage": samples / 1440}


def test_the_inference_sheet_weights_means_prices_hours_and_says_qps_is_not_exported():
    from core.estimation.catalog import load_catalog

    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    rows = pl.DataFrame([
        _row(d1, "u1", "svc", "L20", 0.2, 0.6, 1440, 24.0),
        _row(d2, "u1", "svc", "L20", 0.5, 0.9, 720, 12.0),
        _row(d1, "u2", "train", "L20", 0.9, 0.95, 1440, 24.0),
        _row(d1, "u3", "", "L20", 0.0, 0.0, 1440, 0.0),
    ], schema=ROLLUP_SCHEMA)
    sheet = usage.inference_rows(rows, {"svc": "inference", "train": "training"})
    assert sheet["namespace"].to_list() == ["svc"]
    r = sheet.row(0, named=True)
    assert r["mean_util"] == pytest.approx((0.2 * 1440 + 0.5 * 720) / 2160)
    assert r["peak_util"] == 0.9 and r["days"] == 2 and r["gpus"] == 1
    assert r["allocated_gpu_hours"] == 36.0
    assert r["cost"] == pytest.approx(36.0 * load_catalog().get("L20").price_cny_per_gpu_hour)
    assert r["qps_mean"] is None and r["latency_p99_ms"] is None


def test_month_bounds_cover_the_calendar_month():
    assert usage.month_bounds(date(2024, 2, 17)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert usage.month_bounds(date(2026, 12, 31)) == (date(2026, 12, 1), date(2026, 12, 31))
