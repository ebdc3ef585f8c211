"""Inference reclaim candidates (待回收候选) from the daily rollups — pure functions.

A service (namespace) is a candidate for a month when, on EVERY counted day, its daily peak GPU
utilisation AND its daily peak memory occupancy were below ``candidate_peak_below``. A day
counts only when its sample coverage reaches ``candidate_min_day_coverage`` and both peaks are
known: a day with thin data says nothing either way. The service must have at least
``candidate_min_days`` counted days — a service created mid-month is judged on its own days.

:func:`reasons_not_candidate` says why a service is not a candidate, as reason keys (catalog
``reclaim.why.<key>``) with their parameters — what the Reclaim page shows beside each black-list
entry that is not one:

* ``not_inference`` — its allocation is not an inference service (neither an inference pool nor
  the inference demand type); ``kind_unknown`` — no allocation says what it runs and it ran
  outside the inference pools;
* ``released`` — the allocation that held it has been returned or reclaimed since;
* ``created_mid_month`` — it existed on fewer than ``candidate_min_days`` days of the month;
  ``low_coverage`` — it existed long enough, but fewer days than that had enough samples;
* ``busy_day`` — on at least one counted day a peak reached the threshold.
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
    names = sorted(set(namespaces))
    # one aggregation for every service and day (peaks: the day's highest; coverage: its mean)
    days = (frame.filter((pl.col("day") >= first) & (pl.col("day") <= last) & pl.col("namespace").is_in(names))
            .group_by("namespace", "day")
            .agg(pl.col("peak_util").max().alias("pu"), pl.col("peak_mem").max().alias("pm"),
                 pl.col("coverage").mean().alias("cov"))
            .sort("namespace", "day"))
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for r in days.iter_rows(named=True):
        by_ns.setdefault(r["namespace"], []).append(r)
    out = []
    for ns in names:
        series, busy = [], []
        for d in by_ns.get(ns, []):
            pu, pm = d["pu"], d["pm"]
            # rounded like the warnings' coverage: a day at exactly the threshold counts
            cov = round(min(float(d["cov"]), 1.0), 6)
            counted = cov >= policy.candidate_min_day_coverage and pu is not None and pm is not None
            day = d["day"]
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

REASONS: tuple[str, ...] = ("not_inference", "kind_unknown", "released", "created_mid_month", "low_coverage",
                            "busy_day", "awaiting_detection")


def is_inference(pool_kind: str | None, demand_type: str, has_allocation: bool, policy: ReclaimPolicy) -> bool | None:
    """True for an inference service: an inference pool, or an allocation of the inference demand
    type; False for another allocation; None (not known) for usage outside any allocation elsewhere."""
    if pool_kind in policy.inference_pool_kinds or demand_type == "inference":
        return True
    return False if has_allocation else None


def reasons_not_candidate(check: CandidateCheck, *, inference: bool | None, holding: bool, days_present: int,
                          policy: ReclaimPolicy) -> list[dict[str, Any]]:
    """Why ``check``'s service is not a reclaim candidate: ``[{"key", **params}]`` in the order of
    :data:`REASONS` (empty when the rule makes it one; see the module docstring).

    Args:
        inference: :func:`is_inference`.
        holding: its allocation still holds its GPUs (True for usage outside any allocation).
        days_present: days of the month the service existed.
    """
    out: list[dict[str, Any]] = []
    if inference is None:
        out.append({"key": "kind_unknown"})
    elif not inference:
        out.append({"key": "not_inference"})
    if not holding:
        out.append({"key": "released"})
    if check.days_counted < policy.candidate_min_days:
        if days_present < policy.candidate_min_days:
            out.append({"key": "created_mid_month", "days": days_present, "min_days": policy.candidate_min_days})
        else:
            out.append({"key": "low_coverage", "days": check.days_counted, "min_days": policy.candidate_min_days,
                        "min_coverage": policy.candidate_min_day_coverage})
    if check.busy_days:
        busy = [d for d in check.series if d["day"] in set(check.busy_days)]
        peak = max((max(d["peak_util"] or 0.0, d["peak_mem"] or 0.0) for d in busy), default=None)
        out.append({"key": "busy_day", "count": len(check.busy_days), "first": check.busy_days[0], "peak": peak,
                    "threshold": policy.candidate_peak_below})
    return out
