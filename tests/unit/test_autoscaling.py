"""Dual-threshold autoscaling: the HPA validates against Kubernetes 1.30, the KEDA ScaledObject's
structure, and the replay on hand-made series."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import kubernetes_validate
import pytest

from core.adjust import autoscaling as a
from core.errors import InputError

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _policy(**kw):
    base = dict(namespace="cs-infer", deployment="qwen-chat", min_replicas=2, max_replicas=4, util_high=0.8,
                util_low=0.3, mem_high=0.9, sustain_s=300, scale_up_window_s=300, scale_down_window_s=600)
    base.update(kw)
    return a.ScalingPolicy(**base)


def _series(values, replicas=2, mem=0.5, step_s=60):
    return [a.Point(T0 + timedelta(seconds=i * step_s), u, mem if not isinstance(mem, list) else mem[i], replicas)
            for i, u in enumerate(values)]


def test_the_hpa_validates_against_the_kubernetes_1_30_schema():
    hpa = a.render_hpa(_policy())
    kubernetes_validate.validate(hpa, "1.30", strict=True)
    spec = hpa["spec"]
    assert spec["minReplicas"] == 2 and spec["maxReplicas"] == 4
    assert spec["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 300
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    targets = {m["pods"]["metric"]["name"]: m["pods"]["target"]["averageValue"] for m in spec["metrics"]}
    assert targets == {"dcgm_gpu_utilization": "800m", "dcgm_gpu_memory_used_ratio": "900m"}


def test_a_broken_hpa_is_rejected_by_the_schema():
    hpa = a.render_hpa(_policy())
    hpa["spec"]["minReplicas"] = "two"
    with pytest.raises(Exception):
        kubernetes_validate.validate(hpa, "1.30", strict=True)


def test_the_keda_scaled_object_carries_both_prometheus_triggers_with_their_thresholds():
    obj = a.render_keda(_policy())
    assert obj["apiVersion"] == "keda.sh/v1alpha1" and obj["kind"] == "ScaledObject"
    spec = obj["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "qwen-chat"}
    assert spec["minReplicaCount"] == 2 and spec["maxReplicaCount"] == 4
    assert [t["type"] for t in spec["triggers"]] == ["prometheus", "prometheus"]
    util, mem = spec["triggers"]
    assert util["metadata"]["threshold"] == "0.8" and mem["metadata"]["threshold"] == "0.9"
    assert 'exported_namespace="cs-infer"' in util["metadata"]["query"]
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in util["metadata"]["query"] and "[300s]" in util["metadata"]["query"]
    assert "DCGM_FI_DEV_FB_FREE" in mem["metadata"]["query"]
    assert all(isinstance(v, str) for t in spec["triggers"] for v in t["metadata"].values())
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 600


def test_the_trigger_query_escapes_the_namespace():
    assert r'exported_namespace="a\"b"' in a.util_query('a"b', 300)


@pytest.mark.parametrize(("change", "field"), [({"max_replicas": 1}, "max_replicas"), ({"util_low": 0.9}, "util_low"),
                                               ({"namespace": "Bad_NS"}, "namespace"), ({"mem_high": 1.5}, "mem_high")])
def test_an_inconsistent_policy_names_the_field(change, field):
    with pytest.raises(InputError) as err:
        a.validate(_policy(**change))
    assert err.value.field == field


def test_replay_scales_out_after_five_minutes_above_80_percent_and_in_below_30_percent():
    # 5 min at 50 %, 10 min at 95 %, then 15 min at 10 % (per replica, 2 replicas observed)
    values = [0.5] * 5 + [0.95] * 10 + [0.1] * 16
    result = a.replay(_policy(), _series(values))
    events = result["events"]
    # above 80 % from minute 5; sustained 300 s at minute 10 → 3 replicas (load 1.9 / 3 = 63 %: no more)
    assert events[0]["ts"] == T0 + timedelta(minutes=10)
    assert (events[0]["from"], events[0]["to"], events[0]["reason"]) == (2, 3, "util_high")
    # below 30 % from minute 15; the scale-down window (600 s) ends at minute 25 → back to 2
    assert events[1]["ts"] == T0 + timedelta(minutes=25)
    assert (events[1]["from"], events[1]["to"], events[1]["reason"]) == (3, 2, "util_low")
    assert len(events) == 2
    assert min(p["replicas"] for p in result["timeline"]) == 2


def test_replay_never_goes_above_max_or_below_min():
    heavy = a.replay(_policy(), _series([0.9] * 30, replicas=10))
    assert max(p["replicas"] for p in heavy["timeline"]) == 4
    assert [e["to"] for e in heavy["events"]] == [3, 4]
    idle = a.replay(_policy(), _series([0.0] * 60))
    assert idle["events"] == [] and {p["replicas"] for p in idle["timeline"]} == {2}


def test_replay_scales_out_on_memory_alone():
    result = a.replay(_policy(), _series([0.5] * 8, mem=0.95))
    assert result["events"][0]["reason"] == "mem_high"
    assert result["events"][0]["ts"] == T0 + timedelta(minutes=5)


def test_replay_counts_gpu_hours_saved_against_a_fixed_maximum():
    points = [a.Point(T0 + timedelta(hours=h), 0.5, 0.5, 2) for h in range(3)]
    result = a.replay(_policy(gpus_per_replica=2), points)
    assert result["gpu_hours"] == pytest.approx(2 * 2 * 2)  # 2 replicas × 2 GPUs × 2 h
    assert result["fixed_max_gpu_hours"] == pytest.approx(4 * 2 * 2)
    assert result["saved_gpu_hours"] == pytest.approx(8)


POLICY_FIGURES = ("min_replicas", "max_replicas", "util_high", "util_low", "mem_high", "sustain_s",
                  "scale_up_window_s", "scale_down_window_s", "gpus_per_replica")


def test_defaults_come_from_the_data_file():
    import yaml

    from core.config import DATA_DIR

    raw = yaml.safe_load((DATA_DIR / "autoscaling_defaults.yaml").read_text(encoding="utf-8"))
    loaded = a.load_defaults()
    assert {f: getattr(loaded, f) for f in a.ScalingDefaults.__dataclass_fields__} == {
        f: raw[f] for f in a.ScalingDefaults.__dataclass_fields__}
    bare = a.ScalingPolicy("ns", "dep")
    assert {f: getattr(bare, f) for f in POLICY_FIGURES} == {f: raw[f] for f in POLICY_FIGURES}
    assert a.default_policy("ns", "dep") == bare
    assert (bare.util_high, bare.util_low, bare.mem_high, bare.sustain_s) == (0.8, 0.3, 0.9, 300)  # the seed's figures
    # a figure given explicitly wins over the file
    assert a.ScalingPolicy("ns", "dep", max_replicas=3).max_replicas == 3


def test_a_policy_built_without_figures_follows_a_changed_data_file(tmp_path, monkeypatch):
    import shutil

    import yaml

    from core.config import DATA_DIR

    raw = yaml.safe_load((DATA_DIR / "autoscaling_defaults.yaml").read_text(encoding="utf-8"))
    changed = {**raw, "util_high": 0.7, "util_low": 0.2, "mem_high": 0.85, "sustain_s": 120, "min_replicas": 3,
               "max_replicas": 12, "scale_up_window_s": 60, "scale_down_window_s": 900, "gpus_per_replica": 2,
               "scale_step_pods": 2, "scale_step_period_s": 30}
    shutil.copytree(DATA_DIR, tmp_path / "data")
    (tmp_path / "data" / "autoscaling_defaults.yaml").write_text(yaml.safe_dump(changed), encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(tmp_path / "data"))
    bare = a.ScalingPolicy("ns", "dep")
    assert {f: getattr(bare, f) for f in POLICY_FIGURES} == {f: changed[f] for f in POLICY_FIGURES}
    hpa = a.render_hpa(bare)
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 900
    assert hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "700m"
    assert hpa["spec"]["behavior"]["scaleUp"]["policies"] == [{"type": "Pods", "value": 2, "periodSeconds": 30}]


def test_a_metrics_series_becomes_mean_utilisation_and_replicas_per_timestamp():
    import polars as pl

    frame = pl.DataFrame({"ts": [T0, T0, T0 + timedelta(minutes=5)], "uuid": ["g1", "g2", "g1"],
                          "util": [0.2, 0.6, 0.9], "mem": [0.5, 0.7, 0.4]})
    points = a.series_points(frame)
    assert [(p.ts, round(p.util, 3), round(p.mem, 3), p.replicas) for p in points] == [
        (T0, 0.4, 0.6, 2), (T0 + timedelta(minutes=5), 0.9, 0.4, 1)]
    assert a.series_points(frame.clear()) == []
