"""Demo history for the board's trends: older months of daily rollups, and last month's demo
training jobs with recorded results — made once, after ``demo metrics``.

* :func:`ensure_history` fills every day from the first day of the month ``months`` months ago up
  to the day before the earliest stored rollup (the recent days ``demo metrics`` made at a fine
  step) with the rollups of the same demo fleet (``manifest.json`` of the samples folder, else
  :func:`core.metrics.fleet.build_fleet`), generated at a coarse step (default hourly) through
  :func:`core.metrics.fleet.generate_days` and rolled up with :func:`core.metrics.rollup.rollup_day`.
  Only the rollups are stored (``gpu_daily_rollups``), not the raw samples: the usage sheet's
  minute curves stay on the recent days. Days already stored are left alone.
* :func:`seed_training_runs` submits four demo training requests for last month through the
  lifecycle services (approved by the demo ops lead, provisioned by the plan backend, returned by
  the owner), binds each allocation to a training namespace of the demo fleet (the only place
  the demo GPU samples exist; an audit event ``demo.namespace_bound`` says so) and records the
  owner's training results for three of them; the fourth stays "not recorded". The fleet keeps
  running those namespaces after the return: they are the demo's GPUs "in use without an
  allocation" (:mod:`core.demo_fleet` grants the fleet's other namespaces, not these).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import as_of, utc_now, utc_today
from core.db.models import AuditEventRow
from core.db.session import unit_of_work
from core.errors import InputError
from core.metrics.persistence import GpuDailyRollupRow
from core.metrics.schema import ROLLUP_SCHEMA


def _month_start(day: date, back: int) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def demo_fleet():
    """The demo fleet: the manifest of the samples folder, else the default fleet."""
    from core.metrics.fleet import build_fleet, load_manifest
    from core.metrics.sources import metrics_dir

    try:
        return load_manifest(metrics_dir())
    except InputError:
        return build_fleet()


def _store(sessions: sessionmaker[Session], batch: list[tuple[date, pl.DataFrame]]) -> int:
    """Replace the rollup rows of the batch's days in one transaction: COPY on PostgreSQL, the
    DBAPI's executemany on SQLite (ten times faster than the ORM's per-day insert for the ~370,000
    rows of a year), a Core executemany elsewhere."""
    if not batch:
        return 0
    now = utc_now()
    frame = pl.concat([f.select(list(ROLLUP_SCHEMA)).with_columns(pl.lit(d, dtype=pl.Date).alias("day"))
                       for d, f in batch]).with_columns(pl.lit(now).alias("computed_at"))
    table = GpuDailyRollupRow.__table__
    with unit_of_work(sessions) as s:
        s.execute(delete(GpuDailyRollupRow).where(GpuDailyRollupRow.day.in_([d for d, _ in batch])))
        conn = s.connection()
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg" and frame.height:
            # PostgreSQL: COPY instead of SQLAlchemy's batched multi-row INSERTs, which took 7.9 s of
            # the 13-month history test (that test: 24 s -> 5.5 s on the test database)
            columns = ", ".join(frame.columns)
            with conn.connection.driver_connection.cursor() as cursor, \
                    cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                for row in frame.iter_rows():
                    copy.write_row(row)
        elif conn.dialect.name != "sqlite":
            conn.execute(table.insert(), frame.to_dicts())
        elif frame.height:
            # SQLite: the DBAPI's executemany with dates already in the text layout SQLAlchemy's SQLite
            # dialect stores and reads ("YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS.ffffff"); SQLAlchemy's
            # per-row parameter processing would take two thirds of the time.
            frame = frame.with_columns(pl.col("day").dt.strftime("%Y-%m-%d"),
                                       pl.lit(now.strftime("%Y-%m-%d %H:%M:%S.%f")).alias("computed_at"))
            columns = ", ".join(frame.columns)
            marks = ", ".join("?" * len(frame.columns))
            conn.connection.driver_connection.executemany(
                f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", frame.rows())
    return frame.height


def ensure_history(sessions: sessionmaker[Session], *, months: int = 13, step_s: int = 3600,
                   today: date | None = None) -> dict[str, Any]:
    """Store the demo fleet's rollups of the days before the earliest stored one, back to the first
    day of the month ``months`` months before ``today`` (UTC). Returns ``{"first", "last", "days",
    "rows"}`` (days 0 when nothing was missing). Raises :class:`InputError` on a bad ``months`` or
    ``step_s``."""
    from core.metrics.fleet import generate_days
    from core.metrics.rollup import expected_per_day, rollup_day

    if not isinstance(months, int) or months < 1:
        raise InputError("metrics.bad_days", field="months", value=months)
    expected_per_day(step_s)
    today = today or utc_today()
    first = _month_start(today, months)
    with unit_of_work(sessions) as s:
        earliest = s.scalar(select(func.min(GpuDailyRollupRow.day)))
        stored = set(s.scalars(select(GpuDailyRollupRow.day).where(GpuDailyRollupRow.day >= first).distinct()))
    end = min(earliest, today) if earliest else today  # exclusive
    if end <= first:
        return {"first": first.isoformat(), "last": None, "days": 0, "rows": 0}
    days, rows = 0, 0
    batch: list[tuple[date, Any]] = []
    # Generated in order (the energy counters carry over from day to day); stored a month at a time.
    for day, samples in generate_days(demo_fleet(), start=first, days=(end - first).days, step_s=step_s):
        if day in stored:
            continue
        batch.append((day, rollup_day(samples, day, step_s=step_s)))
        if day.month != (day + timedelta(days=1)).month or day + timedelta(days=1) == end:
            rows += _store(sessions, batch)
            days += len(batch)
            batch = []
    return {"first": first.isoformat(), "last": (end - timedelta(days=1)).isoformat(), "days": days, "rows": rows}


# (fleet pool, days from the month's first day, days of the term, result or None)
DEMO_RUNS = (
    ("hq-lang", 2, 20, {"metric": "eval_loss", "value": 1.87, "higher_is_better": False, "baseline": 2.14,
                        "dataset": "电力规程验证集 (held-out 2%)", "run": "cpt-v3"}),
    ("hq-mm", 4, 14, {"metric": "accuracy", "value": 0.913, "higher_is_better": True, "baseline": 0.874,
                      "dataset": "输电线路缺陷测试集 v2", "run": "vit-l-ft"}),
    ("hq-sci", 6, 10, {"metric": "mape", "value": 0.062, "higher_is_better": False, "baseline": 0.081,
                       "dataset": "2025 风光功率留出集", "run": "fcst-13"}),
    ("hq-lang", 10, 12, None),
)


def _training_namespaces() -> dict[str, list[tuple[str, int]]]:
    """Pool → [(training namespace, GPUs)] of the demo fleet, in fleet order."""
    out: dict[str, dict[str, int]] = {}
    for g in demo_fleet().by_kind("training"):
        out.setdefault(g.pool, {}).setdefault(g.namespace, 0)
        out[g.pool][g.namespace] += 1
    return {p: list(v.items()) for p, v in out.items()}


def run_namespaces() -> list[tuple[str, int] | None]:
    """The demo fleet's training namespace (and its GPUs) each of :data:`DEMO_RUNS` binds, in order
    (None when its pool has no training namespace left)."""
    free = _training_namespaces()
    return [free[pool].pop(0) if free.get(pool) else None for pool, *_ in DEMO_RUNS]


def seed_training_runs(sessions: sessionmaker[Session], *, today: date | None = None) -> dict[str, Any]:
    """Last month's demo training jobs with results (see the module docstring) — once.

    Returns ``{"month", "jobs", "results"}`` (zeros when already done).
    """
    # the form's "no start date in the past" and every timestamp follow ``today`` (now, by default:
    # 09:00 UTC of the real today may not have come yet)
    with as_of(today or utc_now()):
        return _seed_training_runs(sessions, today or utc_today())


def _seed_training_runs(sessions: sessionmaker[Session], today: date) -> dict[str, Any]:
    from core.demo import _training_form, backdate
    from core.identity import load_personas
    from core.lifecycle import services as lifecycle
    from core.lifecycle.persistence import AllocationRow
    from core.reclaim import services as reclaim
    from core.reports.results import record_result

    start_of_month = _month_start(today, 1)
    month = start_of_month.strftime("%Y-%m")
    with unit_of_work(sessions) as s:
        if s.scalar(select(func.count()).select_from(AuditEventRow).where(AuditEventRow.action == "demo.namespace_bound")):
            return {"month": month, "jobs": 0, "results": 0}
    people = {p.id: p for p in load_personas()}
    owner, ops = people["zhang.wei"], people["li.na"]
    jobs = results = 0
    for (pool, offset, days, result), bound in zip(DEMO_RUNS, run_namespaces()):
        if bound is None:
            continue
        namespace, gpus = bound
        started = start_of_month + timedelta(days=offset)
        form = _training_form(project="P-LLM-01", department="digital", applicant=owner.name, pool=pool, gpus=gpus,
                              days=days, start=today,
                              subtype="l1_foundation" if pool == "hq-lang" else "l2_finetune",
                              background=f"演示：上月训练任务（{namespace}）")
        view = lifecycle.submit(sessions=sessions, actor=owner, form=form)
        if view["status"] in ("submitted", "in_review"):
            view = lifecycle.decide(sessions=sessions, actor=ops, request_id=view["id"], decision="approve",
                                    reason="演示：资源池余量充足")
        rid = view["id"]
        backdate(sessions, rid, (today - started).days)  # the form refuses past dates: made now, then shifted
        reclaim.return_allocation(sessions=sessions, actor=owner, request_id=rid, reason="演示：训练完成，主动退订")
        with unit_of_work(sessions) as s:
            alloc = s.scalars(select(AllocationRow).where(AllocationRow.request_id == rid)).one()
            before = alloc.namespace
            alloc.namespace = namespace
            s.add(AuditEventRow(at=utc_now(), actor="system:demo", action="demo.namespace_bound",
                                subject=f"request:{rid}", reason="demo GPU samples exist for the demo fleet's namespaces",
                                before={"namespace": before}, after={"namespace": namespace}))
        jobs += 1
        if result:
            record_result(sessions=sessions, actor=owner, request_id=rid, **result)
            results += 1
    return {"month": month, "jobs": jobs, "results": results}
