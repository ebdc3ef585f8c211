"""Saved estimates and the self-calibration loop (测算数据管理).

Users save estimates; an ops lead records the actual outcome of a finished job against its
estimate; corrections per (GPU model, workload) are fitted from those pairs.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import utc_now
from core.db.models import AuditEventRow, EstimateRow, OutcomeRow
from core.db.session import unit_of_work
from core.errors import InputError, NotFound
from core.estimation import defaults
from core.estimation.calibration import Correction, RunPair, fit_corrections
from core.estimation.training import TrainingEstimate
from core.identity import OPS_ROLES, Identity, require

KINDS = ("training", "inference")
READERS_OF_ALL = OPS_ROLES | {"dept_head"}


def _as_dict(row: EstimateRow) -> dict[str, Any]:
    return {
        "id": row.id, "kind": row.kind, "title": row.title, "gpu_id": row.gpu_id, "workload": row.workload,
        "created_by": row.created_by, "department": row.department, "created_at": row.created_at,
        "inputs": row.inputs, "outputs": row.outputs, "estimated_gpu_hours": row.estimated_gpu_hours,
        "estimated_wall_clock_hours": row.estimated_wall_clock_hours,
        "outcomes": [
            {"actual_gpu_hours": o.actual_gpu_hours, "actual_wall_clock_hours": o.actual_wall_clock_hours,
             "note": o.note, "recorded_by": o.recorded_by, "recorded_at": o.recorded_at}
            for o in row.outcomes
        ],
    }


def _audit(session: Session, actor: Identity, action: str, subject: str, reason: str = "",
           before: dict | None = None, after: dict | None = None) -> None:
    session.add(AuditEventRow(at=utc_now(), actor=actor.id, action=action, subject=subject, reason=reason,
                              before=before, after=after))


def save_estimate(
    *, sessions: sessionmaker[Session], actor: Identity, kind: str, title: str, gpu_id: str, workload: str,
    inputs: dict, outputs: dict, estimated_gpu_hours: float | None = None,
    estimated_wall_clock_hours: float | None = None,
) -> int:
    """Save an estimate made by ``actor``; returns its id.

    Raises:
        InputError: unknown kind or an empty title.
        PermissionDenied: executives and the committee only read published material.
    """
    require(actor, {"applicant", "prov_ops", "hq_ops", "dept_head", "admin"}, "save an estimate")
    if kind not in KINDS:
        raise InputError("error.choice", field="kind", value=kind, choices=", ".join(KINDS))
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise InputError("error.title_required", field="title")
    with unit_of_work(sessions) as s:
        row = EstimateRow(kind=kind, title=title, gpu_id=gpu_id, workload=workload, created_by=actor.id,
                          department=actor.department, created_at=utc_now(), inputs=inputs, outputs=outputs,
                          estimated_gpu_hours=estimated_gpu_hours,
                          estimated_wall_clock_hours=estimated_wall_clock_hours)
        s.add(row)
        s.flush()
        _audit(s, actor, "estimate.saved", f"estimate:{row.id}", after={"title": title, "kind": kind})
        return row.id


def save_training_estimate(
    *, sessions: sessionmaker[Session], actor: Identity, title: str, estimate: TrainingEstimate, lang: str = "en"
) -> int:
    """Save a training estimate with its inputs (to reopen it) and outputs.

    The GPU-hours kept for calibration are the uncalibrated ones, so a fitted correction is never
    fitted on top of itself.
    """
    calibration = estimate.calibration.factor if estimate.calibration else 1.0
    return save_estimate(
        sessions=sessions, actor=actor, kind="training", title=title, gpu_id=estimate.gpu.id,
        workload=estimate.inputs.workload, inputs=estimate.inputs.to_dict(), outputs=estimate.as_dict(lang),
        estimated_gpu_hours=estimate.gpu_hours / calibration,
        estimated_wall_clock_hours=estimate.wall_clock_hours / calibration,
    )


def _visible(actor: Identity, row: EstimateRow) -> bool:
    return actor.role in READERS_OF_ALL or row.created_by == actor.id or (
        actor.department and row.department == actor.department)


def list_estimates(*, sessions: sessionmaker[Session], actor: Identity, limit: int = 200) -> list[dict[str, Any]]:
    """Estimates ``actor`` may see, newest first: ops see all, others their department's."""
    require(actor, {"applicant", "prov_ops", "hq_ops", "dept_head", "admin"}, "read estimates")
    with unit_of_work(sessions) as s:
        query = select(EstimateRow).order_by(EstimateRow.created_at.desc(), EstimateRow.id.desc()).limit(limit)
        if actor.role not in READERS_OF_ALL:
            query = query.where((EstimateRow.department == actor.department) | (EstimateRow.created_by == actor.id))
        return [_as_dict(r) for r in s.scalars(query)]


