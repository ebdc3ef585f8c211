"""The in-app inbox: a person reads and marks their own notices, rendered in their language.

Each notice comes with its kind (:data:`core.notifications.templates.KINDS`, the inbox filters by
it), the request it is about (``request_id``, the inbox links to it) and, for an "awaiting your
approval" notice, whether that action is still needed (:mod:`core.notifications.actions`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import utc_now
from core.db.models import InboxRow
from core.db.session import unit_of_work
from core.errors import InputError, NotFound
from core.identity import Identity, PermissionDenied
from core.notifications import templates
from core.notifications.actions import action_states
from core.notifications.links import request_id_of


def _as_dict(row: InboxRow, lang: str, action: dict[str, Any] | None) -> dict[str, Any]:
    try:
        rendered = templates.render(row.template, lang, row.params)
        subject, body = rendered.subject, rendered.body
    except templates.TemplateError:
        # A notice queued by an older template version must still be listable.
        subject, body = row.template, ""
    return {"id": row.id, "template": row.template, "kind": templates.kind_of(row.template), "subject": subject,
            "body": body, "params": row.params, "request_id": request_id_of(row.params or {}),
            "number": (row.params or {}).get("number") or "", "action": action,
            "created_at": row.created_at, "read_at": row.read_at, "unread": row.read_at is None}


def _views(s: Session, rows: list[InboxRow], lang: str) -> list[dict[str, Any]]:
    actions = action_states(s, [(r.template, r.params or {}) for r in rows])
    return [_as_dict(r, lang, a) for r, a in zip(rows, actions)]


def _of_kind(query, kind: str | None):  # noqa: ANN001, ANN202 - a select of InboxRow, narrowed
    """``query`` narrowed to notices of ``kind`` (None: every kind).

    Raises:
        InputError: an unknown kind (field ``kind``).
    """
    if kind is None:
        return query
    if kind == templates.OTHER_KIND:
        return query.where(InboxRow.template.not_in(sorted(templates.KIND_OF)))
    if kind not in templates.KINDS:
        raise InputError("error.choice", field="kind", value=str(kind)[:40],
                         choices=", ".join([*templates.KINDS, templates.OTHER_KIND]))
    return query.where(InboxRow.template.in_(templates.KINDS[kind]))


def _own_row(session: Session, actor: Identity, inbox_id: int, action: str) -> InboxRow:
    row = session.get(InboxRow, inbox_id)
    if row is None:
        raise NotFound("error.not_found", what="notice", id=inbox_id)
    if row.recipient_id != actor.id:
        raise PermissionDenied("error.permission_denied", action=action, role=actor.role)
    return row


def list_inbox(*, sessions: sessionmaker[Session], actor: Identity, lang: str = "zh-CN", unread_only: bool = False,
               kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The actor's own notices, newest first, with subject and body rendered in ``lang``.

    Only the recipient's rows are ever returned; there is no way to list someone else's.

    Args:
        unread_only: only notices not yet read.
        kind: only notices of this kind (a key of :data:`~core.notifications.templates.KINDS`,
            or ``"other"``); None: every kind.
        limit: most notices returned.

    Each notice: ``id``, ``template``, ``kind``, ``subject``, ``body``, ``params``, ``request_id``
    (None unless it is about a request), ``number``, ``action`` (None unless it asks for an
    approval; else ``{"needed": bool, ...}``, see :func:`core.notifications.actions.action_states`),
    ``created_at``, ``read_at``, ``unread``.

    Raises:
        InputError: an unknown ``kind``.
    """
    with unit_of_work(sessions) as s:
        query = _of_kind(select(InboxRow).where(InboxRow.recipient_id == actor.id), kind)
        if unread_only:
            query = query.where(InboxRow.read_at.is_(None))
        rows = list(s.scalars(query.order_by(InboxRow.created_at.desc(), InboxRow.id.desc()).limit(limit)))
        return _views(s, rows, lang)


def kind_counts(*, sessions: sessionmaker[Session], actor: Identity) -> dict[str, dict[str, int]]:
    """How many of the actor's notices there are of each kind they have: ``{kind: {"total", "unread"}}``."""
    with unit_of_work(sessions) as s:
        rows = s.execute(select(InboxRow.template, InboxRow.read_at.is_(None), func.count())
                         .where(InboxRow.recipient_id == actor.id)
                         .group_by(InboxRow.template, InboxRow.read_at.is_(None))).all()
    out: dict[str, dict[str, int]] = {}
    for template, unread, count in rows:
        counts = out.setdefault(templates.kind_of(template), {"total": 0, "unread": 0})
        counts["total"] += count
        counts["unread"] += count if unread else 0
    return out


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
        return _views(s, [_own_row(s, actor, inbox_id, "read another person's notices")], lang)[0]


def mark_read(*, sessions: sessionmaker[Session], actor: Identity, inbox_id: int, lang: str = "zh-CN",
              now: datetime | None = None) -> dict[str, Any]:
    """Mark one of the actor's notices read (idempotent: the first read time stays) and return it.

    Opening a notice in the inbox calls this: one transaction per opening.

    Raises:
        NotFound: no notice ``inbox_id``.
        PermissionDenied: the notice belongs to someone else.
    """
    with unit_of_work(sessions) as s:
        row = _own_row(s, actor, inbox_id, "mark another person's notices as read")
        if row.read_at is None:
            row.read_at = now or utc_now()
            s.flush()
        return _views(s, [row], lang)[0]


def mark_all_read(*, sessions: sessionmaker[Session], actor: Identity, kind: str | None = None,
                  now: datetime | None = None) -> int:
    """Mark every unread notice of the actor (of ``kind``, when given) read in one transaction; how many.

    Raises:
        InputError: an unknown ``kind``.
    """
    with unit_of_work(sessions) as s:
        query = _of_kind(select(InboxRow).where(InboxRow.recipient_id == actor.id, InboxRow.read_at.is_(None)), kind)
        rows = list(s.scalars(query))
        at = now or utc_now()
        for row in rows:
            row.read_at = at
        s.flush()
        return len(rows)
