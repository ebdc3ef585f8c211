"""Delivering queued notices: claim, send, record — each notice once.

How a run goes, per notice (up to ``limit``):

1. **Claim** (short transaction). Select one pending row that is due — on PostgreSQL with
   ``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent runs never wait on or pick the same row;
   on SQLite a plain select. Then a *conditional* update takes a lease on it:
   ``attempts = attempts + 1, next_attempt_at = now + lease WHERE id = … AND status = 'pending'
   AND attempts = <seen> AND (next_attempt_at IS NULL OR next_attempt_at <= now)``. Only one
   run can win that update (PostgreSQL: the row lock; SQLite: its single writer), a loser sees
   0 rows and moves on. The in-app inbox copy was written when the notice was queued
   (:func:`~core.notifications.outbox.enqueue`); for a notice queued without one (by an older
   version) it is written in this same transaction (at most once: unique ``outbox_id`` with
   ``ON CONFLICT DO NOTHING``), so the portal shows the notice even if e-mail fails for good.
2. **Send** outside any transaction (no row lock or SQLite write lock is held over the
   network). The leased row is not due for anyone else until the lease ends.
3. **Record** (short transaction). Accepted by the server → ``status = 'sent'``, ``sent_at``;
   the update is conditional on ``status = 'pending'``, so only one run ever records it.
   Refused → ``last_error`` and ``next_attempt_at = now + 1, 2, 4, 8 … minutes`` (by attempt),
   or ``failed`` at ``max_attempts`` or when the server refused permanently (5xx).

Exactly once, and where it is only at least once: a notice is queued once (unique
``dedup_key``), claimed by one run at a time (lock/conditional update + lease), and marked
sent once. What no database can close is the gap between the SMTP server's ``250`` reply and
the commit of step 3 — a crash, a lost database connection, or a lease shorter than a send
(keep ``lease`` well above the transport timeout) there means the notice is sent again after
the lease ends; likewise when the server accepted the data but the connection dropped before
its reply reached us. SMTP has no idempotency key, so every resend carries the same
``Message-ID`` (derived from ``dedup_key``): receiving systems and mail clients can drop the
duplicate. The inbox copy is never duplicated.

Without an SMTP host (:class:`~core.notifications.transport.InboxOnlyTransport`) the run only
writes the inbox copies that are missing and leaves the e-mail rows ``pending`` with ``last_error`` saying why;
rows older than ``max_age`` when e-mail finally works are marked ``failed`` ("expired")
instead of being mailed days late — the person already has the in-app copy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.clock import utc_now
from core.db.locks import job_lock
from core.db.session import unit_of_work
from core.notifications import links, templates
from core.notifications.outbox import INBOX, OUTBOX, inbox_copy, insert_once
from core.notifications.transport import DeliveryError, InboxOnlyTransport, OutgoingMail, Transport, message_id_for

DEFAULT_LEASE = timedelta(minutes=10)
DEFAULT_MAX_AGE = timedelta(days=7)
LOCK = "notice_sender"


@dataclass
class DeliveryReport:
    """What one :func:`deliver_pending` run did (counts of notices)."""

    sent: int = 0
    retried: int = 0  # refused now, scheduled again
    failed: int = 0  # given up: max attempts, permanent refusal, expired, or unrenderable
    inbox_only: int = 0  # no SMTP configured: held in the in-app inbox, e-mail left pending
    # in-app copies this run wrote (notices queued by an older version; enqueue writes them now)
    inbox_written: int = 0
    skipped: int = 0  # lost a race to a concurrent run, or already recorded by one
    locked: bool = False  # another run held the sender's lock: this one did nothing
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"outbox_id", "attempts", "error", "final"}

    def to_dict(self) -> dict[str, Any]:
        """The report as plain values (for ``--json``)."""
        return asdict(self)


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed tries: 1, 2, 4, 8 … minutes."""
    return timedelta(minutes=2 ** max(attempts - 1, 0))


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without a zone; everything is stored in UTC.
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def deliver_pending(
    *,
    sessions: sessionmaker[Session],
    transport: Transport,
    now: datetime | None = None,
    limit: int = 100,
    max_attempts: int = 5,
    lease: timedelta = DEFAULT_LEASE,
    max_age: timedelta | None = DEFAULT_MAX_AGE,
) -> DeliveryReport:
    """Deliver the pending notices that are due, at most ``limit`` of them; safe to run concurrently.

    Args:
        sessions: session factory; each claim and each result is its own short transaction.
        transport: :class:`~core.notifications.transport.SmtpTransport`, ``InboxOnlyTransport``
            (no SMTP configured) or a fake.
        now: the time of the run (default: the clock, read at each step); tests pass it.
        limit: most notices handled in this run.
        max_attempts: tries before a notice is marked ``failed``.
        lease: how long a claimed notice is hidden from other runs while it is being sent;
            must exceed the transport timeout.
        max_age: notices older than this are marked ``failed`` rather than e-mailed late
            (None: no limit).

    Returns:
        A :class:`DeliveryReport`.

    Raises:
        InputError: ``COMPUTELOOP_PUBLIC_URL`` (the base of the links to requests in e-mails) is
            set but not an http(s) URL; nothing is claimed or sent.

    Errors from the transport other than :class:`DeliveryError` (bugs) propagate; the notice
    being sent stays leased and is retried after ``lease``.

    One run at a time: the run holds the lock ``notice_sender`` (:func:`core.db.locks.job_lock`);
    a second run that finds it held returns at once with ``locked`` set (the claims and leases
    below still make a run whose lock was lost, or a sender of an older version, safe).
    """
    if limit < 1 or max_attempts < 1:
        raise ValueError("limit and max_attempts must be at least 1")
    report = DeliveryReport()
    with job_lock(sessions, LOCK) as held:
        if not held:
            report.locked = True  # another run is delivering: it sends what is due, this one stops
            return report
        _deliver(sessions, transport, now, limit, max_attempts, lease, max_age, report)
    return report


