"""The queue of requests waiting for capacity (作业排队与优先级调度): order with aging, position,
ETA from expected releases, and why each one is blocked with what would unblock it.

Pure functions over plain records (:class:`Waiting`, :class:`Release`); the service in
:mod:`core.adjust.services` reads them from the database. Effective priority =
``weight[priority] + min(waited hours, max_aging_hours) × aging_rate_per_hour``
(``data/queue_policy.yaml``), so a small job that has waited long enough overtakes a big new one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from core.datafiles import load_derived
from core.errors import InputError
from core.lifecycle.allocations import plus

PRIORITIES = ("low", "normal", "high", "critical")
# Closed set of blocked reasons (shown through ``adjq.blocked.<reason>``).
BLOCKED = ("none", "ahead", "capacity", "fragmentation", "no_release")


@dataclass(frozen=True)
class QueuePolicy:
    """``data/queue_policy.yaml``."""

    weights: Mapping[str, float]
    aging_rate_per_hour: float
    max_aging_hours: float

    def overtake_hours(self, slower: str, faster: str) -> float:
        """Hours after which a ``slower``-priority request overtakes a ``faster`` one submitted at once."""
        return (self.weights[faster] - self.weights[slower]) / self.aging_rate_per_hour


def _build(raw: Any) -> QueuePolicy:
    try:
        weights = {p: float(raw["weights"][p]) for p in PRIORITIES}
        policy = QueuePolicy(weights, float(raw["aging_rate_per_hour"]), float(raw["max_aging_hours"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("error.data_entry_invalid", field="queue_policy.yaml", entry=str(exc)) from None
    if policy.aging_rate_per_hour <= 0 or policy.max_aging_hours <= 0:
        raise InputError("error.data_entry_invalid", field="queue_policy.yaml", entry="aging must be positive")
    return policy


def load_policy() -> QueuePolicy:
    """The queue policy (rebuilt when the file changes)."""
    return load_derived("queue_policy.yaml", _build)


@dataclass(frozen=True)
class Waiting:
    """A request waiting for GPUs of a pool."""

    request_id: int
    number: str
    pool: str
    gpus: int
    priority: str
    waiting_since: datetime
    duration_days: int = 0
    project: str = ""
    department: str = ""


@dataclass(frozen=True)
class Release:
    """GPUs of a pool expected back at ``at`` (an allocation's end, or its job's estimated finish);
    negative ``gpus``: GPUs a scheduled allocation takes at its start (source ``scheduled``)."""

    pool: str
    gpus: int
    at: datetime
    number: str
    source: str = "ends_on"  # ends_on | estimate | scheduled


@dataclass
class QueueEntry:
    """One waiting request with its place, effective priority, ETA and blocked reason."""

    request_id: int
    number: str
    pool: str
    gpus: int
    priority: str
    waited_hours: float
    base: float
    effective: float
    position: int = 0
    pool_position: int = 0
    eta: datetime | None = None
    blocked: str = "none"
    hint: dict[str, Any] = field(default_factory=dict)
    project: str = ""
    department: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict form."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def effective_priority(priority: str, waited_hours: float, policy: QueuePolicy) -> float:
    """``weight + min(waited, cap) × rate``."""
    return policy.weights.get(priority, policy.weights["normal"]) + \
        min(max(waited_hours, 0.0), policy.max_aging_hours) * policy.aging_rate_per_hour


def order(waiting: Sequence[Waiting], now: datetime, policy: QueuePolicy) -> list[QueueEntry]:
    """Entries in queue order: effective priority high to low, then fewer GPUs, then longer wait."""
    entries = []
    for w in waiting:
        hours = (now - w.waiting_since).total_seconds() / 3600
        entries.append(QueueEntry(w.request_id, w.number, w.pool, w.gpus, w.priority, round(hours, 2),
                                  policy.weights.get(w.priority, policy.weights["normal"]),
                                  round(effective_priority(w.priority, hours, policy), 2),
                                  project=w.project, department=w.department))
    entries.sort(key=lambda e: (-e.effective, e.gpus, -e.waited_hours, e.request_id))
    per_pool: dict[str, int] = {}
    for i, e in enumerate(entries, start=1):
        e.position = i
        per_pool[e.pool] = per_pool.get(e.pool, 0) + 1
        e.pool_position = per_pool[e.pool]
    return entries


def nodes_needed(gpus: int, gpus_per_node: int) -> int:
    """Fewest nodes a request of ``gpus`` may span (whole nodes for multi-node work)."""
    return max(1, math.ceil(gpus / max(1, gpus_per_node)))


def fits(gpus: int, free_per_node: Sequence[int], gpus_per_node: int) -> bool:
    """True when ``gpus`` fit on at most :func:`nodes_needed` nodes of ``free_per_node``."""
    k = nodes_needed(gpus, gpus_per_node)
    return sum(sorted(free_per_node, reverse=True)[:k]) >= gpus


def plan(entries: list[QueueEntry], releases: Sequence[Release], free_now: Mapping[str, int],
         free_per_node: Mapping[str, Sequence[int]], gpus_per_node: Mapping[str, int], now: datetime,
         waiting: Sequence[Waiting] = ()) -> list[QueueEntry]:
    """Fill in ETA, blocked reason and unblock hint of each entry (in queue order, in place).

    Walks the queue in order per pool: a request starts at the first moment from which its pool
    stays at or above its GPUs (free now + releases so far − GPUs of requests ahead that started),
    and then holds them for its duration. Placement on nodes is only judged now (fragmentation);
    later starts assume the released GPUs come back as whole blocks.
    """
    durations = {w.request_id: w.duration_days for w in waiting}
    events: dict[str, list[tuple[datetime, int, str]]] = {}
    for r in releases:
        events.setdefault(r.pool, []).append((max(r.at, now), r.gpus, r.number))
    for pool in events:
        events[pool].sort(key=lambda e: e[0])

    nodes_left = {pool: sorted(v, reverse=True) for pool, v in free_per_node.items()}

    def free_at(pool: str, t: datetime) -> int:
        return free_now.get(pool, 0) + sum(d for at, d, _ in events.get(pool, []) if at <= t)

    for e in entries:
        pool_events = events.setdefault(e.pool, [])
        candidates = [now] + sorted({at for at, _, _ in pool_events if at > now})
        start = None
        for t in candidates:
            if all(free_at(e.pool, u) >= e.gpus for u in [t] + [at for at, _, _ in pool_events if at > t]):
                start = t
                break
        free = free_at(e.pool, now)
        nodes = nodes_left.get(e.pool)
        gpn = gpus_per_node.get(e.pool, 8)
        if start == now and (nodes is None or fits(e.gpus, nodes, gpn)):
            e.blocked, e.eta = "none", now
            if nodes is not None:
                _take(nodes, e.gpus)
            e.hint = {"key": "adjq.hint.none", "params": {"gpus": e.gpus, "pool": e.pool}}
        elif start == now:
            e.blocked, e.eta = "fragmentation", None
            largest = sum(sorted(nodes, reverse=True)[:nodes_needed(e.gpus, gpn)])
            e.hint = {"key": "adjq.hint.fragmentation",
                      "params": {"free": free, "gpus": e.gpus, "nodes": nodes_needed(e.gpus, gpn), "largest": largest}}
        elif start is None:
            e.blocked, e.eta = "no_release", None
            e.hint = {"key": "adjq.hint.no_release", "params": {"gpus": e.gpus, "free": max(0, free), "pool": e.pool}}
        else:
            e.eta = start
            last = [(at, d, num) for at, d, num in pool_events if at == start and d > 0]
            number = last[0][2] if last else ""
            freed = sum(d for at, d, _ in pool_events if at == start and d > 0)
            e.blocked = "capacity" if free_now.get(e.pool, 0) < e.gpus else "ahead"
            e.hint = {"key": "adjq.hint.release" if number else "adjq.hint.ahead",
                      "params": {"gpus": freed, "date": start.date().isoformat(), "number": number}}
        if e.eta is not None:
            # held at the calendar's end: a release dated near 9999-12-31 must not overflow
            until = plus(e.eta, timedelta(days=max(1, durations.get(e.request_id, 1) or 1)))
            pool_events.append((e.eta, -e.gpus, e.number))
            pool_events.append((until, e.gpus, e.number))
            pool_events.sort(key=lambda ev: ev[0])
    return entries


def _take(nodes: list[int], gpus: int) -> None:
    """Take ``gpus`` from the fullest-free nodes (in place, kept sorted high to low)."""
    for i in range(len(nodes)):
        used = min(nodes[i], gpus)
        nodes[i] -= used
        gpus -= used
        if gpus <= 0:
            break
    nodes.sort(reverse=True)
