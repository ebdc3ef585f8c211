"""The board's black list beside the reclaim candidates (Reclaim page).

The black list (``core/reports/build.py``: lowest utilisation, longest idle, largest gap between
requested and used) ranks projects and namespaces by the month's numbers; a reclaim candidate
(``core/reclaim/candidates.py``) is an inference service idle on every counted day. The two differ
on purpose, so each black-list namespace that is not a candidate says why
(:func:`core.reclaim.candidates.reasons_not_candidate`), plus ``awaiting_detection`` when the rule
would make it one but the month's detection has not run yet.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import unit_of_work
from core.identity import Identity, require
from core.org import load_org
from core.reclaim import common
from core.reclaim.judging import judge
from core.reclaim.persistence import ReclaimCandidateRow
from core.reclaim.warnings import month_bounds
from core.reports import service as reports
from core.reports.service import namespace_days

COMPANY = "company"
SECTIONS: tuple[str, ...] = ("lowest_util", "long_idle", "largest_gap")


def _board(sessions: sessionmaker[Session], actor: Identity, month: str) -> dict[str, Any] | None:
    """The board of ``month`` the actor reads: their province's for provincial ops when there is
    one, else the company's; the newest published version, else (ops) the newest draft."""
    scopes = [actor.province, COMPANY] if actor.role == "prov_ops" and actor.province else [COMPANY]
    rows = reports.list_reports(sessions=sessions, actor=actor, month=month)  # newest version first
    for scope in scopes:
        mine = [r for r in rows if r["scope"] == scope]
        chosen = next((r for r in mine if r["status"] == "published"), mine[0] if mine else None)
        if chosen is not None:
            return reports.get_report(sessions=sessions, actor=actor, report_id=chosen["id"])
    return None


def _candidates(s: Session, month: str, namespaces: list[str]) -> dict[str, ReclaimCandidateRow]:
    q = select(ReclaimCandidateRow).where(ReclaimCandidateRow.month == month,
                                          ReclaimCandidateRow.namespace.in_(namespaces or [""]))
    return {c.namespace: c for c in s.scalars(q)}


def black_list_reasons(*, sessions: sessionmaker[Session], actor: Identity, month: str) -> dict[str, Any]:
    """Each namespace of ``month``'s black list that ``actor`` may see, with its owner, whether it is
    a reclaim candidate and, if not, why.

    Returns ``{"month", "report": {"id", "scope", "version", "status"} | None, "rows": [...]}``; a
    row: ``entity`` (the board's entry, with its names), ``lists`` (the black lists it is on),
    ``namespace``, ``util`` (the entry's), the owner fields of
    :meth:`core.reclaim.ownership.Owned.as_dict`, ``candidate`` (``{"id", "status"}`` or None) and
    ``reasons`` (``[{"key", **params}]``, empty for a candidate). Scope: the warnings' rule.

    Raises:
        PermissionDenied: executives and the committee.
        InputError: ``month`` is not YYYY-MM.
    """
    require(actor, common.READ_ROLES, "read warnings and reclaim")
    first, last = month_bounds(month)
    report = _board(sessions, actor, month)
    if report is None:
        return {"month": month, "report": None, "rows": []}
    snap = report["snapshot"]
    entities = {e["id"]: e for e in snap.get("entities", [])}
    lists: dict[str, list[str]] = {}
    for section in SECTIONS:
        for key in (snap.get("black_list") or {}).get(section, []):
            lists.setdefault(key, []).append(section)
    namespaces = sorted({ns for key in lists for ns in entities.get(key, {}).get("namespaces", [])})
    org = load_org()
    with unit_of_work(sessions) as s:
        frame = namespace_days(s, namespaces, first, last)
        judged = judge(s, frame, month, namespaces, org=org)
        candidates = _candidates(s, month, namespaces)
    rows = []
    for key, sections in lists.items():
        entity = entities.get(key, {"id": key, "namespaces": []})
        for ns in entity.get("namespaces", []):
            j = judged.get(ns)
            if j is None:
                continue
            o = j.owned
            if not common.may_see(actor, org, o.department, o.owner, o.unit):
                continue
            c = candidates.get(ns)
            reasons = [] if c is not None else (j.reasons or [{"key": "awaiting_detection"}])
            rows.append({"entity": {k: entity.get(k) for k in ("id", "kind", "name_zh", "name_en")},
                         "lists": sections, "namespace": ns, "util": entity.get("util"), **o.as_dict(),
                         "candidate": {"id": c.id, "status": c.status} if c is not None else None,
                         "reasons": reasons})
    return {"month": month, "report": {k: report[k] for k in ("id", "scope", "version", "status")}, "rows": rows}
