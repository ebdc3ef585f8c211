"""Helpers shared by the warning and reclaim services: clock, audit, scope, owners."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from core.clock import utc_now
from core.db.models import AuditEventRow
from core.identity import Identity, PermissionDenied, load_personas
from core.lifecycle import services as svc
from core.lifecycle.persistence import AllocationRow, RequestRow
from core.org import Org

# Roles that read warnings and reclaim (applicants and department heads: their department only).
READ_ROLES = frozenset({"applicant", "dept_head", "prov_ops", "hq_ops", "admin"})
SYSTEM = svc.SYSTEM


def now() -> datetime:
    """The current time, UTC (one place, so tests may patch it)."""
    return utc_now()


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return svc._aware(value)


def iso(value: date | datetime | None) -> str | None:
    """ISO text of a date or datetime, or None."""
    if value is None:
        return None
    return aware(value).isoformat() if isinstance(value, datetime) else value.isoformat()


def audit(s: Session, actor: Identity, action: str, subject: str, reason: str = "", before: dict | None = None,
          after: dict | None = None, at: datetime | None = None) -> None:
    """Append an audit event in the caller's transaction."""
    s.add(AuditEventRow(at=at or now(), actor=actor.id, action=action, subject=subject, reason=reason or "",
                        before=before, after=after))


def department_scope(actor: Identity, org: Org, department_col: Any, owner_col: Any | None = None,
                     unit_col: Any | None = None) -> ColumnElement:
    """The SQL condition of rows ``actor`` may read (raises for other roles) — the requests' rule:
    HQ ops and admins all; provincial ops their province's (``unit_col``, when the rows carry one)
    and their province's departments'; applicants and department heads their department's and
    their own."""
    if actor.role in ("hq_ops", "admin", "system"):
        return true()
    if actor.role == "prov_ops":
        cond = department_col.in_(sorted(svc._depts_of_unit(actor.province, org)) or [""])
        return or_(cond, unit_col == actor.province) if unit_col is not None else cond
    if actor.role in ("applicant", "dept_head"):
        dept = svc._dept_of(actor, org)
        # rows of no department (legacy usage nobody owns) belong to no applicant's department
        cond = department_col == dept if dept else false()
        return or_(cond, owner_col == actor.id) if owner_col is not None else cond
    raise PermissionDenied("error.permission_denied", action="read warnings and reclaim", role=actor.role)


def may_see(actor: Identity, org: Org, department: str, owner: str = "", unit: str = "") -> bool:
    """True when ``actor`` may read a row of ``department`` owned by ``owner`` in ``unit`` (the
    same rule as :func:`department_scope`)."""
    if actor.role in ("hq_ops", "admin", "system") or (owner and owner == actor.id):
        return True
    if actor.role == "prov_ops":
        return department in svc._depts_of_unit(actor.province, org) or (bool(unit) and unit == actor.province)
    if actor.role in ("applicant", "dept_head"):
        return bool(department) and department == svc._dept_of(actor, org)
    return False


def email_of(person_id: str, fallback: str = "") -> str:
    """The e-mail address of a persona (or the stored fallback)."""
    for p in load_personas():
        if p.id == person_id:
            return p.email
    return fallback


def by_namespace(s: Session) -> dict[str, tuple[AllocationRow, RequestRow]]:
    """Every allocation with a namespace and its request, by namespace (the newest wins)."""
    rows = s.execute(select(AllocationRow, RequestRow).join(RequestRow, RequestRow.id == AllocationRow.request_id)
                     .where(AllocationRow.namespace.is_not(None)).order_by(AllocationRow.id))
    return {a.namespace: (a, r) for a, r in rows}
