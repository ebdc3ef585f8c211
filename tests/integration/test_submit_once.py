"""Submit once (issue 10 point 4): a form's submission token makes a double click, a resubmission or
two submissions at once one request, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.clock import utc_now
from core.errors import InputError
from core.lifecycle import services as svc
from core.lifecycle.persistence import RequestRow
from tests.support.db_checks import outbox
from tests.support.forms import MEDIUM, SMALL
from tests.support.people import APPLICANT, COLLEAGUE
from tests.support.threads import at_once

TOKEN = "form-7Qx2pLk9Wm3v"


def _requests(ctx) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(RequestRow))


def _submit(ctx, form=SMALL, actor=APPLICANT, **kw):
    return svc.submit(sessions=ctx.sessions, actor=actor, form=form, **kw)


def _submitted_notices(ctx) -> int:
    return sum(1 for row in outbox(ctx) if row.template == "request_submitted")


def test_a_second_submit_with_the_same_token_returns_the_first_request(ctx):
    first = _submit(ctx, idempotency_key=TOKEN)
    again = _submit(ctx, idempotency_key=TOKEN)
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert (again["id"], again["number"]) == (first["id"], first["number"])
    assert again["status"] in ("approved", "active")  # the first one's, as it is now
    assert _requests(ctx) == 1 and _submitted_notices(ctx) == 1


def test_the_repeat_is_recognised_before_the_form_is_checked_again(ctx):
    """The first request took the pool's GPUs: checking the form again would now refuse or queue
    it; the repeat returns the first request instead."""
    first = _submit(ctx, MEDIUM, idempotency_key=TOKEN)
    again = _submit(ctx, {**MEDIUM, "requested_gpus": 10_000}, idempotency_key=TOKEN)
    assert again["id"] == first["id"] and _requests(ctx) == 1


def test_a_draft_submitted_twice_with_its_token_is_one_request(ctx):
    draft = svc.save_draft(sessions=ctx.sessions, actor=APPLICANT, form=SMALL)
    first = _submit(ctx, request_id=draft, idempotency_key=TOKEN)
    again = _submit(ctx, request_id=draft, idempotency_key=TOKEN)
    assert first["id"] == again["id"] == draft and again["duplicate"] and _requests(ctx) == 1


def test_two_submits_at_once_with_one_token_make_one_request(ctx):
    threads = 4
    results = at_once(threads, lambda i: _submit(ctx, MEDIUM, idempotency_key=TOKEN))
    assert all(isinstance(r, dict) for r in results.values()), results
    assert len(results) == threads and len({r["id"] for r in results.values()}) == 1
    assert sorted(r["duplicate"] for r in results.values()) == [False] + [True] * (threads - 1)
    assert _requests(ctx) == 1 and _submitted_notices(ctx) == 1


def test_a_submit_the_lookups_missed_is_stopped_by_the_unique_index_and_returns_the_first(ctx, monkeypatch):
    first = _submit(ctx, idempotency_key=TOKEN)
    real = svc._submitted_with
    blind = iter([None, None])

    def racing(s, actor, token):  # noqa: ANN001
        # the two look-ups before the insert miss the first request, as a submission racing
        # past them would; the one after the unique index refused the row finds it
        found = real(s, actor, token)
        return next(blind, found)

    monkeypatch.setattr(svc, "_submitted_with", racing)
    again = _submit(ctx, idempotency_key=TOKEN)
    assert again["id"] == first["id"] and again["duplicate"]
    assert _requests(ctx) == 1 and _submitted_notices(ctx) == 1


def test_the_database_refuses_a_second_request_with_one_applicants_token(ctx):
    now = utc_now()
    with pytest.raises(IntegrityError):
        with ctx.sessions() as s, s.begin():
            for _ in range(2):
                s.add(RequestRow(status="draft", created_by=APPLICANT.id, created_at=now, updated_at=now, form={},
                                 flags=[], idempotency_key=TOKEN))
    with ctx.sessions() as s, s.begin():  # without a token (drafts, the CLI) any number
        for _ in range(2):
            s.add(RequestRow(status="draft", created_by=APPLICANT.id, created_at=now, updated_at=now, form={},
                             flags=[]))
    assert _requests(ctx) == 2


def test_another_applicants_token_or_no_token_makes_a_new_request(ctx):
    mine = _submit(ctx, idempotency_key=TOKEN)
    theirs = _submit(ctx, actor=COLLEAGUE, idempotency_key=TOKEN)
    untokened = [_submit(ctx) for _ in range(2)]
    assert len({mine["id"], theirs["id"], *(r["id"] for r in untokened)}) == 4
    assert not any(r["duplicate"] for r in (theirs, *untokened))


@pytest.mark.parametrize("token", ["short", "has space in it", "x" * 65, 12345678])
def test_a_malformed_token_is_refused_naming_its_field(ctx, token):
    with pytest.raises(InputError) as err:
        _submit(ctx, idempotency_key=token)
    assert err.value.field == "idempotency_key" and _requests(ctx) == 0