def _deliver(sessions: sessionmaker[Session], transport: Transport, now: datetime | None, limit: int,
             max_attempts: int, lease: timedelta, max_age: timedelta | None, report: DeliveryReport) -> None:
    fixed = _utc(now)
    clock: Callable[[], datetime] = (lambda: fixed) if fixed else utc_now  # type: ignore[assignment,return-value]
    from_addr = getattr(transport, "sender", "")
    if not getattr(transport, "delivers_email", True):
        _inbox_only(sessions, clock(), limit, report)
        return
    base_url = links.public_url()  # read once per run; a bad value stops the run before any claim
    for _ in range(limit):
        claimed = _claim_one(sessions, clock(), lease, max_attempts, max_age, from_addr, base_url, report)
        if claimed is None:
            break
        if claimed is False:
            continue
        row_id, attempts, mail = claimed
        try:
            transport.send(mail)
        except DeliveryError as exc:
            _record_failure(sessions, clock(), row_id, attempts, max_attempts, exc, report)
        else:
            _record_success(sessions, clock(), row_id, report)


def _due(at: datetime):
    return and_(OUTBOX.c.status == "pending",
                or_(OUTBOX.c.next_attempt_at.is_(None), OUTBOX.c.next_attempt_at <= at))


def _claim_one(sessions, at: datetime, lease: timedelta, max_attempts: int, max_age: timedelta | None,
               from_addr: str, base_url: str, report: DeliveryReport):
    """Claim one due notice: (id, attempts, mail), False when it was settled without sending, None when none is due."""
    with unit_of_work(sessions) as s:
        row = s.execute(
            select(OUTBOX).where(_due(at)).order_by(OUTBOX.c.id).limit(1).with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        attempts = row.attempts + 1
        won = s.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == row.id, OUTBOX.c.attempts == row.attempts, _due(at))
            .values(attempts=attempts, next_attempt_at=at + lease)
        ).rowcount == 1
        if not won:  # SQLite: another run claimed it between our select and update
            report.skipped += 1
            return False
        if insert_once(s, INBOX, inbox_copy(row, at), "outbox_id"):
            report.inbox_written += 1
        give_up = ""
        if max_age is not None and _utc(row.created_at) < at - max_age:
            give_up = f"expired: not e-mailed within {max_age} (the in-app copy was delivered)"
        elif row.attempts >= max_attempts:  # earlier claims crashed before recording a result
            give_up = f"gave up after {row.attempts} attempts"
        else:
            try:
                rendered = templates.render(row.template, row.lang, row.params, base_url=base_url)
            except templates.TemplateError as exc:
                give_up = f"cannot render: {exc}"
        if give_up:
            s.execute(update(OUTBOX).where(OUTBOX.c.id == row.id)
                      .values(status="failed", next_attempt_at=None, last_error=give_up))
            report.failed += 1
            report.errors.append({"outbox_id": row.id, "attempts": attempts, "error": give_up, "final": True})
            return False
        mail = OutgoingMail(to=row.recipient_email, subject=rendered.subject, body=rendered.body,
                            message_id=message_id_for(row.dedup_key, from_addr))
        return row.id, attempts, mail


def _record_success(sessions, at: datetime, row_id: int, report: DeliveryReport) -> None:
    with unit_of_work(sessions) as s:
        done = s.execute(
            update(OUTBOX).where(OUTBOX.c.id == row_id, OUTBOX.c.status == "pending")
            .values(status="sent", sent_at=at, next_attempt_at=None, last_error="")
        ).rowcount == 1
    if done:
        report.sent += 1
    else:  # a concurrent run whose lease had expired recorded it first
        report.skipped += 1


def _record_failure(sessions, at: datetime, row_id: int, attempts: int, max_attempts: int, exc: DeliveryError,
                    report: DeliveryReport) -> None:
    final = exc.permanent or attempts >= max_attempts
    error = str(exc)[:2000]
    values: dict[str, Any] = {"last_error": error}
    if final:
        values.update(status="failed", next_attempt_at=None)
    else:
        values.update(next_attempt_at=at + backoff(attempts))
    with unit_of_work(sessions) as s:
        # Fenced by the attempt count: only the current claim holder records its result.
        recorded = s.execute(
            update(OUTBOX).where(OUTBOX.c.id == row_id, OUTBOX.c.status == "pending", OUTBOX.c.attempts == attempts)
            .values(**values)
        ).rowcount == 1
    if not recorded:
        report.skipped += 1
        return
    if final:
        report.failed += 1
    else:
        report.retried += 1
    report.errors.append({"outbox_id": row_id, "attempts": attempts, "error": error, "final": final})


def _inbox_only(sessions, at: datetime, limit: int, report: DeliveryReport) -> None:
    """No SMTP: the pending notices not yet marked so are held in the inbox only (their copy
    written if it is missing, by an older version's queueing); the e-mail rows stay pending with
    ``last_error`` saying why."""
    with unit_of_work(sessions) as s:
        rows = s.execute(
            select(OUTBOX).where(OUTBOX.c.status == "pending", OUTBOX.c.last_error != InboxOnlyTransport.NO_SMTP)
            .order_by(OUTBOX.c.id).limit(limit).with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            if insert_once(s, INBOX, inbox_copy(row, at), "outbox_id"):
                report.inbox_written += 1
            report.inbox_only += 1
            s.execute(update(OUTBOX).where(OUTBOX.c.id == row.id, OUTBOX.c.status == "pending")
                      .values(last_error=InboxOnlyTransport.NO_SMTP))
