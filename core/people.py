"""The people the portal has seen (table ``people``): who signed in, with the name and e-mail
their identity carried, so the pages can show "张伟" where the services record ``zhang.wei``.

Names come from the identity provider's claims (or, in the demo, from the demo's own people); the
portal never asks for them. A person is remembered (or their name refreshed) when they sign in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.clock import utc_now
from core.db.models import Base
from core.db.session import unit_of_work
from core.identity import Identity

NAME_MAX = 200


class PersonRow(Base):
    """One person the portal has seen."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def remember_in(s: Session, identity: Identity) -> None:
    """Record ``identity``'s name and e-mail in the caller's transaction (no-op without a name or
    when nothing changed)."""
    name = (identity.name or "").strip()[:NAME_MAX]
    if not identity.id or not name or name == identity.id:
        return
    row = s.get(PersonRow, identity.id)
    if row is None:
        s.add(PersonRow(id=identity.id, name=name, email=identity.email or None, seen_at=utc_now()))
    elif (row.name, row.email) != (name, identity.email or None):
        row.name, row.email, row.seen_at = name, identity.email or None, utc_now()


def remember(sessions: sessionmaker[Session], identity: Identity) -> None:
    """:func:`remember_in`, in a transaction of its own (at sign-in)."""
    with unit_of_work(sessions) as s:
        remember_in(s, identity)


def names(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Every remembered person's name, by id and by e-mail."""
    with unit_of_work(sessions) as s:
        rows = s.execute(select(PersonRow.id, PersonRow.name, PersonRow.email)).all()
    out: dict[str, str] = {}
    for pid, name, email in rows:
        out[pid] = name
        if email:
            out[email] = name
    return out
