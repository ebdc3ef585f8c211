"""The analysis report (算力资源使用分析评价报告): a second view over the same data as the monthly
report — trend analysis, the month's warnings, topical drill-downs (a cluster, a GPU model, a
department) and an annual summary."""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy.orm import Session, sessionmaker

from core.db.session import unit_of_work
from core.errors import InputError
from core.identity import Identity, require
from core.org import load_org
from core.reports.build import COMPANY, TREND_METRICS, parse_month

DRILL_DIMENSIONS = ("cluster", "model", "department")


def trend_analysis(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per headline metric: this month, the previous month, the same month last year and the changes
    (coverage-normalised), with each comparison's status (``ok``, ``no_data``,
    ``insufficient_data``; reports built before statuses existed say ``ok``)."""
    t = report["trends"]
    status = {k: (t.get("comparison") or {}).get(k, {}).get("status", "ok") for k in ("previous_month", "last_year")}
    return [{"metric": k, "current": (t["current"] or {}).get(k), "previous": (t["previous_month"] or {}).get(k),
             "last_year": (t["same_month_last_year"] or {}).get(k), "vs_previous": t["vs_previous_month"].get(k),
             "vs_last_year": t["vs_last_year"].get(k), "vs_previous_status": status["previous_month"],
             "vs_last_year_status": status["last_year"]} for k in TREND_METRICS]


def annual(summaries: Mapping[str, dict[str, Any] | None], year: int) -> dict[str, Any]:
    """The annual summary from the 12 month summaries of ``year`` (months without data count as missing)."""
    months = [f"{year:04d}-{m:02d}" for m in range(1, 13)]
    have = [summaries[m] for m in months if summaries.get(m)]
    alloc = sum(s["gpu_hours_allocated"] or 0 for s in have)
    used_alloc = sum((s["util_allocated"] or 0) * (s["gpu_hours_allocated"] or 0) for s in have)
    costs = [s["cost"] for s in have if s["cost"] is not None]
    ranked = sorted((s for s in have if s["util_allocated"] is not None), key=lambda s: s["util_allocated"])
    return {
        "year": year, "months": [{"month": m, "summary": summaries.get(m)} for m in months],
        "months_with_data": len(have), "gpu_hours_allocated": round(alloc, 4),
        "gpu_hours_used": round(sum(s["gpu_hours_used"] or 0 for s in have), 4),
        "util_allocated": round(used_alloc / alloc, 6) if alloc else None,
        "energy_kwh": round(sum(s["energy_kwh"] or 0 for s in have), 4),
        "cost": round(sum(costs), 2) if costs else None,
        "best_month": ranked[-1]["month"] if ranked else None, "worst_month": ranked[0]["month"] if ranked else None,
    }


def analysis_report(*, sessions: sessionmaker[Session], actor: Identity, month: str, scope: str = COMPANY,
                    drill: Mapping[str, str] | None = None, year: int | None = None) -> dict[str, Any]:
    """The analysis report of ``month``: trend table, warnings of the month, an optional drill-down
    (``{"cluster"|"model"|"department": id}``) and the annual summary of ``year`` (default: the
    month's year). Ops only.

    Raises:
        PermissionDenied: not ops (or provincial ops for another scope).
        InputError: bad month, scope or drill-down dimension (field "drill").
    """
    from core.reports import service

    require(actor, service.BUILD_ROLES, "read the analysis report")
    first, _ = parse_month(month)
    org = load_org()
    service._check_scope_for(actor, scope, org)
    drill = {k: v for k, v in dict(drill or {}).items() if v}
    if any(k not in DRILL_DIMENSIONS for k in drill) or len(drill) > 1:
        raise InputError("error.choice", field="drill", value=",".join(drill), choices=", ".join(DRILL_DIMENSIONS))
    year = year or first.year
    compared = service.history_months(month)
    year_months = [f"{year:04d}-{m:02d}" for m in range(1, 13)]
    with unit_of_work(sessions) as s:
        # every month summed once: the report, its drill-down and the annual summary share them
        sums = service.summaries(s, sorted({*compared, *year_months}), scope, org)
        history = {m: sums[m] for m in compared}
        report = service.compute(s, month=month, scope=scope, history=history)
        drilled = service.compute(s, month=month, scope=scope, focus=drill, history=history) if drill else None
        year_summaries = {m: sums[m] for m in year_months}
    return {"month": month, "scope": scope, "trend": trend_analysis(report), "warnings": report["warnings"],
            "report": report, "drill": drill or None, "drill_down": drilled, "annual": annual(year_summaries, year)}
