"""Queueing notices in the transactional outbox.

A service that changes something calls :func:`enqueue` with its own session, inside its own
transaction: the change and its notice commit together or not at all, and the sender
(:mod:`core.notifications.sender`) only ever sees committed notices. The in-app copy is written in
the same transaction, so the person sees the notice in the portal's inbox as soon as the change is
made, whenever (and whether) the e-mail goes out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import utc_now
from core.db.models import InboxRow, OutboxRow
from core.i18n import normalize_lang
from core.notifications import templates

OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
INBOX: Table = InboxRow.__table__  # type: ignore[assignment]


def inbox_copy(row: Any, at: datetime) -> dict[str, Any]:
    """The in-app copy of the queued notice ``row`` (an outbox row), delivered at ``at``."""
    return {"outbox_id": row.id, "recipient_id": row.recipient_id, "template": row.template,
            "params": row.params, "created_at": at, "read_at": None}


def insert_once(session: Session, table: Table, values: Mapping[str, Any], unique_column: str) -> bool:
    """Insert ``values`` unless a row with the same ``unique_column`` exists; True when inserted.

    PostgreSQL and SQLite use ``INSERT … ON CONFLICT (col) DO NOTHING``: atomic, no savepoint,
    and on PostgreSQL a concurrent uncommitted insert of the same key makes this wait for it
    and then do nothing (or insert, if that transaction rolled back). Other databases use a
    SAVEPOINT and the unique index. (A SAVEPOINT is avoided on SQLite on purpose: with
    pysqlite's legacy transaction handling, a savepoint opened as the first statement of a
    transaction commits on release, which would break the caller's atomicity.)
    """
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = (dialect_insert(table).values(**values).on_conflict_do_nothing(index_elements=[unique_column])
                .returning(table.c.id))
        # RETURNING, not rowcount: with implicit RETURNING the driver's rowcount is not reliable.
        return session.execute(stmt).first() is not None
    if session.execute(select(table.c.id).where(table.c[unique_column] == values[unique_column])).first():
        return False
    try:
        with session.begin_nested():
            session.execute(insert(table).values(**values))
    except IntegrityError:
        return False
    return True


def enqueue(
    session: Session,
    *,
    dedup_key: str,
    recipient_id: str,
    recipient_email: str,
    lang: str,
    template: str,
    params: Mapping[str, Any],
    now: datetime | None = None,
) -> bool:
    """Queue one notice, and write its in-app copy, in the caller's transaction; False (no error)
    when ``dedup_key`` is already queued.

    Args:
        session: the caller's session; nothing is committed here.
        dedup_key: identifies the notice, e.g. ``"request:42:approved:zhang.wei"``; the same key
            is never queued (nor sent) twice. At most 200 characters.
        recipient_id: identity id of the person; only they can read the in-app copy.
        recipient_email: where the e-mail goes.
        lang: the recipient's language (any locale spelling; stored as ``zh-CN`` or ``en``).
        template: one of :data:`core.notifications.templates.TEMPLATES`.
        params: the template's named parameters (JSON values).
        now: the queueing time (default: now, UTC).

    Raises:
        TemplateError: unknown template or missing/mistyped parameters (a programming error;
            raised before anything is written, so the caller's change fails with it).
        ValueError: an empty or over-long dedup key, or no e-mail address.
    """
    if not dedup_key or len(dedup_key) > 200:
        raise ValueError("dedup_key must have 1 to 200 characters")
    if "@" not in recipient_email:
        raise ValueError(f"notice {dedup_key!r} has no e-mail address for {recipient_id!r}")
    templates.check(template, params)
    queued = insert_once(session, OUTBOX, {
        "dedup_key": dedup_key,
        "recipient_id": recipient_id,
        "recipient_email": recipient_email.strip(),
        "lang": normalize_lang(lang),
        "template": template,
        "params": dict(params),
        "created_at": now or utc_now(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": None,
        "sent_at": None,
        "last_error": "",
    }, "dedup_key")
    if queued:
        row = session.execute(select(OUTBOX).where(OUTBOX.c.dedup_key == dedup_key)).one()
        insert_once(session, INBOX, inbox_copy(row, row.created_at), "outbox_id")
    return queued
