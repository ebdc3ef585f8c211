"""Rules that can't be gamed (issue 11, "What did not hold" 3; "What to build" 3), on SQLite and
PostgreSQL: a start-date horizon; nothing provisioned before the start date, and a scheduled
allocation counting against its pool from its start date, not from today; caps on auto-approval
per applicant and per department with the reason in the tier message; ``precheck`` saying exactly
what ``submit`` says; a far-future date crashing nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from core.adjust import services as adjust
from core.adjust.recorder import snapshot_queue
from core.cluster.backends import PlanBackend
from core.db.models import OutboxRow
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError
from core.lifecycle import provisioning as prov
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow, RequestRow
from core.lifecycle.rules import load_tiers
from core.metrics.water_level import allocated_by_pool
from core.org import load_org
from core.reclaim.daily import run_daily
from tests.support import clock
from tests.support.forms import SMALL
from tests.support.people import APPLICANT, COLLEAGUE, DEPT_HEAD, HQ_OPS, OTHER_DEPT

POOL = SMALL["pool"]


def _setting(name: str) -> int:
    """A setting of data/approval_tiers.yaml (horizon, caps): the tests compute from it."""
    return load_tiers().settings[name]


def _alloc(ctx, request_id: int) -> AllocationRow:
    with unit_of_work(ctx.sessions) as s:
        return s.scalars(select(AllocationRow).where(AllocationRow.request_id == request_id)).one()


def _count(ctx, model) -> int:
    with unit_of_work(ctx.sessions) as s:
        return s.scalar(select(func.count()).select_from(model))


# ----------------------------------------------------------------- start-date horizon


def test_a_start_date_beyond_the_horizon_is_refused_naming_start_date_and_precheck_says_so(ctx):
    horizon = _setting("start_horizon_days")
    late = {**SMALL, "start_date": clock.iso(horizon + 1)}
    with pytest.raises(InputError) as err:
        svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=late)
    assert err.value.key == "rules.start_beyond_horizon" and err.value.field == "start_date"
    assert err.value.params["latest"] == clock.iso(horizon)
    assert _count(ctx, RequestRow) == 0
    pre = svc.precheck(sessions=ctx.sessions, actor=APPLICANT, form=late)
    assert [(e["key"], e["field"]) for e in pre["errors"]] == [("rules.start_beyond_horizon", "start_date")]
    # the last day of the horizon is fine: booked, and waiting for its start date
    last = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**SMALL, "start_date": clock.iso(horizon)})
    assert last["status"] == "approved" and _alloc(ctx, last["id"]).status == "scheduled"


def test_a_far_future_date_is_refused_and_a_stored_one_breaks_neither_the_queue_nor_the_daily_job(ctx):
    edge = date.max - timedelta(days=1)  # 9999-12-30: the date of the report
    with pytest.raises(InputError) as err:
        svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**SMALL, "start_date": edge.isoformat()})
    assert err.value.field == "start_date"
    # a row stored before the horizon existed: an allocation held to the calendar's end, and a
    # request queued behind it for the whole pool
    held = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    with unit_of_work(ctx.sessions) as s:
        s.get(AllocationRow, _alloc(ctx, held["id"]).id).ends_on = edge
    size = load_org().pool(POOL).gpus
    waiting = svc.submit(sessions=ctx.sessions, actor=APPLICANT, queue_if_short=True,
                         form={**SMALL, "requested_gpus": size, "gpus_per_run": size})
    assert waiting["status"] == "queued"
    [entry] = adjust.queue(sessions=ctx.sessions, actor=HQ_OPS)["entries"]
    assert entry["request_id"] == waiting["id"] and entry["eta"].date() == edge
    assert snapshot_queue(sessions=ctx.sessions)["waiting"] == 1
    out = run_daily(sessions=ctx.sessions, today=clock.today(), provisioner=PlanBackend())
    assert out["errors"] == {}


# ----------------------------------------------------------------- nothing before the start date


def test_nothing_is_provisioned_before_the_start_date_and_the_daily_job_provisions_it_that_day(ctx):
    r = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**SMALL, "start_date": clock.iso(5)})
    assert r["status"] == "approved" and r["provisioning"] == {
        "status": "scheduled", "starts_on": clock.iso(5), "failed_step": None, "namespace": None}
    alloc = _alloc(ctx, r["id"])
    assert (alloc.status, alloc.namespace, alloc.kubeconfig) == ("scheduled", None, None)
    with unit_of_work(ctx.sessions) as s:
        assert s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.template == "allocation_ready")) == 0
    with pytest.raises(ComputeLoopError) as err:  # not even ops put it on the cluster early
        prov.provision(sessions=ctx.sessions, actor=HQ_OPS, request_id=r["id"])
    assert err.value.key == "rules.not_before_start"
    early = run_daily(sessions=ctx.sessions, today=clock.day(4), provisioner=PlanBackend())
    assert early["scheduled"] == {"started": [], "waiting": []} and _alloc(ctx, r["id"]).status == "scheduled"
    due = run_daily(sessions=ctx.sessions, today=clock.day(5), provisioner=PlanBackend())
    assert [(x["request_id"], x["status"]) for x in due["scheduled"]["started"]] == [(r["id"], "active")]
    alloc = _alloc(ctx, r["id"])
    assert alloc.status == "active" and alloc.namespace and (alloc.starts_on, alloc.ends_on) == (clock.day(5),
                                                                                             clock.day(12))


def test_a_scheduled_allocation_counts_against_its_pool_from_its_start_date_not_from_today(ctx):
    from core.lifecycle.capacity import committed_on

    size = load_org().pool(POOL).gpus
    later = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**SMALL, "start_date": clock.iso(10)})
    gpus = later["approved_gpus"]
    with unit_of_work(ctx.sessions) as s:
        assert allocated_by_pool(s).get(POOL, 0) == 0  # the water level: nothing allocated today
        assert committed_on(s, clock.day(10))[POOL] == gpus  # ...and from its start date on
    usage = next(p for p in svc.pool_usage(sessions=ctx.sessions, actor=HQ_OPS) if p["pool"] == POOL)
    assert (usage["held"], usage["free"], usage["booked"], usage["capacity_row"]) == (0, size, gpus, gpus)
    # the whole pool is free until then; a window reaching its start date is not
    before = svc.precheck(sessions=ctx.sessions, actor=HQ_OPS,
                          form={**SMALL, "requested_gpus": size, "gpus_per_run": size, "duration_days": 10})
    assert before["capacity"]["fits"] and before["capacity"]["free"] == size
    across = svc.precheck(sessions=ctx.sessions, actor=HQ_OPS,
                          form={**SMALL, "requested_gpus": size, "gpus_per_run": size, "duration_days": 11})
    assert not across["capacity"]["fits"] and across["capacity"]["free"] == size - gpus


# ----------------------------------------------------------------- auto-approval caps


def _auto(ctx, actor, n: int) -> None:
    for _ in range(n):
        assert svc.submit(sessions=ctx.sessions, actor=actor, form=SMALL)["tier"] == "standard_auto"


def test_auto_approval_is_capped_per_applicant_and_the_request_goes_to_ops_with_the_reason(ctx):
    per_request = SMALL["requested_gpus"]
    user_cap = _setting("auto_cap_user_gpus")
    _auto(ctx, APPLICANT, user_cap // per_request)
    pre = svc.precheck(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    capped = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    assert capped["tier"] == pre["tier"]["id"] == "auto_capped"
    assert capped["status"] == "submitted" and [s["role"] for s in capped["steps"]] == ["hq_ops"]
    params = capped["tier_message"]["params"]
    assert capped["tier_message"]["key"] == pre["tier"]["key"] == "rules.tier.auto_capped"
    assert (params["user_auto_gpus"], params["auto_cap_user_gpus"]) == (user_cap // per_request * per_request
                                                                         + per_request, user_cap)
    from core.i18n import translate
    text = translate(capped["tier_message"]["key"], "zh-CN", **params)
    assert str(params["user_auto_gpus"]) in text and str(user_cap) in text
    assert [r["id"] for r in svc.pending_approvals(sessions=ctx.sessions, actor=HQ_OPS)] == [capped["id"]]
    # another applicant of another department is not held back by it
    other = svc.submit(sessions=ctx.sessions, actor=OTHER_DEPT,
                       form={**SMALL, "department": "marketing", "project": "P-CS-04"})
    assert other["tier"] == "standard_auto"


def test_auto_approval_is_capped_per_department(ctx):
    per_request = SMALL["requested_gpus"]
    user_cap, dept_cap = _setting("auto_cap_user_gpus"), _setting("auto_cap_department_gpus")
    people = [APPLICANT, COLLEAGUE, DEPT_HEAD]  # all of 数字化部 (digital)
    assert len(people) * user_cap > dept_cap  # the department's cap is reached before everyone's own
    done, used = 0, {p.id: 0 for p in people}
    while done + per_request <= dept_cap:
        person = min(people, key=lambda p: used[p.id])
        _auto(ctx, person, 1)
        used[person.id] += per_request
        done += per_request
    person = min(people, key=lambda p: used[p.id])
    assert used[person.id] + per_request <= user_cap  # their own cap is not what stops them
    capped = svc.submit(sessions=ctx.sessions, actor=person, form=SMALL)
    params = capped["tier_message"]["params"]
    assert capped["tier"] == "auto_capped" and params["department_auto_gpus"] == done + per_request > dept_cap


def test_requests_sent_all_at_once_do_not_slip_under_the_cap_together(ctx):
    import threading

    per_request = SMALL["requested_gpus"]
    user_cap = _setting("auto_cap_user_gpus")
    _auto(ctx, APPLICANT, user_cap // per_request - 1)  # room for exactly one more
    barrier, tiers, errors = threading.Barrier(6), [], []

    def send():
        barrier.wait()
        try:
            tiers.append(svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)["tier"])
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and sorted(tiers) == ["auto_capped"] * 5 + ["standard_auto"]


def test_a_cancelled_auto_approval_does_not_count_against_the_cap(ctx):
    per_request = SMALL["requested_gpus"]
    later = {**SMALL, "start_date": clock.iso(3)}
    ids = [svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=later)["id"]
           for _ in range(_setting("auto_cap_user_gpus") // per_request)]
    svc.cancel(sessions=ctx.sessions, actor=APPLICANT, request_id=ids[0], reason="计划调整")
    assert _alloc(ctx, ids[0]).status == "released"
    assert svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=later)["tier"] == "standard_auto"


# ----------------------------------------------------------------- precheck == submit


CASES = {
    "unknown pool": (APPLICANT, lambda: {**SMALL, "pool": "no-such-pool"}),
    "past date": (APPLICANT, lambda: {**SMALL, "start_date": clock.iso(-3)}),
    "beyond the horizon": (APPLICANT, lambda: {**SMALL, "start_date": clock.iso(_setting("start_horizon_days") + 30)}),
    "gpu model not in the catalog": (APPLICANT, lambda: {**SMALL, "gpu_model": "GTX-9999"}),
    "another department": (OTHER_DEPT, lambda: SMALL),
    "unknown project": (APPLICANT, lambda: {**SMALL, "project": "P-NOPE"}),
    "dynamic reserve": (APPLICANT, lambda: {**SMALL, "pool": "hq-dynamic"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_precheck_says_exactly_what_submit_says(ctx, case):
    actor, build = CASES[case]
    form = build()
    pre = svc.precheck(sessions=ctx.sessions, actor=actor, form=form)
    with pytest.raises(InputError) as err:
        svc.submit(sessions=ctx.sessions, actor=actor, form=form)
    assert pre["missing"] == [] and pre["errors"], pre
    first = pre["errors"][0]
    assert (first["key"], first["field"]) == (err.value.key, err.value.field)
    assert _count(ctx, RequestRow) == 0


def test_precheck_lists_the_same_missing_fields_as_submit(ctx):
    form = {**SMALL, "business_background": "", "model_name": None}
    pre = svc.precheck(sessions=ctx.sessions, actor=APPLICANT, form=form)
    with pytest.raises(InputError) as err:
        svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=form)
    assert err.value.key == "lifecycle.incomplete"
    assert pre["missing"] == err.value.params["missing"].split(", ") == ["business_background", "model_name"]


def test_precheck_of_a_good_form_finds_nothing_and_routes_as_submit_does(ctx):
    pre = svc.precheck(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    assert pre["missing"] == [] and pre["errors"] == [] and pre["capacity"]["fits"]
    done = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    assert done["tier"] == pre["tier"]["id"] and done["tier_message"]["key"] == pre["tier"]["key"]


# ----------------------------------------------------------------- existing databases


@pytest.mark.changes_schema
def test_0015_schedules_an_approved_allocation_whose_start_date_is_ahead(ctx, db_url, monkeypatch):
    from alembic import command

    from core.db.migrate import alembic_config, head_revision, upgrade
    from core.db.session import make_engine

    later = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**SMALL, "start_date": clock.iso(5)})
    monkeypatch.setattr(svc, "_after_approval", lambda sessions, view, provisioner=None: view)
    today = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)  # approved, not provisioned
    assert (_alloc(ctx, later["id"]).status, _alloc(ctx, today["id"]).status) == ("scheduled", "approved")
    engine = make_engine(db_url)
    cfg = alembic_config(db_url)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0014")
    assert (_alloc(ctx, later["id"]).status, _alloc(ctx, today["id"]).status) == ("approved", "approved")
    assert upgrade(engine) == head_revision()
    assert (_alloc(ctx, later["id"]).status, _alloc(ctx, today["id"]).status) == ("scheduled", "approved")
    engine.dispose()


def test_the_precheck_command_shows_what_submit_would_refuse(ctx, cli, tmp_path):
    import json

    from tests.support.cli import json_of

    path = tmp_path / "late.json"
    path.write_text(json.dumps({**SMALL, "start_date": clock.iso(_setting("start_horizon_days") + 1)}), encoding="utf-8")
    out = json_of(cli("requests", "precheck", "--file", str(path), "--as", "zhang.wei", "--json"))
    assert [e["key"] for e in out["errors"]] == ["rules.start_beyond_horizon"]
    code, text, _ = cli("requests", "precheck", "--file", str(path), "--as", "zhang.wei", "--lang", "zh-CN")
    assert code == 0 and "开始日期" in text and clock.iso(_setting("start_horizon_days")) in text
    assert _count(ctx, RequestRow) == 0
