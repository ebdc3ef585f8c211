"""The report's tables, one definition shared by the pages, HTML/PDF, Excel and CSV exports.

Cells hold raw values (ratios 0–1, hours, CNY); each column says how it is shown (``pct``,
``num``, ``int``, ``text``), so exports keep numbers as numbers and pages format them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.i18n import translate


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
    return str(value)


def entity_name(e: dict[str, Any], lang: str) -> str:
    """A project's name in ``lang`` (a namespace is its own name)."""
    return e.get("name_en" if lang == "en" else "name_zh") or e["id"]


def _dept(e: dict[str, Any], lang: str) -> str | None:
    return e.get("department_en" if lang == "en" else "department_zh")


def headline(report: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(metric key, value, kind) of the big numbers at the top of the board."""
    w, h, e = report["water_level"], report["health"], report["economics"]
    return [
        ("gpus_total", w["total"], "int"), ("gpus_allocated", w["allocated"], "int"),
        ("gpus_available", w["available"], "int"), ("util_allocated", h["util_allocated"], "pct"),
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
    out.append(Table("water_by_pool", (("pool", "text"), ("kind", "text"), ("cluster", "text"), ("model", "text"),
                                       ("total", "int"), ("allocated", "int"), ("available", "int")),
                     [dict(r) for r in report["water_level"]["by_pool"]]))
    out.append(Table("water_by_model", (("model", "text"), ("total", "int"), ("allocated", "int"), ("available", "int"),
                                        ("gpus_seen", "int"), ("mean_gpus_in_use", "num")),
                     [dict(r) for r in report["water_level"]["by_model"]]))
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
    t = report["trends"]
    trend_rows = [{"month": m["month"], **(m["summary"] or {})} for m in t["months"]]
    trend_rows.append({**(t["current"] or {}), "month": report["month"]})
    trend_rows.append({"month": t["last_year_month"], **(t["same_month_last_year"] or {})})
    out.append(Table("trends", (("month", "text"), ("gpu_hours_used", "num"), ("gpu_hours_allocated", "num"),
                                ("util_allocated", "pct"), ("energy_kwh", "num"), ("cost", "num"), ("coverage", "pct")),
                     trend_rows))
    out.append(Table("incidents", (("number", "text"), ("request_id", "int"), ("pool", "text"), ("at", "text")),
                     [dict(i) for i in report["health"]["incidents"]["items"]]))
    return out
