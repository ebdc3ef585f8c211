"""Daily rollups of the services' request figures (QPS and latency), so that a month's inference
usage sheet does not depend on Prometheus retention (15 days by default).

The ``serving_daily_rollups`` table has one row per UTC day × cluster × namespace with the additive
parts of that day's figures (:data:`core.metrics.serving.SERVING_PARTS_SCHEMA`):

==============  =============================================================================
requests        completed requests of the day
covered_s       seconds with data (offline: the intervals of the distinct sample instants;
                Prometheus: the ``peak_step_s`` steps at which the namespace had a sample)
coverage        covered_s / window_s (window_s: 86,400 for a whole day)
qps_peak        the highest per-step request rate of the day
latency_sum_s,  the latency histogram's sum and count (mean = sum / count); empty when the
latency_count   service exports no latency
buckets         the latency histogram as cumulative counts per ``le`` (JSON ``{"0.5": n, …,
                "+Inf": n}``), so that a month's P99 is the quantile of the **summed** daily
                buckets — exactly what one query over the month gives, never an average of
                daily P99s
source          "prometheus" or "offline": where the day was read
==============  =============================================================================

Storing a day deletes that day's rows and inserts the new ones in the caller's transaction, so a
re-run replaces the day exactly. A day whose source has no request samples at all is not stored
(stored rows are left alone): raw data that has expired never wipes a rollup, and a day without
rows counts as missing coverage — never as zero traffic.

A month (:func:`month_parts`) reads the stored days and, for the days of the window that have none
(the running day, days not rolled up yet), the live source over each run of such days, then
:func:`core.metrics.serving.stats_from_parts` makes the figures of the whole window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import JSON, Date, DateTime, Float, Index, Integer, String, UniqueConstraint, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.clock import utc_now
from core.db.models import Base
from core.metrics.rollup import day_bounds
from core.metrics.serving import (BUCKET_PREFIX, SERVING_PARTS_SCHEMA, bucket_columns, bucket_bound, bucket_name,
                                  source_kind, window_parts)

DAY_S = 86_400.0
_FIGURES = ("requests", "covered_s", "qps_peak", "latency_sum_s", "latency_count")


class ServingDailyRollupRow(Base):
    """One cluster × namespace × UTC day of request figures (see the module docstring)."""

    __tablename__ = "serving_daily_rollups"
    __table_args__ = (
        UniqueConstraint("day", "cluster", "namespace", name="uq_serving_daily_rollups_day_cluster_namespace"),
        Index("ix_serving_daily_rollups_namespace_day", "namespace", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    cluster: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(63))
    source: Mapped[str] = mapped_column(String(16))
    requests: Mapped[float] = mapped_column(Float)
    covered_s: Mapped[float] = mapped_column(Float)
    window_s: Mapped[float] = mapped_column(Float)
    coverage: Mapped[float] = mapped_column(Float)
    qps_peak: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_sum_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_count: Mapped[float | None] = mapped_column(Float, nullable=True)
    buckets: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def day_parts(source: Any, day: date) -> pl.DataFrame:
    """The parts of one UTC day from ``source`` (offline files or Prometheus: one query per server)."""
    return window_parts(source, *day_bounds(day))


# --------------------------------------------------------------------------- storing and reading


def _records(day: date, parts: pl.DataFrame, source: str, now: datetime) -> list[dict]:
    buckets = bucket_columns(parts.columns)
    out = []
    for r in parts.iter_rows(named=True):
        counts = {c[len(BUCKET_PREFIX):]: r[c] for c in buckets if r[c] is not None}
        out.append({"day": day, "cluster": r["cluster"], "namespace": r["namespace"], "source": source,
                    **{k: r[k] for k in _FIGURES}, "window_s": DAY_S,
                    "coverage": min((r["covered_s"] or 0.0) / DAY_S, 1.0), "buckets": counts or None,
                    "computed_at": now})
    return out


def replace_serving_day(session: Session, day: date, parts: pl.DataFrame, *, source: str,
                        now: datetime | None = None) -> dict:
    """Replace ``day``'s rows with ``parts`` (a :func:`day_parts` frame) in ``session``'s
    transaction. Returns ``{"deleted": n, "inserted": m}``."""
    now = now or utc_now()
    deleted = session.execute(delete(ServingDailyRollupRow).where(ServingDailyRollupRow.day == day)).rowcount or 0
    records = _records(day, parts, source, now)
    if records:
        session.execute(insert(ServingDailyRollupRow), records)
    return {"deleted": int(deleted), "inserted": len(records)}


def read_serving_days(session: Session, first: date, last: date) -> pl.DataFrame:
    """Stored rows with ``first <= day <= last``: ``day``, ``source`` and the parts (with one
    ``le_<bound>`` column per bucket bound found), in one query."""
    t = ServingDailyRollupRow
    result = session.execute(select(t.day, t.source, t.cluster, t.namespace, *[getattr(t, c) for c in _FIGURES],
                                    t.buckets).where(t.day.between(first, last))
                             .order_by(t.day, t.cluster, t.namespace)).all()
    bounds: set[float] = set()
    rows = []
    for r in result:
        counts = {}
        for key, value in (r.buckets or {}).items():
            bound = bucket_bound(BUCKET_PREFIX + key)
            if bound is not None and value is not None:
                counts[bucket_name(bound)] = float(value)
                bounds.add(bound)
        rows.append({"day": r.day, "source": r.source, "cluster": r.cluster, "namespace": r.namespace,
                     **{c: getattr(r, c) for c in _FIGURES}, **counts})
    schema = {"day": pl.Date, "source": pl.Utf8} | SERVING_PARTS_SCHEMA | {bucket_name(b): pl.Float64 for b in sorted(bounds)}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def stored_days(session: Session, first: date | None = None, last: date | None = None) -> list[date]:
    """The days that have stored rows (between ``first`` and ``last`` when given), oldest first."""
    q = select(ServingDailyRollupRow.day).distinct()
    if first is not None:
        q = q.where(ServingDailyRollupRow.day >= first)
    if last is not None:
        q = q.where(ServingDailyRollupRow.day <= last)
    return sorted(session.execute(q).scalars())


def summary(day: date, parts: pl.DataFrame, source: str, counts: dict) -> dict:
    """What the job reports of one day's service rollup."""
    return {"day": day.isoformat(), "source": source, "services": parts.height,
            "requests": float(parts["requests"].sum()) if parts.height else 0.0,
            "coverage": round(float(parts["covered_s"].mean()) / DAY_S, 6) if parts.height else None, **counts}


