"""The report's tables, one definition shared by the pages, HTML/PDF, Excel and CSV exports.

Cells hold raw values (ratios 0–1, hours, CNY); each column says how it is shown (``pct``,
``num``, ``int``, ``dec`` — four significant digits, for quality metrics —, ``text``), so exports
keep numbers as numbers and pages format them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.i18n import catalog, translate


@dataclass(frozen=True)
class Table:
    """A titled table: column keys with their kind, and rows as dicts keyed by column."""

    key: str
    columns: tuple[tuple[str, str], ...]  # (column key, kind)
    rows: list[dict[str, Any]]

    def title(self, lang: str) -> str:
        """The table's title in ``lang``."""
        return translate(f"reports.table.{self.key}", lang)

    def headers(self, lang: str) -> list[str]:
        """Column headers in ``lang``."""
        return [translate(f"reports.col.{c}", lang) for c, _ in self.columns]


def page_rows(table: Table, limit: int) -> list[dict[str, Any]]:
    """The rows of ``table`` a page shows: all of them up to ``limit``, else the first ``limit`` —
    for the projects table, those with the most allocated GPU-hours (the ones a reader looks for).
    The downloads keep every row."""
    if len(table.rows) <= limit:
        return table.rows
    if table.key == "projects":
        return sorted(table.rows, key=lambda r: -(r.get("gpu_hours_allocated") or 0.0))[:limit]
    return table.rows[:limit]


def fmt(value: Any, kind: str) -> str:
    """A cell as text: ratios as percentages, numbers with thousands separators, None as "—"."""
    if value is None or value == "":
        return "—"
    if kind == "pct":
        return f"{float(value) * 100:.1f}%"
    if kind == "num":
        return f"{float(value):,.2f}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "dec":
        return f"{float(value):.4g}"
    return str(value)


def entity_name(e: dict[str, Any], lang: str) -> str:
    """A project's name in ``lang`` (a namespace is its own name)."""
    return e.get("name_en" if lang == "en" else "name_zh") or e["id"]


def pool_kind(kind: str | None, lang: str) -> str | None:
    """A pool kind (``training_language``, …, data/org.yaml) in ``lang``."""
    return translate(f"pool_kind.{kind}", lang) if kind else kind


def _dept(e: dict[str, Any], lang: str) -> str | None:
    return e.get("department_en" if lang == "en" else "department_zh")


def _gpus_kind(water: dict[str, Any]) -> str:
    """Mean GPUs over the month (schema 3) have decimals; reports built before were GPU counts."""
    return "num" if "portal_granted" in water else "int"


def _water_numbers(water: dict[str, Any]) -> list[tuple[str, Any, str]]:
    if "in_use_unallocated" in water and "portal_granted" in water:  # schema 4: core.capacity_figures, monthly means
        return [("gpus_allocated_mean", water["allocated"], "num"), ("gpus_reserved_mean", water["reserved"], "num"),
                ("gpus_available_mean", water["available"], "num"), ("gpus_in_use_mean", water["in_use"], "num"),
                ("gpus_in_use_unallocated_mean", water["in_use_unallocated"], "num"),
                ("gpus_portal_granted", water["portal_granted"], "int")]
    if "portal_granted" not in water:
        return [("gpus_allocated", water["allocated"], "int"), ("gpus_available", water["available"], "int")]
    return [("gpus_allocated_mean", water["allocated"], "num"), ("gpus_available_mean", water["available"], "num"),
            ("gpus_portal_granted", water["portal_granted"], "int")]


