"""The rendered alert rules against the real tools (Debian ``prometheus`` 2.42): every rules file passes
``promtool check rules``; ``promtool test rules`` pins when each alert fires and when not, ``for:``
included; each alert expression, evaluated by a real Prometheus over a backfilled hour, selects the
services and pools that should fire and no other; and ``python -m core alerts render`` end to end.

The hour of series (dcgm-exporter in both label styles, kube-state-metrics) is built here, small on
purpose: each service and pool exists to make one mistake visible — a wrong label style, a
missing PROF → DEV fallback, a completed pod counted, a node of another pool counted, memory
ignored on scale-in.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from core.adjust import services as adjust
from core.adjust.autoscaling import default_policy
from core.cluster import alert_rules as ar
from tests.conftest import missing_service
from tests.support import clock
from tests.support.cli import json_of
from tests.support.people import HQ_OPS
from tests.support.prometheus_server import PrometheusServer, find_binaries
from tests.support.subjects import granted

pytestmark = pytest.mark.live

SERVICES = ("hot", "cold", "mid", "devonly", "idlefull")
PLACED = [ar.PlacedPolicy(default_policy(ns, "serve"), "js-pool") for ns in (*SERVICES, "dip")]
CLUSTERS = ("js-nanjing", "sd-jinan")


@pytest.fixture(scope="module")
def tools():
    binaries = find_binaries()
    if binaries is None:
        missing_service("Debian prometheus (prometheus and promtool)")
    return binaries


def _write(path: Path, doc) -> Path:
    path.write_text(ar.dump([doc]), encoding="utf-8")
    return path


def _promtool(tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


# --------------------------------------------------------------------------- series


def _gpu(ns: str, style: str, gpu: str = "0") -> dict[str, str]:
    """dcgm-exporter labels of one GPU of ``ns``: the Helm chart's (exported_*) or the plain style."""
    if style == "exported":
        return {"exported_namespace": ns, "exported_pod": f"{ns}-0", "namespace": "gpu-operator",
                "pod": "dcgm-exporter-abcde", "Hostname": "gpu-h1", "gpu": gpu, "UUID": f"GPU-{ns}-{gpu}"}
    return {"namespace": ns, "pod": f"{ns}-0", "hostname": "gpu-h2", "gpu": gpu, "UUID": f"GPU-{ns}-{gpu}"}


def _dcgm(ns: str, style: str, *, used: float, free: float, prof=None, dev=None) -> list[tuple[str, dict, object]]:
    labels = _gpu(ns, style)
    out = [("DCGM_FI_DEV_FB_USED", labels, used), ("DCGM_FI_DEV_FB_FREE", labels, free)]
    if prof is not None:
        out.append(("DCGM_FI_PROF_GR_ENGINE_ACTIVE", labels, prof))
    if dev is not None:
        out.append(("DCGM_FI_DEV_GPU_UTIL", labels, dev))
    return out


def _pod(ns: str, pod: str, node: str, gpus: int, phase: str, *, exported: bool) -> list[tuple[str, dict, object]]:
    """kube-state-metrics series of one pod: its GPU request and its phase (one series per phase)."""
    who = ({"exported_namespace": ns, "exported_pod": pod, "namespace": "monitoring", "pod": "kube-state-metrics-0"}
           if exported else {"namespace": ns, "pod": pod})
    out = [("kube_pod_container_resource_requests",
            {**who, "container": "main", "node": node, "resource": "nvidia_com_gpu", "unit": "integer"}, gpus)]
    out += [("kube_pod_status_phase", {**who, "phase": p}, 1 if p == phase else 0) for p in ("Running", "Succeeded")]
    return out


def _node(node: str, pool: str, gpus: int) -> list[tuple[str, dict, object]]:
    return [("kube_node_labels", {"node": node, "label_computeloop_io_pool": pool}, 1),
            ("kube_node_status_allocatable", {"node": node, "resource": "nvidia_com_gpu", "unit": "integer"}, gpus)]


