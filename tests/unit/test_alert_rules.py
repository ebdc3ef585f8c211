"""Alert rules of the dual thresholds and the pools (core/cluster/alert_rules.py): what is rendered
for which cluster, routed to whom, with which thresholds and windows; the PrometheusRule against the
Prometheus Operator CRD's schema. promtool and the real Prometheus: tests/integration/test_alert_rules_prometheus.py."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
import yaml

from core.adjust.autoscaling import ScalingPolicy, default_policy
from core.cluster import alert_rules as ar
from core.cluster.backends import PlanBackend
from core.errors import InputError
from core.org import load_org
from tests.support.fuzz import run_cli

CRD = Path(__file__).resolve().parents[1] / "fixtures" / "crds" / "monitoring.coreos.com_prometheusrules.yaml"
HAN = re.compile(r"[\u4e00-\u9fff]")


def _custom() -> ScalingPolicy:
    return ScalingPolicy("cs-infer", "qwen-chat", min_replicas=2, max_replicas=6, util_high=0.7, util_low=0.2,
                         mem_high=0.85, sustain_s=120, scale_up_window_s=120, scale_down_window_s=900)


PLACED = [ar.PlacedPolicy(_custom(), "js-pool"), ar.PlacedPolicy(default_policy("hq-chat", "serve"), "hq-inf")]


def _rules(doc) -> list[dict]:
    return [r for g in doc["spec"]["groups"] for r in g["rules"]]


def test_every_pool_has_one_saturation_alert_in_its_own_clusters_prometheus_rule():
    org = load_org()
    seen = {}
    for cluster in org.clusters:
        for rule in _rules(ar.prometheus_rule(cluster, PLACED)):
            if rule["alert"] == ar.POOL_SATURATED:
                assert rule["labels"]["cluster"] == cluster
                seen.setdefault(rule["labels"]["pool"], []).append(cluster)
    assert seen == {p.id: [p.cluster] for p in org.pools.values()}


def test_provincial_alerts_go_to_prov_ops_and_hq_alerts_to_hq_ops_with_province_cluster_and_pool():
    js = {r["alert"]: r["labels"] for r in _rules(ar.prometheus_rule("js-nanjing", PLACED))}
    assert js[ar.POOL_SATURATED] == {"severity": "critical", "team": "prov-ops", "province": "JS",
                                     "cluster": "js-nanjing", "pool": "js-pool"}
    assert js[ar.SCALE_OUT] == {"severity": "warning", "team": "prov-ops", "province": "JS", "cluster": "js-nanjing",
                                "pool": "js-pool", "namespace": "cs-infer", "deployment": "qwen-chat"}
    assert js[ar.SCALE_IN]["severity"] == "info" and js[ar.MEMORY]["severity"] == "warning"
    hq = [r for r in _rules(ar.prometheus_rule("hq-beijing-2", PLACED)) if r["labels"].get("pool") == "hq-inf"]
    assert {r["labels"]["team"] for r in hq} == {"hq-ops"} and {r["labels"]["province"] for r in hq} == {"HQ"}
    assert {r["alert"] for r in hq} == {ar.SCALE_OUT, ar.SCALE_IN, ar.MEMORY, ar.POOL_SATURATED}


def test_a_policy_is_rendered_only_on_the_cluster_of_its_pool():
    elsewhere = _rules(ar.prometheus_rule("zj-hangzhou", PLACED))
    assert {r["alert"] for r in elsewhere} == {ar.POOL_SATURATED}


def test_the_alerts_use_the_policys_own_thresholds_and_windows():
    rules = {r["alert"]: r for r in _rules(ar.prometheus_rule("js-nanjing", PLACED))}
    assert rules[ar.SCALE_OUT]["expr"].endswith(") > 0.7") and rules[ar.SCALE_OUT]["for"] == "2m"
    assert rules[ar.MEMORY]["expr"].endswith(") > 0.85") and rules[ar.MEMORY]["for"] == "2m"
    scale_in = rules[ar.SCALE_IN]
    assert ") < 0.2) unless (" in scale_in["expr"] and scale_in["expr"].endswith(") > 0.85)")
    assert scale_in["for"] == "15m"  # the policy's scale-down window, as the replay's scale-in rule
    shown = rules[ar.SCALE_OUT]["annotations"]
    assert "70%" in shown["summary"] and "2 分钟" in shown["description"] and "2 min" in shown["description_en"]


def test_the_utilisation_reads_prof_then_dev_in_both_label_styles_smoothed_by_the_data_files_window():
    s = ar.load_alert_settings()
    expr = ar.scale_out_expr(default_policy("cs-infer", "x"), s.smoothing_s)
    win = f"[{s.smoothing_s}s]"
    assert f'DCGM_FI_PROF_GR_ENGINE_ACTIVE{{exported_namespace="cs-infer"}}{win}' in expr
    assert f'DCGM_FI_PROF_GR_ENGINE_ACTIVE{{namespace="cs-infer",exported_namespace=""}}{win}' in expr
    assert f'DCGM_FI_DEV_GPU_UTIL{{exported_namespace="cs-infer"}}{win}' in expr and ") / 100)" in expr
    assert "MEM_COPY_UTIL" not in ar.memory_expr(default_policy("cs-infer", "x"), 60)
    assert "DCGM_FI_DEV_FB_FREE" in ar.memory_expr(default_policy("cs-infer", "x"), 60)


def test_pool_saturation_counts_running_pods_on_the_pools_labelled_nodes_with_the_vendors_gpu_resource():
    s = ar.load_alert_settings()
    rules = {r["labels"]["pool"]: r for r in _rules(ar.prometheus_rule("zj-hangzhou", []))}
    expr = rules["zj-pool"]["expr"]
    assert 'resource="huawei_com_Ascend910"' in expr  # Ascend-910B: data/cluster_settings.yaml gpu_resources_by_vendor
    assert 'kube_node_labels{label_computeloop_io_pool="zj-pool"}' in expr
    assert 'kube_pod_status_phase{phase="Running"}' in expr and expr.endswith(f">= {s.saturation_ratio!r}")
    assert rules["zj-pool"]["for"] == ar.duration(s.saturation_for_s)
    nvidia = _rules(ar.prometheus_rule("js-nanjing", []))[0]["expr"]
    assert 'resource="nvidia_com_gpu"' in nvidia


def test_hq_and_provincial_saturation_say_what_each_team_does():
    js = _rules(ar.prometheus_rule("js-nanjing", []))[0]["annotations"]
    hq = _rules(ar.prometheus_rule("hq-beijing-1", []))[0]["annotations"]
    assert "预留资源池" in js["description"] and "reserve pool" in js["description_en"]
    assert "总部" in hq["summary"] and "idle province" in hq["description_en"]


def test_annotations_are_chinese_first_with_english_beside_and_label_values_are_ascii():
    for cluster in load_org().clusters:
        for rule in _rules(ar.prometheus_rule(cluster, PLACED)):
            ann = rule["annotations"]
            assert list(ann) == ["summary", "description", "summary_en", "description_en"]
            assert HAN.search(ann["summary"]) and HAN.search(ann["description"])
            assert not HAN.search(ann["summary_en"] + ann["description_en"])
            assert "{{ $value | humanizePercentage }}" in ann["description"]
            assert all(v.isascii() and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v) for v in rule["labels"].values())


def test_a_non_ascii_pool_id_is_refused_rather_than_sent_as_a_routing_label():
    org = load_org()
    pool = replace(org.pools["js-pool"], id="江苏池")
    bad = replace(org, pools={**org.pools, pool.id: pool})
    with pytest.raises(InputError) as err:
        ar.routing_labels(bad, pool.id, "critical", ar.load_alert_settings())
    assert err.value.field == "org.yaml" and "江苏池" in err.value.params["entry"]


def test_an_invalid_policy_is_refused_before_anything_is_rendered():
    bad = ar.PlacedPolicy(replace(default_policy("cs-infer", "x"), util_low=0.9), "js-pool")
    with pytest.raises(InputError):
        ar.prometheus_rule("js-nanjing", [bad])


def test_the_prometheus_rule_validates_against_the_prometheus_operator_crd_schema():
    schema = yaml.safe_load(CRD.read_text(encoding="utf-8"))["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # Draft 7 without the metaschema check: the CRD's patterns are Go RE2 (``^(?i)…`` is not a Python regex)
    validator = jsonschema.Draft7Validator(schema)
    for cluster in load_org().clusters:
        doc = PlanBackend().alert_rules(cluster, PLACED)
        assert (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
        assert doc["metadata"]["labels"]["release"] == ar.load_alert_settings().rule_labels["release"]
        validator.validate(doc)
    broken = PlanBackend().alert_rules("js-nanjing", PLACED)
    broken["spec"]["groups"][0]["rules"][0]["for"] = "5 minutes"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_the_rules_file_has_unique_group_names_across_clusters():
    doc = ar.rules_file(list(load_org().clusters), PLACED)
    names = [g["name"] for g in doc["groups"]]
    assert len(names) == len(set(names)) and all(g["interval"] == "30s" for g in doc["groups"])


@pytest.mark.parametrize("seconds, text", [(300, "5m"), (600, "10m"), (90, "1m30s"), (3600, "1h"), (3661, "1h1m1s"),
                                           (0, "0s"), (45, "45s")])
def test_durations_are_written_the_prometheus_way(seconds, text):
    assert ar.duration(seconds) == text


def test_the_yaml_keeps_chinese_readable_and_puts_the_header_as_comments():
    text = ar.dump([ar.rules_file(["js-nanjing"], PLACED)], ["not placed: a/b"])
    assert text.startswith("# not placed: a/b\n") and "资源池" in text
    assert yaml.safe_load(text)["groups"][0]["name"] == "computeloop-gpu-scaling-js-nanjing"


def test_an_unknown_cluster_is_refused_with_one_line_naming_the_option():
    result = run_cli(["alerts", "render", "--cluster", "mars-1"])
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1 and "--cluster" in result.err and "js-nanjing" in result.err
