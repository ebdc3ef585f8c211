"""The Kubernetes manifests in deploy/, rendered by the real kustomize (``kubectl kustomize``) as
``kubectl apply -k`` sends them: every object valid (kubernetes-validate, strict), the portal
hardened and probed on /_stcore/health, cookie affinity, the migration Job and one CronJob per
scheduled command of the README whose commands exist in the CLI, Secrets only referenced."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from datetime import date

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from core.cli import build_parser
from core.config import DATA_DIR
from core.metrics.prometheus import parse_servers
from core.org import load_org
from tests.support.deploy import (
    DEPLOY, KUSTOMIZATIONS, dockerfile, dockerfile_env, exec_form, find, pod_labels, pod_spec, readme_commands, render,
    secret_names_in, workloads,
)

VERSIONS = ("1.30", latest_version())  # the oldest Kubernetes these manifests support, and the newest schema
VOLUME = "/var/lib/computeloop"
HEALTH = "/_stcore/health"


@pytest.fixture(scope="module")
def base():
    return render("base")


@pytest.fixture(scope="module")
def overlay():
    return render("overlays/example")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_object_passes_strict_validation(path, version):
    objects = render(path)
    assert objects
    for obj in objects:
        # a kind without a schema raises SchemaNotFoundError: that fails too
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_overlay_is_the_base_with_the_site_applied(base, overlay):
    kinds = lambda objs: sorted((o["kind"], re.sub(r"-[a-z0-9]{10}$", "", o["metadata"]["name"])) for o in objs)  # noqa: E731
    assert set(kinds(base)) < set(kinds(overlay))
    for obj in overlay:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "computeloop", obj["metadata"]["name"]
    images = {c["image"] for o in workloads(overlay) for c in pod_spec(o)["containers"]}
    assert images == {"registry.example.internal/platform/computeloop:0.1.0"}
    (ingress,) = find(overlay, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "computeloop.example.com" == ingress["spec"]["tls"][0]["hosts"][0]
    (portal,) = find(overlay, "Deployment")
    assert portal["spec"]["replicas"] == 3
    (site,) = find(overlay, "ConfigMap", "computeloop-site-data")
    mounted = {v["configMap"]["name"] for v in pod_spec(portal)["volumes"] if "configMap" in v}
    assert mounted == {site["metadata"]["name"]}, "the generated name (with its hash) is what the pod mounts"
    (settings,) = find(overlay, "ConfigMap", "computeloop-settings")
    (base_settings,) = find(base, "ConfigMap", "computeloop-settings")
    assert set(settings["data"]) == set(base_settings["data"]), "a patch changes values, it adds no setting"
    assert settings["data"]["COMPUTELOOP_CLUSTER_BACKEND"] == "live" and settings["data"]["COMPUTELOOP_AUTH"] == "oidc"
    assert settings["data"]["COMPUTELOOP_SMTP_HOST"]


def test_the_overlay_names_one_prometheus_per_cluster_of_the_organisation(overlay):
    (settings,) = find(overlay, "ConfigMap", "computeloop-settings")
    servers = parse_servers(settings["data"]["COMPUTELOOP_PROMETHEUS_URLS"])
    assert set(servers) == set(load_org().clusters)


def test_the_overlay_oidc_mapping_loads_with_the_portal_rules(overlay, tmp_path, monkeypatch):
    from core.identity import identity_from_claims, load_claim_mapping

    (site,) = find(overlay, "ConfigMap", "computeloop-site-data")
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    (data / "oidc.yaml").write_text(site["data"]["oidc.yaml"], encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(data))
    mapping = load_claim_mapping()
    admin = identity_from_claims({"email": "ops@example.com", "groups": ["gpu-portal-admins"]}, mapping)
    assert admin is not None and admin.role == "admin"


def _containers(objects):
    for obj in workloads(objects):
        for container in pod_spec(obj)["containers"]:
            yield obj, container


@pytest.mark.parametrize("path", ["base", "overlays/example"])
def test_every_pod_is_hardened_and_writes_only_to_the_volume(path):
    objects = render(path)
    image_uid = int(next(rest for word, rest in reversed(dockerfile()) if word == "USER").split(":")[0])
    for obj, container in _containers(objects):
        spec, where = pod_spec(obj), obj["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == image_uid
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False, where
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, where
        assert sc["capabilities"] == {"drop": ["ALL"]}, where
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"]), where
        volumes = {v["name"]: v for v in spec["volumes"]}
        writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
        assert [m["mountPath"] for m in writable] == [VOLUME], where
        assert "emptyDir" in volumes[writable[0]["name"]], where
        for mount in container["volumeMounts"]:
            if "secret" in volumes[mount["name"]] or "configMap" in volumes[mount["name"]]:
                assert mount.get("readOnly") is True, (where, mount["name"])


def test_the_portal_is_probed_on_streamlit_health_on_the_image_port(base):
    (portal,) = find(base, "Deployment")
    (container,) = pod_spec(portal)["containers"]
    assert "command" not in container and "args" not in container, "the image's default command is the portal"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    expose = int(next(rest for word, rest in dockerfile() if word == "EXPOSE"))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == HEALTH and ports[get["port"]] == expose, probe
    assert portal["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    secrets_file = dockerfile_env()["STREAMLIT_SECRETS_FILES"]
    volume = next(v for v in pod_spec(portal)["volumes"] if v["name"] == mounts[os.path.dirname(secrets_file)])
    assert volume["secret"]["secretName"] == "computeloop-oidc", "the [auth] secrets.toml is mounted where Streamlit reads"


def test_ingress_pins_a_browser_to_its_pod_and_everything_selects_the_portal(base):
    (portal,) = find(base, "Deployment")
    (service,) = find(base, "Service")
    (ingress,) = find(base, "Ingress")
    (pdb,) = find(base, "PodDisruptionBudget")
    labels = pod_labels(portal)
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/affinity-mode"] == "persistent"
    assert notes["nginx.ingress.kubernetes.io/session-cookie-name"]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600, "idle websockets stay open"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    for selector in (service["spec"]["selector"], portal["spec"]["selector"]["matchLabels"],
                     pdb["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert pdb["spec"]["minAvailable"] < portal["spec"]["replicas"]
    jobs = [o for o in workloads(base) if o["kind"] != "Deployment"]
    assert all(not (service["spec"]["selector"].items() <= pod_labels(j).items()) for j in jobs)


def test_the_network_policy_admits_only_the_ingress_controller(base):
    (policy,) = find(base, "NetworkPolicy")
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert all(selected.items() <= pod_labels(o).items() for o in workloads(base)), "every pod of ComputeLoop"
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    assert [p["port"] for p in rule["ports"]] == [8501]
    dns = policy["spec"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53}


def test_secrets_are_referenced_never_stored_and_the_guide_creates_each():
    guide = (DEPLOY.parent / "docs" / "deploy.md").read_text(encoding="utf-8")
    overlay_notes = (DEPLOY / "overlays" / "example" / "kustomization.yaml").read_text(encoding="utf-8")
    for path in KUSTOMIZATIONS:
        for obj in render(path):
            if obj["kind"] == "Secret":
                assert obj["type"] == "kubernetes.io/service-account-token", "only a token the cluster fills in"
                assert not obj.get("data") and not obj.get("stringData")
    referenced = set()
    for obj in workloads(render("overlays/example")):
        spec = pod_spec(obj)
        referenced |= {v["secret"]["secretName"] for v in spec.get("volumes") or [] if "secret" in v}
        for container in spec["containers"]:
            referenced |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env") or []
                           if "secretKeyRef" in (e.get("valueFrom") or {})}
    (ingress,) = find(render("overlays/example"), "Ingress")
    referenced |= {t["secretName"] for t in ingress["spec"]["tls"]}
    assert referenced == secret_names_in(overlay_notes), "the overlay's notes create exactly the Secrets it uses"
    assert referenced - {t["secretName"] for t in ingress["spec"]["tls"]} <= secret_names_in(guide)


def test_the_migration_job_runs_before_the_rollout(base):
    (job,) = find(base, "Job", "computeloop-migrate")
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == ["python", "-m", "core", "db", "upgrade"]
    notes = job["metadata"]["annotations"]
    assert notes["argocd.argoproj.io/hook"] == "Sync" and int(notes["argocd.argoproj.io/sync-wave"]) < 0
    assert notes["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    first = {(o["kind"], o["metadata"]["name"]) for o in base
             if o["metadata"].get("labels", {}).get("computeloop.io/before-rollout") == "true"}
    assert first == {("Job", "computeloop-migrate"), ("ConfigMap", "computeloop-settings"), ("ServiceAccount", "computeloop")}
    needs = {("ConfigMap", e["configMapRef"]["name"]) for e in container["envFrom"]}
    needs.add(("ServiceAccount", pod_spec(job)["serviceAccountName"]))
    waves = {(o["kind"], o["metadata"]["name"]): int(o["metadata"].get("annotations", {}).get(
        "argocd.argoproj.io/sync-wave", 0)) for o in base}
    assert needs <= first
    assert all(waves[n] < waves[("Job", "computeloop-migrate")] for n in needs), "what the Job needs is synced first"
    assert job["spec"]["activeDeadlineSeconds"] and job["spec"]["backoffLimit"] >= 1


def _scheduled_commands() -> set[str]:
    """The README's commands marked for cron, plus the daily rollup (README: "daily ... rollups")."""
    marked = {" ".join(c.split()[3:5]) for c, comment in readme_commands() if "cron" in comment}
    rollup = {" ".join(c.split()[3:5]) for c, comment in readme_commands() if c.startswith("python -m core jobs rollup")}
    return marked | rollup


