"""Automatic adjustment records (自动调整记录): queue reorders and autoscaler scale events.

Two cron-safe jobs write ``adjustments`` rows with actor ``system`` (through
:func:`core.adjust.persistence.record_adjustment`, in the job's own transaction):

* :func:`snapshot_queue` computes the queue (:func:`core.adjust.services.queue`), compares each
  waiting request's place in its pool's queue with the place last recorded (``queue_positions``)
  and records one ``queue_reorder`` per request whose place changed, with why (:data:`QUEUE_REASONS`).
* :func:`record_scale_events` reads the HorizontalPodAutoscalers of every cluster (KEDA scales
  through an HPA of its own, ``keda-hpa-<name>``, so it shows up too) and records one
  ``scale_event`` per HPA whose desired replicas differ from the last observed value
  (``autoscaler_observations``), at the HPA's ``status.lastScaleTime``, with its conditions.

The first sighting of a request or an HPA is its baseline: stored, not recorded (there is no
"before"). Running a job again with nothing changed records nothing. Each job first updates its row
of ``adjustment_watches``, so two overlapping runs take turns instead of recording a change twice.

Reasons are stored as ``code[,code...][; detail]`` with codes from :data:`REASON_CODES`, so the page
can show them in the reader's language (:func:`reason_parts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, UniqueConstraint, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.clock import utc_now as _now
from core.adjust.persistence import record_adjustment
from core.cluster.autoscalers import AutoscalerSource, HpaStatus
from core.cluster.backends import ClusterError
from core.db.models import Base
from core.db.session import unit_of_work
from core.lifecycle.services import SYSTEM
from core.lifecycle.persistence import HOLDING_ALLOCATION, AllocationRow

# Why a waiting request's place changed (closed set; shown through ``records.reason.<code>``):
# arrival: a new request (or one that came back to the queue) entered ahead of it;
# release: requests ahead of it left the queue (granted GPUs, cancelled or withdrawn);
# aging: waiting time reordered requests that were already queued (effective priority, data/queue_policy.yaml);
# priority_change: its own or another request's priority was changed;
# pool_change: it now waits for another pool.
QUEUE_REASONS: tuple[str, ...] = ("arrival", "release", "aging", "priority_change", "pool_change")
# Which way an autoscaler moved a service.
SCALE_REASONS: tuple[str, ...] = ("scale_up", "scale_down")
REASON_CODES: tuple[str, ...] = QUEUE_REASONS + SCALE_REASONS

QUEUE_JOB, AUTOSCALER_JOB = "queue_snapshot", "autoscaler_events"
# The job reads the queue as the system (the queue service admits ops and the system).
QUEUE_READER = SYSTEM


class AdjustmentWatchRow(Base):
    """One row per recording job; updated first in the job's transaction (runs take turns)."""

    __tablename__ = "adjustment_watches"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class QueuePositionRow(Base):
    """A waiting request's place as last recorded by the queue snapshot job."""

    __tablename__ = "queue_positions"

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True)
    pool_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    pool_position: Mapped[int] = mapped_column(Integer)
    effective: Mapped[float] = mapped_column(Float)
    priority: Mapped[str] = mapped_column(String(16))
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AutoscalerObservationRow(Base):
    """An HPA's replicas as last observed by the autoscaler job."""

    __tablename__ = "autoscaler_observations"
    __table_args__ = (UniqueConstraint("cluster", "namespace", "name", name="uq_autoscaler_observations_hpa"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(253))
    target_kind: Mapped[str] = mapped_column(String(64))
    target_name: Mapped[str] = mapped_column(String(253))
    current_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    desired_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_scale_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _take_turn(s: Session, job: str, now: datetime) -> None:
    """Write the job's watch row first: a concurrent run of the same job waits for this one."""
    s.execute(update(AdjustmentWatchRow).where(AdjustmentWatchRow.name == job).values(last_run_at=now))


# --------------------------------------------------------------------------- reasons


def reason_text(codes: Iterable[str], detail: str = "") -> str:
    """The stored form of a system reason: ``code[,code...][; detail]``."""
    head = ",".join(codes)
    return f"{head}; {detail}" if detail else head


def reason_parts(text: str | None) -> tuple[tuple[str, ...], str] | None:
    """``(codes, detail)`` of a reason written by :func:`reason_text`; None for a person's free text."""
    head, _, detail = (text or "").partition("; ")
    codes = tuple(c for c in head.split(",") if c)
    if not codes or any(c not in REASON_CODES for c in codes):
        return None
    return codes, detail




# --------------------------------------------------------------------------- queue reorders


@dataclass(frozen=True)
class Place:
    """A waiting request's place: overall position, position in its pool's queue, effective priority."""

    request_id: int
    pool: str
    position: int
    pool_position: int
    effective: float
    priority: str
    number: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Before/after state of a record."""
        return {"pool": self.pool, "pool_position": self.pool_position, "position": self.position,
                "effective_priority": self.effective, "priority": self.priority}


@dataclass(frozen=True)
class Reorder:
    """One request whose place in its pool's queue changed, with why (request ids of who did it)."""

    before: Place
    after: Place
    reasons: tuple[str, ...]
    arrived: tuple[int, ...] = field(default=())
    left: tuple[int, ...] = field(default=())
    overtaken_by: tuple[int, ...] = field(default=())
    passed: tuple[int, ...] = field(default=())


def _cause(mine_before: Place, mine_now: Place, other_before: Place, other_now: Place) -> str:
    changed = mine_before.priority != mine_now.priority or other_before.priority != other_now.priority
    return "priority_change" if changed else "aging"


def reorders(previous: Mapping[int, Place], current: Sequence[Place]) -> list[Reorder]:
    """The requests of ``current`` whose place in their pool's queue differs from ``previous``.

    A request's pool position is one more than the requests ahead of it in the same pool, so it
    moves exactly when the set ahead changes: newcomers ahead (``arrival``), requests ahead that
    left the queue (``release``), and already-queued requests that swapped with it (``aging``, or
    ``priority_change`` when a priority was edited). Requests not in ``previous`` are new (no record).
    """
    now_by_id = {p.request_id: p for p in current}
    out = []
    for cur in current:
        prev = previous.get(cur.request_id)
        if prev is None or (prev.pool == cur.pool and prev.pool_position == cur.pool_position):
            continue
        if prev.pool != cur.pool:
            out.append(Reorder(prev, cur, ("pool_change",)))
            continue
        ahead_now = {p.request_id for p in current if p.pool == cur.pool and p.pool_position < cur.pool_position}
        ahead_before = {i for i, p in previous.items() if p.pool == cur.pool and p.pool_position < prev.pool_position}
        reasons: set[str] = set()
        arrived, left, overtaken_by, passed = [], [], [], []
        for i in sorted(ahead_now ^ ahead_before):
            came = i in ahead_now  # came ahead of it, else no longer ahead
            then, now = previous.get(i), now_by_id.get(i)
            elsewhere = then if came else now  # where it was before it came / is after it went
            if elsewhere is None or elsewhere.pool != cur.pool:
                (arrived if came else left).append(i)
                reasons.add("arrival" if came else "release")
            else:
                (overtaken_by if came else passed).append(i)
                reasons.add(_cause(prev, cur, then, now))
        out.append(Reorder(prev, cur, tuple(r for r in QUEUE_REASONS if r in reasons),
                           tuple(arrived), tuple(left), tuple(overtaken_by), tuple(passed)))
    return out


def _place_of(entry: Mapping[str, Any]) -> Place:
    return Place(int(entry["request_id"]), str(entry["pool"]), int(entry["position"]), int(entry["pool_position"]),
                 float(entry["effective"]), str(entry["priority"]), str(entry.get("number") or ""))


def snapshot_queue(*, sessions: sessionmaker[Session], now: datetime | None = None) -> dict[str, Any]:
    """Record a ``queue_reorder`` adjustment for every waiting request whose place in its pool's
    queue changed since the last snapshot, then store the current places. One transaction.

    Returns ``{"at", "waiting", "recorded": [{request_id, number, pool, before, after, reasons}],
    "new", "left", "baseline"}``; ``baseline`` is True on the first run (nothing to compare with).
    """
    from core.adjust import services as adjust

    now = now or _now()
    with unit_of_work(sessions) as s:
        _take_turn(s, QUEUE_JOB, now)
        current = [_place_of(e) for e in adjust.queue(sessions=sessions, actor=QUEUE_READER, now=now)["entries"]]
        rows = {r.request_id: r for r in s.scalars(select(QueuePositionRow))}
        previous = {i: Place(i, r.pool_id, r.position, r.pool_position, r.effective, r.priority) for i, r in rows.items()}
        baseline = not rows
        changes = [] if baseline else reorders(previous, current)
        for ch in changes:
            after = {**ch.after.as_dict(), "number": ch.after.number, "arrived": list(ch.arrived), "left": list(ch.left),
                     "overtaken_by": list(ch.overtaken_by), "passed": list(ch.passed)}
            record_adjustment(s, actor="system", kind="queue_reorder", subject=f"request:{ch.after.request_id}",
                              reason=reason_text(ch.reasons), before=ch.before.as_dict(), after=after,
                              automatic=True, at=now)
        current_ids = {p.request_id for p in current}
        gone = sorted(set(rows) - current_ids)
        if gone:
            s.execute(delete(QueuePositionRow).where(QueuePositionRow.request_id.in_(gone)))
        for p in current:
            row = rows.get(p.request_id)
            if row is None:
                s.add(QueuePositionRow(request_id=p.request_id, pool_id=p.pool, position=p.position,
                                       pool_position=p.pool_position, effective=p.effective, priority=p.priority,
                                       observed_at=now))
            else:
                row.pool_id, row.position, row.pool_position = p.pool, p.position, p.pool_position
                row.effective, row.priority, row.observed_at = p.effective, p.priority, now
    return {"at": now, "waiting": len(current), "baseline": baseline,
            "new": 0 if baseline else len(current_ids - set(rows)), "left": len(gone),
            "recorded": [{"request_id": ch.after.request_id, "number": ch.after.number, "pool": ch.after.pool,
                          "before": ch.before.pool_position, "after": ch.after.pool_position,
                          "reasons": list(ch.reasons)} for ch in changes]}


# --------------------------------------------------------------------------- autoscaler events


def _conditions_detail(hpa: HpaStatus) -> str:
    return ", ".join(f"{c['type']}={c['status']} ({c['reason']})" for c in hpa.conditions if c.get("type"))


def _our_namespaces(s: Session, org: Any) -> dict[tuple[str, str], str]:
    """``(cluster, namespace) → pool`` of the allocations holding GPUs."""
    rows = s.execute(select(AllocationRow.cluster, AllocationRow.namespace, AllocationRow.pool_id)
                     .where(AllocationRow.status.in_(HOLDING_ALLOCATION), AllocationRow.namespace.is_not(None)))
    out = {}
    for cluster, namespace, pool in rows:
        cluster = cluster or (org.pools[pool].cluster if pool in org.pools else None)
        if cluster:
            out[(cluster, namespace)] = pool
    return out


def record_scale_events(*, sessions: sessionmaker[Session], source: AutoscalerSource, clusters: Sequence[str],
                        org: Any, now: datetime | None = None) -> dict[str, Any]:
    """Read the HPAs of ``clusters`` and record a ``scale_event`` for every HPA in an allocation's
    namespace whose desired replicas changed since it was last observed. One transaction.

    A cluster that cannot be read is reported in ``errors`` and its observations are kept as they
    were; HPAs that are gone from a cluster that was read are forgotten. Returns ``{"at",
    "clusters": {id: hpas}, "recorded": [...], "baseline", "ignored", "errors"}``.
    """
    now = now or _now()
    seen: dict[str, list[HpaStatus]] = {}
    errors: dict[str, dict[str, str]] = {}
    for cluster in clusters:
        try:
            seen[cluster] = source.hpas(cluster)
        except ClusterError as exc:
            errors[cluster] = {"key": exc.key, "message": str(exc)}
    recorded: list[dict[str, Any]] = []
    baseline = ignored = 0
    with unit_of_work(sessions) as s:
        _take_turn(s, AUTOSCALER_JOB, now)
        ours = _our_namespaces(s, org)
        rows = {(r.cluster, r.namespace, r.name): r for r in s.scalars(
            select(AutoscalerObservationRow).where(AutoscalerObservationRow.cluster.in_(sorted(seen))))}
        for cluster, hpas in seen.items():
            for hpa in hpas:
                pool = ours.get((cluster, hpa.namespace))
                if pool is None:
                    ignored += 1
                    continue
                row = rows.pop(hpa.key, None)
                if row is None:
                    row = AutoscalerObservationRow(cluster=cluster, namespace=hpa.namespace, name=hpa.name)
                    s.add(row)
                    baseline += 1
                elif (hpa.desired_replicas is not None and row.desired_replicas is not None
                      and hpa.desired_replicas != row.desired_replicas):
                    recorded.append(_record_scale(s, hpa, row, pool, now))
                row.target_kind, row.target_name = hpa.target_kind, hpa.target_name
                row.current_replicas, row.desired_replicas = hpa.current_replicas, hpa.desired_replicas
                row.last_scale_time, row.observed_at = hpa.last_scale_time, now
        for row in rows.values():  # gone from a cluster that answered, or its namespace is no longer ours
            s.delete(row)
    return {"at": now, "clusters": {c: len(h) for c, h in seen.items()}, "recorded": recorded,
            "baseline": baseline, "ignored": ignored, "errors": errors}


def _record_scale(s: Session, hpa: HpaStatus, row: AutoscalerObservationRow, pool: str, now: datetime) -> dict[str, Any]:
    where = {"hpa": hpa.name, "cluster": hpa.cluster, "namespace": hpa.namespace, "pool": pool}
    before = {"replicas": row.desired_replicas, "current_replicas": row.current_replicas, **where,
              "last_scale_time": row.last_scale_time.isoformat() if row.last_scale_time else None}
    after = {"replicas": hpa.desired_replicas, "current_replicas": hpa.current_replicas, **where,
             "min_replicas": hpa.min_replicas, "max_replicas": hpa.max_replicas,
             "last_scale_time": hpa.last_scale_time.isoformat() if hpa.last_scale_time else None,
             "conditions": [dict(c) for c in hpa.conditions]}
    code = "scale_up" if (hpa.desired_replicas or 0) > (row.desired_replicas or 0) else "scale_down"
    subject = f"{(hpa.target_kind or 'deployment').lower()}:{hpa.namespace}/{hpa.target_name or hpa.name}"
    at = hpa.last_scale_time or now
    record_adjustment(s, actor=f"system: HPA {hpa.name}"[:120], kind="scale_event", subject=subject,
                      reason=reason_text([code], _conditions_detail(hpa)), before=before, after=after,
                      automatic=True, at=at)
    return {"subject": subject, "hpa": hpa.name, "cluster": hpa.cluster, "pool": pool, "at": at,
            "before": row.desired_replicas, "after": hpa.desired_replicas, "reason": code}
