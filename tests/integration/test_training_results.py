"""Training results on SQLite and PostgreSQL: the owner records the outcome of a training run (one
transaction, an audit event, every bad field named), and the report's typical training jobs show
it beside the job's time, GPU-hours and energy from the namespace's rollups."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from sqlalchemy import func, select

from core.db.models import AuditEventRow
from core.db.session import unit_of_work
from core.demo import _training_form, backdate
from core.errors import InputError
from core.identity import PermissionDenied, load_personas
from core.lifecycle import services as lifecycle
from core.lifecycle.persistence import AllocationRow
from core.metrics.persistence import replace_day
from core.metrics.schema import ROLLUP_SCHEMA
from core.reports import results
from core.reports import service as reports

PEOPLE = {p.id: p for p in load_personas()}
OWNER, OPS = PEOPLE["zhang.wei"], PEOPLE["li.na"]
START = date(2026, 3, 2)


def _training_request(ctx):
    form = _training_form(project="P-LLM-01", department="digital", applicant=OWNER.name, pool="hq-ft", gpus=2, days=5,
                          start=date.today())
    view = lifecycle.submit(sessions=ctx.sessions, actor=OWNER, form=form)
    # standard tier: approved and provisioned at once (plan backend)
    assert view["provisioning"]["status"] == "active", view["provisioning"]
    backdate(ctx.sessions, view["id"], (date.today() - START).days)  # the form refuses past dates
    return view["id"]


def _count(ctx, model) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_the_owner_records_a_result_in_one_transaction_with_an_audit_event(ctx):
    rid = _training_request(ctx)
    done = results.record_result(sessions=ctx.sessions, actor=OWNER, request_id=rid, metric="eval_loss", value="1.82",
                                 higher_is_better=False, dataset="held-out 5%", baseline=2.31, run="sft-v2")
    assert done["value"] == 1.82 and done["improvement"] == pytest.approx(0.49)
    with ctx.sessions() as s:
        event = s.scalars(select(AuditEventRow).where(AuditEventRow.action == "training_result.recorded")).one()
        assert event.actor == OWNER.id and event.subject == f"request:{rid}" and event.after["metric"] == "eval_loss"
    assert [r["run"] for r in results.list_results(sessions=ctx.sessions, actor=OPS, request_id=rid)] == ["sft-v2"]
    assert [r["id"] for r in results.recordable_requests(sessions=ctx.sessions, actor=OWNER)] == [rid]


@pytest.mark.parametrize(("change", "field"), [
    ({"metric": "  "}, "metric"), ({"value": "abc"}, "value"), ({"value": "nan"}, "value"), ({"value": None}, "value"),
    ({"higher_is_better": "yes"}, "higher_is_better"), ({"metric": "accuracy", "higher_is_better": False}, "higher_is_better"),
    ({"dataset": ""}, "dataset"), ({"baseline": "inf"}, "baseline"), ({"run": "x" * 121}, "run"),
])
def test_a_bad_field_is_named_and_nothing_is_written(ctx, change, field):
    rid = _training_request(ctx)
    audit_before = _count(ctx, AuditEventRow)
    kw = {"metric": "eval_loss", "value": 1.5, "higher_is_better": False, "dataset": "held-out", **change}
    with pytest.raises(InputError) as err:
        results.record_result(sessions=ctx.sessions, actor=OWNER, request_id=rid, **kw)
    assert err.value.field == field
    assert _count(ctx, results.TrainingResultRow) == 0 and _count(ctx, AuditEventRow) == audit_before


def test_only_the_owner_of_a_training_request_that_ran_may_record(ctx):
    rid = _training_request(ctx)
    kw = {"metric": "accuracy", "value": 0.8, "higher_is_better": True, "dataset": "C-Eval"}
    with pytest.raises(PermissionDenied):
        results.record_result(sessions=ctx.sessions, actor=OPS, request_id=rid, **kw)
    queued = lifecycle.submit(sessions=ctx.sessions, actor=OWNER, queue_if_short=True, form=_training_form(
        project="P-LLM-01", department="digital", applicant=OWNER.name, pool="hq-ft", gpus=16, days=7,
        start=date.today()))
    with pytest.raises(InputError) as err:  # waiting for ops: it has not run
        results.record_result(sessions=ctx.sessions, actor=OWNER, request_id=queued["id"], **kw)
    assert err.value.field == "request"
    assert _count(ctx, results.TrainingResultRow) == 0


def test_the_report_shows_the_job_time_energy_and_recorded_quality(ctx):
    rid = _training_request(ctx)
    with ctx.sessions() as s:
        alloc = s.scalars(select(AllocationRow).where(AllocationRow.request_id == rid)).one()
        ns = alloc.namespace
    assert ns
    # two GPUs, every day of the 5-day window (03-02 .. 03-06) and one day after it that must not count
    for i in range(6):
        d = START + timedelta(days=i)
        frame = pl.DataFrame([{"day": d, "cluster": "hq-beijing-2", "hostname": "n1", "uuid": f"u{g}", "model": "H20",
                               "namespace": ns, "mean_util": 0.9, "peak_util": 0.95, "mean_mem": 0.8, "peak_mem": 0.9,
                               "allocated_gpu_hours": 24.0, "used_gpu_hours": 21.6, "energy_kwh": 7.5, "samples": 96,
                               "expected_samples": 96, "coverage": 1.0} for g in (1, 2)], schema=ROLLUP_SCHEMA)
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, d, frame)
    before = reports.preview(sessions=ctx.sessions, actor=OPS, month="2026-03", scope="HQ")
    job = before["economics"]["training_jobs"]["jobs"][0]
    assert job["request_id"] == rid and job["quality"] is None
    results.record_result(sessions=ctx.sessions, actor=OWNER, request_id=rid, metric="accuracy", value=0.62,
                          higher_is_better=True, dataset="C-Eval", baseline=0.5)
    draft = reports.build_draft(sessions=ctx.sessions, actor=OPS, month="2026-03", scope="HQ")
    job = draft["snapshot"]["economics"]["training_jobs"]["jobs"][0]
    assert job["wall_time_h"] == 120 and job["gpu_hours"] == 240 and job["energy_kwh"] == 75
    assert job["quality"]["metric"] == "accuracy" and job["kwh_per_improvement"] == pytest.approx(75 / 0.12)
    pub = reports.publish(sessions=ctx.sessions, actor=OPS, report_id=draft["id"], deidentified=True)
    assert pub["snapshot"]["economics"]["training_jobs"]["jobs"][0]["owner"] == "张*"


def test_the_cli_records_a_result_as_json_and_a_bad_direction_exits_2(ctx, monkeypatch, capsys):
    import json

    from core.cli import main

    rid = _training_request(ctx)
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", ctx.engine.url.render_as_string(hide_password=False))
    base = ["requests", "result", str(rid), "--dataset", "C-Eval", "--as", OWNER.id]
    assert main([*base, "--metric", "accuracy", "--value", "0.7", "--lower-is-better"]) == 2
    assert "higher_is_better" in capsys.readouterr().err
    assert main([*base, "--metric", "accuracy", "--value", "0.7", "--higher-is-better", "--baseline", "0.6",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["request_id"] == rid and out["improvement"] == pytest.approx(0.1)
    assert main(["requests", "results", str(rid), "--as", OPS.id, "--json"]) == 0
    assert [r["metric"] for r in json.loads(capsys.readouterr().out)] == ["accuracy"]