def get_estimate(*, sessions: sessionmaker[Session], actor: Identity, estimate_id: int) -> dict[str, Any]:
    """One estimate by id, if ``actor`` may see it (otherwise it does not exist for them)."""
    with unit_of_work(sessions) as s:
        row = s.get(EstimateRow, estimate_id)
        if row is None or not _visible(actor, row):
            raise NotFound("error.not_found", what="estimate", id=estimate_id)
        return _as_dict(row)


def record_outcome(
    *, sessions: sessionmaker[Session], actor: Identity, estimate_id: int, actual_gpu_hours: float,
    actual_wall_clock_hours: float, note: str = "",
) -> None:
    """Record what a finished job really took (ops only), in the same transaction as its audit event.

    Raises:
        PermissionDenied: the actor is not ops or admin.
        InputError: a non-positive or absurd figure.
        NotFound: no such estimate.
    """
    require(actor, OPS_ROLES, "record the outcome of a job")
    for field, value in (("actual_gpu_hours", actual_gpu_hours), ("actual_wall_clock_hours", actual_wall_clock_hours)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value < 1e9):
            raise InputError("error.out_of_range", field=field, value=value, low=">0", high="1e9")
    with unit_of_work(sessions) as s:
        row = s.get(EstimateRow, estimate_id)
        if row is None:
            raise NotFound("error.not_found", what="estimate", id=estimate_id)
        if row.kind != "training":
            raise InputError("error.outcome_training_only", field="estimate_id")
        s.add(OutcomeRow(estimate_id=row.id, actual_gpu_hours=actual_gpu_hours,
                         actual_wall_clock_hours=actual_wall_clock_hours, note=note or "",
                         recorded_by=actor.id, recorded_at=utc_now()))
        _audit(s, actor, "estimate.outcome_recorded", f"estimate:{row.id}", reason=note or "",
               after={"actual_gpu_hours": actual_gpu_hours, "actual_wall_clock_hours": actual_wall_clock_hours})


def recorded_pairs(*, sessions: sessionmaker[Session]) -> list[RunPair]:
    """Every recorded outcome with the GPU-hours its estimate gave (what calibration and validation use)."""
    with unit_of_work(sessions) as s:
        rows = s.execute(
            select(EstimateRow.gpu_id, EstimateRow.workload, EstimateRow.estimated_gpu_hours, OutcomeRow.actual_gpu_hours)
            .join(OutcomeRow, OutcomeRow.estimate_id == EstimateRow.id)
            .where(EstimateRow.estimated_gpu_hours.is_not(None))
        ).all()
    return [RunPair(g, w, e, a) for g, w, e, a in rows]


def corrections(*, sessions: sessionmaker[Session]) -> list[Correction]:
    """Fitted corrections for every (GPU, workload) with recorded outcomes."""
    fitted = fit_corrections(recorded_pairs(sessions=sessions))
    return sorted(fitted.values(), key=lambda c: (c.gpu_id, c.workload))


def correction_for(*, sessions: sessionmaker[Session], gpu_id: str, workload: str) -> Correction | None:
    """The correction to apply to a new estimate, when enough runs back it (a setting in data/)."""
    minimum = int(defaults.value("calibration_min_runs"))
    for c in corrections(sessions=sessions):
        if c.gpu_id == gpu_id and c.workload == workload and c.runs >= minimum:
            return c
    return None
