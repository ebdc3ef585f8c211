"""Training results (训练结果): the evaluation outcome of a training run, recorded by the owner of
the training allocation, for the report's time–quality–energy of typical training jobs.

A result names the run it belongs to (free text such as ``sft-v2``), the evaluation metric, its
value, whether higher is better, the dataset or benchmark and optionally the baseline (the value
before the run, e.g. the base model's score). The owner records it for their own training
requests that got GPUs (active, expiring, extended, returned or reclaimed); each recording is one
transaction with its audit event. Nothing is ever estimated: a job without a recorded result is
reported as "not recorded".
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Iterable

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.clock import utc_now
from core.datafiles import load_yaml
from core.db.models import AuditEventRow, Base
from core.db.session import unit_of_work
from core.errors import InputError, NotFound
from core.identity import Identity, PermissionDenied
from core.lifecycle.persistence import RequestRow

# Statuses of a training request whose allocation ran (or runs): a result can be recorded.
RECORDABLE = ("active", "expiring", "extended", "returned", "reclaimed")
MAX_NAME = 80
MAX_LABEL = 120
MAX_NOTE = 1000


class TrainingResultRow(Base):
    """One evaluation outcome of a training run (built by migrations/versions/0010_training_results.py)."""

    __tablename__ = "training_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    run: Mapped[str] = mapped_column(String(MAX_LABEL), default="")
    metric: Mapped[str] = mapped_column(String(MAX_NAME))
    value: Mapped[float] = mapped_column(Float)
    higher_is_better: Mapped[bool] = mapped_column(Boolean)
    dataset: Mapped[str] = mapped_column(String(MAX_LABEL))
    baseline: Mapped[float | None] = mapped_column(Float, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def known_metrics() -> dict[str, bool]:
    """Metric name → higher is better, from data/quality_metrics.yaml."""
    raw = (load_yaml("quality_metrics.yaml") or {}).get("metrics") or {}
    return {str(k): bool(v["higher_is_better"]) for k, v in raw.items()}


def _text(value: Any, field: str, limit: int, *, required: bool) -> str:
    text = " ".join(str(value if value is not None else "").split())
    if required and not text:
        raise InputError("quality.required", field=field)
    if len(text) > limit:
        raise InputError("quality.too_long", field=field, limit=limit)
    return text


def _number(value: Any, field: str, *, required: bool) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError("quality.required", field=field)
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError("quality.not_a_number", field=field, value=value) from None
    if not math.isfinite(number):
        raise InputError("quality.not_a_number", field=field, value=value)
    return number


def validate(*, metric: Any, value: Any, higher_is_better: Any, dataset: Any, baseline: Any = None,
             run: Any = "", note: Any = "") -> dict[str, Any]:
    """The cleaned result fields; :class:`InputError` naming the first bad field.

    A metric of data/quality_metrics.yaml must keep its documented direction (field
    "higher_is_better").
    """
    metric = _text(metric, "metric", MAX_NAME, required=True)
    number = _number(value, "value", required=True)
    if not isinstance(higher_is_better, bool):
        raise InputError("quality.direction_required", field="higher_is_better")
    known = known_metrics()
    if metric in known and known[metric] != higher_is_better:
        raise InputError(f"quality.direction_conflict_{'higher' if known[metric] else 'lower'}",
                         field="higher_is_better", metric=metric)
    return {"metric": metric, "value": number, "higher_is_better": higher_is_better,
            "dataset": _text(dataset, "dataset", MAX_LABEL, required=True),
            "baseline": _number(baseline, "baseline", required=False),
            "run": _text(run, "run", MAX_LABEL, required=False), "note": _text(note, "note", MAX_NOTE, required=False)}


def improvement(value: float | None, baseline: float | None, higher_is_better: bool | None) -> float | None:
    """How much better than the baseline, in the metric's unit (positive = better); None without a baseline."""
    if value is None or baseline is None or higher_is_better is None:
        return None
    return value - baseline if higher_is_better else baseline - value


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 9)  # 71.2 - 68.5 is 2.7, not 2.700000000000003


