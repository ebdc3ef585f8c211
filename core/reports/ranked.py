"""The board's red, black and top lists, each labelled for what it ranks: its entries show the
figure the list is ordered by (a cost list shows the cost per used GPU-hour, an idle list the idle
days), with a line saying which figure and in which order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from core.i18n import translate
from core.reports import figures
from core.reports.tables import entity_name

# list → (the entity field it is ordered by, how that figure is shown, order). Orders follow
# core/reports/build.py: red lists highest utilisation / lowest cost first; black lists lowest
# utilisation / most idle days / largest gap first; top lists highest first.
RANKED_BY: dict[str, tuple[str, str, str]] = {
    "highest_util": ("util", "pct", "desc"),
    "best_cost_per_useful_hour": ("cost_per_useful_gpu_hour", "price", "asc"),
    "lowest_util": ("util", "pct", "asc"),
    "long_idle": ("idle_days", "days", "desc"),
    "largest_gap": ("gap_gpu_hours", "gpu_hours", "desc"),
    "gpu_util": ("util", "pct", "desc"),
    "memory": ("mem", "pct", "desc"),
}


@dataclass(frozen=True)
class RankedList:
    """A list as shown: title, what it is ordered by, and its lines (empty: nothing qualified)."""

    key: str
    title: str
    basis: str
    lines: tuple[str, ...]


def ranked_list(report: Mapping[str, Any], section: str, name: str, lang: str) -> RankedList:
    """The list ``report[section][name]`` with each entry's ranking figure, in ``lang``."""
    field, kind, order = RANKED_BY[name]
    by_id = {e["id"]: e for e in report.get("entities", [])}
    lines = []
    for rank, key in enumerate(report[section][name], 1):
        e = by_id.get(key, {"id": key})
        lines.append(translate("board.rank_entry", lang, rank=rank, name=entity_name(e, lang),
                               figure=figures.shown(kind, e.get(field), lang)))
    basis = translate(f"board.ranked_by.{order}", lang, figure=translate(f"board.figure.{field}", lang))
    return RankedList(name, translate(f"reports.list.{name}", lang), basis, tuple(lines))
