"""Services of the monthly report: preview, draft, publish, correct, read.

Permissions (checked here, whatever the caller): ops (provincial ops for their own province's
scope only, HQ ops and admins for any scope) build, preview, publish, correct and read drafts;
everyone else — executives and every employee — reads published reports only. A published
report is an immutable snapshot: publishing a published report, or changing one in any way, is
refused (the ORM hook and the database trigger of :mod:`core.reports.persistence` refuse it as
well). A correction is a new version naming the one it supersedes and the reason; old versions
stay readable.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import aware as _aware, utc_now as _now
from core.datafiles import load_yaml
from core.db.locks import xact_lock
from core.db.models import AuditEventRow
from core.db.session import unit_of_work
from core.errors import ComputeLoopError, InputError, NotFound
from core.estimation.catalog import load_catalog
from core.identity import OPS_ROLES, Identity, PermissionDenied, load_personas, notice_lang, require
from core.lifecycle.persistence import AllocationRow, RequestRow
from core.metrics.cpu import read_cpu_days
from core.metrics.persistence import GpuDailyRollupRow, read_days
from core.metrics.schema import ROLLUP_SCHEMA
from core.notifications.outbox import enqueue
from core.org import Org, load_org
from core.reports.build import COMPANY, build_report, check_scope, parse_month, scope_clusters, shift_month
from core.reports.deidentify import deidentify
from core.reports.persistence import PublishedReportImmutable, ReportRow
from core.reports.results import results_of
from core.reports.sql_summaries import month_summaries

BUILD_ROLES = OPS_ROLES | {"system"}
PUBLISH_LOCK = "report_publish"
# The monthly job acts as this identity (python -m core report monthly).
REPORT_JOB = Identity(id="system:report-monthly", name="ComputeLoop", email="", role="system")


def settings() -> dict[str, Any]:
    """data/report_settings.yaml, with ``min_coverage_for_trends``: the warnings' minimum data
    coverage (data/warning_thresholds.yaml ``min_coverage``), below which a month is not compared."""
    from core.reclaim.policy import load_thresholds

    return {**dict(load_yaml("report_settings.yaml") or {}), "min_coverage_for_trends": load_thresholds().min_coverage}


def prices() -> dict[str, tuple[float, bool]]:
    """GPU model → (CNY per GPU-hour, placeholder?) from the catalog."""
    return {g.id: (float(g.price_cny_per_gpu_hour), bool(g.price_is_placeholder)) for g in load_catalog().gpus}


def _is_ops(actor: Identity) -> bool:
    return actor.role in BUILD_ROLES


def _may_read_draft(actor: Identity, scope: str) -> bool:
    """Drafts are for ops of their scope: HQ ops, admins and the job any scope, provincial ops
    their own province's only (published versions are for everyone)."""
    if actor.role == "prov_ops":
        return bool(actor.province) and scope == actor.province
    return _is_ops(actor)


def _check_scope_for(actor: Identity, scope: str, org: Org) -> None:
    check_scope(org, scope)
    if actor.role == "prov_ops" and scope != actor.province:
        raise PermissionDenied("error.permission_denied", action="build a report for another scope", role=actor.role)


# --------------------------------------------------------------------------- inputs from the database


def _in_scope_unit(unit: str, scope: str) -> bool:
    return scope == COMPANY or unit == scope


def warnings_of_month(session: Session, month: str, scope: str) -> dict[str, Any]:
    """The month's warnings (预警) for the report: resource, level, status, figures and coverage."""
    from core.reclaim.persistence import WarningRow

    rows = session.scalars(select(WarningRow).where(WarningRow.month == month).order_by(WarningRow.level, WarningRow.resource))
    items = [{"resource": w.resource, "level": w.level, "status": w.status, "owner": w.owner,
              "department": w.department, "pool": w.pool_id, "util": w.util, "mem": w.mem,
              "gpu_hours": w.gpu_hours, "coverage": w.coverage}
             for w in rows if _in_scope_unit(w.unit, scope)]
    return {"available": True, "items": items}


