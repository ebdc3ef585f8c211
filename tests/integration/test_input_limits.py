"""Free text has a length limit (issue 11, item 8: a 5 MB warning reply was accepted), enforced by
the services on SQLite and PostgreSQL: a warning reply or triage note, a decision, cancellation,
extension or return reason, an emergency decision's reason, a request's business background or an
emergency's justification longer than data/input_limits.yaml allows is refused with an InputError
naming the field (``input.too_long``) and nothing is written; text at the limit is accepted."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.cluster.backends import PlanBackend
from core.db.models import AuditEventRow
from core.db.session import unit_of_work
from core.errors import InputError
from core.identity import load_personas
from core.lifecycle import green_channel as gc
from core.lifecycle import services as lifecycle
from core.reclaim import services as reclaim
from core.reclaim import warning_service as warnings
from core.reclaim.persistence import WarningNoteRow, WarningRow
from core.text import input_limits
from tests.support import clock
from tests.support.forms import MEDIUM, training_form
from tests.support.green_channel import emergency
from tests.support.people import APPLICANT, HQ_OPS

FIVE_MB = "x" * (5 * 1024 * 1024)


def _count(ctx, model) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def _refused(ctx, call, field: str, length: int) -> None:
    """``call()`` raises input.too_long naming ``field`` and writes no audit event."""
    before = _count(ctx, AuditEventRow)
    with pytest.raises(InputError) as err:
        call()
    assert (err.value.key, err.value.field, err.value.params["length"]) == ("input.too_long", field, length)
    assert _count(ctx, AuditEventRow) == before


def _warning(ctx) -> int:
    now = clock.now()
    with unit_of_work(ctx.sessions) as s:
        w = WarningRow(resource="a-ns-1", month=f"{clock.month_start(-1):%Y-%m}", level="yellow", status="new",
                       owner=APPLICANT.id, department="digital", unit="HQ", pool_id="hq-ft", util=0.05, mem=0.1,
                       gpu_hours=744.0, coverage=0.9, days_in_scope=31, days_observed=28, series=[],
                       created_at=now, updated_at=now, new_at=now)
        s.add(w)
        s.flush()
        return w.id


def test_a_5_mb_warning_reply_is_refused_and_a_reply_at_the_limit_is_kept(ctx):
    wid, limit = _warning(ctx), input_limits()["reply"]
    _refused(ctx, lambda: warnings.reply(sessions=ctx.sessions, actor=APPLICANT, warning_id=wid, text=FIVE_MB),
             "reply", len(FIVE_MB))
    _refused(ctx, lambda: warnings.reply(sessions=ctx.sessions, actor=APPLICANT, warning_id=wid, text="y" * (limit + 1)),
             "reply", limit + 1)
    assert _count(ctx, WarningNoteRow) == 0
    done = warnings.reply(sessions=ctx.sessions, actor=APPLICANT, warning_id=wid, text="y" * limit)
    assert [len(n["text"]) for n in done["notes"]] == [limit]


def test_a_triage_note_over_the_limit_is_refused(ctx):
    wid, limit = _warning(ctx), input_limits()["note"]
    _refused(ctx, lambda: warnings.triage(sessions=ctx.sessions, actor=HQ_OPS, warning_id=wid, to="acknowledged",
                                          note="n" * (limit + 1)), "note", limit + 1)
    assert warnings.get_warning(sessions=ctx.sessions, actor=HQ_OPS, warning_id=wid)["status"] == "new"


def test_decision_and_cancellation_reasons_over_the_limit_are_refused(ctx):
    limit = input_limits()["reason"]
    long = "r" * (limit + 1)
    request = lifecycle.submit(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM)   # waits for HQ ops
    _refused(ctx, lambda: lifecycle.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=request["id"],
                                           decision="reject", reason=long), "reason", limit + 1)
    _refused(ctx, lambda: lifecycle.cancel(sessions=ctx.sessions, actor=APPLICANT, request_id=request["id"],
                                           reason=long), "reason", limit + 1)
    assert lifecycle.get_request(sessions=ctx.sessions, actor=APPLICANT, request_id=request["id"])["status"] == "submitted"
    done = lifecycle.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=request["id"], decision="reject",
                            reason="r" * limit)
    assert done["status"] == "rejected" and len(done["decision_reason"]) == limit


def test_extension_return_and_extension_decision_reasons_over_the_limit_are_refused(ctx):
    """The length is checked first, before the request or extension is even loaded: a reason too
    long is the answer whatever state the allocation is in."""
    limit = input_limits()["reason"]
    long = "r" * (limit + 1)
    request = lifecycle.submit(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM)
    _refused(ctx, lambda: reclaim.request_extension(sessions=ctx.sessions, actor=APPLICANT, request_id=request["id"],
                                                    days=3, reason=long), "reason", limit + 1)
    _refused(ctx, lambda: reclaim.return_allocation(sessions=ctx.sessions, actor=APPLICANT, request_id=request["id"],
                                                    reason=long, provisioner=PlanBackend()), "reason", limit + 1)
    _refused(ctx, lambda: reclaim.decide_extension(sessions=ctx.sessions, actor=HQ_OPS, extension_id=1, approve=True,
                                                   reason=long), "reason", limit + 1)
    assert reclaim.list_extensions(sessions=ctx.sessions, actor=HQ_OPS) == []
    assert reclaim.list_records(sessions=ctx.sessions, actor=HQ_OPS) == []


def test_an_emergency_decision_reason_over_the_limit_is_refused(ctx):
    limit = input_limits()["reason"]
    approver = next(p for p in load_personas() if p.role == gc.load_settings().approver_role)
    request = emergency(ctx, 4)
    _refused(ctx, lambda: gc.decide_emergency(sessions=ctx.sessions, actor=approver, request_id=request["id"],
                                              approve=False, reason="r" * (limit + 1)), "reason", limit + 1)


def test_an_emergency_justification_over_the_limit_is_refused(ctx):
    limit = input_limits()["background"]
    _refused(ctx, lambda: gc.submit_emergency(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM,
                                              justification="j" * (limit + 1), category="grid_safety_incident"),
             "justification", limit + 1)


def test_a_business_background_over_the_limit_is_refused_naming_the_field():
    limit = input_limits()["background"]
    with pytest.raises(InputError) as err:
        training_form(business_background="b" * (limit + 1))
    assert (err.value.key, err.value.field) == ("input.too_long", "business_background")
    assert training_form(business_background="b" * limit).business_background == "b" * limit
