"""The in-app inbox: a person reads and marks their own notices, rendered in their language."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import utc_now
from core.db.models import InboxRow
from core.db.session import unit_of_work
from core.errors import NotFound
from core.identity import Identity, PermissionDenied
from core.notifications import templates


def _as_dict(row: InboxRow, lang: str) -> dict[str, Any]:
    try:
        rendered = templates.render(row.template, lang, row.params)
        subject, body = rendered.subject, rendered.body
    except templates.TemplateError:
        # A notice queued by an older template version must still be listable.
        subject, body = row.template, ""
    return {"id": row.id, "template": row.template, "subject": subject, "body": body, "params": row.params,
            "created_at": row.created_at, "read_at": row.read_at, "unread": row.read_at is None}


def _own_row(session: Session, actor: Identity, inbox_id: int, action: str) -> InboxRow:
    row = session.get(InboxRow, inbox_id)
    if row is None:
        raise NotFound("error.not_found", what="notice", id=inbox_id)
    if row.recipient_id != actor.id:
        raise PermissionDenied("error.permission_denied", action=action, role=actor.role)
    return row


def list_inbox(*, sessions: sessionmaker[Session], actor: Identity, lang: str = "zh-CN", unread_only: bool = False,
               limit: int = 200) -> list[dict[str, Any]]:
    """The actor's own notices, newest first, with subject and body rendered in ``lang``.

    Only the recipient's rows are ever returned; there is no way to list someone else's.
    """
    with unit_of_work(sessions) as s:
        query = select(InboxRow).where(InboxRow.recipient_id == actor.id)
        if unread_only:
            query = query.where(InboxRow.read_at.is_(None))
        rows = s.scalars(query.order_by(InboxRow.created_at.desc(), InboxRow.id.desc()).limit(limit)).all()
        return [_as_dict(r, lang) for r in rows]


def unread_count(*, sessions: sessionmaker[Session], actor: Identity) -> int:
    """How many of the actor's notices are unread (for a badge in the sidebar)."""
    with unit_of_work(sessions) as s:
        return int(s.scalar(select(func.count()).select_from(InboxRow)
                            .where(InboxRow.recipient_id == actor.id, InboxRow.read_at.is_(None))) or 0)


def get_notice(*, sessions: sessionmaker[Session], actor: Identity, inbox_id: int, lang: str = "zh-CN") -> dict[str, Any]:
    """One notice of the actor, rendered in ``lang``.

    Raises:
        NotFound: no notice ``inbox_id``.
        PermissionDenied: the notice belongs to someone else.
    """
    with unit_of_work(sessions) as s:
        return _as_dict(_own_row(s, actor, inbox_id, "read another person's notices"), lang)


def mark_read(*, sessions: sessionmaker[Session], actor: Identity, inbox_id: int, lang: str = "zh-CN",
              now: datetime | None = None) -> dict[str, Any]:
    """Mark one of the actor's notices read (idempotent: the first read time stays) and return it.

    Raises:
        NotFound: no notice ``inbox_id``.
        PermissionDenied: the notice belongs to someone else.
    """
    with unit_of_work(sessions) as s:
        row = _own_row(s, actor, inbox_id, "mark another person's notices as read")
        if row.read_at is None:
            row.read_at = now or utc_now()
            s.flush()
        return _as_dict(row, lang)
