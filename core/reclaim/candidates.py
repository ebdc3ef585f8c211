"""Inference reclaim candidates (待回收候选) from the daily rollups — pure functions.

A service (namespace) is a candidate for a month when, on EVERY counted day, its daily peak GPU
utilisation AND its daily peak memory occupancy were below ``candidate_peak_below``. A day
counts only when its sample coverage reaches ``candidate_min_day_coverage`` and both peaks are
known: a day with thin data says nothing either way. The service must have at least
``candidate_min_days`` counted days — a service created mid-month is judged on its own days.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Iterable

import polars as pl

from core.reclaim.policy import ReclaimPolicy
from core.reclaim.warnings import month_bounds


@dataclass
class CandidateCheck:
    """One service's month: the verdict and the days behind it."""

    namespace: str
    month: str
    candidate: bool
    days_counted: int
    busy_days: list[str] = field(default_factory=list)
    max_peak_util: float | None = None
    max_peak_mem: float | None = None
    series: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (JSON-safe)."""
        return asdict(self)


def check_services(frame: pl.DataFrame, month: str, namespaces: Iterable[str], policy: ReclaimPolicy) -> list[CandidateCheck]:
    """The verdict for each of ``namespaces`` (services without rows get ``days_counted`` 0)."""
    first, last = month_bounds(month)
    rows = frame.filter((pl.col("day") >= first) & (pl.col("day") <= last))
    out = []
    for ns in sorted(set(namespaces)):
        part = rows.filter(pl.col("namespace") == ns)
        series, busy = [], []
        for (day,), d in sorted(part.group_by(["day"]), key=lambda kv: kv[0][0]):
            pu, pm = d["peak_util"].max(), d["peak_mem"].max()
            # rounded like the warnings' coverage: a day at exactly the threshold counts
            cov = round(min(float(d["coverage"].mean()), 1.0), 6)
            counted = cov >= policy.candidate_min_day_coverage and pu is not None and pm is not None
            day_iso = day.isoformat() if isinstance(day, date) else str(day)
            if counted and not (pu < policy.candidate_peak_below and pm < policy.candidate_peak_below):
                busy.append(day_iso)
            series.append({"day": day_iso, "peak_util": pu, "peak_mem": pm, "coverage": cov, "counted": counted})
        counted_days = [s for s in series if s["counted"]]
        ok = len(counted_days) >= policy.candidate_min_days and not busy
        out.append(CandidateCheck(
            namespace=ns, month=month, candidate=ok, days_counted=len(counted_days), busy_days=busy,
            max_peak_util=max((s["peak_util"] for s in counted_days), default=None),
            max_peak_mem=max((s["peak_mem"] for s in counted_days), default=None), series=series))
    return out
