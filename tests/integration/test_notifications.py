"""Notices end to end: outbox → real SMTP server on loopback (aiosmtpd) → in-app inbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import datetime, time, timedelta, timezone
from email.header import decode_header, make_header

import pytest
from sqlalchemy import delete, func, select

from core.db.models import AuditEventRow, InboxRow, OutboxRow
from core.db.session import unit_of_work
from core.errors import InputError, NotFound
from core.identity import Identity, PermissionDenied
from core.notifications import (
    InboxOnlyTransport,
    RecordingTransport,
    SmtpTransport,
    TemplateError,
    deliver_pending,
    enqueue,
    get_notice,
    kind_counts,
    list_inbox,
    make_transport,
    mark_all_read,
    mark_read,
    render,
    smtp_settings,
    unread_count,
)
from tests.support import clock
from tests.support.smtp import SENDER, free_port as _free_port

try:
    from aiosmtpd.controller import Controller
except ImportError:  # pragma: no cover - CI installs it (requirements-dev.txt)
    Controller = None

APPLICANT = Identity("zhang.wei", "张伟", "zhang.wei@example.com", "applicant", department="数字化部")
OTHER = Identity("liu.yang", "刘洋", "liu.yang@example.com", "applicant", department="营销部")
OPS = Identity("li.na", "李娜", "li.na@example.com", "hq_ops")
T0 = datetime.combine(clock.day(-7), time(9), tzinfo=timezone.utc)
EXPIRES = (T0.date() + timedelta(days=3)).isoformat()
EXPIRY = {"namespace": "nlp-ft-042", "days_left": 3, "expires_on": EXPIRES}


def _dead_transport() -> SmtpTransport:
    """A transport whose server is down (nothing listens on the port)."""
    return SmtpTransport("127.0.0.1", _free_port(), SENDER, starttls=False, timeout=5)


def _queue(ctx, key: str = "expiry:nlp-ft-042:3d", *, who: Identity = APPLICANT, lang: str = "zh-CN",
           template: str = "expiry_notice", params: dict | None = None) -> bool:
    with unit_of_work(ctx.sessions) as s:
        return enqueue(s, dedup_key=key, recipient_id=who.id, recipient_email=who.email, lang=lang,
                       template=template, params=params or EXPIRY, now=T0)


def _outbox(ctx) -> list[OutboxRow]:
    with ctx.sessions() as s:
        return list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def _inbox_count(ctx) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(InboxRow))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def test_enqueued_notice_is_mailed_once_in_chinese_and_english_with_one_inbox_copy(ctx, smtp):
    assert _queue(ctx, "expiry:zh", lang="zh-CN")
    assert _queue(ctx, "expiry:en", who=OPS, lang="en")
    assert _inbox_count(ctx) == 2  # the in-app copies come with the queueing, before any e-mail
    report = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0)
    assert (report.sent, report.retried, report.failed, report.inbox_written) == (2, 0, 0, 0)

    by_to = {m["To"]: m for m in smtp.handler.messages}
    assert sorted(by_to) == [OPS.email, APPLICANT.email]
    zh, en = by_to[APPLICANT.email], by_to[OPS.email]
    # The Chinese subject travels RFC 2047-encoded and decodes back to the catalog text.
    raw_zh = next(r for r in smtp.handler.raw if APPLICANT.email.encode() in r)
    assert b"=?utf-8?" in raw_zh.split(b"\n\n", 1)[0].lower()
    subject_zh = str(make_header(decode_header(zh["Subject"])))
    assert subject_zh == render("expiry_notice", "zh-CN", EXPIRY).subject
    assert "到期" in subject_zh and "nlp-ft-042" in subject_zh
    assert "延期申请" in zh.get_content() and f"3 天后（{EXPIRES}）" in zh.get_content()
    assert str(make_header(decode_header(en["Subject"]))) == render("expiry_notice", "en", EXPIRY).subject
    assert f"expire in 3 days ({EXPIRES})" in en.get_content()
    assert "extension request" in en.get_content()
    assert zh["From"] == SENDER and zh["Message-ID"] and zh["Message-ID"] != en["Message-ID"]

    rows = _outbox(ctx)
    assert [r.status for r in rows] == ["sent", "sent"]
    assert all(r.attempts == 1 and r.sent_at is not None and r.last_error == "" for r in rows)
    assert _inbox_count(ctx) == 2


def test_second_run_sends_nothing_new(ctx, smtp):
    _queue(ctx)
    deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0)
    again = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0 + timedelta(hours=1))
    assert (again.sent, again.inbox_written, again.skipped) == (0, 0, 0)
    assert len(smtp.handler.raw) == 1
    assert _inbox_count(ctx) == 1


def test_same_dedup_key_is_queued_once_in_one_transaction_and_across_transactions(ctx, smtp):
    with unit_of_work(ctx.sessions) as s:
        first = enqueue(s, dedup_key="k", recipient_id=APPLICANT.id, recipient_email=APPLICANT.email,
                        lang="zh", template="expiry_notice", params=EXPIRY)
        second = enqueue(s, dedup_key="k", recipient_id=APPLICANT.id, recipient_email=APPLICANT.email,
                         lang="zh", template="expiry_notice", params=EXPIRY)
    assert (first, second) == (True, False)
    assert _queue(ctx, "k") is False
    assert len(_outbox(ctx)) == 1
    deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0)
    assert len(smtp.handler.raw) == 1


def test_notice_in_a_rolled_back_transaction_is_never_sent(ctx, smtp):
    with pytest.raises(RuntimeError):
        with unit_of_work(ctx.sessions) as s:
            s.add(AuditEventRow(at=T0, actor=OPS.id, action="request.approved", subject="request:7"))
            enqueue(s, dedup_key="request:7:approved", recipient_id=APPLICANT.id, recipient_email=APPLICANT.email,
                    lang="zh-CN", template="request_approved",
                    params={"number": "CR-2026-000007", "title": "7B 微调", "reason": "资源充足"})
            raise RuntimeError("the approval failed after the notice was queued")
    report = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0)
    assert report.sent == 0 and smtp.handler.raw == [] and _outbox(ctx) == [] and _inbox_count(ctx) == 0


def test_bad_template_parameters_fail_the_callers_transaction(ctx):
    with pytest.raises(TemplateError):
        with unit_of_work(ctx.sessions) as s:
            s.add(AuditEventRow(at=T0, actor=OPS.id, action="x", subject="y"))
            enqueue(s, dedup_key="bad", recipient_id=APPLICANT.id, recipient_email=APPLICANT.email, lang="en",
                    template="expiry_notice", params={"namespace": "ns"})
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEventRow)) == 0


def test_try_later_reply_backs_off_and_a_later_run_delivers_exactly_once(ctx, smtp):
    _queue(ctx)
    smtp.handler.reply = "451 4.3.0 try later"
    first = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0)
    assert (first.sent, first.retried) == (0, 1)
    [row] = _outbox(ctx)
    assert (row.status, row.attempts, row.sent_at) == ("pending", 1, None)
    assert "451" in row.last_error and _utc(row.next_attempt_at) == T0 + timedelta(minutes=1)
    assert _inbox_count(ctx) == 1  # the in-app copy does not wait for e-mail

    # Not due yet: nothing happens even though the server is fine now.
    smtp.handler.reply = None
    early = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0 + timedelta(seconds=30))
    assert early.sent == 0 and smtp.handler.raw == []

    later = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0 + timedelta(minutes=1))
    assert later.sent == 1 and len(smtp.handler.raw) == 1
    [row] = _outbox(ctx)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert _inbox_count(ctx) == 1
    deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0 + timedelta(hours=1))
    assert len(smtp.handler.raw) == 1


def test_server_down_counts_an_attempt_and_the_next_run_delivers_once(ctx, smtp):
    _queue(ctx)
    down = deliver_pending(sessions=ctx.sessions, transport=_dead_transport(), now=T0)
    assert down.retried == 1 and down.errors[0]["final"] is False
    [row] = _outbox(ctx)
    assert row.attempts == 1 and _utc(row.next_attempt_at) > T0 and "Connection" in row.last_error
    up = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0 + timedelta(minutes=2))
    assert up.sent == 1 and len(smtp.handler.raw) == 1


def test_backoff_doubles_and_max_attempts_marks_failed(ctx, smtp):
    _queue(ctx)
    smtp.handler.reply = "451 4.3.0 try later"
    at, delays = T0, []
    for _ in range(4):
        deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=at, max_attempts=5)
        [row] = _outbox(ctx)
        delays.append(_utc(row.next_attempt_at) - at)
        at = _utc(row.next_attempt_at)
    assert delays == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    last = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=at, max_attempts=5)
    assert last.failed == 1 and last.errors[0]["final"] is True
    [row] = _outbox(ctx)
    assert (row.status, row.attempts, row.next_attempt_at, row.sent_at) == ("failed", 5, None, None)
    smtp.handler.reply = None
    deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=at + timedelta(days=1))
    assert smtp.handler.raw == [] and _inbox_count(ctx) == 1


def test_permanent_refusal_fails_at_once(ctx, smtp):
    _queue(ctx)
    smtp.handler.reply = "554 5.7.1 message rejected"
    report = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0)
    assert report.failed == 1
    [row] = _outbox(ctx)
    assert (row.status, row.attempts) == ("failed", 1) and "554" in row.last_error


def test_concurrent_runs_send_each_notice_exactly_once(ctx, smtp):
    keys = [f"expiry:ns-{i}" for i in range(12)]
    for key in keys:
        _queue(ctx, key)
    barrier, reports, errors = threading.Barrier(3), [], []

    def run():
        transport = SmtpTransport("127.0.0.1", smtp.port, SENDER, starttls=False, timeout=5)
        barrier.wait()
        try:
            reports.append(deliver_pending(sessions=ctx.sessions, transport=transport, now=T0))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(r.sent for r in reports) == 12
    ids = [m["Message-ID"] for m in smtp.handler.messages]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert _inbox_count(ctx) == 12
    assert {r.status for r in _outbox(ctx)} == {"sent"}


class _CrashAfterSend:
    """The server accepts the message, then the process dies before recording it."""

    delivers_email = True

    def __init__(self, inner: SmtpTransport) -> None:
        self.inner, self.sender = inner, inner.sender

    def send(self, mail) -> None:  # noqa: ANN001
        self.inner.send(mail)
        raise KeyboardInterrupt("killed between the 250 reply and the commit")


def test_crash_between_send_and_commit_resends_once_after_the_lease_with_the_same_message_id(ctx, smtp):
    """The documented at-least-once window: one duplicate, recognisable by its Message-ID."""
    _queue(ctx)
    with pytest.raises(KeyboardInterrupt):
        deliver_pending(sessions=ctx.sessions, transport=_CrashAfterSend(smtp.transport), now=T0)
    assert len(smtp.handler.raw) == 1
    during_lease = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0 + timedelta(minutes=5))
    assert during_lease.sent == 0 and len(smtp.handler.raw) == 1
    after = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0 + timedelta(minutes=11))
    assert after.sent == 1
    first, second = smtp.handler.messages
    assert first["Message-ID"] == second["Message-ID"]
    [row] = _outbox(ctx)
    assert (row.status, row.attempts) == ("sent", 2)
    assert _inbox_count(ctx) == 1


def test_a_notice_queued_without_its_in_app_copy_gets_one_from_the_sender(ctx, smtp):
    """Notices queued by an older version (the copy was then written at delivery) still reach the inbox."""
    _queue(ctx)
    with ctx.sessions.begin() as s:
        s.execute(delete(InboxRow))
    report = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0)
    assert (report.sent, report.inbox_written) == (1, 1) and _inbox_count(ctx) == 1
    _queue(ctx, "second")
    with ctx.sessions.begin() as s:
        s.execute(delete(InboxRow).where(InboxRow.outbox_id == _outbox(ctx)[-1].id))
    held = deliver_pending(sessions=ctx.sessions, transport=make_transport(env={}), now=T0)
    assert (held.inbox_only, held.inbox_written) == (1, 1) and _inbox_count(ctx) == 2


def test_without_smtp_notices_reach_the_inbox_and_emails_stay_pending_until_smtp_is_configured(ctx, smtp):
    _queue(ctx)
    transport = make_transport(env={})
    assert isinstance(transport, InboxOnlyTransport)
    report = deliver_pending(sessions=ctx.sessions, transport=transport, now=T0)
    assert (report.inbox_only, report.sent) == (1, 0)
    [row] = _outbox(ctx)
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, InboxOnlyTransport.NO_SMTP)
    assert [n["subject"] for n in list_inbox(sessions=ctx.sessions, actor=APPLICANT)] == [
        render("expiry_notice", "zh-CN", EXPIRY).subject]
    again = deliver_pending(sessions=ctx.sessions, transport=transport, now=T0 + timedelta(minutes=1))
    assert again.inbox_only == 0 and _inbox_count(ctx) == 1

    mailed = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0 + timedelta(hours=1))
    assert mailed.sent == 1 and len(smtp.handler.raw) == 1 and _inbox_count(ctx) == 1
    assert _outbox(ctx)[0].status == "sent"


def test_notice_older_than_max_age_is_not_mailed_late(ctx, smtp):
    _queue(ctx)
    report = deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0 + timedelta(days=8))
    assert report.failed == 1 and smtp.handler.raw == []
    [row] = _outbox(ctx)
    assert row.status == "failed" and row.last_error.startswith("expired")
    assert _inbox_count(ctx) == 1


def test_only_the_recipient_reads_and_marks_a_notice(ctx, smtp):
    _queue(ctx)
    deliver_pending(sessions=ctx.sessions, transport=smtp.transport, now=T0)
    [mine] = list_inbox(sessions=ctx.sessions, actor=APPLICANT, lang="en")
    assert mine["subject"] == render("expiry_notice", "en", EXPIRY).subject and mine["unread"]
    assert list_inbox(sessions=ctx.sessions, actor=OTHER) == []
    with pytest.raises(PermissionDenied):
        get_notice(sessions=ctx.sessions, actor=OTHER, inbox_id=mine["id"])
    with pytest.raises(PermissionDenied):
        mark_read(sessions=ctx.sessions, actor=OTHER, inbox_id=mine["id"])
    with pytest.raises(NotFound):
        mark_read(sessions=ctx.sessions, actor=APPLICANT, inbox_id=mine["id"] + 999)
    assert unread_count(sessions=ctx.sessions, actor=APPLICANT) == 1

    read = mark_read(sessions=ctx.sessions, actor=APPLICANT, inbox_id=mine["id"], lang="zh-CN", now=T0)
    assert read["unread"] is False and "到期" in read["subject"]
    again = mark_read(sessions=ctx.sessions, actor=APPLICANT, inbox_id=mine["id"], now=T0 + timedelta(days=1))
    assert _utc(again["read_at"]) == T0
    assert list_inbox(sessions=ctx.sessions, actor=APPLICANT, unread_only=True) == []
    assert unread_count(sessions=ctx.sessions, actor=APPLICANT) == 0


def test_cli_send_delivers_and_prints_the_report(ctx, smtp, db_url, monkeypatch, capsys):
    from core.cli import OneLineParser
    from core.cli import notify as notify_cli

    _queue(ctx)
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)
    monkeypatch.setenv("COMPUTELOOP_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("COMPUTELOOP_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("COMPUTELOOP_SMTP_FROM", SENDER)
    monkeypatch.setenv("COMPUTELOOP_SMTP_STARTTLS", "0")
    parser = OneLineParser(prog="python -m core")
    notify_cli.register(parser.add_subparsers(dest="group", required=True, parser_class=OneLineParser))
    args = parser.parse_args(["notify", "send", "--limit", "10", "--json"])
    assert args.handler(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sent"] == 1 and len(smtp.handler.raw) == 1

    monkeypatch.delenv("COMPUTELOOP_SMTP_HOST")
    _queue(ctx, "second")
    args = parser.parse_args(["notify", "send"])
    assert args.handler(args) == 0
    assert "1 in the in-app inbox only" in capsys.readouterr().out


def test_smtp_settings_are_read_from_the_environment_when_called():
    assert smtp_settings({}) is None
    settings = smtp_settings({"COMPUTELOOP_SMTP_HOST": "mail.corp", "COMPUTELOOP_SMTP_STARTTLS": "0",
                              "COMPUTELOOP_SMTP_USER": "svc", "COMPUTELOOP_SMTP_PASSWORD": "s3cret"})
    assert (settings.host, settings.port, settings.starttls, settings.user) == ("mail.corp", 587, False, "svc")
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(make_transport(settings))
    with pytest.raises(InputError):
        smtp_settings({"COMPUTELOOP_SMTP_HOST": "mail.corp", "COMPUTELOOP_SMTP_PORT": "smtp"})


def test_every_template_renders_in_both_languages():
    samples = {
        "request_submitted": {"number": "CR-2026-000001", "title": "t"},
        "request_approved": {"number": "CR-2026-000001", "title": "t", "reason": "资源充足"},
        "request_rejected": {"number": "CR-2026-000001", "title": "t", "reason": "r"},
        "request_needs_review": {"number": "CR-2026-000001", "title": "t", "applicant": "张伟"},
        "allocation_ready": {"number": "CR-2026-000001", "namespace": "ns", "gpus": 8, "gpu_model": "H800",
                             "expires_on": clock.iso(24)},
        "expiry_notice": EXPIRY,
        "reclaim_done": {"namespace": "ns", "gpus": 8, "gpu_model": "H800"},
        "warning_raised": {"level": "yellow", "target": "NLP", "month": "2026-10", "gpu_util": 0.12, "mem_util": 0.18},
    }
    for template, params in samples.items():
        zh, en = render(template, "zh-CN", params), render(template, "en", params)
        assert "\n" not in zh.subject and "{" not in zh.body + en.body
        assert zh.subject != en.subject
        if "number" in params:  # a request is named by its number, in the subject and the body
            assert all(params["number"] in text for text in (zh.subject, zh.body, en.subject, en.body))
    approved = render("request_approved", "zh-CN", samples["request_approved"])
    assert "资源充足" in approved.body  # the decision's reason either way
    assert "黄色预警" in render("warning_raised", "zh-CN", samples["warning_raised"]).subject
    with pytest.raises(TemplateError):
        render("warning_raised", "en", {**samples["warning_raised"], "level": "red"})


def test_two_transactions_queueing_the_same_key_at_once_queue_it_once(ctx):
    """The second insert waits for the first transaction and then does nothing (no error)."""
    results: list[bool] = []
    first_inserted, errors = threading.Event(), []

    def second():
        first_inserted.wait(10)
        try:
            results.append(_queue(ctx, "race"))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    with unit_of_work(ctx.sessions) as s:
        results.append(enqueue(s, dedup_key="race", recipient_id=APPLICANT.id, recipient_email=APPLICANT.email,
                               lang="en", template="expiry_notice", params=EXPIRY))
        first_inserted.set()
        thread.join(0.5)  # the other transaction is now blocked on our uncommitted row (or the SQLite lock)
    thread.join(10)
    assert errors == [] and sorted(results) == [False, True]
    assert len(_outbox(ctx)) == 1


def test_an_automatic_approval_notice_says_which_rule_approved_it_in_words(ctx):
    from core.lifecycle import services as svc
    from tests.support.forms import SMALL
    from tests.support.people import APPLICANT as APPLYING

    view = svc.submit(sessions=ctx.sessions, actor=APPLYING, form=SMALL)
    with ctx.sessions() as s:
        row = s.scalars(select(OutboxRow).where(OutboxRow.template == "request_approved")).one()
    notice = render(row.template, row.lang, row.params)
    assert view["number"] in notice.subject and view["number"] in notice.body
    assert "tier:" not in notice.body and "standard_auto" not in notice.body
    assert render("request_approved", "zh-CN", row.params).body.count("系统自动审批") == 1


# --------------------------------------------------------------------------- the inbox as people act on it

WARNING = {"level": "yellow", "target": "NLP", "month": "2026-10", "gpu_util": 0.12, "mem_util": 0.18}
APPROVED = {"number": "CR-2026-000001", "title": "t", "reason": "资源充足", "request_id": 1}
OTHER_OPS = Identity("sun.ops", "孙运维", "sun.ops@example.com", "hq_ops", department="算力运营中心")
PORTAL = "https://portal.example.com"


def _kinds(ctx, who: Identity = APPLICANT, **filters) -> list[str]:
    return sorted(n["kind"] for n in list_inbox(sessions=ctx.sessions, actor=who, **filters))


def _to_inbox(ctx) -> None:
    deliver_pending(sessions=ctx.sessions, transport=InboxOnlyTransport())


def test_the_inbox_filters_by_kind_and_by_unread_and_reading_one_takes_it_out_of_unread(ctx):
    _queue(ctx, "expiry:1")
    _queue(ctx, "warning:1", template="warning_raised", params=WARNING)
    _queue(ctx, "warning:2", template="warning_raised", params={**WARNING, "target": "CV"})
    _queue(ctx, "approved:1", template="request_approved", params=APPROVED)
    _queue(ctx, "other:1", who=OTHER, template="warning_raised", params=WARNING)
    _to_inbox(ctx)
    assert _kinds(ctx) == ["decision", "expiry", "warning", "warning"]
    assert _kinds(ctx, kind="warning") == ["warning", "warning"]
    assert _kinds(ctx, kind="decision") == ["decision"] and _kinds(ctx, kind="reclaim") == []

    [expiry] = list_inbox(sessions=ctx.sessions, actor=APPLICANT, kind="expiry")
    mark_read(sessions=ctx.sessions, actor=APPLICANT, inbox_id=expiry["id"], now=T0)  # what opening it does
    assert _kinds(ctx, unread_only=True) == ["decision", "warning", "warning"]
    assert _kinds(ctx, kind="expiry", unread_only=True) == []
    assert kind_counts(sessions=ctx.sessions, actor=APPLICANT) == {
        "expiry": {"total": 1, "unread": 0}, "warning": {"total": 2, "unread": 2}, "decision": {"total": 1, "unread": 1}}

    assert mark_all_read(sessions=ctx.sessions, actor=APPLICANT, kind="warning", now=T0) == 2
    assert _kinds(ctx, unread_only=True) == ["decision"]
    assert _kinds(ctx, OTHER, unread_only=True) == ["warning"]  # someone else's stay unread
    with pytest.raises(InputError) as err:
        list_inbox(sessions=ctx.sessions, actor=APPLICANT, kind="urgent")
    assert err.value.field == "kind"


def test_every_notice_about_a_request_names_it_for_the_link(ctx):
    from core.lifecycle import services as svc
    from core.lifecycle.persistence import AllocationRow
    from core.reclaim import services as reclaim
    from tests.support.forms import MEDIUM, SMALL
    from tests.support.people import APPLICANT as APPLYING

    small = svc.submit(sessions=ctx.sessions, actor=APPLYING, form=SMALL)  # approved at once and provisioned
    medium = svc.submit(sessions=ctx.sessions, actor=APPLYING, form=MEDIUM)  # waits for HQ ops
    with ctx.sessions() as s:
        ends = s.scalars(select(AllocationRow.ends_on).where(AllocationRow.request_id == small["id"])).one()
    reclaim.send_expiry_notices(sessions=ctx.sessions, today=ends - timedelta(days=3))
    ids = {row.template: row.params.get("request_id") for row in _outbox(ctx)}
    assert {"request_submitted", "request_approved", "allocation_ready", "request_needs_review",
            "expiry_notice"} <= set(ids)
    assert ids["request_needs_review"] == medium["id"]
    assert ids["request_approved"] == ids["allocation_ready"] == ids["expiry_notice"] == small["id"]


def test_an_approval_item_needs_action_until_the_request_is_withdrawn(ctx):
    from core.lifecycle import services as svc
    from tests.support.forms import MEDIUM
    from tests.support.people import APPLICANT as APPLYING

    view = svc.submit(sessions=ctx.sessions, actor=APPLYING, form=MEDIUM)
    _to_inbox(ctx)
    [item] = list_inbox(sessions=ctx.sessions, actor=OPS, kind="approval")
    assert (item["request_id"], item["number"], item["action"]) == (view["id"], view["number"], {"needed": True})
    mine = list_inbox(sessions=ctx.sessions, actor=APPLICANT)
    assert mine and all(n["request_id"] == view["id"] and n["action"] is None for n in mine)

    svc.cancel(sessions=ctx.sessions, actor=APPLYING, request_id=view["id"], reason="需求取消")
    [item] = list_inbox(sessions=ctx.sessions, actor=OPS, kind="approval")
    assert item["action"] == {"needed": False, "why": "withdrawn", "status": "cancelled"}
    assert get_notice(sessions=ctx.sessions, actor=OPS, inbox_id=item["id"])["action"]["needed"] is False


def test_an_approval_item_taken_by_another_approver_says_who_took_it_and_the_next_step_needs_action(ctx):
    from core.lifecycle import services as svc
    from tests.support.forms import LARGE
    from tests.support.people import APPLICANT as APPLYING

    view = svc.submit(sessions=ctx.sessions, actor=APPLYING, form=LARGE)  # HQ ops, then the department head
    svc.decide(sessions=ctx.sessions, actor=OTHER_OPS, request_id=view["id"], decision="approve", reason="资源充足")
    _to_inbox(ctx)
    [item] = list_inbox(sessions=ctx.sessions, actor=OPS, kind="approval")
    assert item["action"] == {"needed": False, "why": "decided", "status": "in_review", "by": OTHER_OPS.id,
                              "outcome": "approved"}
    head = Identity("zhou.lei", "周磊", "zhou.lei@example.com", "dept_head", department="数字化部")
    [next_step] = list_inbox(sessions=ctx.sessions, actor=head, kind="approval")
    assert next_step["request_id"] == view["id"] and next_step["action"] == {"needed": True}


def test_an_emailed_notice_links_to_its_request_only_when_the_public_url_is_set(ctx, monkeypatch):
    from core.lifecycle import services as svc
    from tests.support.forms import MEDIUM
    from tests.support.people import APPLICANT as APPLYING

    monkeypatch.delenv("COMPUTELOOP_PUBLIC_URL", raising=False)
    first = svc.submit(sessions=ctx.sessions, actor=APPLYING, form=MEDIUM)
    unset = RecordingTransport()
    deliver_pending(sessions=ctx.sessions, transport=unset)
    assert {m.to for m in unset.sent} == {APPLICANT.email, OPS.email}
    for mail in unset.sent:  # the number only, no link
        assert first["number"] in mail.body and "http" not in mail.body and "/my-requests" not in mail.body

    monkeypatch.setenv("COMPUTELOOP_PUBLIC_URL", f"{PORTAL}/")
    second = svc.submit(sessions=ctx.sessions, actor=APPLYING, form={**MEDIUM, "requested_gpus": 12})
    linked = RecordingTransport()
    deliver_pending(sessions=ctx.sessions, transport=linked)
    by_to = {m.to: m for m in linked.sent}
    assert set(by_to) == {APPLICANT.email, OPS.email}
    assert f"{PORTAL}/my-requests?request={second['id']}&lang=" in by_to[APPLICANT.email].body
    assert f"{PORTAL}/approvals?request={second['id']}&lang=" in by_to[OPS.email].body  # the approver's page
    assert all(second["number"] in m.body for m in linked.sent)


def test_a_public_url_that_is_no_web_address_stops_the_run_naming_the_setting(ctx, monkeypatch):
    _queue(ctx, "approved:1", template="request_approved", params=APPROVED)
    monkeypatch.setenv("COMPUTELOOP_PUBLIC_URL", "portal.example.com")
    transport = RecordingTransport()
    with pytest.raises(InputError) as err:
        deliver_pending(sessions=ctx.sessions, transport=transport, now=T0)
    assert err.value.field == "COMPUTELOOP_PUBLIC_URL"
    [row] = _outbox(ctx)
    assert transport.sent == [] and (row.status, row.attempts) == ("pending", 0)
