"""The ``gpu_daily_rollups`` table and storing one day's rollup in it (idempotently).

One row per (day, GPU uuid, namespace) — the unique key. Storing a day deletes that day's rows and
inserts the new ones in the caller's transaction, so re-running the job for a day replaces it
exactly and a failure leaves the previous rows in place.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
from sqlalchemy import Date, DateTime, Float, Index, Integer, String, UniqueConstraint, delete, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import utc_now
from core.db.models import Base
from core.metrics.schema import ROLLUP_SCHEMA


class GpuDailyRollupRow(Base):
    """One GPU × namespace × UTC day of usage (see :mod:`core.metrics.rollup` for each figure)."""

    __tablename__ = "gpu_daily_rollups"
    __table_args__ = (
        UniqueConstraint("day", "uuid", "namespace", name="uq_gpu_daily_rollups_day_uuid_namespace"),
        Index("ix_gpu_daily_rollups_namespace_day", "namespace", "day"),
        # covering index of the water-level trend's per-node sums (core/metrics/trend_sql.py)
        Index("ix_gpu_daily_rollups_day_hostname_sums", "day", "hostname", "allocated_gpu_hours", "used_gpu_hours",
              "mean_util", "samples"),
        Index("ix_gpu_daily_rollups_computed_at", "computed_at"),  # newest_rollup: one index lookup
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    cluster: Mapped[str] = mapped_column(String(64))
    hostname: Mapped[str] = mapped_column(String(253))
    uuid: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(63))  # "" = no workload (idle/unallocated)
    mean_util: Mapped[float | None] = mapped_column(Float, nullable=True)
    peak_util: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_mem: Mapped[float | None] = mapped_column(Float, nullable=True)
    peak_mem: Mapped[float | None] = mapped_column(Float, nullable=True)
    allocated_gpu_hours: Mapped[float] = mapped_column(Float)
    used_gpu_hours: Mapped[float] = mapped_column(Float)
    energy_kwh: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    expected_samples: Mapped[int] = mapped_column(Integer)
    coverage: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def replace_day(session: Session, day: date, rows: pl.DataFrame, *, now: datetime | None = None) -> dict:
    """Replace ``day``'s rollup rows with ``rows`` (a :data:`ROLLUP_SCHEMA` frame) in ``session``'s
    transaction. Returns ``{"deleted": n, "inserted": m}``."""
    now = now or utc_now()
    deleted = session.execute(delete(GpuDailyRollupRow).where(GpuDailyRollupRow.day == day)).rowcount or 0
    records = rows.select(list(ROLLUP_SCHEMA)).with_columns(pl.lit(day, dtype=pl.Date).alias("day")).to_dicts()
    for r in records:
        r["computed_at"] = now
    if records:
        session.execute(insert(GpuDailyRollupRow), records)
    return {"deleted": int(deleted), "inserted": len(records)}


def read_days(session: Session, first: date, last: date) -> pl.DataFrame:
    """Stored rollup rows with ``first <= day <= last`` as a :data:`ROLLUP_SCHEMA` frame."""
    cols = [getattr(GpuDailyRollupRow, c) for c in ROLLUP_SCHEMA]
    result = session.execute(select(*cols).where(GpuDailyRollupRow.day.between(first, last))
                             .order_by(GpuDailyRollupRow.day, GpuDailyRollupRow.uuid, GpuDailyRollupRow.namespace))
    return pl.DataFrame([tuple(r) for r in result], schema=ROLLUP_SCHEMA, orient="row")


def newest_rollup(session: Session) -> tuple[int, str]:
    """The newest GPU rollup as (largest row id, latest ``computed_at``), ``(0, "")`` when there is
    none: it changes whenever a day is rolled up (:func:`replace_day` stamps its rows with the time;
    the id alone does not do, as SQLite reuses the ids of the last day when it is rolled up again).
    Two index lookups. A read of the rollups cached under it is read again once a day has been rolled
    up; the rollup job writes no audit event, so :func:`core.db.changes.latest_change` cannot see it."""
    # two scalar subqueries: SQLite answers a lone max() from an index, but scans the table for two in one select
    newest, at = session.execute(select(select(func.max(GpuDailyRollupRow.id)).scalar_subquery(),
                                        select(func.max(GpuDailyRollupRow.computed_at)).scalar_subquery())).one()
    return int(newest or 0), str(at or "")


def count_rows(session: Session, day: date | None = None) -> int:
    """Number of stored rollup rows (of ``day`` when given)."""
    q = select(func.count()).select_from(GpuDailyRollupRow)
    if day is not None:
        q = q.where(GpuDailyRollupRow.day == day)
    return int(session.execute(q).scalar_one())


def rollup_and_store(*, sessions, source, day: date, step_s: int = 60, now: datetime | None = None,
                     serving: tuple[pl.DataFrame, str] | None = None,
                     cpu: tuple[pl.DataFrame, str] | None = None) -> dict:
    """The daily rollup job: roll ``day`` up from ``source`` (a MetricsSource) and replace that day's
    rows in one transaction of ``sessions`` (a session factory).

    ``serving`` (optional) is ``(parts, source kind)``: the day's service request figures
    (:func:`core.metrics.serving_rollup.day_parts`), stored in ``serving_daily_rollups`` in the same
    transaction; either kind of samples is then enough for the day, and each table is replaced only
    when its own samples exist.

    ``cpu`` (optional) is ``(parts, source kind)``: the day's CPU figures per namespace
    (:func:`core.metrics.cpu.day_parts`), stored in ``cpu_daily_rollups`` in the same transaction,
    on the same terms as ``serving``.

    Returns ``{"day", "rows", "gpus", "namespaces", "deleted", "inserted", "coverage"}`` (coverage:
    the mean over GPUs), plus ``"serving"`` (the service rollup's summary, None without request
    samples) when ``serving`` is given, and ``"cpu"`` likewise. Raises :class:`InputError` (field "day") when the source has
    no samples for the day — stored rows are then left alone, so expired raw data never wipes a
    rollup — and whatever the source raises for malformed files.
    """
    from core.db.locks import job_lock
    from core.db.session import unit_of_work
    from core.errors import InputError

    rows = source.daily_gpu_stats(day, step_s=step_s)
    served = serving is not None and serving[0].height > 0
    cpu_seen = cpu is not None and cpu[0].height > 0
    if rows.height == 0 and not served and not cpu_seen:
        raise InputError("metrics.no_samples", field="day", day=day.isoformat())
    extra = {}
    # two rollups of one day at once (cron overlap, a backfill beside the daily run) take turns:
    # the second waits, then replaces the day again (same rows), instead of failing on the unique key
    with job_lock(sessions, f"rollup:{day.isoformat()}", wait=True), unit_of_work(sessions) as session:
        counts = replace_day(session, day, rows, now=now) if rows.height else {"deleted": 0, "inserted": 0}
        if serving is not None:
            from core.metrics.serving_rollup import replace_serving_day, summary

            parts, kind = serving
            extra["serving"] = (summary(day, parts, kind, replace_serving_day(session, day, parts, source=kind, now=now))
                                if served else None)
        if cpu is not None:
            from core.metrics.cpu import replace_cpu_day, summary as cpu_summary

            parts, kind = cpu
            extra["cpu"] = (cpu_summary(day, parts, kind, replace_cpu_day(session, day, parts, source=kind, now=now))
                            if cpu_seen else None)
    per_gpu = rows.group_by("uuid").agg(pl.col("coverage").first())
    return {
        "day": day.isoformat(), "rows": rows.height, "gpus": per_gpu.height,
        "namespaces": rows.filter(pl.col("namespace") != "")["namespace"].n_unique(),
        "coverage": round(float(per_gpu["coverage"].mean()), 6) if per_gpu.height else 0.0, **counts, **extra,
    }
