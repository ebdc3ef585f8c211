"""The board's headline tiles: nine figures in three groups (capacity, health, economics), each
with its change against last month and, where data/board_targets.yaml sets one, its distance to
a target — everything read from the published report's dict, so the board shows what was
published.

Changes against last month:

* allocated and available GPUs (monthly means): schema 4 reports (water level from
  :mod:`core.capacity_figures`, the portal's grants) hold last month's figures beside this month's
  (``water_level.previous_month``): the difference, in GPUs. Schema 3 reports (allocated from the
  rollups) follow the report's trend comparison: this month's ÷ its coverage − last month's
  allocated GPU-hours ÷ (24 × its days) ÷ its coverage, and available the opposite (those
  snapshots hold this month's fleet total only);
* the rest follow the report's own comparison (``trends.comparison``, see
  :mod:`core.reports.build`): none when either month has no data or too little coverage; totals
  coverage-normalised, ratios as they are. Utilisation of allocated GPUs: the difference in
  percentage points; used GPU-hours and cost: the report's relative changes
  (``trends.vs_previous_month``); cost per used GPU-hour: the relative change of cost ÷ used
  GPU-hours of the two months' summaries.

Queue wait and incidents have no figure for last month in the report: their tiles show no change.

Colour sense (Streamlit ``delta_color``): more allocated GPUs, higher utilisation and more used
GPU-hours are good ("normal"); more idle (available) GPUs and a higher cost per used GPU-hour are
bad ("inverse"); total cost is neither ("off": it grows with use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from core.datafiles import load_yaml
from core.errors import InputError
from core.i18n import translate
from core.reports import figures
from core.reports.build import parse_month, shift_month

TARGETS_FILE = "board_targets.yaml"
DIRECTIONS = ("at_least", "at_most")


@dataclass(frozen=True)
class Target:
    """A tile's target: its value in the tile's unit, which side is good, and where it comes from."""

    value: float
    direction: str
    source: str

    def met(self, figure: float) -> bool:
        """True when ``figure`` reaches the target."""
        return figure >= self.value if self.direction == "at_least" else figure <= self.value


@dataclass(frozen=True)
class TargetView:
    """A tile's target as shown: the sentence and whether it is met (green) or not (red)."""

    text: str
    met: bool


@dataclass(frozen=True)
class Tile:
    """One headline figure as shown: label, value, change against last month, target."""

    key: str
    label: str
    value: str
    delta: str | None
    delta_color: str
    target: TargetView | None
    help: str | None = None


@dataclass(frozen=True)
class TileGroup:
    """A titled group of tiles."""

    key: str
    title: str
    tiles: tuple[Tile, ...]


# ----------------------------------------------------------------------------- targets


def parse_targets(raw: Any) -> dict[str, Target]:
    """The targets that are set (value not null) from data/board_targets.yaml's content.

    Raises:
        InputError: an entry that is not a tile with a target, a value that is not a number (a
            ratio 0–1 for utilisation, not negative otherwise), a direction other than
            ``at_least``/``at_most``, or no ``source``.
    """
    out: dict[str, Target] = {}
    if raw is not None and not isinstance(raw, Mapping):
        raise InputError("error.data_entry_invalid", field=TARGETS_FILE, entry="-")
    for key, entry in (raw or {}).items():
        spec = _SPECS.get(key)
        if spec is None or not spec.targetable or not isinstance(entry, Mapping):
            raise InputError("error.data_entry_invalid", field=TARGETS_FILE, entry=str(key))
        value, direction, source = entry.get("value"), entry.get("direction"), entry.get("source")
        if direction not in DIRECTIONS or not isinstance(source, str) or not source.strip():
            raise InputError("error.data_entry_invalid", field=TARGETS_FILE, entry=key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                spec.kind == "pct" and value > 1):
            raise InputError("error.data_entry_invalid", field=TARGETS_FILE, entry=key)
        out[key] = Target(float(value), direction, source.strip())
    return out


def load_targets() -> dict[str, Target]:
    """The targets data/board_targets.yaml sets (see :func:`parse_targets`)."""
    return parse_targets(load_yaml(TARGETS_FILE))


# ----------------------------------------------------------------------------- changes


