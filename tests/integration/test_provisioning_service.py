"""Provisioning service and allocation sheet on real databases (SQLite and PostgreSQL), with the
plan backend, a failing fake backend and the live backend against a Kubernetes API test server."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta, timezone

import pytest
import yaml
from sqlalchemy import func, select

from core.cluster.backends import FAILED, ClusterError, LiveBackend, PlanBackend, ProvisionResult, StepResult
from core.db.models import AuditEventRow, OutboxRow
from core.errors import NotFound
from core.identity import PermissionDenied
from core.lifecycle import provisioning as prov
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow
from core.lifecycle.states import InvalidTransition
from core.org import load_org
from tests.support.forms import MEDIUM, SMALL
from tests.support.people import ADMIN, APPLICANT, COLLEAGUE, DEPT_HEAD, HQ_OPS, OTHER_DEPT, PROV_OPS
from tests.support import clock
from tests.support.backends import QUOTA_STEP, DyingBackend, RaisingBackend


class FailingStepBackend(PlanBackend):
    """The plan backend reporting a failed step (the way the live backend reports one)."""

    name = "fake"

    def provision(self, spec):
        planned = super().provision(spec)
        steps = list(planned.steps[:3]) + [StepResult(planned.steps[3].step, FAILED,
                                                      ClusterError("cluster.unreachable", step=planned.steps[3].step,
                                                                   reason="dropped"))]
        return ProvisionResult(spec.allocation_id, spec.namespace, spec.cluster, self.name, tuple(steps))


def _medium(ctx):
    return svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM)


def _approve(ctx, rid):
    return svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=rid, decision="approve", reason="资源充足")


def _ready_notices(ctx, rid):
    with ctx.sessions() as s:
        return list(s.scalars(select(OutboxRow).where(OutboxRow.template == "allocation_ready",
                                                      OutboxRow.params["request_id"].as_integer() == rid)))


def _alloc(ctx, rid) -> AllocationRow:
    with ctx.sessions() as s:
        return s.scalars(select(AllocationRow).where(AllocationRow.request_id == rid)).one()


def _sheet(ctx, rid, actor=APPLICANT):
    return prov.allocation_sheet(sessions=ctx.sessions, actor=actor, request_id=rid)


# ----------------------------------------------------------------- approve → active (plan backend)


def test_approval_provisions_automatically_to_active_with_manifests_kubeconfig_and_one_ready_notice(ctx):
    r = _medium(ctx)
    done = _approve(ctx, r["id"])
    assert done["status"] == "approved" and done["provisioning"]["status"] == "active"
    sheet = _sheet(ctx, r["id"])
    assert sheet["status"] == "active" and sheet["allocation_status"] == "active" and sheet["backend"] == "plan"
    assert sheet["namespace"] == f"cl-{r['number'].lower()}-p-llm-01" and sheet["cluster"] == "hq-beijing-2"
    quota = sheet["quota"]
    # 16 H20 for training: 12 cores and 192 GiB per GPU (data/provisioning_defaults.yaml)
    assert (quota["gpus"], quota["gpu_model"], quota["cpu"], quota["memory_gi"]) == (16, "H20", 192, 3072)
    volumes = {v["name"]: v["size_gi"] for v in quota["volumes"]}
    # data 200 GB → 186.3 GiB × 1.5 headroom → 280 GiB; checkpoints 14e9 params × 32 B → 418 GiB
    assert volumes == {"workspace": 100, "data": 280, "checkpoints": 418}
    assert quota["storage_gi"] == sum(volumes.values())
    assert sheet["window"] == {"start": clock.iso(0), "end": clock.iso(10)}
    assert sheet["access"]["jupyter_url"] == f"https://jupyter.hq-beijing-2.example.internal/{sheet['namespace']}/lab"
    config = yaml.safe_load(sheet["access"]["kubeconfig"])
    assert config["contexts"][0]["context"]["namespace"] == sheet["namespace"]
    assert sheet["rules"]["key"] == "allocation.rules_of_use" and sheet["rules"]["params"]["rules_url"]
    steps = sheet["provisioning"]["steps"]
    assert steps[0] == {"step": f"Namespace/{sheet['namespace']}", "status": "planned", "error": None}
    assert {s["status"] for s in steps} == {"planned"} and sheet["provisioning"]["failed_step"] is None
    assert sheet["provisioning"]["provisioned_at"] and sheet["provisioning"]["attempts"] == 1
    manifests = list(yaml.safe_load_all(prov.manifests(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])))
    kinds = Counter(m["kind"] for m in manifests)
    assert kinds["Namespace"] == 1 and kinds["PersistentVolumeClaim"] == 3 and kinds["ResourceQuota"] == 1
    quota_manifest = next(m for m in manifests if m["kind"] == "ResourceQuota")
    assert quota_manifest["spec"]["hard"]["requests.nvidia.com/gpu"] == "16"
    notices = _ready_notices(ctx, r["id"])
    assert len(notices) == 1 and notices[0].recipient_id == "zhang.wei"
    assert notices[0].params["namespace"] == sheet["namespace"] and notices[0].params["expires_on"] == clock.iso(10)
    # provisioning again is refused: it is active, and nothing is duplicated
    with pytest.raises(InvalidTransition):
        prov.provision(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])
    assert len(_ready_notices(ctx, r["id"])) == 1


def test_every_provisioning_move_is_audited_by_the_system(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)  # auto-approved, then provisioned
    assert r["provisioning"]["status"] == "active"
    with ctx.sessions() as s:
        events = list(s.scalars(select(AuditEventRow).where(AuditEventRow.subject == f"request:{r['id']}")
                                .order_by(AuditEventRow.id)))
    assert [(e.action, e.actor) for e in events[-3:]] == [
        ("request.transition", "system"), ("request.transition", "system"), ("allocation.provisioned", "system")]
    assert events[-1].after["namespace"].startswith("cl-")


# ----------------------------------------------------------------- failure, visible; retry


@pytest.mark.parametrize("backend", [RaisingBackend(), FailingStepBackend()], ids=["raises", "reports"])
def test_a_failing_provisioner_leaves_the_request_visibly_failed_and_keeps_the_approval(ctx, monkeypatch, backend):
    monkeypatch.setattr(prov, "backend_for", lambda org: backend)
    r = _medium(ctx)
    done = _approve(ctx, r["id"])
    assert done["status"] == "approved" and done["provisioning"]["status"] == "provisioning_failed"
    sheet = _sheet(ctx, r["id"])
    step = QUOTA_STEP if isinstance(backend, RaisingBackend) else sheet["provisioning"]["steps"][3]["step"]
    assert sheet["status"] == "provisioning_failed" and sheet["allocation_status"] == "failed"
    assert sheet["provisioning"]["failed_step"] == step
    assert sheet["provisioning"]["error"]["key"] in ("cluster.api_error", "cluster.unreachable")
    assert sheet["provisioning"]["steps"][-1]["status"] == "failed"
    assert sheet["access"]["kubeconfig"] is None and _ready_notices(ctx, r["id"]) == []
    # the approval stands: the GPUs stay held, the step stays approved
    assert svc.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=r["id"])["steps"][0]["status"] == "approved"
    assert next(p for p in svc.pool_usage(sessions=ctx.sessions, actor=HQ_OPS) if p["pool"] == "hq-ft")["held"] == 16
    with ctx.sessions() as s:
        failed = s.scalars(select(AuditEventRow).where(AuditEventRow.action == "allocation.provision_failed")).one()
    assert failed.reason == step and failed.after["step"] == step
    # provision() is for approved requests; a failed one is retried
    with pytest.raises(InvalidTransition):
        prov.provision(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])
    again = prov.retry(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], provisioner=PlanBackend())
    assert again["status"] == "active" and again["provisioning"]["attempts"] == 2
    assert again["provisioning"]["failed_step"] is None and again["provisioning"]["error"] is None
    assert len(_ready_notices(ctx, r["id"])) == 1
    with pytest.raises(InvalidTransition):
        prov.retry(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])


def test_a_run_that_died_is_recovered_after_the_time_limit_then_retried_to_active(ctx, monkeypatch):
    monkeypatch.setattr(prov, "backend_for", lambda org: DyingBackend())
    r = _medium(ctx)
    with pytest.raises(KeyboardInterrupt):
        _approve(ctx, r["id"])
    assert _sheet(ctx, r["id"])["status"] == "provisioning"  # stuck: nobody recorded an outcome
    started = _alloc(ctx, r["id"])
    limit = prov.load_provisioning_defaults().stalled_after_minutes
    with ctx.sessions() as s:
        since = s.get(svc.RequestRow, r["id"]).provisioning_at
    since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    # inside the limit the run may still be working: nothing is touched
    assert prov.recover_stalled(sessions=ctx.sessions, actor=HQ_OPS, now=since + timedelta(minutes=limit - 1)) == []
    assert _sheet(ctx, r["id"])["status"] == "provisioning"
    later = since + timedelta(minutes=limit + 1)
    assert prov.stalled(sessions=ctx.sessions, now=later) == [r["id"]]
    assert prov.recover_stalled(sessions=ctx.sessions, actor=HQ_OPS, now=later) == [r["id"]]
    assert prov.recover_stalled(sessions=ctx.sessions, actor=HQ_OPS, now=later) == []  # cron-safe
    sheet = _sheet(ctx, r["id"])
    assert sheet["status"] == "provisioning_failed" and sheet["provisioning"]["failed_step"] == prov.INTERRUPTED_STEP
    assert sheet["provisioning"]["error"]["key"] == "provisioning.interrupted"
    assert started.attempts == 1
    # the GPUs stay held through it all, and Retry finishes the job
    assert next(p for p in svc.pool_usage(sessions=ctx.sessions, actor=HQ_OPS) if p["pool"] == "hq-ft")["held"] == 16
    again = prov.retry(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"], provisioner=PlanBackend())
    assert again["status"] == "active" and again["provisioning"]["attempts"] == 2
    with pytest.raises(PermissionDenied):
        prov.recover_stalled(sessions=ctx.sessions, actor=APPLICANT)


def test_live_failure_then_retry_finishes_without_duplicate_objects(ctx, monkeypatch, kube):
    api, client = kube
    monkeypatch.setattr(prov, "backend_for", lambda org: LiveBackend(org, clients={"hq-beijing-2": client}))
    api.inject("500", method="POST", path=r"/persistentvolumeclaims$", name="data")
    r = _medium(ctx)
    done = _approve(ctx, r["id"])
    assert done["provisioning"] == {"status": "provisioning_failed", "failed_step": "PersistentVolumeClaim/data",
                                    "namespace": done["provisioning"]["namespace"]}
    sheet = _sheet(ctx, r["id"], actor=HQ_OPS)
    statuses = [s["status"] for s in sheet["provisioning"]["steps"]]
    assert statuses[-1] == "failed" and set(statuses[:-1]) == {"created"}
    assert sheet["provisioning"]["error"]["params"]["status"] == 500
    created_before = list(api.created)

    again = prov.retry(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])  # backend from backend_for
    assert again["status"] == "active" and again["backend"] == "live"
    steps = {s["step"]: s["status"] for s in again["provisioning"]["steps"]}
    assert steps["Namespace/" + again["namespace"]] == "unchanged" and steps["PersistentVolumeClaim/data"] == "created"
    assert steps["Kubeconfig/token"] == "created"
    assert len(api.created) == len(set(api.created))  # nothing was created twice
    assert set(created_before) < set(api.created)
    token = yaml.safe_load(again["access"]["kubeconfig"])["users"][0]["user"]["token"]
    assert token and not token.startswith("<token")
    assert len(_ready_notices(ctx, r["id"])) == 1


def test_the_live_backend_is_chosen_by_the_settings_with_the_configured_kubeconfig(ctx, monkeypatch, tmp_path, kube):
    api, _ = kube
    org = load_org()
    config_file = tmp_path / "kubeconfig"
    config_file.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": c.kube_context, "cluster": {"server": api.url}} for c in org.clusters.values()],
        "users": [{"name": "portal", "user": {"token": "portal-token"}}],
        "contexts": [{"name": c.kube_context, "context": {"cluster": c.kube_context, "user": "portal"}}
                     for c in org.clusters.values()],
        "current-context": "hq-beijing-2"}), encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_CLUSTER_BACKEND", "live")
    monkeypatch.setenv("COMPUTELOOP_KUBECONFIG", str(config_file))
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    assert r["provisioning"]["status"] == "active"
    sheet = _sheet(ctx, r["id"])
    assert sheet["backend"] == "live" and ("Namespace", None, sheet["namespace"]) in api.created
    assert "Bearer portal-token" in api.authorization


# ----------------------------------------------------------------- permissions and visibility


def test_only_ops_provision_and_provincial_ops_only_in_their_province(ctx, monkeypatch):
    monkeypatch.setattr(svc, "_after_approval", lambda sessions, view, provisioner=None: view)  # stop at approved
    r = _medium(ctx)
    _approve(ctx, r["id"])
    for actor in (APPLICANT, DEPT_HEAD):
        with pytest.raises(PermissionDenied):
            prov.provision(sessions=ctx.sessions, actor=actor, request_id=r["id"])
    with pytest.raises((PermissionDenied, NotFound)):
        prov.provision(sessions=ctx.sessions, actor=PROV_OPS, request_id=r["id"])  # an HQ pool
    assert _alloc(ctx, r["id"]).status == "approved" and _alloc(ctx, r["id"]).attempts == 0
    assert prov.provision(sessions=ctx.sessions, actor=ADMIN, request_id=r["id"])["status"] == "active"


def test_the_allocation_sheet_is_visible_to_the_applicants_department_and_ops_only(ctx):
    r = _medium(ctx)
    _approve(ctx, r["id"])
    for actor in (APPLICANT, COLLEAGUE, DEPT_HEAD, HQ_OPS, ADMIN):
        assert _sheet(ctx, r["id"], actor)["namespace"]
    for actor in (OTHER_DEPT, PROV_OPS):
        with pytest.raises(NotFound):
            _sheet(ctx, r["id"], actor)
        with pytest.raises(NotFound):
            prov.manifests(sessions=ctx.sessions, actor=actor, request_id=r["id"])
    listed = lambda actor, **kw: [a["request_id"] for a in prov.list_allocations(  # noqa: E731
        sessions=ctx.sessions, actor=actor, **kw)]
    assert listed(APPLICANT) == listed(HQ_OPS) == listed(HQ_OPS, status="active") == [r["id"]]
    assert listed(OTHER_DEPT) == [] and listed(PROV_OPS) == [] and listed(HQ_OPS, status="failed") == []
    assert "kubeconfig" not in prov.list_allocations(sessions=ctx.sessions, actor=HQ_OPS)[0]


def test_a_request_without_allocation_has_no_sheet(ctx):
    r = _medium(ctx)
    with pytest.raises(NotFound):
        _sheet(ctx, r["id"])
    with pytest.raises(InvalidTransition):
        prov.provision(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])


def test_form_data_size_sets_the_data_volume_within_bounds():
    from core.lifecycle.forms import IntakeForm
    from tests.support.forms import INFERENCE, TRAINING

    d = prov.load_provisioning_defaults()
    sizes = lambda **kw: {p.name: p.size_gi for p in prov.resources_for(  # noqa: E731
        IntakeForm.from_dict({**TRAINING, **kw}), 8, d)[2]}
    assert sizes(data_size_gb=1)["data"] == d.data_min_gi
    assert sizes(data_size_gb=1e6)["data"] == d.data_max_gi
    assert sizes(data_size_gb=1000)["data"] == 1397  # 1000 GB = 931.3 GiB × 1.5
    cpu, mem, pvcs = prov.resources_for(IntakeForm.from_dict(INFERENCE), 2, d)
    assert (cpu, mem) == (16, 128) and [p.name for p in pvcs] == ["workspace", "data"]


# ----------------------------------------------------------------- the command line


def test_cli_lists_shows_provisions_retries_and_prints_manifests(ctx, db_url, monkeypatch, capsys):
    from core.cli import OneLineParser, main
    from core.cli import allocations as cli_allocations

    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)
    parser = OneLineParser(prog="python -m core")
    cli_allocations.register(parser.add_subparsers(dest="group", required=True, parser_class=OneLineParser))
    monkeypatch.setattr("core.cli.build_parser", lambda: parser)

    monkeypatch.setattr(prov, "backend_for", lambda org: RaisingBackend())
    r = _medium(ctx)
    _approve(ctx, r["id"])
    rid = str(r["id"])
    assert main(["allocations", "list", "--as", "li.na", "--json"]) == 0
    assert [a["request_id"] for a in json.loads(capsys.readouterr().out)] == [r["id"]]
    assert main(["allocations", "show", rid, "--as", "zhang.wei"]) == 0
    assert QUOTA_STEP in capsys.readouterr().out
    monkeypatch.setattr(prov, "backend_for", lambda org: PlanBackend())
    assert main(["allocations", "retry", rid, "--as", "li.na", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "active"
    assert main(["allocations", "show", rid, "--as", "zhang.wei", "--lang", "zh-CN"]) == 0
    assert "算力资源分配清单" in capsys.readouterr().out
    assert main(["allocations", "manifests", rid, "--as", "li.na"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert docs[0]["kind"] == "Namespace"
    for argv in (["allocations", "provision", rid, "--as", "zhang.wei"],   # not ops
                 ["allocations", "provision", rid, "--as", "li.na"],       # already active
                 ["allocations", "show", "999", "--as", "zhang.wei"],
                 ["allocations", "list", "--as", "nobody"],
                 ["allocations", "green", "plan", rid, "--as", "li.na"],   # not an emergency
                 ["allocations", "stop", rid, "--as", "li.na"],            # not preempted
                 ["allocations", "recover", "--as", "zhang.wei"]):         # not ops
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error:"), err
    assert main(["allocations", "recover", "--as", "li.na", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"recovered": []}
    with pytest.raises(SystemExit) as exit_:
        main(["allocations", "show", "x", "--as", "li.na"])
    assert exit_.value.code == 2
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AllocationRow)) == 1


def test_only_the_owner_and_ops_receive_the_kubeconfig_of_an_allocation(ctx):
    from core.identity import Identity, load_personas
    from core.lifecycle import provisioning, services

    people = {p.id: p for p in load_personas()}
    owner = people["zhang.wei"]
    colleague = Identity("wu.fan", "吴凡", "wu.fan@example.com", "applicant", department=owner.department)
    form = {
        "applicant": owner.name, "department": "digital", "project": "P-LLM-01", "contact": "010-1",
        "demand_type": "training", "demand_subtype": "l2_finetune", "business_background": "微调",
        "expected_value": "效率", "model_name": "Qwen2.5-7B", "framework": "PyTorch", "parameters": 7.6e9,
        "data_size_gb": 50, "data_type": "text", "gpu_model": "H20", "gpus_per_run": 2, "hours_per_run": 10,
        "runs_per_period": 1, "run_period": "week", "cuda_version": "12.1", "python_version": "3.11",
        "key_libraries": {"torch": "2.3.1"}, "pool": "hq-ft", "requested_gpus": 2,
        "start_date": clock.iso(0), "duration_days": 5,
    }
    request_id = services.submit(sessions=ctx.sessions, actor=owner, form=form)["id"]
    mine = provisioning.allocation_sheet(sessions=ctx.sessions, actor=owner, request_id=request_id)
    theirs = provisioning.allocation_sheet(sessions=ctx.sessions, actor=colleague, request_id=request_id)
    ops = provisioning.allocation_sheet(sessions=ctx.sessions, actor=people["li.na"], request_id=request_id)
    assert mine["access"]["kubeconfig"] and ops["access"]["kubeconfig"]
    assert theirs["access"]["kubeconfig"] is None and theirs["access"]["kubeconfig_withheld"] is True
    assert theirs["quota"] == mine["quota"]