def reclaims_of_month(session: Session, month: str, scope: str) -> dict[str, Any]:
    """The month's reclaim records (回收清单): what was reclaimed, why, from whom, voluntary or not."""
    from core.reclaim.persistence import ReclaimRecordRow

    first, last = parse_month(month)
    org = load_org()
    rows = session.scalars(select(ReclaimRecordRow).order_by(ReclaimRecordRow.created_at, ReclaimRecordRow.id))
    items = []
    for r in rows:
        created = r.created_at.date()
        dept = org.departments.get(r.department)
        if not first <= created <= last or not _in_scope_unit(dept.unit if dept else "", scope):
            continue
        items.append({"kind": r.kind, "status": r.status, "owner": r.owner, "department": r.department,
                      "pool": r.pool_id, "gpus": r.release_gpus or r.gpus, "reason": r.reason,
                      "voluntary": r.voluntary, "forced": r.forced, "created_on": created.isoformat()})
    return {"available": True, "items": items}


def summaries(session: Session, months: Iterable[str], scope: str, org: Org) -> dict[str, dict | None]:
    """:func:`~core.reports.build.month_summary` of each month (None where there is no data),
    summed in the database by :func:`core.reports.sql_summaries.month_summaries` (a few hundred
    grouped rows for the span of ``months`` instead of every rollup row of it)."""
    clusters = scope_clusters(org, scope)
    gpus_total = sum(p.gpus for p in org.pools.values() if p.cluster in clusters)
    return month_summaries(session, months, clusters=clusters, prices=prices(), gpus_total=gpus_total)


def namespace_days(session: Session, namespaces: Iterable[str], first: date, last: date) -> pl.DataFrame:
    """Stored rollup rows of ``namespaces`` with ``first <= day <= last`` (one query; empty when none)."""
    names = sorted(set(namespaces))
    if not names or first > last:
        return pl.DataFrame(schema=ROLLUP_SCHEMA)
    cols = [getattr(GpuDailyRollupRow, c) for c in ROLLUP_SCHEMA]
    result = session.execute(select(*cols).where(GpuDailyRollupRow.day.between(first, last),
                                                 GpuDailyRollupRow.namespace.in_(names)))
    return pl.DataFrame([tuple(r) for r in result], schema=ROLLUP_SCHEMA, orient="row")