def _comparison(report: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The comparison with last month when the report made one (status ``ok``), else None."""
    comp = (report["trends"].get("comparison") or {}).get("previous_month")
    return comp if comp and comp.get("status") == "ok" else None


def _gpus_change(part: str) -> Callable[[Mapping[str, Any]], float | None]:
    """The change of the water level's ``part`` (allocated or available GPUs, monthly means)."""
    def change(report: Mapping[str, Any]) -> float | None:
        water = report["water_level"]
        before = water.get("previous_month")
        if before is not None:  # schema 4: last month's figures from the allocations, beside this month's
            if water.get(part) is None or before.get(part) is None:
                return None
            return float(water[part]) - float(before[part])
        allocated = _rollup_allocated_change(report)
        return None if allocated is None else (allocated if part == "allocated" else -allocated)
    return change


def _rollup_allocated_change(report: Mapping[str, Any]) -> float | None:
    """Schema 3 (allocated GPUs from the rollups): this month's ÷ its coverage − last month's
    allocated GPU-hours ÷ (24 × its days) ÷ its coverage."""
    comp = _comparison(report)
    prev = report["trends"].get("previous_month")
    water = report["water_level"]
    if comp is None or prev is None or "portal_granted" not in water or not comp["coverage"] or not comp["base_coverage"]:
        return None
    _, last = parse_month(shift_month(report["month"], -1))
    before = float(prev["gpu_hours_allocated"] or 0.0) / (24.0 * last.day)
    return float(water["allocated"]) / comp["coverage"] - before / comp["base_coverage"]


def _util_change(report: Mapping[str, Any]) -> float | None:
    now, before = report["trends"].get("current"), report["trends"].get("previous_month")
    if _comparison(report) is None or not now or not before:
        return None
    if now.get("util_allocated") is None or before.get("util_allocated") is None:
        return None
    return float(now["util_allocated"]) - float(before["util_allocated"])


def _relative(metric: str) -> Callable[[Mapping[str, Any]], float | None]:
    def change(report: Mapping[str, Any]) -> float | None:
        if _comparison(report) is None:
            return None
        return (report["trends"].get("vs_previous_month") or {}).get(metric)
    return change


def _cost_per_used_change(report: Mapping[str, Any]) -> float | None:
    now, before = report["trends"].get("current"), report["trends"].get("previous_month")
    if _comparison(report) is None or not now or not before:
        return None
    try:
        ratio_now = float(now["cost"]) / float(now["gpu_hours_used"])
        ratio_before = float(before["cost"]) / float(before["gpu_hours_used"])
        return ratio_now / ratio_before - 1.0
    except (TypeError, ZeroDivisionError, KeyError):
        return None


# ----------------------------------------------------------------------------- the tiles


@dataclass(frozen=True)
class _Spec:
    key: str
    kind: str  # gpus, pct, hours, count, money, price, gpu_hours (how value and target gap are shown)
    value: Callable[[Mapping[str, Any]], Any]
    change: Callable[[Mapping[str, Any]], float | None] | None
    change_kind: str | None  # gpus, points, pct
    sense: str  # normal, inverse, off (Streamlit delta_color)
    targetable: bool = True
    compared: bool = True  # False: no change is expected (the fleet's size), so none is missing


def _monthly_means(report: Mapping[str, Any]) -> bool:
    """Schema 3 and later: the water level's allocated and available are monthly means."""
    return "portal_granted" in report["water_level"]


_TILES = (
    ("capacity", (
        _Spec("gpus_total", "gpus", lambda r: r["water_level"]["total"], None, None, "off", targetable=False,
              compared=False),
        _Spec("gpus_allocated", "gpus", lambda r: r["water_level"]["allocated"], _gpus_change("allocated"), "gpus",
              "normal", targetable=False),
        _Spec("gpus_available", "gpus", lambda r: r["water_level"]["available"], _gpus_change("available"), "gpus",
              "inverse"),
    )),
    ("health", (
        _Spec("util_allocated", "pct", lambda r: r["health"]["util_allocated"], _util_change, "points", "normal"),
        _Spec("queue_wait_mean_h", "hours", lambda r: r["health"]["queue_wait"]["mean_h"], None, None, "inverse"),
        _Spec("incidents", "count", lambda r: r["health"]["incidents"]["count"], None, None, "inverse"),
    )),
    ("economics", (
        _Spec("cost", "money", lambda r: r["economics"]["cost"], _relative("cost"), "pct", "off", targetable=False),
        _Spec("cost_per_useful_gpu_hour", "price", lambda r: r["economics"]["cost_per_useful_gpu_hour"],
              _cost_per_used_change, "pct", "inverse"),
        _Spec("gpu_hours_used", "gpu_hours", lambda r: r["economics"]["gpu_hours_used"], _relative("gpu_hours_used"),
              "pct", "normal", targetable=False),
    )),
)
_SPECS = {s.key: s for _, specs in _TILES for s in specs}


def _gap(kind: str, gap: float, lang: str) -> str:
    """How far a figure is from its target, unsigned, in the tile's unit."""
    if kind == "pct":
        return translate("board.unit.points", lang, value=f"{gap * 100:.1f}")
    return figures.shown(kind, gap, lang)


def _delta(spec: _Spec, report: Mapping[str, Any], lang: str) -> str | None:
    if spec.change is None:
        return None
    change = spec.change(report)
    if change is None:
        return None
    if spec.change_kind == "gpus":
        return figures.signed_gpus(change)
    if spec.change_kind == "points":
        return figures.signed_points(change, lang)
    return figures.signed_pct(change)


def _target_view(spec: _Spec, value: Any, target: Target | None, lang: str) -> TargetView | None:
    if target is None or value is None:
        return None
    op = translate(f"board.target.{target.direction}", lang)
    wanted = _gap(spec.kind, target.value, lang) if spec.kind != "pct" else figures.pct(target.value)
    if target.met(float(value)):
        return TargetView(translate("board.target.met", lang, op=op, target=wanted), True)
    gap = _gap(spec.kind, abs(float(value) - target.value), lang)
    return TargetView(translate("board.target.missed", lang, op=op, target=wanted, gap=gap), False)


def _label(spec: _Spec, report: Mapping[str, Any], lang: str) -> str:
    # Reports built before schema 3 counted the portal's grants, not monthly means.
    if spec.key in ("gpus_allocated", "gpus_available") and _monthly_means(report):
        return translate(f"board.tile.{spec.key}_mean", lang)
    return translate(f"board.tile.{spec.key}", lang)


def _help(spec: _Spec, report: Mapping[str, Any], lang: str) -> str | None:
    """What a tile's figure means, where the label is too short to say it."""
    if spec.key.startswith("gpus_") and "previous_month" in report["water_level"]:
        # schema 4: the capacity figures' own definitions (core.capacity_figures), as on the water level page
        suffix = "" if spec.key == "gpus_total" else "_mean"
        return translate(f"capacity.board_help.{spec.key}{suffix}", lang)
    if spec.key == "util_allocated":
        return translate("board.help.util_allocated", lang, fleet=figures.pct(report["health"]["util_fleet"]))
    return None


def headline_tiles(report: Mapping[str, Any], lang: str, targets: Mapping[str, Target] | None = None) -> list[TileGroup]:
    """The board's tiles in their groups, in ``lang``; ``targets`` from :func:`load_targets`."""
    targets = dict(targets or {})
    comparable = _comparison(report) is not None
    groups = []
    for group, specs in _TILES:
        tiles = []
        for spec in specs:
            value = spec.value(report)
            delta = _delta(spec, report, lang)
            help_text = _help(spec, report, lang)
            if spec.change is None and spec.compared and comparable:
                help_text = translate("board.delta.not_in_report", lang)
            tiles.append(Tile(spec.key, _label(spec, report, lang), figures.shown(spec.kind, value, lang), delta,
                              "off" if delta == figures.ZERO else spec.sense,
                              _target_view(spec, value, targets.get(spec.key), lang), help_text))
        groups.append(TileGroup(group, translate(f"board.group.{group}", lang), tuple(tiles)))
    return groups


def comparison_note(report: Mapping[str, Any], lang: str) -> str | None:
    """Why the tiles show no change against last month (no data, too little coverage), or None."""
    comp = (report["trends"].get("comparison") or {}).get("previous_month")
    month = shift_month(report["month"], -1)
    if comp is None:
        return translate("board.delta.no_comparison", lang, month=month)
    if comp["status"] == "no_data":
        return translate("board.delta.no_data", lang, month=month)
    if comp["status"] == "insufficient_data":
        return translate("reportfix.trend_insufficient", lang, month=month, base=figures.pct(comp["base_coverage"]),
                         now=figures.pct(comp["coverage"]), min=figures.pct(comp["min_coverage"]))
    return None
