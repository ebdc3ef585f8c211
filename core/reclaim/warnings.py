"""Monthly utilisation warnings (预警) computed from the daily rollups — pure functions.

Per resource (a workload namespace, i.e. one allocation) and month:

* ``util`` / ``mem`` — the month's GPU-hour-weighted means: Σ mean_util × allocated_gpu_hours /
  Σ allocated_gpu_hours over the resource's rollup rows (rows without a value are left out of
  that mean, never counted as zero);
* ``coverage`` — Σ over observed days of the day's mean sample coverage / the days of the month
  the resource existed (the days its allocation held it, :mod:`core.reclaim.ownership`; the whole
  month when no allocation did);
* ``level`` — ``yellow`` when util and mem are both below ``yellow_below``; ``orange`` when util
  is above ``orange_above``; none when neither, or when coverage is below ``min_coverage``
  (``insufficient`` then says so). The comparisons are strict: exactly 20 % is not yellow,
  exactly 80 % is not orange.

The evidence is the numbers plus the daily series (util, mem, GPU-hours, coverage per day).
"""

from __future__ import annotations

import calendar
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Mapping

import polars as pl

from core.errors import InputError
from core.reclaim.policy import Thresholds

LEVELS: tuple[str, ...] = ("yellow", "orange")


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of ``month`` (YYYY-MM); :class:`InputError` (field month) otherwise."""
    try:
        year, mon = (int(x) for x in str(month).split("-"))
        first = date(year, mon, 1)
    except (ValueError, TypeError):
        raise InputError("reclaim.bad_month", field="month", value=month) from None
    return first, date(year, mon, calendar.monthrange(year, mon)[1])


def previous_month(today: date) -> str:
    """The last complete month before ``today`` (YYYY-MM)."""
    first = today.replace(day=1)
    last = date.fromordinal(first.toordinal() - 1)
    return f"{last.year:04d}-{last.month:02d}"


def scope_days(month: str, window: tuple[date | None, date | None] | None) -> tuple[date, date, int]:
    """The days of ``month`` a resource existed: (first, last, count); count 0 when none."""
    first, last = month_bounds(month)
    if window is not None:
        start, end = window
        if start is not None and start > first:
            first = start
        if end is not None and end < last:
            last = end
    count = (last - first).days + 1
    return first, last, max(count, 0)


@dataclass
class Assessment:
    """A resource's month: the means, coverage, level and the daily series behind them."""

    resource: str
    month: str
    util: float | None
    mem: float | None
    gpu_hours: float
    coverage: float
    days_in_scope: int
    days_observed: int
    level: str | None
    insufficient: bool = False
    series: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (JSON-safe; days as ISO strings)."""
        out = asdict(self)
        out["series"] = [{**d, "day": d["day"].isoformat() if isinstance(d["day"], date) else d["day"]}
                         for d in self.series]
        return out


def _weighted(values: pl.Series, weights: pl.Series) -> float | None:
    mask = values.is_not_null()
    w = weights.filter(mask)
    total = float(w.sum()) if len(w) else 0.0
    if total <= 0:
        return None
    return float((values.filter(mask) * w).sum()) / total


def level_of(util: float | None, mem: float | None, thresholds: Thresholds) -> str | None:
    """The warning level of monthly means (strict comparisons), or None."""
    if util is None:
        return None
    if util > thresholds.orange_above:
        return "orange"
    if mem is not None and util < thresholds.yellow_below and mem < thresholds.yellow_below:
        return "yellow"
    return None


def assess(frame: pl.DataFrame, month: str, thresholds: Thresholds,
           windows: Mapping[str, tuple[date | None, date | None]] | None = None) -> list[Assessment]:
    """Assess every namespace that has rollup rows in ``month``.

    Args:
        frame: rollup rows (:data:`core.metrics.schema.ROLLUP_SCHEMA`); other months are ignored.
        windows: namespace → (first, last) day its allocation held it (inclusive;
            :func:`core.reclaim.ownership.held_span`), for the coverage's days; the whole month
            for a namespace without one.
    """
    first, last = month_bounds(month)
    windows = windows or {}
    rows = frame.filter((pl.col("day") >= first) & (pl.col("day") <= last) & (pl.col("namespace") != ""))
    out: list[Assessment] = []
    for (namespace,), part in sorted(rows.group_by(["namespace"]), key=lambda kv: kv[0][0]):
        _, _, days = scope_days(month, windows.get(namespace))
        series = []
        for (day,), d in sorted(part.group_by(["day"]), key=lambda kv: kv[0][0]):
            series.append({"day": day, "util": _weighted(d["mean_util"], d["allocated_gpu_hours"]),
                           "mem": _weighted(d["mean_mem"], d["allocated_gpu_hours"]),
                           "gpu_hours": float(d["allocated_gpu_hours"].sum()),
                           "coverage": min(float(d["coverage"].mean()), 1.0)})
        # Rounded before the comparison: the decision must agree with the figure shown as evidence
        # (30 days at 0.62 over 31 days sums to 0.5999… in floating point, shown as 60 %).
        coverage = round(min(sum(s["coverage"] for s in series) / days, 1.0), 6) if days else 0.0
        util = _weighted(part["mean_util"], part["allocated_gpu_hours"])
        mem = _weighted(part["mean_mem"], part["allocated_gpu_hours"])
        level = level_of(util, mem, thresholds)
        insufficient = coverage < thresholds.min_coverage
        out.append(Assessment(resource=namespace, month=month, util=util, mem=mem,
                              gpu_hours=float(part["allocated_gpu_hours"].sum()), coverage=coverage,
                              days_in_scope=days, days_observed=len(series),
                              level=None if insufficient else level, insufficient=insufficient, series=series))
    return out