def _allocations(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(select(AllocationRow, RequestRow).join(RequestRow, RequestRow.id == AllocationRow.request_id))
    return [{"request_id": r.id, "pool": a.pool_id, "gpus": a.gpus, "requested_gpus": r.requested_gpus,
             "status": a.status, "namespace": a.namespace, "starts_on": a.starts_on, "ends_on": a.ends_on,
             "released_on": _aware(a.released_at).date() if a.released_at else None, "project": r.project,
             "department": r.department, "owner": r.created_by, "demand_type": r.demand_type, "number": r.number}
            for a, r in rows]


def _requests(session: Session) -> list[dict[str, Any]]:
    return [{"id": r.id, "number": r.number, "pool": r.pool_id, "project": r.project,
             "submitted_at": _aware(r.submitted_at), "approved_at": _aware(r.approved_at or r.adjusted_at),
             "active_at": _aware(r.active_at), "provisioning_failed_at": _aware(r.provisioning_failed_at)}
            for r in session.scalars(select(RequestRow).where(RequestRow.submitted_at.is_not(None)))]


def node_pools() -> dict[str, str]:
    """Hostname → pool of the GPU nodes the offline inventory knows (the demo fleet's manifest, or
    the nodes made up from data/org.yaml); never a live cluster call."""
    from core.metrics.sources import inventory_nodes, metrics_source

    return {n.name: n.pool for n in inventory_nodes(metrics_source()) if n.pool}


def provision_failures(session: Session, first: date, last: date) -> list[dict[str, Any]]:
    """Every failed provisioning run between ``first`` and ``last`` (UTC days, inclusive), from the
    audit trail: ``allocation.provision_failed`` (a step failed; one event per attempt) and the
    transitions of runs that died and were marked failed (``provisioning_interrupted``)."""
    start = datetime.combine(first, datetime.min.time(), tzinfo=timezone.utc)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    rows = session.scalars(select(AuditEventRow).where(
        AuditEventRow.at >= start - timedelta(days=1), AuditEventRow.at < end + timedelta(days=1),
        (AuditEventRow.action == "allocation.provision_failed")
        | ((AuditEventRow.action == "request.transition") & (AuditEventRow.reason == "provisioning_interrupted")),
    ).order_by(AuditEventRow.at, AuditEventRow.id))
    out = []
    for e in rows:
        at = _aware(e.at)
        kind, _, ident = e.subject.partition(":")
        if not start <= at < end or kind != "request" or not ident.isdigit():
            continue
        failed = e.action == "allocation.provision_failed"
        after = e.after or {}
        out.append({"request_id": int(ident), "at": at, "cause": "failed" if failed else "interrupted",
                    "step": (after.get("step") or e.reason) if failed else "interrupted",
                    "attempt": after.get("attempt") if failed else None})
    return out


def history_months(month: str) -> list[str]:
    """The months a report of ``month`` compares with: the ``trend_months`` before it and the same
    month a year earlier."""
    months = [shift_month(month, -k) for k in range(1, int(settings().get("trend_months", 6)) + 1)]
    return [*months, shift_month(month, -12)]


def compute(session: Session, *, month: str, scope: str, focus: dict | None = None,
            now: datetime | None = None, history: Mapping[str, dict | None] | None = None) -> dict[str, Any]:
    """The report of ``month`` and ``scope`` from the database (no permission check: callers check).
    ``history``: the summaries of :func:`history_months` when the caller has them already (they do
    not depend on ``focus``); else they are summed here."""
    org = load_org()
    first, last = parse_month(month)
    conf = settings()
    history = history if history is not None else summaries(session, history_months(month), scope, org)
    people = {p.id: p.name for p in load_personas()}
    allocations = _allocations(session)
    training = [a for a in allocations if a["demand_type"] == "training" and a["namespace"] and a["starts_on"]
                and a["starts_on"] <= last and (a["released_on"] is None or a["released_on"] >= first)]
    return build_report(
        month=month, scope=scope, rollups=read_days(session, first, last), allocations=allocations,
        requests=_requests(session), org=org, prices=prices(), settings=conf,
        history=dict(history), people=people,
        warnings=warnings_of_month(session, month, scope), reclaims=reclaims_of_month(session, month, scope),
        built_at=now or _now(), focus=focus, node_pools=node_pools(),
        provision_failures=provision_failures(session, first, last),
        training_results=results_of(session, [a["request_id"] for a in training]),
        job_history=namespace_days(session, {a["namespace"] for a in training},
                                   min((a["starts_on"] for a in training), default=first), first - timedelta(days=1)),
        cpu_rollups=read_cpu_days(session, first, last))


# --------------------------------------------------------------------------- views


def _view(row: ReportRow, *, with_snapshot: bool = True) -> dict[str, Any]:
    out = {"id": row.id, "month": row.month, "scope": row.scope, "version": row.version, "status": row.status,
           "deidentified": row.deidentified, "coverage": row.coverage, "built_at": _aware(row.built_at),
           "built_by": row.built_by, "published_at": _aware(row.published_at), "published_by": row.published_by,
           "correction_reason": row.correction_reason or "", "supersedes": row.supersedes}
    if with_snapshot:
        out["snapshot"] = row.snapshot
    return out


def _audit(s: Session, actor: Identity, action: str, row: ReportRow, reason: str = "", after: dict | None = None) -> None:
    s.add(AuditEventRow(at=_now(), actor=actor.id, action=action, subject=f"report:{row.id}", reason=reason,
                        before=None, after=after or {"month": row.month, "scope": row.scope, "version": row.version,
                                                     "status": row.status}))


def _next_version(s: Session, month: str, scope: str) -> int:
    return int(s.scalar(select(func.max(ReportRow.version)).where(ReportRow.month == month, ReportRow.scope == scope)) or 0) + 1


def _draft_of(s: Session, month: str, scope: str) -> ReportRow | None:
    return s.scalars(select(ReportRow).where(ReportRow.month == month, ReportRow.scope == scope,
                                             ReportRow.status == "draft")).first()


def _ops_recipients(scope: str) -> list[Identity]:
    return [p for p in load_personas() if p.role in ("hq_ops", "admin") or (p.role == "prov_ops" and p.province == scope)]


# --------------------------------------------------------------------------- services


def preview(*, sessions: sessionmaker[Session], actor: Identity, month: str, scope: str = COMPANY,
            focus: dict | None = None) -> dict[str, Any]:
    """The report as it would be built now (nothing saved). Ops only.

    Raises:
        PermissionDenied: not ops, or provincial ops asking for another scope.
        InputError: bad month (field "month") or scope (field "scope").
    """
    require(actor, BUILD_ROLES, "preview a report")
    parse_month(month)
    _check_scope_for(actor, scope, load_org())
    with unit_of_work(sessions) as s:
        return compute(s, month=month, scope=scope, focus=focus)


def build_draft(*, sessions: sessionmaker[Session], actor: Identity, month: str, scope: str = COMPANY,
                deidentify_on_publish: bool | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Build (or rebuild) the draft of ``month`` and ``scope`` from current data and notify ops.

    The draft takes the next version number; an existing draft of the month and scope is rebuilt
    in place. Returns the draft's view (with its snapshot).

    Raises:
        PermissionDenied: not ops, or provincial ops asking for another scope.
        InputError: bad month or scope.
    """
    require(actor, BUILD_ROLES, "build a report")
    parse_month(month)
    _check_scope_for(actor, scope, load_org())
    now = now or _now()
    if deidentify_on_publish is None:
        deidentify_on_publish = bool(settings().get("deidentify_by_default", True))
    with unit_of_work(sessions) as s:
        report = compute(s, month=month, scope=scope, now=now)
        row = _draft_of(s, month, scope)
        if row is None:
            row = ReportRow(month=month, scope=scope, version=_next_version(s, month, scope), status="draft",
                            correction_reason="", supersedes=None)
            s.add(row)
        row.snapshot, row.coverage = report, report["coverage"]["metrics"]
        row.deidentified, row.built_at, row.built_by = bool(deidentify_on_publish), now, actor.id
        s.flush()
        _audit(s, actor, "report.draft", row)
        for p in _ops_recipients(scope):
            if p.email:
                enqueue(s, dedup_key=f"report:{row.id}:draft_ready:{p.id}", recipient_id=p.id, recipient_email=p.email,
                        lang=notice_lang(p.id), template="report_draft_ready",
                        params={"month": month, "scope": scope, "version": row.version, "report_id": row.id}, now=now)
        return _view(row)


def publish(*, sessions: sessionmaker[Session], actor: Identity, report_id: int,
            deidentified: bool | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Publish a draft: from now on an immutable snapshot everyone can read.

    Args:
        deidentified: mask people's names and show projects by code (default: the draft's choice).

    Raises:
        PermissionDenied: not ops (or provincial ops of another scope).
        NotFound: no such report.
        PublishedReportImmutable: the report is already published (also the loser of two
            publishers at once: publishing takes the lock ``report_publish``).
    """
    require(actor, OPS_ROLES, "publish a report")
    with unit_of_work(sessions) as s:
        # two publishers at once take turns: the second reads the row after the first committed
        # and is told it is published (never a constraint error from the database's guard)
        xact_lock(s, PUBLISH_LOCK)
        row = s.get(ReportRow, report_id, with_for_update=True, populate_existing=True)
        if row is None:
            raise NotFound("error.not_found", what="report", id=report_id)
        _check_scope_for(actor, row.scope, load_org())
        if row.status != "draft":
            raise PublishedReportImmutable("reports.immutable", id=report_id)
        masked = row.deidentified if deidentified is None else bool(deidentified)
        snapshot = dict(row.snapshot)
        snapshot["version"] = row.version
        row.snapshot = deidentify(snapshot) if masked else snapshot
        row.deidentified = masked
        row.status, row.published_at, row.published_by = "published", now or _now(), actor.id
        _audit(s, actor, "report.publish", row, reason=row.correction_reason)
        return _view(row)


def correct(*, sessions: sessionmaker[Session], actor: Identity, report_id: int, reason: str,
            now: datetime | None = None) -> dict[str, Any]:
    """Start a correction of a published report: a new draft version rebuilt from current data,
    naming the version it supersedes and the reason (published when ops publish it).

    Raises:
        InputError: empty reason (field "reason"); the report is not published (field "report").
        PermissionDenied, NotFound: as :func:`publish`.
    """
    require(actor, OPS_ROLES, "correct a report")
    reason = (reason or "").strip()
    if not reason:
        raise InputError("reports.reason_required", field="reason")
    with unit_of_work(sessions) as s:
        old = s.get(ReportRow, report_id)
        if old is None:
            raise NotFound("error.not_found", what="report", id=report_id)
        _check_scope_for(actor, old.scope, load_org())
        if old.status != "published":
            raise InputError("reports.correct_published_only", field="report", id=report_id)
        month, scope, deid = old.month, old.scope, old.deidentified
    view = build_draft(sessions=sessions, actor=actor, month=month, scope=scope, deidentify_on_publish=deid, now=now)
    with unit_of_work(sessions) as s:
        row = s.get(ReportRow, view["id"])
        row.correction_reason, row.supersedes = reason, report_id
        _audit(s, actor, "report.correct", row, reason=reason)
        return _view(row)


def list_reports(*, sessions: sessionmaker[Session], actor: Identity, month: str | None = None,
                 scope: str | None = None) -> list[dict[str, Any]]:
    """Reports ``actor`` may read, newest month and version first, without snapshots.

    Ops see drafts and published reports (provincial ops the drafts of their province only);
    everyone else published reports only.
    """
    with unit_of_work(sessions) as s:
        query = select(ReportRow).order_by(ReportRow.month.desc(), ReportRow.scope, ReportRow.version.desc())
        if month:
            query = query.where(ReportRow.month == month)
        if scope:
            query = query.where(ReportRow.scope == scope)
        if actor.role == "prov_ops":
            query = query.where((ReportRow.status == "published") | (ReportRow.scope == (actor.province or "")))
        elif not _is_ops(actor):
            query = query.where(ReportRow.status == "published")
        return [_view(r, with_snapshot=False) for r in s.scalars(query)]


def get_report(*, sessions: sessionmaker[Session], actor: Identity, report_id: int,
               with_snapshot: bool = True) -> dict[str, Any]:
    """One report, with its snapshot unless ``with_snapshot`` is false.

    Raises:
        NotFound: no such report.
        PermissionDenied: the report is a draft and ``actor`` is not ops of its scope (executives
            and every employee read published reports only; provincial ops the drafts of their
            province).
    """
    with unit_of_work(sessions) as s:
        row = s.get(ReportRow, report_id)
        if row is None:
            raise NotFound("error.not_found", what="report", id=report_id)
        if row.status != "published" and not _may_read_draft(actor, row.scope):
            raise PermissionDenied("error.permission_denied", action="read an unpublished report", role=actor.role)
        return _view(row, with_snapshot=with_snapshot)


def latest_published(*, sessions: sessionmaker[Session], actor: Identity, month: str, scope: str) -> dict[str, Any] | None:
    """The newest published version of ``month`` and ``scope`` (None if none)."""
    rows = [r for r in list_reports(sessions=sessions, actor=actor, month=month, scope=scope) if r["status"] == "published"]
    return get_report(sessions=sessions, actor=actor, report_id=rows[0]["id"]) if rows else None


__all__ = ["BUILD_ROLES", "REPORT_JOB", "ComputeLoopError", "build_draft", "compute", "correct", "get_report",
           "latest_published", "list_reports", "preview", "publish", "summaries"]