def _run_shell_command(command: list[str], tmp_path) -> list[str]:
    """Run a CronJob's ``/bin/sh -c`` line as the container would (after Kubernetes' ``$$`` → ``$``),
    with a stand-in ``python`` on PATH that prints the arguments it was given."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexec \"$REAL_PYTHON\" -c 'import json,sys; print(json.dumps(sys.argv[1:]))' \"$@\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    script = command[2].replace("$$", "$")
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "REAL_PYTHON": shutil.which("python3") or "/usr/bin/python3",
           "COMPUTELOOP_METRICS_DIR": f"{VOLUME}/metrics/samples"}
    done = subprocess.run(command[:2] + [script], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_cronjob_per_scheduled_command_of_the_readme_and_each_exists_in_the_cli(base, tmp_path):
    parser = build_parser()
    scheduled = _scheduled_commands()
    assert {"notify send", "jobs daily", "jobs rollup", "jobs queue-snapshot", "jobs autoscaler-events"} <= scheduled
    found = {}
    for cron in find(base, "CronJob"):
        spec = cron["spec"]
        assert spec["concurrencyPolicy"] == "Forbid" and spec["timeZone"] == "Etc/UTC"
        assert spec["startingDeadlineSeconds"] > 0 and spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
        assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
        assert re.fullmatch(r"(\S+ ){4}\S+", spec["schedule"])
        (container,) = pod_spec(cron)["containers"]
        command = container["command"]
        argv = _run_shell_command(command, tmp_path) if command[:2] == ["/bin/sh", "-c"] else command[1:]
        assert argv[:2] == ["-m", "core"], command
        args = parser.parse_args(argv[2:])  # a command the CLI does not have exits (SystemExit) here
        assert callable(args.handler)
        found[" ".join(argv[2:4])] = (spec, args)
    assert set(found) == scheduled
    assert found["notify send"][0]["schedule"] == "* * * * *"
    assert isinstance(found["jobs rollup"][1].day, date)  # yesterday by the shell's (real) clock, a valid --day
    assert str(found["jobs rollup"][1].root) == f"{VOLUME}/metrics/samples"


def test_the_image_entrypoint_commands_exist(base):
    """What the image runs: the portal's CMD, the migration Job's and the CronJobs' commands."""
    cmd = exec_form(next(rest for word, rest in dockerfile() if word == "CMD"))
    assert shutil.which(cmd[0]) or (DEPLOY.parent / ".venv" / "bin" / cmd[0]).exists()
    parser = build_parser()
    for obj in workloads(base):
        for container in pod_spec(obj)["containers"]:
            command = container.get("command")
            if command and command[0] == "python":
                assert callable(parser.parse_args(command[3:]).handler), command