def _pools() -> list[tuple[str, dict, object]]:
    """js-pool full (16 of 16, one pod in each label style) beside a node of another pool;
    sd-pool half used, with a completed pod that would fill it if counted."""
    return [*_node("js-n1", "js-pool", 8), *_node("js-n2", "js-pool", 8), *_node("js-n3", "other-pool", 8),
            *_pod("cold", "p1", "js-n1", 8, "Running", exported=False),
            *_pod("hot", "p2", "js-n2", 8, "Running", exported=True),
            *_node("sd-n1", "sd-pool", 4),
            *_pod("sd-a", "q1", "sd-n1", 2, "Running", exported=True),
            *_pod("sd-a", "q2", "sd-n1", 2, "Succeeded", exported=True)]


def _selector(metric: str, labels: dict) -> str:
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


# --------------------------------------------------------------------------- promtool check rules


def test_every_rendered_rules_file_passes_promtool_check(tools, tmp_path):
    from core.org import load_org

    _, promtool = tools
    clusters = list(load_org().clusters)
    placed = PLACED + [ar.PlacedPolicy(default_policy("hq-chat", "serve"), "hq-inf"),
                       ar.PlacedPolicy(default_policy("zj-chat", "serve"), "zj-pool")]
    files = [_write(tmp_path / "all.yaml", ar.rules_file(clusters, placed))]
    for c in clusters:
        files.append(_write(tmp_path / f"{c}.rules.yaml", ar.rules_file([c], placed)))
        files.append(_write(tmp_path / f"{c}.spec.yaml", {"groups": ar.prometheus_rule(c, placed)["spec"]["groups"]}))
    result = _promtool(promtool, "check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)
    expected = 3 * len(placed) + len(load_org().pools)
    assert f"SUCCESS: {expected} rules found" in result.stdout  # the file of every cluster at once

    broken = ar.rules_file(["js-nanjing"], placed)
    broken["groups"][0]["rules"][0]["expr"] += " >"  # promtool must refuse what Prometheus would refuse
    result = _promtool(promtool, "check", "rules", str(_write(tmp_path / "broken.yaml", broken)))
    assert result.returncode != 0


# --------------------------------------------------------------------------- promtool test rules


def _expected(rules: list[dict], alert: str, who: str, value: float) -> dict:
    """The alert promtool should see: the rule's labels and its annotations with ``$value`` filled in
    as Prometheus' humanizePercentage writes it (``%.4g%%`` of value × 100)."""
    rule = next(r for r in rules if r["alert"] == alert and who in (r["labels"].get("namespace"), r["labels"]["pool"]))
    shown = f"{value * 100:.4g}%"
    return {"exp_labels": rule["labels"],
            "exp_annotations": {k: v.replace(ar.VALUE, shown) for k, v in rule["annotations"].items()}}


def test_promtool_unit_tests_pin_when_each_alert_fires_and_its_for_duration(tools, tmp_path):
    _, promtool = tools
    doc = ar.rules_file(["js-nanjing"], PLACED)
    rules = [r for g in doc["groups"] for r in g["rules"]]
    _write(tmp_path / "rules.yaml", doc)
    series = [*_dcgm("hot", "exported", prof="0.9x30", used="76000x30", free="4000x30"),
              # above 80 % except one dip at 4m: the `for:` starts again after it
              *_dcgm("dip", "plain", prof="0.9 0.9 0.9 0.9 0.5 0.9x25", used="40000x30", free="40000x30"),
              *_dcgm("cold", "plain", prof="0.1x30", used="40000x30", free="40000x30"),
              *_dcgm("idlefull", "exported", prof="0.1x30", used="76000x30", free="4000x30"),
              *[(m, labels, f"{v}x30") for m, labels, v in _pools()]]
    E = lambda alert, who, value: _expected(rules, alert, who, value)  # noqa: E731
    cases = [
        ("4m30s", ar.SCALE_OUT, []), ("5m", ar.SCALE_OUT, [E(ar.SCALE_OUT, "hot", 0.9)]),
        ("10m", ar.SCALE_OUT, [E(ar.SCALE_OUT, "hot", 0.9)]),  # dip: pending again since 5m30s
        ("10m30s", ar.SCALE_OUT, [E(ar.SCALE_OUT, "dip", 0.9), E(ar.SCALE_OUT, "hot", 0.9)]),
        ("4m30s", ar.MEMORY, []),
        ("5m", ar.MEMORY, [E(ar.MEMORY, "hot", 0.95), E(ar.MEMORY, "idlefull", 0.95)]),
        ("9m30s", ar.SCALE_IN, []),
        ("10m", ar.SCALE_IN, [E(ar.SCALE_IN, "cold", 0.1)]),  # idlefull is idle but its memory is full
        ("4m30s", ar.POOL_SATURATED, []), ("5m", ar.POOL_SATURATED, [E(ar.POOL_SATURATED, "js-pool", 1.0)]),
    ]
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "30s",
            "tests": [{"interval": "1m",
                       "input_series": [{"series": _selector(m, labels), "values": v} for m, labels, v in series],
                       "alert_rule_test": [{"eval_time": t, "alertname": a, "exp_alerts": exp}
                                           for t, a, exp in cases]}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = _promtool(promtool, "test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    # the same test against rules whose `for:` is gone must fail: the durations are what is pinned
    for r in rules:
        r["for"] = "0s"
    _write(tmp_path / "rules.yaml", doc)
    assert _promtool(promtool, "test", "rules", "test.yaml", cwd=tmp_path).returncode != 0


# --------------------------------------------------------------------------- the real Prometheus


STEP_S = 30


def _openmetrics(series: list[tuple[str, dict, object]], start: datetime, minutes: int) -> str:
    families: dict[str, list[str]] = {}
    for metric, labels, value in series:
        lines = families.setdefault(metric, [])
        for i in range(minutes * 60 // STEP_S + 1):
            ts = start.timestamp() + i * STEP_S
            lines.append(f"{_selector(metric, labels)} {value} {ts:.3f}")
    out = []
    for metric, lines in families.items():
        out += [f"# TYPE {metric} gauge", *lines]
    return "\n".join(out + ["# EOF"]) + "\n"


@pytest.fixture(scope="module")
def prom(tools, tmp_path_factory):
    """A Prometheus serving one backfilled hour that ends a day before the frozen now."""
    start = (clock.now() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    series = [*_dcgm("hot", "exported", prof=0.9, used=76000, free=4000),
              # the exporter's own namespace is "hot" but the workload's is "other": not hot's GPU
              ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", {**_gpu("other", "exported", "1"), "namespace": "hot"}, 0.0),
              *_dcgm("cold", "plain", prof=0.1, used=40000, free=40000),
              *_dcgm("mid", "exported", prof=0.5, used=40000, free=40000),
              *_dcgm("devonly", "plain", dev=95, used=40000, free=40000),  # no PROF: DEV percent / 100
              *_dcgm("idlefull", "exported", prof=0.1, used=76000, free=4000),
              *_pools()]
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus-alerts"), *tools)
    server.backfill(_openmetrics(series, start, 60))
    server.start()
    yield server, start + timedelta(minutes=30)
    server.stop()


def _query(url: str, expr: str, at: datetime) -> list[dict]:
    query = urllib.parse.urlencode({"query": expr, "time": f"{at.timestamp():.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_each_alert_expression_selects_exactly_the_services_and_pools_that_should_fire(prom):
    server, at = prom
    placed = [p for p in PLACED if p.policy.namespace in SERVICES]
    firing, values = set(), {}
    for cluster in CLUSTERS:
        for group in ar.prometheus_rule(cluster, placed)["spec"]["groups"]:
            for rule in group["rules"]:
                who = rule["labels"].get("namespace") or rule["labels"]["pool"]
                result = _query(server.url, rule["expr"], at)
                assert len(result) <= 1, (rule["alert"], who, result)
                if result:
                    firing.add((rule["alert"], who))
                    values[(rule["alert"], who)] = float(result[0]["value"][1])
    assert firing == {(ar.SCALE_OUT, "hot"), (ar.MEMORY, "hot"), (ar.SCALE_IN, "cold"), (ar.SCALE_OUT, "devonly"),
                      (ar.MEMORY, "idlefull"), (ar.POOL_SATURATED, "js-pool")}
    assert values[(ar.SCALE_OUT, "hot")] == pytest.approx(0.9)
    assert values[(ar.SCALE_OUT, "devonly")] == pytest.approx(0.95)
    assert values[(ar.MEMORY, "idlefull")] == pytest.approx(0.95)
    assert values[(ar.POOL_SATURATED, "js-pool")] == pytest.approx(1.0)
    # sd-pool: 2 running of 4; counting its completed pod would make it 4 of 4
    sd = next(r for g in ar.prometheus_rule("sd-jinan", [])["spec"]["groups"] for r in g["rules"])
    ratio = sd["expr"].rsplit(" >= ", 1)[0]
    assert float(_query(server.url, ratio, at)[0]["value"][1]) == pytest.approx(0.5)


# --------------------------------------------------------------------------- the command line


def test_the_cli_renders_the_saved_policies_where_their_allocations_run(cli, ctx, tools, tmp_path):
    _, promtool = tools
    js = granted(ctx, "js")
    adjust.save_policy(sessions=ctx.sessions, actor=HQ_OPS, policy=default_policy(js.namespace, "serve"), reason="上线")
    adjust.save_policy(sessions=ctx.sessions, actor=HQ_OPS, policy=default_policy("gone-ns", "serve"), reason="旧服务")

    out = tmp_path / "js.rules.yaml"
    code, stdout, err = cli("alerts", "render", "--cluster", "js-nanjing", "--format", "rules", "--out", str(out))
    assert code == 0 and str(out) in stdout, err
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# ") and "gone-ns/serve" in text.splitlines()[0]
    rules = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"]]
    want = [(a, js.namespace) for a in (ar.SCALE_OUT, ar.SCALE_IN, ar.MEMORY)] + [(ar.POOL_SATURATED, None)]
    assert sorted((r["alert"], r["labels"].get("namespace")) for r in rules) == sorted(want)
    check = _promtool(promtool, "check", "rules", str(out))
    assert check.returncode == 0, check.stdout + check.stderr

    payload = json_of(cli("alerts", "render", "--json"))
    assert payload["unplaced"] == ["gone-ns/serve"] and len(payload["documents"]) == len(payload["clusters"]) == 7
    by_cluster = {c: d for c, d in zip(payload["clusters"], payload["documents"])}
    assert {d["kind"] for d in payload["documents"]} == {"PrometheusRule"}
    assert any(r["labels"].get("namespace") == js.namespace
               for g in by_cluster["js-nanjing"]["spec"]["groups"] for r in g["rules"])
    assert not any(r["labels"].get("namespace") == js.namespace
                   for g in by_cluster["hq-beijing-1"]["spec"]["groups"] for r in g["rules"])

    code, stdout, err = cli("alerts", "render", "--cluster", "js-nanjing")
    assert code == 0 and list(yaml.safe_load_all(stdout))[0]["kind"] == "PrometheusRule"


def test_only_ops_and_jobs_place_policies_and_provincial_ops_see_their_provinces(ctx):
    from core.adjust.policy_placement import ALERT_RULES_JOB, placed_policies
    from core.identity import PermissionDenied
    from tests.support.people import APPLICANT, PROV_OPS
    from tests.support.subjects import ZJ_OPS

    js = granted(ctx, "js")
    adjust.save_policy(sessions=ctx.sessions, actor=HQ_OPS, policy=default_policy(js.namespace, "serve"), reason="上线")
    job = placed_policies(sessions=ctx.sessions, actor=ALERT_RULES_JOB)
    assert [(p.policy.namespace, p.pool) for p in job.placed] == [(js.namespace, "js-pool")]
    assert [p.policy.namespace for p in placed_policies(sessions=ctx.sessions, actor=PROV_OPS).placed] == [js.namespace]
    assert placed_policies(sessions=ctx.sessions, actor=ZJ_OPS).placed == ()
    with pytest.raises(PermissionDenied):
        placed_policies(sessions=ctx.sessions, actor=APPLICANT)


def test_the_cli_refuses_a_bad_out_file_with_one_line_and_writes_nothing(cli, tmp_path):
    code, stdout, err = cli("alerts", "render", "--out", str(tmp_path / "missing" / "x.yaml"))
    assert code == 2 and stdout == "" and err.count("\n") == 1 and "--out" in err
    assert not (tmp_path / "missing").exists()