def headline(report: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(metric key, value, kind) of the big numbers at the top of the board."""
    w, h, e = report["water_level"], report["health"], report["economics"]
    return [
        ("gpus_total", w["total"], "int"), *_water_numbers(w), ("util_allocated", h["util_allocated"], "pct"),
        ("util_fleet", h["util_fleet"], "pct"), ("mem_allocated", h["mem_allocated"], "pct"),
        ("queue_wait_mean_h", h["queue_wait"]["mean_h"], "num"),
        ("provisioning_mean_h", h["provisioning_time"]["mean_h"], "num"),
        ("incidents", h["incidents"]["count"], "int"), ("gpu_hours_used", e["gpu_hours_used"], "num"),
        ("energy_kwh", e["energy_kwh"], "num"), ("cost", e["cost"], "num"),
        ("cost_per_useful_gpu_hour", e["cost_per_useful_gpu_hour"], "num"),
        ("coverage", report["coverage"]["metrics"], "pct"),
    ]


RANKINGS = (("red_list", "highest_util"), ("red_list", "best_cost_per_useful_hour"), ("black_list", "lowest_util"),
            ("black_list", "long_idle"), ("black_list", "largest_gap"), ("top", "gpu_util"), ("top", "memory"))


def tables(report: dict[str, Any], lang: str) -> list[Table]:
    """Every table of the report in display order."""
    by_id = {e["id"]: e for e in report.get("entities", [])}
    out = [Table("summary", (("metric", "text"), ("value", "text")),
                 [{"metric": translate(f"reports.metric.{k}", lang), "value": fmt(v, kind)} for k, v, kind in headline(report)])]
    water = report["water_level"]
    gpus = _gpus_kind(water)
    if "in_use_unallocated" in water and "portal_granted" in water:  # schema 4: every figure of core.capacity_figures
        pool_cols = (("total", "int"), ("allocated", gpus), ("reserved", gpus), ("available", gpus),
                     ("in_use", gpus), ("in_use_unallocated", gpus), ("portal_granted", "int"))
        model_cols = (*pool_cols, ("gpus_seen", "int"))
    elif "portal_granted" in water:  # schema 3: allocated from the rollups, the portal's grants beside
        pool_cols = (("total", "int"), ("allocated", gpus), ("available", gpus), ("portal_granted", "int"))
        model_cols = (*pool_cols, ("gpus_seen", "int"))
    else:
        pool_cols = (("total", "int"), ("allocated", "int"), ("available", "int"))
        model_cols = (*pool_cols, ("gpus_seen", "int"), ("mean_gpus_in_use", "num"))
    out.append(Table("water_by_pool", (("pool", "text"), ("kind", "text"), ("cluster", "text"), ("model", "text"),
                                       *pool_cols),
                     [{**r, "kind": pool_kind(r["kind"], lang)} for r in water["by_pool"]]))
    out.append(Table("water_by_model", (("model", "text"), *model_cols), [dict(r) for r in water["by_model"]]))
    rank_rows = []
    for section, name in RANKINGS:
        ids = report[section][name]
        for i, key in enumerate(ids, 1):
            e = by_id.get(key, {"id": key})
            rank_rows.append({"list": translate(f"reports.list.{name}", lang), "rank": i, "project": entity_name(e, lang),
                              "department": _dept(e, lang), "owner": e.get("owner"), "util": e.get("util"),
                              "mem": e.get("mem"), "idle_days": e.get("idle_days"), "gap_gpu_hours": e.get("gap_gpu_hours"),
                              "cost_per_useful_gpu_hour": e.get("cost_per_useful_gpu_hour")})
    out.append(Table("rankings", (("list", "text"), ("rank", "int"), ("project", "text"), ("department", "text"),
                                  ("owner", "text"), ("util", "pct"), ("mem", "pct"), ("idle_days", "int"),
                                  ("gap_gpu_hours", "num"), ("cost_per_useful_gpu_hour", "num")), rank_rows))
    out.append(cpu_top_table(report, lang))
    out.append(Table("projects", (("project", "text"), ("kind", "text"), ("department", "text"), ("owner", "text"),
                                  ("gpus", "int"), ("gpu_hours_allocated", "num"), ("gpu_hours_used", "num"),
                                  ("util", "pct"), ("mem", "pct"), ("peak_util", "pct"), ("idle_days", "int"),
                                  ("requested_gpu_hours", "num"), ("gap_gpu_hours", "num"), ("energy_kwh", "num"),
                                  ("cost", "num"), ("cost_per_useful_gpu_hour", "num"), ("coverage", "pct")),
                     [{**e, "project": entity_name(e, lang), "kind": translate(f"reports.kind.{e['kind']}", lang),
                       "department": _dept(e, lang)} for e in report.get("entities", [])]))
    out.append(Table("economics_by_model", (("model", "text"), ("gpu_hours_allocated", "num"), ("gpu_hours_used", "num"),
                                            ("energy_kwh", "num"), ("price_cny_per_gpu_hour", "num"),
                                            ("price_is_placeholder", "text"), ("cost", "num"),
                                            ("cost_per_useful_gpu_hour", "num")),
                     [{**r, "price_is_placeholder": "*" if r["price_is_placeholder"] else ""}
                      for r in report["economics"]["by_model"]]))
    out.append(training_jobs_table(report, lang))
    t = report["trends"]

    def trend_row(month: str, summary: dict | None, role: str) -> dict[str, Any]:
        note = translate(f"quality.trend.{role}", lang)
        if summary is None:
            note = f"{note} · {translate('quality.trend.no_data', lang)}"
        return {"month": month, **(summary or {}), "note": note}

    trend_rows = [trend_row(m["month"], m["summary"], "previous") for m in t["months"]]
    trend_rows.append(trend_row(report["month"], t["current"], "current"))
    trend_rows.append(trend_row(t["last_year_month"], t["same_month_last_year"], "last_year"))
    out.append(Table("trends", (("month", "text"), ("gpu_hours_used", "num"), ("gpu_hours_allocated", "num"),
                                ("util_allocated", "pct"), ("energy_kwh", "num"), ("cost", "num"), ("coverage", "pct"),
                                ("note", "text")),
                     trend_rows))
    out.append(Table("incidents", (("number", "text"), ("request_id", "int"), ("pool", "text"), ("at", "text"),
                                   ("cause", "text"), ("step", "text"), ("attempt", "int")),
                     [{**i, "cause": translate(f"reportfix.cause.{i['cause']}", lang) if i.get("cause") else None}
                      for i in report["health"]["incidents"]["items"]]))
    return out


CPU_TOP_COLUMNS = (("rank", "int"), ("project", "text"), ("department", "text"), ("cpu_util", "pct"),
                   ("cpu_cores_used_mean", "num"), ("cpu_cores_used_peak", "num"), ("cpu_cores_requested_mean", "num"),
                   ("cpu_coverage", "pct"), ("util", "pct"), ("gpu_hours_allocated", "num"))


def cpu_top_table(report: dict[str, Any], lang: str) -> Table:
    """The top list by CPU utilisation (cores used / cores requested, GPU-hour-weighted) with its
    coverage; empty when the month has no CPU data (reports built before had none either)."""
    cpu = (report.get("top") or {}).get("cpu") or {}
    by_id = {e["id"]: e for e in report.get("entities", [])}
    rows = []
    for i, key in enumerate(cpu.get("ranking") or [] if cpu.get("available") else [], 1):
        e = by_id.get(key, {"id": key})
        rows.append({**{c: e.get(c) for c, _ in CPU_TOP_COLUMNS}, "rank": i, "project": entity_name(e, lang),
                     "department": _dept(e, lang)})
    return Table("cpu_top", CPU_TOP_COLUMNS, rows)


TRAINING_JOB_COLUMNS = (("project", "text"), ("number", "text"), ("owner", "text"), ("gpus", "int"),
                        ("starts_on", "text"), ("until", "text"), ("wall_time_h", "num"), ("gpu_hours", "num"),
                        ("energy_kwh", "num"), ("cost", "num"), ("month_gpu_hours", "num"), ("quality_metric", "text"),
                        ("dataset", "text"), ("quality_value", "dec"), ("baseline", "dec"), ("improvement", "dec"),
                        ("kwh_per_improvement", "num"))


def training_jobs_table(report: dict[str, Any], lang: str) -> Table:
    """Time–quality–energy of the month's typical training jobs; "not recorded" where no result is.

    Reports built before the table existed (schema 1) have no such section: the table is empty.
    """
    section = report["economics"].get("training_jobs") or {"jobs": []}
    rows = []
    for j in section["jobs"]:
        q = j.get("quality") or {}
        metric = translate("quality.not_recorded", lang)
        if q:
            arrow = "↑" if q.get("higher_is_better") else "↓"
            # a metric of data/quality_metrics.yaml in words (uitext.quality_metric.*), any other as recorded
            label = f"uitext.quality_metric.{q['metric']}"
            name = translate(label, lang) if label in catalog(lang) else q["metric"]
            metric = f"{name} {arrow}" + (f" ({q['run']})" if q.get("run") else "")
        rows.append({**j, "project": entity_name(j, lang), "quality_metric": metric, "dataset": q.get("dataset"),
                     "quality_value": q.get("value"), "baseline": q.get("baseline"), "improvement": q.get("improvement")})
    return Table("training_jobs", TRAINING_JOB_COLUMNS, rows)
