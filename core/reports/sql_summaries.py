"""Month summaries (trends, the annual summary) summed in the database.

:func:`core.reports.build.month_summary` gives the headline figures of one month from its rollup
rows. Reading every row of a year for it (≈ 30,000 rows a month on the demo fleet) cost seconds;
the figures are only sums, so here the database sums them and Python reads a few rows a month.

Per month, two grouped queries over ``gpu_daily_rollups`` (``day`` in the month, ``cluster`` in
the scope; the ``day`` index keeps each to its month, so only the months asked are read):

* :func:`model_sums` — per GPU model: Σ allocated and Σ used GPU-hours of the rows with a
  namespace, Σ used GPU-hours and Σ energy of every row, and how many rows of each kind;
* :func:`gpu_day_coverage` — Σ over GPU-days of the GPU-day's coverage (each GPU-day once).

:func:`summary` derives the figures from them exactly as ``month_summary`` does: utilisation =
Σ used ÷ Σ allocated GPU-hours of the rows with a namespace; cost = Σ over GPU models with a
catalog price of its allocated GPU-hours × the price (None when no such row); coverage = Σ GPU-day
coverage ÷ (GPUs of the scope × days of the month). The figures equal the polars path's up to the
order floating-point sums are taken in (tests/integration/test_report_summaries_sql.py).

Coverage is a figure of the GPU and day (its samples in any namespace ÷ expected samples,
:mod:`core.metrics.rollup`), written alike on each of its rows; the GPU-day's value is taken once
(``MAX``), as the polars path takes its first row's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Iterable, Mapping

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.metrics.persistence import GpuDailyRollupRow as R
from core.reports.build import _div, _r, parse_month


@dataclass
class Sums:
    """Rollup sums of one GPU model over a month (in scope)."""

    rows: int = 0                 # rollup rows
    allocated_rows: int = 0       # rows with a namespace
    allocated_hours: float = 0.0  # Σ allocated GPU-hours, rows with a namespace
    used_allocated: float = 0.0   # Σ used GPU-hours, rows with a namespace
    used_hours: float = 0.0       # Σ used GPU-hours, every row
    energy_kwh: float = 0.0       # Σ energy, every row

    @classmethod
    def total(cls, parts: Iterable["Sums"]) -> "Sums":
        parts = list(parts)
        return cls(*(sum(getattr(p, f.name) for p in parts) for f in fields(cls)))


def _in_scope(first: date, last: date, clusters: Iterable[str]):
    return R.day.between(first, last), R.cluster.in_(sorted(clusters))


def model_sums(session: Session, first: date, last: date, clusters: Iterable[str]) -> dict[str, Sums]:
    """GPU model → :class:`Sums` of the rollup rows of ``clusters`` with ``first <= day <= last``."""
    allocated = R.namespace != ""
    query = (select(R.model, func.count(),
                    func.sum(case((allocated, 1), else_=0)),
                    func.sum(case((allocated, R.allocated_gpu_hours), else_=0.0)),
                    func.sum(case((allocated, R.used_gpu_hours), else_=0.0)),
                    func.sum(R.used_gpu_hours), func.sum(R.energy_kwh))
             .where(*_in_scope(first, last, clusters)).group_by(R.model))
    return {model: Sums(int(n), int(n_alloc or 0), float(alloc or 0), float(used_alloc or 0),
                        float(used or 0), float(energy or 0))
            for model, n, n_alloc, alloc, used_alloc, used, energy in session.execute(query)}


def gpu_day_coverage(session: Session, first: date, last: date, clusters: Iterable[str]) -> float:
    """Σ over the GPU-days of ``clusters`` with ``first <= day <= last`` of the GPU-day's coverage."""
    per_gpu_day = (select(func.max(R.coverage).label("coverage"))
                   .where(*_in_scope(first, last, clusters)).group_by(R.day, R.uuid).subquery())
    return float(session.execute(select(func.sum(per_gpu_day.c.coverage))).scalar() or 0)


def summary(month: str, per_model: Mapping[str, Sums], coverage: float, *,
            prices: Mapping[str, tuple[float, bool]], gpus_total: int) -> dict[str, Any] | None:
    """The figures of :func:`~core.reports.build.month_summary` from the month's :func:`model_sums`
    and :func:`gpu_day_coverage`; None without a row."""
    first, last = parse_month(month)
    total = Sums.total(per_model.values())
    if total.rows == 0:
        return None
    costed = [float(prices[m][0]) * s.allocated_hours for m, s in per_model.items() if m in prices and s.allocated_rows]
    expected = gpus_total * ((last - first).days + 1)
    return {
        "month": month,
        "gpu_hours_allocated": _r(total.allocated_hours, 4),
        "gpu_hours_used": _r(total.used_hours, 4),
        "util_allocated": _r(_div(total.used_allocated, total.allocated_hours)),
        "energy_kwh": _r(total.energy_kwh, 4),
        "cost": _r(sum(costed), 2) if costed else None,
        "coverage": _r(min(1.0, coverage / expected), 4) if expected else None,
    }


def month_summaries(session: Session, months: Iterable[str], *, clusters: Iterable[str],
                    prices: Mapping[str, tuple[float, bool]], gpus_total: int) -> dict[str, dict[str, Any] | None]:
    """Month → :func:`summary` of the rollups of ``clusters`` in it (None where there is none)."""
    clusters = sorted(clusters)
    out = {}
    for month in months:
        first, last = parse_month(month)
        out[month] = summary(month, model_sums(session, first, last, clusters),
                             gpu_day_coverage(session, first, last, clusters), prices=prices, gpus_total=gpus_total)
    return out