def _view(row: TrainingResultRow) -> dict[str, Any]:
    at = row.recorded_at if row.recorded_at.tzinfo else row.recorded_at.replace(tzinfo=timezone.utc)
    return {"id": row.id, "request_id": row.request_id, "run": row.run, "metric": row.metric, "value": row.value,
            "higher_is_better": row.higher_is_better, "dataset": row.dataset, "baseline": row.baseline,
            "improvement": _round(improvement(row.value, row.baseline, row.higher_is_better)), "note": row.note,
            "recorded_by": row.recorded_by, "recorded_at": at.isoformat()}


def record_result(*, sessions: sessionmaker[Session], actor: Identity, request_id: int, metric: Any, value: Any,
                  higher_is_better: Any, dataset: Any, baseline: Any = None, run: Any = "", note: Any = "",
                  now: datetime | None = None) -> dict[str, Any]:
    """Record the outcome of a training run of ``request_id`` (one transaction, one audit event).

    Raises:
        InputError: a bad field (named); the request is not a training request (field "request")
            or has not run (field "request": its status).
        NotFound: no such request, or one ``actor`` may not see (the same answer: nobody learns
            whether another department's request exists).
        PermissionDenied: ``actor`` sees the request but is not its owner (applicant).
    """
    fields = validate(metric=metric, value=value, higher_is_better=higher_is_better, dataset=dataset,
                      baseline=baseline, run=run, note=note)
    now = now or utc_now()
    from core.lifecycle import services as lifecycle
    from core.org import load_org

    with unit_of_work(sessions) as s:
        req = s.get(RequestRow, request_id)
        if req is None or not lifecycle._can_see(actor, req, load_org()):
            # a request the actor may not see answers as one that does not exist
            raise NotFound("error.not_found", what="request", id=request_id)
        if req.created_by != actor.id:
            raise PermissionDenied("error.permission_denied", action="record a training result", role=actor.role)
        if req.demand_type != "training":
            raise InputError("quality.not_training", field="request", id=request_id)
        if req.status not in RECORDABLE:
            raise InputError("quality.not_run", field="request", id=request_id, status=req.status)
        row = TrainingResultRow(request_id=request_id, recorded_by=actor.id, recorded_at=now, **fields)
        s.add(row)
        s.flush()
        s.add(AuditEventRow(at=now, actor=actor.id, action="training_result.recorded", subject=f"request:{request_id}",
                            reason=fields["note"], before=None,
                            after={"result_id": row.id, **{k: fields[k] for k in ("run", "metric", "value",
                                                                                 "higher_is_better", "dataset", "baseline")}}))
        return _view(row)


def recordable_requests(*, sessions: sessionmaker[Session], actor: Identity) -> list[dict[str, Any]]:
    """The actor's own training requests a result can be recorded for (newest first)."""
    with unit_of_work(sessions) as s:
        rows = s.scalars(select(RequestRow).where(RequestRow.created_by == actor.id, RequestRow.demand_type == "training",
                                                  RequestRow.status.in_(RECORDABLE)).order_by(RequestRow.id.desc()))
        return [{"id": r.id, "number": r.number, "project": r.project, "pool": r.pool_id, "status": r.status}
                for r in rows]


def results_of(session: Session, request_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Recorded results per request (oldest first), in one query."""
    ids = sorted({int(i) for i in request_ids})
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    for row in session.scalars(select(TrainingResultRow).where(TrainingResultRow.request_id.in_(ids))
                               .order_by(TrainingResultRow.recorded_at, TrainingResultRow.id)):
        out[row.request_id].append(_view(row))
    return out


def list_results(*, sessions: sessionmaker[Session], actor: Identity, request_id: int) -> list[dict[str, Any]]:
    """Results of one request, for whoever may see the request (see :func:`core.lifecycle.services.get_request`)."""
    from core.lifecycle import services as lifecycle

    lifecycle.get_request(sessions=sessions, actor=actor, request_id=request_id)  # raises when not visible
    with unit_of_work(sessions) as s:
        return results_of(s, [request_id])[request_id]