def rollup_serving_day(*, sessions: sessionmaker[Session], source: Any, day: date, now: datetime | None = None) -> dict:
    """Roll ``day``'s request samples up from ``source`` and replace that day's rows in one
    transaction; a day without any request sample stores nothing (``skipped``)."""
    from core.db.session import unit_of_work

    parts = day_parts(source, day)
    kind = source_kind(source)
    if parts.height == 0:
        return {**summary(day, parts, kind, {"deleted": 0, "inserted": 0}), "skipped": True}
    with unit_of_work(sessions) as session:
        counts = replace_serving_day(session, day, parts, source=kind, now=now)
    return {**summary(day, parts, kind, counts), "skipped": False}


def ensure_serving_rollups(sessions: sessionmaker[Session], source: Any, days: list[date]) -> dict:
    """Roll up each of ``days`` that has no stored service rollup yet (the demo: every day of the
    offline request samples), all in one transaction. Returns ``{"days": n, "rows": m}``; zero on a
    second call."""
    from core.db.session import unit_of_work

    with unit_of_work(sessions) as s:
        done = set(stored_days(s))
    todo = {day: day_parts(source, day) for day in days if day not in done}
    todo = {day: parts for day, parts in todo.items() if parts.height}
    kind, rows = source_kind(source), 0
    with unit_of_work(sessions) as s:
        for day, parts in todo.items():
            rows += replace_serving_day(s, day, parts, source=kind)["inserted"]
    return {"days": len(todo), "rows": rows}


# --------------------------------------------------------------------------- a month


@dataclass(frozen=True)
class ServingBasis:
    """Where a window's QPS and latency come from: days read from rollups (and their sources), days
    read live (and from which source), and the days of the window."""

    rollup_days: int
    rollup_sources: tuple[str, ...]
    live_days: int
    live_source: str
    window_days: int


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped as (first, last) runs."""
    out: list[tuple[date, date]] = []
    for d in days:
        if out and out[-1][1] + timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def month_parts(stored: pl.DataFrame, start: datetime, end: datetime, *,
                live: Any = None) -> tuple[pl.DataFrame, ServingBasis]:
    """The parts of ``[start, end)`` (whole UTC days from ``start``; ``end`` may cut the last one):
    the ``stored`` rows (a :func:`read_serving_days` frame) of the window's days, and ``live`` (a
    source for :func:`window_parts`, or None) over each run of days without stored rows. Raises what
    ``live`` raises (MetricsUnavailable, a malformed file)."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    stored = stored.filter(pl.col("day").is_between(first, last))
    have = set(stored["day"].to_list())
    missing = [first + timedelta(days=i) for i in range((last - first).days + 1)
               if first + timedelta(days=i) not in have]
    frames = [stored.drop("day", "source")]
    if live is not None:
        for lo, hi in _runs(missing):
            frames.append(window_parts(live, max(start, day_bounds(lo)[0]), min(end, day_bounds(hi)[1])))
    parts = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    basis = ServingBasis(len(have), tuple(sorted(set(stored["source"].to_list()))),
                         len(missing) if live is not None else 0, source_kind(live) if live is not None else "",
                         (last - first).days + 1)
    return parts, basis
