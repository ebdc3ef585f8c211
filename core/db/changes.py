"""A cheap stamp of "has anything changed": the newest audit event id.

Every change the portal makes writes an :class:`~core.db.models.AuditEventRow` in the same
transaction (append-only), so a read cached under this stamp is read again as soon as anything
was changed. One primary-key lookup, whatever the size of the table.

What the stamp cannot see: a change committed by a concurrent transaction that took a smaller id
than one already committed (PostgreSQL sequences are not commit-ordered) — callers bound that
with a short time-to-live (``data/page_cache.yaml``).
"""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.datafiles import load_yaml
from core.db.models import AuditEventRow
from core.db.session import unit_of_work
from core.errors import InputError


def latest_change(sessions: sessionmaker[Session]) -> int:
    """The newest audit event id (0 when there is none)."""
    with unit_of_work(sessions) as s:
        return int(s.scalar(select(func.max(AuditEventRow.id))) or 0)


def cache_seconds(page: str) -> int:
    """How long ``page``'s cached reads may be reused at most (``data/page_cache.yaml``)."""
    raw = load_yaml("page_cache.yaml") or {}
    value = raw.get(f"{page}_ttl_s")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError("error.data_entry_invalid", field="page_cache.yaml", entry=f"{page}_ttl_s")
    return value


def cache_stamp(sessions: sessionmaker[Session], page: str, now: float | None = None) -> tuple[int, int]:
    """The part of a cached read's key that says whether it may be reused: the newest audit event
    id and the number of the current ``<page>_ttl_s`` time slot."""
    return latest_change(sessions), int((time.time() if now is None else now) // cache_seconds(page))
